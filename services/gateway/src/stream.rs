//! Relaying a chunk stream to the client as OpenAI's event stream.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;

use crate::providers::ChunkStream;

/// `data:` frames for each chunk, then `data: [DONE]`; a failure mid-stream ends it
/// with one error frame (`data: {"error": {...}}`, which the official SDKs raise)
/// and no `[DONE]`. Each chunk is written as soon as it arrives. Dropping the
/// response (the client went away) drops the upstream request with it.
pub fn sse_response(headers: HeaderMap, chunks: ChunkStream) -> Response {
    enum State {
        Streaming(ChunkStream),
        Done,
    }
    let frames = futures_util::stream::unfold(State::Streaming(chunks), |state| async move {
        let State::Streaming(mut chunks) = state else {
            return None;
        };
        match chunks.next().await {
            Some(Ok(payload)) => Some((
                Ok::<_, std::convert::Infallible>(llm::sse::data_frame(&payload)),
                State::Streaming(chunks),
            )),
            None => Some((Ok(Bytes::from_static(llm::sse::DONE_FRAME)), State::Done)),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "stream ended by an upstream failure");
                let body = serde_json::to_vec(&e.openai_body()).unwrap_or_default();
                Some((Ok(llm::sse::data_frame(&body)), State::Done))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(frames));
    let h = response.headers_mut();
    h.extend(headers);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// A whole JSON body with the upstream headers worth keeping.
pub fn json_response(headers: HeaderMap, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    let h = response.headers_mut();
    h.extend(headers);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
