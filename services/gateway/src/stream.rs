//! Relaying a stream to the client as Server-Sent Events, in the dialect of the API
//! the client called.

use std::borrow::Cow;
use std::pin::Pin;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::stream::ReadyChunks;
use futures_util::{Stream, StreamExt};

use crate::providers::{ChunkStream, StreamError};

/// One event for the client: its SSE `event:` name (Anthropic's streams name
/// theirs, OpenAI's do not) and its JSON data.
#[derive(Debug, Clone)]
pub struct Frame {
    pub event: Option<Cow<'static, str>>,
    pub data: Bytes,
}

pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, StreamError>> + Send>>;

/// Which API's stream conventions to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `data:` frames, `data: [DONE]` at the end, errors as `data: {"error": …}`.
    OpenAi,
    /// `event:` + `data:` frames, nothing after `message_stop`, errors as
    /// `event: error`.
    Anthropic,
    /// OpenAI's Responses API: `event:` + `data:` frames, nothing after the
    /// terminal event; a failure is an `error` event then `response.failed`,
    /// which the stream's translator writes itself (it numbers the events).
    Responses,
}

/// OpenAI chunk payloads as frames.
pub fn openai_frames(chunks: ChunkStream) -> FrameStream {
    Box::pin(chunks.map(|item| item.map(|data| Frame { event: None, data })))
}

/// Streams `frames`, each written as soon as it arrives (frames already waiting
/// when one is polled leave in one write: streaming cost is mostly syscalls). A
/// failure ends the stream with one error event in the client's dialect instead of
/// a hang. Dropping the response (the client went away) drops the upstream request
/// with it.
pub fn sse_response(dialect: Dialect, headers: HeaderMap, frames: FrameStream) -> Response {
    enum State {
        Streaming(ReadyChunks<FrameStream>),
        Done,
    }
    let batches = frames.ready_chunks(64);
    let body = futures_util::stream::unfold(State::Streaming(batches), move |state| async move {
        let State::Streaming(mut batches) = state else {
            return None;
        };
        let Some(batch) = batches.next().await else {
            return match dialect {
                Dialect::OpenAi => Some((
                    Ok::<_, std::convert::Infallible>(Bytes::from_static(llm::sse::DONE_FRAME)),
                    State::Done,
                )),
                Dialect::Anthropic | Dialect::Responses => None,
            };
        };
        let mut out = BytesMut::new();
        for item in batch {
            match item {
                Ok(frame) => write_frame(&mut out, frame.event.as_deref(), &frame.data),
                Err(e) => {
                    tracing::warn!(error = %e, "stream ended by an upstream failure");
                    match dialect {
                        Dialect::OpenAi => {
                            let body = serde_json::to_vec(&e.openai_body()).unwrap_or_default();
                            write_frame(&mut out, None, &body);
                        }
                        Dialect::Anthropic => {
                            let body = serde_json::to_vec(&e.anthropic_body()).unwrap_or_default();
                            write_frame(&mut out, Some("error"), &body);
                        }
                        // Its translator sent the failure's events before the error.
                        Dialect::Responses => {}
                    }
                    return Some((Ok(out.freeze()), State::Done));
                }
            }
        }
        Some((Ok(out.freeze()), State::Streaming(batches)))
    });
    let mut response = Response::new(Body::from_stream(body));
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

fn write_frame(out: &mut BytesMut, event: Option<&str>, data: &[u8]) {
    out.reserve(data.len() + 16 + event.map_or(0, str::len));
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
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

/// A stateful translation of one stream into another, item by item.
pub trait Translate: Send + 'static {
    type In: Send + 'static;
    type Out: Send + 'static;
    /// What one input item becomes (nothing, one item, or several).
    fn item(&mut self, input: Self::In) -> Result<Vec<Self::Out>, StreamError>;
    /// What the end of the input adds (closing items, or an error when the input
    /// ended too early).
    fn end(&mut self) -> Result<Vec<Self::Out>, StreamError>;
    /// Nothing more is expected: stop reading the input.
    fn done(&self) -> bool {
        false
    }
}

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, StreamError>> + Send>>;

/// Applies `t` to `input`: each output leaves as soon as its input arrived; the
/// first error (from the input or the translation) ends the stream.
pub fn translate<T: Translate>(input: BoxStream<T::In>, t: T) -> BoxStream<T::Out> {
    struct State<T: Translate> {
        input: BoxStream<T::In>,
        t: T,
        pending: std::collections::VecDeque<T::Out>,
        failed: Option<StreamError>,
        finished: bool,
    }
    let state = State {
        input,
        t,
        pending: std::collections::VecDeque::new(),
        failed: None,
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(out) = s.pending.pop_front() {
                return Some((Ok(out), s));
            }
            if let Some(e) = s.failed.take() {
                s.finished = true;
                return Some((Err(e), s));
            }
            if s.finished {
                return None;
            }
            let step = if s.t.done() {
                s.finished = true;
                Ok(Vec::new())
            } else {
                match s.input.next().await {
                    None => {
                        s.finished = true;
                        s.t.end()
                    }
                    Some(Err(e)) => Err(e),
                    Some(Ok(item)) => s.t.item(item),
                }
            };
            match step {
                Ok(out) => s.pending.extend(out),
                Err(e) => s.failed = Some(e),
            }
        }
    }))
}

/// Waits for a stream's first item, at most `deadline`, before anything is sent to
/// the client: a stream that fails before it is an error another target may take
/// over ([`Error::is_retryable`]); the stream comes back with that item in front.
/// Its status and headers are committed only then.
pub async fn first_item<T: Send + 'static>(
    mut input: BoxStream<T>,
    deadline: std::time::Duration,
    provider: &str,
) -> Result<BoxStream<T>, crate::error::Error> {
    use crate::error::Error;
    let unreachable = |reason: String| Error::UpstreamUnreachable {
        provider: provider.to_owned(),
        reason,
    };
    match tokio::time::timeout(deadline, input.next()).await {
        Err(_) => Err(Error::UpstreamTimeout {
            provider: provider.to_owned(),
            seconds: deadline.as_secs_f64(),
        }),
        Ok(Some(Ok(first))) => Ok(Box::pin(
            futures_util::stream::once(async move { Ok(first) }).chain(input),
        )),
        Ok(None) => Err(unreachable(
            "the stream ended before its first event".into(),
        )),
        Ok(Some(Err(e))) => Err(match e {
            StreamError::Timeout { seconds } => Error::UpstreamTimeout {
                provider: provider.to_owned(),
                seconds,
            },
            StreamError::Read(_) | StreamError::Truncated => unreachable(e.to_string()),
            StreamError::Protocol(reason) => Error::UpstreamProtocol {
                provider: provider.to_owned(),
                reason,
            },
            // An error event first: as if its kind had been the answer's status,
            // so a request error is not retried and an overload is.
            StreamError::Upstream(body) => {
                let status = match body.error.kind.as_str() {
                    "invalid_request_error" => 400,
                    "authentication_error" => 401,
                    "permission_error" => 403,
                    "not_found_error" => 404,
                    "rate_limit_error" | "rate_limit_exceeded" => 429,
                    "overloaded_error" => 529,
                    _ => 502,
                };
                Error::Upstream {
                    status: axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                    body,
                    retry_after: None,
                }
            }
        }),
    }
}
