//! `POST /v1/messages/count_tokens`, Anthropic's API: passed through to an
//! Anthropic provider (only `model` rewritten); for every other provider,
//! estimated here with OpenAI's tokenizers (`llm::count_tokens`), without an
//! upstream call.
//!
//! Choices: a count is checked against the key's model allow-list but takes
//! nothing from its rate limits or budget (it consumes no tokens, and Claude
//! Code sends one before nearly every turn); it is logged like every request,
//! with no tokens and no cost, the count in its response body. The mapping's
//! first target answers: a count is not retried on another. The tokenizers are
//! loaded on the first estimate, not at start-up: a gateway that never estimates
//! does not hold them (tens of megabytes).

use std::time::Instant;

use axum::http::HeaderMap;
use bytes::Bytes;
use llm::anthropic::RawRequest;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::providers::Provider;

#[tracing::instrument(name = "count_tokens", skip_all, fields(model, provider))]
pub async fn count(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    x: &mut Exchange,
) -> Result<Reply, Error> {
    let raw = RawRequest::parse_count_tokens(body).map_err(Error::InvalidMessagesRequest)?;
    x.asked_for(&raw.model)?;
    let route = state.routing().resolve(&raw.model)?;
    state.limits().admit_model(x)?;
    let span = tracing::Span::current();
    span.record("model", raw.model.as_str());
    let mut attempts = state.attempts(&route, &x.asked)?;
    let target = attempts
        .first()
        .ok_or_else(|| Error::ModelNotFound(raw.model.clone()))?;
    span.record("provider", &*target.provider_name);
    x.route(target);
    let sent = Instant::now();
    let answered = match &*target.provider {
        Provider::Anthropic(p) => p.count_tokens(&raw.body, &target.model, headers).await,
        // Off the runtime's threads: the first count loads a tokenizer (a
        // fraction of a second), and a long conversation takes milliseconds.
        _ => {
            let (body, model) = (body.clone(), target.model.to_string());
            tokio::task::spawn_blocking(move || estimate(&body, &model))
                .await
                .map_err(|e| Error::Unexpected(e.into()))?
        }
    };
    x.upstream_done(sent);
    let counted = answered?;
    Ok(Reply::Json {
        headers: counted.headers,
        body: counted.body,
    })
}

/// `{"input_tokens": N}`, estimated.
fn estimate(body: &Bytes, model: &str) -> Result<crate::providers::Completion, Error> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidMessagesRequest(format!("invalid JSON body: {e}")))?;
    let tokens = llm::count_tokens::estimate(&value, model);
    Ok(crate::providers::Completion {
        headers: HeaderMap::new(),
        body: Bytes::from(serde_json::json!({ "input_tokens": tokens }).to_string()),
    })
}
