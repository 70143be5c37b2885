//! `POST /v1/chat/completions`: parse, resolve, call, answer.

use axum::response::Response;
use bytes::Bytes;
use llm::openai::ChatRequest;

use crate::app::AppState;
use crate::error::Error;
use crate::stream;

#[tracing::instrument(name = "chat", skip_all, fields(model, provider, stream))]
pub async fn complete(state: &AppState, body: &Bytes) -> Result<Response, Error> {
    let req = ChatRequest::parse(body)?;
    let target = state.routes().resolve(&req.model)?;
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    span.record("provider", &*target.provider_name);
    span.record("stream", req.stream);
    if req.stream {
        let start = target.provider.chat_stream(&req, &target.model).await?;
        Ok(stream::sse_response(
            stream::Dialect::OpenAi,
            start.headers,
            stream::openai_frames(start.chunks),
        ))
    } else {
        let completion = target.provider.chat(&req, &target.model).await?;
        Ok(stream::json_response(completion.headers, completion.body))
    }
}
