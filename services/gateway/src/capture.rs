//! Capturing each request for the log, without slowing it: the request path only
//! moves reference-counted buffers into an [`Exchange`] and pushes it onto the
//! bounded [`LogQueue`]; a stream is tapped as it passes ([`TappedStream`]).
//! Everything costly (media extraction, stream assembly, token counting, encoding,
//! publishing) happens in [`crate::publish`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::app::RequestContext;
use crate::error::Error;
use crate::providers::StreamError;
use crate::publish::metrics::Metrics;
use crate::stream::{self, Dialect, Frame, FrameStream};

/// The longest model name accepted (and stored).
pub const MAX_MODEL_BYTES: usize = 256;

/// Everything the log keeps about one request, as captured on the request path.
#[derive(Debug)]
pub struct Exchange {
    pub request_id: uuid::Uuid,
    pub received_at_us: i64,
    pub started: Instant,
    pub endpoint: &'static str,
    pub dialect: Dialect,
    /// The client key's id; `None` on an open gateway without a known key.
    pub key_id: Option<std::sync::Arc<str>>,
    /// The key's limits, when it has any ([`crate::limits`]).
    pub limits: Option<std::sync::Arc<config_model::KeyLimits>>,
    /// The `x-ratelimit-*` headers every answer to a limited key carries.
    pub rate_headers: axum::http::HeaderMap,
    /// What its limits reserved, settled when its log is made.
    pub reservation: Option<crate::limits::Reservation>,
    /// Its call in flight, counted for its key until the exchange is dropped.
    pub slot: Option<crate::limits::Slot>,
    /// The prices over the bundled table of the snapshot it was routed on.
    pub prices: std::sync::Arc<std::collections::BTreeMap<String, config_model::prices::Price>>,
    /// `playground`, or empty ([`crate::app::RequestContext::source`]).
    pub source: &'static str,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    /// The client asked for a stream.
    pub stream: bool,
    /// The answer was a stream (`false` for a stream request refused before its
    /// first event: its log keeps the error body the client got).
    pub streamed: bool,
    /// The client asked for a usage chunk (OpenAI `stream_options.include_usage`).
    pub client_wants_usage: bool,
    pub request_body: Bytes,
    pub status: u16,
    pub error_kind: String,
    pub error_message: String,
    pub response_body: Bytes,
    /// A stream's `data:` payloads, in order, the usage chunk included.
    pub frames: Vec<Bytes>,
    pub latency_us: u64,
    pub ttft_us: u64,
    pub upstream_latency_us: u64,
    /// The request's server span, when it is sampled: the exchange's spans are
    /// made, once it is prepared, as its children ([`crate::publish`]).
    pub trace: Option<std::sync::Arc<telemetry::trace::requests::RequestSpan>>,
    /// When the upstream call was sent, and to whom.
    pub upstream_sent: Option<Instant>,
    /// The sampling parameters the request asked for, read where it was parsed,
    /// for its GenAI span (only when traced).
    pub sampling: llm::trace_facts::Asked,
    /// Built-in tools left out of the upstream request (a Responses request
    /// translated for a provider that cannot run them), by `type`.
    pub omitted_tools: Vec<String>,
    pub peer: Option<std::sync::Arc<crate::providers::Peer>>,
    /// What the client asked of its routing.
    pub asked: crate::retry::Asked,
    /// The upstream calls that failed before the last one.
    pub failed_attempts: Vec<events::proto::Attempt>,
    /// The room the request body holds under `max_body_bytes_in_flight`: given
    /// back when the exchange is dropped, once its log event is built.
    pub body_room: Option<crate::body_budget::Room>,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Exchange {
    pub fn new(ctx: &RequestContext, endpoint: &'static str, dialect: Dialect) -> Self {
        Self {
            request_id: ctx.id,
            received_at_us: ctx.received_at_us,
            started: ctx.started,
            endpoint,
            dialect,
            key_id: ctx.key_id.clone(),
            limits: ctx.limits.clone(),
            rate_headers: axum::http::HeaderMap::new(),
            reservation: None,
            slot: None,
            prices: std::sync::Arc::default(),
            source: ctx.source,
            requested_model: String::new(),
            provider: String::new(),
            upstream_model: String::new(),
            stream: false,
            streamed: false,
            client_wants_usage: false,
            request_body: Bytes::new(),
            status: 0,
            error_kind: String::new(),
            error_message: String::new(),
            response_body: Bytes::new(),
            frames: Vec::new(),
            latency_us: 0,
            ttft_us: 0,
            upstream_latency_us: 0,
            trace: ctx.span.clone(),
            upstream_sent: None,
            sampling: llm::trace_facts::Asked::default(),
            omitted_tools: Vec::new(),
            peer: None,
            asked: ctx.asked.clone(),
            failed_attempts: Vec::new(),
            body_room: None,
        }
    }

    /// The bytes of body and frames the log keeps: what preparing it costs.
    pub fn weight(&self) -> usize {
        self.request_body.len()
            + self.response_body.len()
            + self.frames.iter().map(Bytes::len).sum::<usize>()
    }

    /// Records the model asked for (at most [`MAX_MODEL_BYTES`] of it); a longer
    /// name is refused: no provider has one, and it would be echoed and stored.
    pub fn asked_for(&mut self, model: &str) -> Result<(), Error> {
        let mut end = model.len().min(MAX_MODEL_BYTES);
        while !model.is_char_boundary(end) {
            end -= 1;
        }
        self.requested_model = model[..end].to_owned();
        if model.len() > MAX_MODEL_BYTES {
            return Err(Error::InvalidRequest(
                llm::openai::InvalidRequest::InvalidValue {
                    param: "model".into(),
                    message: "a model name is at most 256 bytes.",
                },
            ));
        }
        Ok(())
    }

    /// Hands the request's server span to this exchange's log record, which the
    /// publisher encodes (the middleware makes it otherwise).
    pub(crate) fn claim_trace(&self) {
        if let Some(span) = &self.trace {
            span.claim();
        }
    }

    /// Notes a target's failure that another call takes over from.
    pub fn failed_over(&mut self, e: &Error) {
        tracing::info!(provider = %self.provider, error = %e, "upstream call failed; trying again");
        self.keys_rested();
        let status = match e {
            Error::Upstream { status, .. } | Error::UpstreamAnthropic { status, .. } => {
                u32::from(status.as_u16())
            }
            _ => 0,
        };
        self.failed_attempts.push(events::proto::Attempt {
            provider: self.provider.clone(),
            upstream_model: self.upstream_model.clone(),
            status,
            error_kind: e.code().unwrap_or("error").to_owned(),
            latency_us: self.upstream_latency_us,
            key: crate::providers::key_calls::last_key(),
        });
    }

    /// Notes the calls whose key rested (a 429 or 401 the pool's next key took
    /// over) since the last note, as failed calls.
    fn keys_rested(&mut self) {
        for r in crate::providers::key_calls::take_rested() {
            self.failed_attempts.push(events::proto::Attempt {
                provider: self.provider.clone(),
                upstream_model: self.upstream_model.clone(),
                status: u32::from(r.status),
                error_kind: if r.status == 401 {
                    "key_refused"
                } else {
                    "key_rate_limited"
                }
                .to_owned(),
                latency_us: r.latency_us,
                key: r.key,
            });
        }
    }

    /// Keeps the sampling parameters of the request's top-level members for its
    /// span, when it is traced.
    pub fn sampled_with(&mut self, body: &llm::raw::RawObject) {
        if self.trace.is_some() {
            self.sampling = llm::trace_facts::asked(body);
        }
    }

    /// Records where the request goes (each call: the last is the one logged).
    pub fn route(&mut self, target: &crate::routing::Target) {
        self.provider = target.provider_name.to_string();
        self.upstream_model = target.model.to_string();
        if self.trace.is_some() {
            self.peer = Some(target.provider.peer().clone());
        }
    }

    /// Marks the time spent waiting on the upstream since `since`.
    pub fn upstream_done(&mut self, since: Instant) {
        self.upstream_sent = Some(since);
        self.upstream_latency_us = micros(since.elapsed());
    }

    pub(crate) fn fail(&mut self, kind: Option<&str>, message: String) {
        self.error_kind = kind.unwrap_or("error").to_owned();
        self.error_message = message;
    }
}

/// What a handler answers before the log is taken.
pub enum Reply {
    Json {
        headers: axum::http::HeaderMap,
        body: Bytes,
    },
    Stream {
        headers: axum::http::HeaderMap,
        frames: FrameStream,
    },
}

impl Reply {
    /// Keeps the target's call counted in flight until a stream ends (an
    /// answer already whole is over).
    pub fn holding(self, busy: Option<crate::balance::Busy>) -> Self {
        match (self, busy) {
            (Self::Stream { headers, frames }, Some(busy)) => Self::Stream {
                headers,
                frames: Box::pin(futures_util::StreamExt::map(frames, move |frame| {
                    let _held = &busy;
                    frame
                })),
            },
            (reply, _) => reply,
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json { body, .. } => f.debug_struct("Json").field("len", &body.len()).finish(),
            Self::Stream { .. } => f.write_str("Stream"),
        }
    }
}

/// The request path's end of the log pipeline.
#[derive(Debug, Clone)]
pub struct LogQueue {
    tx: mpsc::Sender<Exchange>,
    pub metrics: Arc<Metrics>,
}

impl LogQueue {
    pub fn new(tx: mpsc::Sender<Exchange>, metrics: Arc<Metrics>) -> Self {
        Self { tx, metrics }
    }

    /// Queues the exchange; never waits. A full queue (the publisher cannot even
    /// spill to disk fast enough) drops it, counted and logged.
    pub fn push(&self, x: Exchange) {
        match self.tx.try_send(x) {
            Ok(()) => {
                self.metrics.recorded.inc();
            }
            Err(e) => {
                self.metrics.dropped.inc();
                let x = match e {
                    mpsc::error::TrySendError::Full(x) | mpsc::error::TrySendError::Closed(x) => x,
                };
                tracing::error!(request_id = %x.request_id, "log queue full: log event dropped");
            }
        }
    }

    /// Events waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Turns a handler's result into the response, and records the exchange: now for
/// a whole answer, when the stream ends (or the client leaves) for a stream.
pub fn finish(
    log_queue: Option<&LogQueue>,
    mut x: Exchange,
    result: Result<Reply, Error>,
) -> Response {
    // A limited key's every answer says how much of its limit is left.
    let rate = std::mem::take(&mut x.rate_headers);
    let mut response = answer(log_queue, x, result);
    response.headers_mut().extend(rate);
    response
}

fn answer(log_queue: Option<&LogQueue>, mut x: Exchange, result: Result<Reply, Error>) -> Response {
    x.keys_rested();
    if log_queue.is_some() {
        x.claim_trace();
    }
    match result {
        Err(e) => {
            let (status, body) = match x.dialect {
                Dialect::OpenAi => (e.status_code(), serde_json::to_vec(&e.openai_body())),
                Dialect::Anthropic => {
                    let (status, body) = e.anthropic();
                    (status, serde_json::to_vec(&body))
                }
                Dialect::Responses => {
                    let (status, body) = e.responses();
                    (status, serde_json::to_vec(&body))
                }
            };
            x.status = status.as_u16();
            x.fail(e.code(), e.to_string());
            x.response_body = Bytes::from(body.unwrap_or_default());
            x.latency_us = micros(x.started.elapsed());
            let dialect = x.dialect;
            let gave_up = !x.failed_attempts.is_empty() && e.is_upstream();
            if let Some(r) = log_queue {
                r.push(x);
            }
            let mut response = match dialect {
                Dialect::OpenAi => e.into_response(),
                Dialect::Anthropic => e.into_anthropic_response(),
                Dialect::Responses => e.into_responses_response(),
            };
            if gave_up {
                // aiprox already tried the other targets: the SDKs must not
                // multiply the attempts.
                response.headers_mut().insert(
                    "x-should-retry",
                    axum::http::HeaderValue::from_static("false"),
                );
            }
            response
        }
        Ok(Reply::Json { headers, body }) => {
            x.status = 200;
            x.response_body = body.clone();
            x.latency_us = micros(x.started.elapsed());
            if let Some(r) = log_queue {
                r.push(x);
            }
            stream::json_response(headers, body)
        }
        Ok(Reply::Stream { headers, frames }) => {
            x.status = 200;
            x.streamed = true;
            let dialect = x.dialect;
            let strip_usage = dialect == Dialect::OpenAi && !x.client_wants_usage;
            let frames = Box::pin(TappedStream {
                inner: frames,
                exchange: Some(x),
                log_queue: log_queue.cloned(),
                strip_usage,
                first: true,
            });
            stream::sse_response(dialect, headers, frames)
        }
    }
}

/// Taps a stream for the log: keeps every frame, marks the first byte and the end,
/// hides the usage chunk the client did not ask for, and records the exchange when
/// the stream ends or is dropped (the client went away).
struct TappedStream {
    inner: FrameStream,
    exchange: Option<Exchange>,
    log_queue: Option<LogQueue>,
    strip_usage: bool,
    first: bool,
}

impl TappedStream {
    fn done(&mut self) {
        if let Some(mut x) = self.exchange.take() {
            x.latency_us = micros(x.started.elapsed());
            if let Some(r) = &self.log_queue {
                r.push(x);
            }
        }
    }
}

impl Stream for TappedStream {
    type Item = Result<Frame, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    self.done();
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    if let Some(x) = self.exchange.as_mut() {
                        let body = match x.dialect {
                            Dialect::OpenAi | Dialect::Responses => e.openai_body().error.code,
                            Dialect::Anthropic => Some(e.anthropic_body().error.kind),
                        };
                        x.fail(body.as_deref(), e.to_string());
                    }
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let first = std::mem::replace(&mut self.first, false);
                    let strip = self.strip_usage && llm::usage::is_usage_chunk(&frame.data);
                    if let Some(x) = self.exchange.as_mut() {
                        if first {
                            x.ttft_us = micros(x.started.elapsed());
                        }
                        x.frames.push(frame.data.clone());
                    }
                    if strip {
                        continue;
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
            }
        }
    }
}

impl Drop for TappedStream {
    fn drop(&mut self) {
        if let Some(x) = self.exchange.as_mut()
            && x.error_kind.is_empty()
        {
            x.fail(
                Some("client_disconnected"),
                "the client closed the stream".into(),
            );
        }
        self.done();
    }
}
