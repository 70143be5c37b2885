//! The gateway's request spans: sampled on arrival by the configured sampler (the
//! SDK's, from `OTEL_TRACES_SAMPLER`), encoded off the request path straight into
//! OTLP protobuf ([`super::otlp`]) from the request's log record, and exported by a
//! task of their own, batched, over OTLP/gRPC or OTLP/HTTP.
//!
//! The other services' few spans go through the SDK ([`super::init`]); both read
//! the same variables and reach the same collector.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample};
use tokio::sync::{mpsc, oneshot};

use super::otlp::{self, Head, Kind, SpanWriter, Spans, Value, WriteAttributes};

static REQUESTS: OnceLock<Requests> = OnceLock::new();

/// Where spans go: an OTLP endpoint and its protocol.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    pub grpc: bool,
    pub headers: HeaderMap,
    pub timeout: Duration,
    /// The longest spans wait to be exported (`OTEL_BSP_SCHEDULE_DELAY`).
    pub delay: Duration,
}

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

const GRPC_PATH: &str = "opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

impl Target {
    /// An OTLP/gRPC collector at `base` (`http://host:4317`).
    pub fn grpc(base: url::Url) -> Self {
        let url = base.join(GRPC_PATH).unwrap_or(base);
        Self {
            url,
            grpc: true,
            headers: HeaderMap::new(),
            timeout: Duration::from_secs(10),
            delay: schedule_delay(),
        }
    }

    /// From the standard variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as
    /// it is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (the signal's path appended for
    /// HTTP), `..._PROTOCOL`, `..._HEADERS` (`k=v,k2=v2`, percent-decoded) and
    /// `..._TIMEOUT` (milliseconds), each with its `TRACES_` form first.
    pub fn from_env(protocol: &str) -> anyhow::Result<Self> {
        let grpc = protocol == "grpc";
        let url = match (
            var(&["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]),
            var(&["OTEL_EXPORTER_OTLP_ENDPOINT"]),
        ) {
            (Some(exact), _) if !grpc => exact,
            (Some(base), _) | (None, Some(base)) if grpc => {
                format!("{}/{GRPC_PATH}", base.trim().trim_end_matches('/'))
            }
            (_, Some(base)) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
            _ if grpc => format!("http://localhost:4317/{GRPC_PATH}"),
            _ => "http://localhost:4318/v1/traces".into(),
        };
        let url = url::Url::parse(url.trim())
            .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        let mut headers = HeaderMap::new();
        if let Some(list) = var(&[
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ]) {
            for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    anyhow::anyhow!("OTEL_EXPORTER_OTLP_HEADERS: `{pair}` is not key=value")
                })?;
                let value = percent_encoding::percent_decode_str(v.trim()).decode_utf8_lossy();
                headers.insert(
                    HeaderName::try_from(k.trim())?,
                    HeaderValue::try_from(value.as_ref())?,
                );
            }
        }
        let timeout = var(&[
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        ])
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
        Ok(Self {
            url,
            grpc,
            headers,
            timeout,
            delay: schedule_delay(),
        })
    }
}

/// The request tracer: sampler, ids, and the queue to the exporting task.
pub struct Requests {
    sampler: Box<dyn ShouldSample>,
    ids: RandomIdGenerator,
    tx: mpsc::Sender<Message>,
    capture_content: bool,
    /// Buffers of exported spans, given back by the export for the next batches.
    spare: Spare,
    /// Spans not exported: the queue to the exporter was full, or the collector
    /// refused or could not be reached (`aiprox_trace_spans_dropped_total`).
    pub dropped: Counter,
}

impl std::fmt::Debug for Requests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Requests").finish_non_exhaustive()
    }
}

enum Message {
    Spans(Spans),
    Flush(oneshot::Sender<()>),
}

/// The request tracer, once installed.
pub fn requests() -> Option<&'static Requests> {
    REQUESTS.get()
}

/// A request's server span, decided on arrival; its record makes it once the
/// request is done, whoever claims it.
#[derive(Debug)]
pub struct RequestSpan {
    /// This span's context: its children's parent, the log event's `traceparent`.
    pub context: SpanContext,
    /// The caller's span, when the request came with a `traceparent`.
    pub parent: Option<SpanId>,
    /// When it arrived, in Unix nanoseconds ([`otlp::unix_nanos`]).
    pub started: u64,
    /// The request line and client, for the span's HTTP attributes.
    pub method: &'static str,
    /// Copied: the request's own bytes are a slice of the connection's read
    /// buffer, which a span waiting for its export would hold on to.
    pub path: Box<str>,
    pub user_agent: Option<Box<str>>,
    claimed: AtomicBool,
}

impl RequestSpan {
    /// Marks the span as made by the request's log record (not by the middleware).
    pub fn claim(&self) {
        self.claimed.store(true, Ordering::Relaxed);
    }

    pub fn claimed(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }

    /// Writes this server span into `spans`: answered with `status` after
    /// `elapsed`, its route when one matched, then what `more` adds.
    pub fn write(
        &self,
        spans: &mut Spans,
        elapsed: Duration,
        status: u16,
        route: Option<&str>,
        more: impl FnOnce(&mut SpanWriter<'_>),
    ) {
        let name = match route {
            Some(route) => [self.method, " ", route],
            None => [self.method, "", ""],
        };
        let mut span = spans.span(&Head {
            trace_id: self.context.trace_id(),
            span_id: self.context.span_id(),
            parent: self.parent,
            name: &name,
            kind: Kind::Server,
            start: self.started,
            end: self.started + otlp::nanos(elapsed),
        });
        span.str("http.request.method", self.method)
            .str("url.path", &self.path)
            .str("url.scheme", "http")
            .int("http.response.status_code", i64::from(status));
        if let Some(route) = route {
            span.str("http.route", route);
        }
        if let Some(agent) = &self.user_agent {
            span.str("user_agent.original", agent);
        }
        if status >= 500 {
            let code = status.to_string();
            span.str("error.type", &code).error("");
        }
        more(&mut span);
        span.end();
    }
}

/// Spans exported in one request, at most; more waiting are sent at once.
const MOST_SPANS_PER_EXPORT: usize = 2048;

/// The longest spans wait to be exported: `OTEL_BSP_SCHEDULE_DELAY` (milliseconds),
/// as for the SDK's batch processor; 5 s by default.
fn schedule_delay() -> Duration {
    var(&["OTEL_BSP_SCHEDULE_DELAY"])
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(Duration::from_secs(5), Duration::from_millis)
}

/// Span buffers handed back once exported: spans are written into memory that is
/// already mapped, not into fresh pages that fault on first touch (the export's
/// buffers, gone after each send, cost the gateway a page fault every dozen
/// requests; `bench/RESULTS.md`, "Tracing").
#[derive(Debug, Clone, Default)]
struct Spare(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

/// Bytes of buffers kept, at most: a few exports' worth of batches.
const MOST_SPARE_BYTES: usize = 4 << 20;

impl Spare {
    fn take(&self) -> Option<Vec<u8>> {
        self.0.lock().ok()?.pop()
    }

    fn give(&self, buf: Vec<u8>) {
        if let Ok(mut spare) = self.0.lock()
            && spare.iter().map(Vec::capacity).sum::<usize>() + buf.capacity() <= MOST_SPARE_BYTES
        {
            spare.push(buf);
        }
    }
}

/// A buffer being exported; back to [`Spare`] once sent.
struct Exported {
    buf: Vec<u8>,
    spare: Spare,
}

impl AsRef<[u8]> for Exported {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Exported {
    fn drop(&mut self) {
        self.spare.give(std::mem::take(&mut self.buf));
    }
}

impl Requests {
    /// An empty batch with room for about `bytes` of spans, in a buffer an
    /// earlier batch used when one is spare.
    pub fn spans(&self, bytes: usize) -> Spans {
        let mut spans = self.spare.take().map(Spans::reusing).unwrap_or_default();
        spans.reserve(bytes);
        spans
    }

    /// Whether prompt and completion text go into spans.
    pub fn capture_content(&self) -> bool {
        self.capture_content
    }

    /// The server span of a request, if it is sampled.
    pub fn sample<B>(&self, request: &http::Request<B>) -> Option<Arc<RequestSpan>> {
        let headers = request.headers();
        let name = super::http::method(request.method());
        // Most requests come without a caller's trace: no context is built then.
        let parent_cx = headers
            .contains_key(&TRACEPARENT)
            .then(|| super::http::parent(headers));
        let parent = parent_cx
            .as_ref()
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        let trace_id = parent
            .as_ref()
            .map_or_else(|| self.ids.new_trace_id(), SpanContext::trace_id);
        let decision = self.sampler.should_sample(
            parent_cx.as_ref(),
            trace_id,
            name,
            &SpanKind::Server,
            &[],
            &[],
        );
        if decision.decision != SamplingDecision::RecordAndSample {
            return None;
        }
        Some(Arc::new(RequestSpan {
            context: SpanContext::new(
                trace_id,
                self.ids.new_span_id(),
                TraceFlags::SAMPLED,
                false,
                parent
                    .as_ref()
                    .map_or_else(TraceState::default, |p| p.trace_state().clone()),
            ),
            parent: parent.as_ref().map(SpanContext::span_id),
            started: otlp::unix_nanos(SystemTime::now()),
            method: name,
            path: request.uri().path().into(),
            user_agent: headers
                .get(http::header::USER_AGENT)
                .and_then(|a| a.to_str().ok())
                .map(Into::into),
            claimed: AtomicBool::new(false),
        }))
    }

    pub fn new_span_id(&self) -> SpanId {
        self.ids.new_span_id()
    }

    /// Hands encoded spans to the exporter; never waits (a full queue drops them,
    /// counted).
    pub fn send(&self, spans: Spans) {
        if spans.is_empty() {
            return;
        }
        let n = spans.len() as u64;
        if self.tx.try_send(Message::Spans(spans)).is_err() {
            self.dropped.inc_by(n);
        }
    }

    /// Exports what is queued; returns once done (or after `wait`).
    pub async fn flush(&self, wait: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(wait, flushed).await;
        }
    }
}

/// Installs the request tracer exporting to `target` (`service` naming the
/// service unless `OTEL_SERVICE_NAME` does), its sampler from `OTEL_TRACES_SAMPLER`.
/// Must run inside the Tokio runtime. The first call wins.
pub fn install(target: Target, service: &str, capture_content: bool) -> anyhow::Result<()> {
    let mut client = reqwest::Client::builder().timeout(target.timeout);
    if target.grpc {
        client = client.http2_prior_knowledge();
    }
    let resource = super::resource(service);
    let attributes: Vec<(String, opentelemetry::Value)> = resource
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let encoded = otlp::resource(attributes.iter().filter_map(|(k, v)| {
        let value = match v {
            opentelemetry::Value::String(s) => Value::Str(s.as_str()),
            opentelemetry::Value::Bool(b) => Value::Bool(*b),
            opentelemetry::Value::I64(i) => Value::Int(*i),
            opentelemetry::Value::F64(f) => Value::Float(*f),
            _ => return None,
        };
        Some((k.as_str(), value))
    }));
    let spare = Spare::default();
    let exporter = Exporter {
        spare: spare.clone(),
        client: client.build()?,
        target,
        resource: encoded,
        scope: otlp::scope("aiprox", env!("CARGO_PKG_VERSION")),
    };
    let (tx, rx) = mpsc::channel(1024);
    let requests = Requests {
        sampler: opentelemetry_sdk::trace::Config::default().sampler,
        ids: RandomIdGenerator::default(),
        tx,
        capture_content,
        spare,
        dropped: Counter::default(),
    };
    if REQUESTS.set(requests).is_ok() {
        tokio::spawn(exporter.run(rx));
    }
    Ok(())
}

struct Exporter {
    spare: Spare,
    client: reqwest::Client,
    target: Target,
    resource: Vec<u8>,
    scope: Vec<u8>,
}

impl Exporter {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut warned = false;
        let delay = self.target.delay;
        while let Some(message) = rx.recv().await {
            let (mut batches, mut flushed) = match message {
                Message::Spans(spans) => (vec![spans], None),
                Message::Flush(done) => (Vec::new(), Some(done)),
            };
            let mut count: usize = batches.iter().map(Spans::len).sum();
            // Gathered for up to the delay, or until a request's worth: one export
            // then carries thousands of spans.
            let until = tokio::time::Instant::now() + delay;
            while count < MOST_SPANS_PER_EXPORT && flushed.is_none() {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(Message::Spans(more))) => {
                        count += more.len();
                        batches.push(more);
                    }
                    Ok(Some(Message::Flush(done))) => flushed = Some(done),
                    Ok(None) | Err(_) => break,
                }
            }
            if count > 0
                && let Err(e) = self.export(batches).await
            {
                if let Some(r) = requests() {
                    r.dropped.inc_by(count as u64);
                }
                if !warned {
                    tracing::warn!(error = %e, url = %self.target.url, "spans not exported (said once)");
                    warned = true;
                }
            }
            if let Some(done) = flushed {
                let _ = done.send(());
            }
        }
    }

    async fn export(&self, batches: Vec<Spans>) -> Result<(), String> {
        // gRPC framing: uncompressed, then the message's length (patched below).
        let prefix: &[u8] = if self.target.grpc { &[0; 5] } else { &[] };
        let mut message = otlp::Request::new(prefix, &self.resource, &self.scope, batches);
        let len = message.len();
        if self.target.grpc {
            let framed = u32::try_from(len - 5).unwrap_or(u32::MAX);
            message.head[1..5].copy_from_slice(&framed.to_be_bytes());
        }
        let spare = self.spare.clone();
        let chunks = std::iter::once(bytes::Bytes::from(message.head))
            .chain(message.batches.into_iter().map(move |buf| {
                bytes::Bytes::from_owner(Exported {
                    buf,
                    spare: spare.clone(),
                })
            }))
            .map(Ok::<_, std::io::Error>);
        let content_type = if self.target.grpc {
            "application/grpc"
        } else {
            "application/x-protobuf"
        };
        let mut request = self
            .client
            .post(self.target.url.clone())
            .headers(self.target.headers.clone())
            .header(http::header::CONTENT_TYPE, content_type)
            .header(http::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )));
        if self.target.grpc {
            request = request.header(http::header::TE, "trailers");
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = response.bytes().await;
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        match grpc_status.as_deref() {
            None | Some("0") => Ok(()),
            Some(code) => Err(format!("gRPC status {code}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_buffers_come_back_up_to_the_limit() {
        let spare = Spare::default();
        let sent = bytes::Bytes::from_owner(Exported {
            buf: Vec::with_capacity(1000),
            spare: spare.clone(),
        });
        assert!(spare.take().is_none(), "not back while being sent");
        let shared = sent.clone();
        drop(sent);
        assert!(
            spare.take().is_none(),
            "not back while a part is still held"
        );
        drop(shared);
        let back = spare.take().expect("back once sent");
        assert!(back.capacity() >= 1000);
        let spans = Spans::reusing(back);
        assert!(spans.is_empty());

        // No more than the limit is kept.
        for _ in 0..3 {
            spare.give(Vec::with_capacity(MOST_SPARE_BYTES / 2));
        }
        let mut kept = 0;
        while let Some(buf) = spare.take() {
            kept += buf.capacity();
        }
        assert!(kept <= MOST_SPARE_BYTES, "{kept}");
        assert!(kept >= MOST_SPARE_BYTES / 2);
    }
}
