//! The provider call of `POST /v1/completions`, OpenAI's legacy text
//! completions (vLLM and Ollama users still call it), which [`crate::chat`]
//! serves as it serves chat: passed through to OpenAI-compatible providers, body
//! and stream untouched but for `model`; a provider kind without the API
//! (Anthropic, demo) is a 400 `unsupported_endpoint`.

use llm::openai::ChatRequest;

use crate::error::Error;
use crate::providers::openai::OpenAiCompatible;
use crate::providers::{Completion, Provider, StreamStart};
use crate::routing::Target;

/// The whole completion.
pub async fn whole(target: &Target, req: &ChatRequest) -> Result<Completion, Error> {
    compatible(target)?.completions(req, &target.model).await
}

/// The streamed completion.
pub async fn stream(target: &Target, req: &ChatRequest) -> Result<StreamStart, Error> {
    compatible(target)?
        .completions_stream(req, &target.model)
        .await
}

fn compatible(target: &Target) -> Result<&OpenAiCompatible, Error> {
    match &*target.provider {
        Provider::OpenAi(p) => Ok(p),
        _ => Err(Error::Unsupported {
            provider: target.provider_name.to_string(),
            what: "legacy completions (/v1/completions)",
        }),
    }
}
