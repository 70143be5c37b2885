//! OpenTelemetry traces, exported over OTLP when the standard variables ask for
//! it, and nothing at all otherwise.
//!
//! - [`init`]: reads `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`),
//!   `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`, `http/protobuf`), `OTEL_SERVICE_NAME`,
//!   `OTEL_TRACES_SAMPLER` (and `_ARG`), and installs both tracers; without an
//!   endpoint neither exists ([`tracer`] and [`requests::requests`] are `None`), so
//!   the request path pays one load of a `OnceLock` and nothing else.
//! - the SDK's tracer ([`tracer`]), for the low-volume spans: the admin API's
//!   ([`http`]: a server span per HTTP or gRPC request), the logger's and media's
//!   batch spans ([`batch_span`]).
//! - [`requests`]: the gateway's request spans, sampled by the same sampler but
//!   encoded straight into OTLP protobuf ([`otlp`]) off the request path, from the
//!   request's log record; the SDK's span objects cost a third of the gateway's
//!   throughput at full sampling (`bench/RESULTS.md`, "Tracing").
//! - [`traceparent`] and [`parse_traceparent`]: the W3C header that carries a span
//!   across the bus.
//!
//! Spans are made with the OpenTelemetry API directly, not through `tracing`: the
//! few spans aiprox makes are named and attributed by the semantic conventions, and
//! a span that is not sampled is never built.

pub mod http;
pub mod otlp;
pub mod requests;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState, TracerProvider};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

/// The span API (`opentelemetry::trace::Span`), named apart from the SDK's span.
pub use opentelemetry::trace::Span as SpanTrait;
pub use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
pub use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
pub use opentelemetry_sdk::trace::Span;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// The variable that lets prompt and completion text into spans (the name the
/// OpenTelemetry GenAI instrumentations use). Off unless `true`.
pub const CAPTURE_CONTENT_VAR: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// The installed tracers: flush what is queued when shut down.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Exports what is still queued, waiting at most a few seconds.
    pub async fn shutdown(self) {
        if let Some(requests) = requests::requests() {
            requests.flush(Duration::from_secs(5)).await;
        }
        let provider = self.provider;
        // The SDK's flush blocks on its exporter, which needs the runtime's threads.
        let flushed = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(Duration::from_secs(5))
        })
        .await;
        if let Ok(Err(e)) = flushed {
            tracing::warn!(error = %e, "traces not flushed at shutdown");
        }
    }
}

/// The tracer, once [`init`] (or [`install`]) found something to export to.
pub fn tracer() -> Option<&'static SdkTracer> {
    TRACER.get()
}

fn exporting() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true")
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.trim() == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Installs the OTLP exporter when an endpoint is configured; `service` names the
/// service unless `OTEL_SERVICE_NAME` does. Must run inside the Tokio runtime (the
/// gRPC exporter's channel lives on it).
pub fn init(service: &'static str) -> anyhow::Result<Option<Tracing>> {
    if !exporting() {
        return Ok(None);
    }
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".into());
    let builder = opentelemetry_otlp::SpanExporter::builder();
    let exporter = match protocol.trim() {
        "grpc" => builder.with_tonic().build()?,
        "http/protobuf" => builder.with_http().build()?,
        other => anyhow::bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use grpc or http/protobuf"
        ),
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service))
        // The logger links one span to every request of its batch.
        .with_max_links_per_span(1024)
        .build();
    install(provider.clone());
    let content =
        std::env::var(CAPTURE_CONTENT_VAR).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    requests::install(
        requests::Target::from_env(protocol.trim())?,
        service,
        content,
    )?;
    tracing::info!(protocol = protocol.trim(), "exporting traces over OTLP");
    Ok(Some(Tracing { provider }))
}

/// The resource every span is sent with: the service's name (`service` unless
/// `OTEL_SERVICE_NAME` says) and version, and `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(service: &str) -> Resource {
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_owned());
    }
    resource.build()
}

/// Makes `provider`'s tracer the one the SDK's spans are made with (tests install
/// one with an in-memory exporter). The first call wins.
pub fn install(provider: SdkTracerProvider) {
    let _ = TRACER.set(provider.tracer("aiprox"));
}

/// The W3C `traceparent` of a span context.
pub fn traceparent(cx: &SpanContext) -> String {
    // By hand, into a fixed buffer: formatting the ids as numbers, or pushing
    // digits one by one, cost every traced request hundreds of instructions
    // (`bench/NOTES.md`).
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    let hex = |out: &mut [u8], bytes: &[u8]| {
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0xf)];
        }
    };
    hex(&mut out[3..35], &cx.trace_id().to_bytes());
    hex(&mut out[36..52], &cx.span_id().to_bytes());
    hex(&mut out[53..55], &[cx.trace_flags().to_u8()]);
    std::str::from_utf8(&out).map_or_else(|_| String::new(), str::to_owned)
}

/// The span context a `traceparent` names (version 00, valid ids), as remote.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 {
        return None;
    }
    let cx = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    cx.is_valid().then_some(cx)
}

/// The attributes of a span for work on a bus's messages (messaging conventions).
pub fn messaging(operation: &'static str, destination: &'static str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "nats"),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.destination.name", destination),
    ]
}

/// A consumer's span for one batch of messages: `process {destination}`, with one
/// link to each message's (sampled) trace. `None` when tracing is off.
pub fn batch_span<'a>(
    destination: &'static str,
    consumer: &'static str,
    traceparents: impl Iterator<Item = &'a str>,
    messages: usize,
) -> Option<Span> {
    let tracer = tracer()?;
    let links: Vec<Link> = traceparents
        .filter_map(parse_traceparent)
        .filter(SpanContext::is_sampled)
        .map(Link::with_context)
        .collect();
    let mut attributes = messaging("process", destination);
    attributes.push(KeyValue::new("messaging.consumer.group.name", consumer));
    attributes.push(KeyValue::new(
        "messaging.batch.message_count",
        i64::try_from(messages).unwrap_or(i64::MAX),
    ));
    let span = tracer
        .span_builder(format!("process {destination}"))
        .with_kind(SpanKind::Consumer)
        .with_attributes(attributes)
        .with_links(links)
        .start_with_context(tracer, &Context::new());
    Some(span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let text = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let cx = parse_traceparent(text).expect("valid");
        assert!(cx.is_sampled());
        assert!(cx.is_remote());
        assert_eq!(traceparent(&cx), text);
    }

    #[test]
    fn malformed_traceparents_are_none() {
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
            "00-xyz-b7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }
}
