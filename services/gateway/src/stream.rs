//! Relaying a chunk stream to the client as OpenAI's event stream.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::ReadyChunks;

use crate::providers::ChunkStream;

/// `data:` frames for each chunk, then `data: [DONE]`; a failure mid-stream ends it
/// with one error frame (`data: {"error": {...}}`, which the official SDKs raise)
/// and no `[DONE]`. Each chunk is written as soon as it arrives. Dropping the
/// response (the client went away) drops the upstream request with it.
pub fn sse_response(headers: HeaderMap, chunks: ChunkStream) -> Response {
    enum State {
        Streaming(ReadyChunks<ChunkStream>),
        Done,
    }
    // Chunks that are already there when one is polled (several events in one
    // upstream read) leave in one write: streaming cost is mostly syscalls.
    let batches = chunks.ready_chunks(64);
    let frames = futures_util::stream::unfold(State::Streaming(batches), |state| async move {
        let State::Streaming(mut batches) = state else {
            return None;
        };
        let Some(batch) = batches.next().await else {
            return Some((Ok(Bytes::from_static(llm::sse::DONE_FRAME)), State::Done));
        };
        let mut out = BytesMut::new();
        for item in batch {
            match item {
                Ok(payload) => write_frame(&mut out, &payload),
                Err(e) => {
                    tracing::warn!(error = %e, "stream ended by an upstream failure");
                    let body = serde_json::to_vec(&e.openai_body()).unwrap_or_default();
                    write_frame(&mut out, &body);
                    return Some((Ok(out.freeze()), State::Done));
                }
            }
        }
        Some((
            Ok::<_, std::convert::Infallible>(out.freeze()),
            State::Streaming(batches),
        ))
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

fn write_frame(out: &mut BytesMut, payload: &[u8]) {
    out.reserve(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
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
