//! `POST /v1/embeddings`.

use axum::response::Response;
use bytes::Bytes;
use llm::openai::EmbeddingsRequest;

use crate::app::AppState;
use crate::error::Error;
use crate::stream;

#[tracing::instrument(name = "embeddings", skip_all, fields(model, provider))]
pub async fn embed(state: &AppState, body: &Bytes) -> Result<Response, Error> {
    let req = EmbeddingsRequest::parse(body)?;
    let target = state.routes().resolve(&req.model)?;
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    span.record("provider", &*target.provider_name);
    let completion = target.provider.embeddings(&req, &target.model).await?;
    Ok(stream::json_response(completion.headers, completion.body))
}
