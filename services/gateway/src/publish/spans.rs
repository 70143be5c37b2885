//! The spans of one exchange, encoded when its log event is prepared: off the
//! request path, only for a request whose server span was sampled, and straight
//! into OTLP protobuf ([`telemetry::trace::otlp`]) from the log event.
//!
//! - `POST /v1/chat/completions` (server): the request, from arrival to the last
//!   byte sent (a stream's too); its context is the `traceparent` the log event and
//!   its media carry, which the logger and media link to.
//! - `chat gpt-4o` (client): the upstream call, by the GenAI conventions, from the
//!   moment it was sent to the end of the answer.
//! - `send aiprox.log.v1` (client): a batch published (until acknowledged), in the
//!   first traced event's trace and linked to every traced event in it.
//!
//! Prompt and completion text go into the GenAI span only when
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use events::proto::LogEvent;
use events::subjects;
use serde::Deserialize;
use telemetry::trace::otlp::{Head, Kind, Spans, Value, WriteAttributes, nanos, unix_nanos};
use telemetry::trace::requests::{RequestSpan, Requests};
use telemetry::trace::{self, SpanContext};

use super::route_attributes;
use crate::capture::Exchange;
use crate::providers::Peer;

/// What the spans need of an exchange beyond its log event.
pub(super) struct Facts {
    server: Arc<RequestSpan>,
    started: Instant,
    upstream_sent: Option<Instant>,
    peer: Option<Arc<Peer>>,
    sampling: llm::trace_facts::Asked,
}

impl Facts {
    /// `None` unless the request's server span was sampled.
    pub(super) fn of(x: &Exchange) -> Option<Self> {
        Some(Self {
            server: x.trace.clone()?,
            started: x.started,
            upstream_sent: x.upstream_sent,
            peer: x.peer.clone(),
            sampling: x.sampling,
        })
    }
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Encodes the exchange's server and GenAI spans into `spans`; returns the
/// `traceparent` its events carry (the server span's).
pub(super) fn record(
    requests: &Requests,
    spans: &mut Spans,
    facts: &Facts,
    log: &LogEvent,
) -> String {
    let server = &facts.server;
    server.write(
        spans,
        Duration::from_micros(log.latency_us),
        u16::try_from(log.status).unwrap_or(0),
        Some(&log.endpoint),
        |span| {
            span.str("aiprox.request_id", &log.request_id);
        },
    );
    if let Some(sent) = facts.upstream_sent {
        let start = server.started + nanos(sent.saturating_duration_since(facts.started));
        let end = server.started + log.latency_us.saturating_mul(1000);
        gen_ai(requests, spans, facts, log, start, end);
    }
    trace::traceparent(&server.context)
}

/// The span of one batch published: in the first traced event's trace (so it is
/// kept whenever that request is), linked to every traced event it carries.
pub(super) fn send(
    spans: &mut Spans,
    requests: &Requests,
    links: &[SpanContext],
    started: SystemTime,
    spilled: bool,
) {
    let Some(first) = links.first() else {
        return;
    };
    let mut span = spans.span(&Head {
        trace_id: first.trace_id(),
        span_id: requests.new_span_id(),
        parent: Some(first.span_id()),
        name: &["send ", subjects::LOG],
        kind: Kind::Client,
        start: unix_nanos(started),
        end: unix_nanos(SystemTime::now()),
    });
    span.str("messaging.system", "nats")
        .str("messaging.operation.type", "send")
        .str("messaging.destination.name", subjects::LOG)
        .int("messaging.batch.message_count", int(links.len() as u64));
    for link in links {
        span.link(link);
    }
    if spilled {
        span.error("the bus refused it: spilled to disk");
    }
    span.end();
}

fn gen_ai(
    requests: &Requests,
    spans: &mut Spans,
    facts: &Facts,
    log: &LogEvent,
    start: u64,
    end: u64,
) {
    let operation = match log.endpoint.as_str() {
        "/v1/embeddings" => "embeddings",
        "/v1/completions" => "text_completion",
        _ => "chat",
    };
    let mut span = spans.span(&Head {
        trace_id: facts.server.context.trace_id(),
        span_id: requests.new_span_id(),
        parent: Some(facts.server.context.span_id()),
        name: &[operation, " ", &log.upstream_model],
        kind: Kind::Client,
        start,
        end,
    });
    let route = route_attributes::Route {
        operation,
        peer: facts.peer.as_ref(),
        provider: &log.provider,
        upstream_model: &log.upstream_model,
        requested_model: &log.requested_model,
        stream: log.stream,
    };
    route_attributes::with(&route, |shared| {
        span.attributes(shared);
    });
    let asked = &facts.sampling;
    if let Some(t) = asked.temperature {
        span.attr("gen_ai.request.temperature", Value::Float(t));
    }
    if let Some(p) = asked.top_p {
        span.attr("gen_ai.request.top_p", Value::Float(p));
    }
    if let Some(m) = asked.max_tokens {
        span.int("gen_ai.request.max_tokens", m);
    }
    if log.input_tokens > 0 || log.output_tokens > 0 {
        span.int("gen_ai.usage.input_tokens", int(log.input_tokens))
            .int("gen_ai.usage.output_tokens", int(log.output_tokens));
    }
    if log.cached_tokens > 0 {
        span.int(
            "gen_ai.usage.cache_read.input_tokens",
            int(log.cached_tokens),
        );
    }
    let answered = llm::trace_facts::answered(&log.response_body);
    if let Some(id) = &answered.id {
        span.str("gen_ai.response.id", id);
    }
    if let Some(model) = &answered.model {
        span.str("gen_ai.response.model", model);
    }
    match answered.finish_reasons.as_slice() {
        [] => {}
        // The usual one choice, without a list built for it.
        [one] => {
            span.attr(
                "gen_ai.response.finish_reasons",
                Value::Strs(std::slice::from_ref(&one.as_ref())),
            );
        }
        many => {
            let reasons: Vec<&str> = many.iter().map(AsRef::as_ref).collect();
            span.attr("gen_ai.response.finish_reasons", Value::Strs(&reasons));
        }
    }
    if !log.error_kind.is_empty() {
        span.str("error.type", &log.error_kind)
            .error(&log.error_message);
    }
    if requests.capture_content() {
        content(&mut span, log);
    }
    span.end();
}

/// The opt-in text attributes, as JSON in the API's own message shape.
fn content(span: &mut telemetry::trace::otlp::SpanWriter<'_>, log: &LogEvent) {
    #[derive(Deserialize, Default)]
    struct Asked {
        messages: Option<serde_json::Value>,
        system: Option<serde_json::Value>,
    }
    #[derive(Deserialize, Default)]
    struct Answered {
        #[serde(default)]
        choices: Vec<Choice>,
        role: Option<String>,
        content: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Option<serde_json::Value>,
    }
    let json = |v: &serde_json::Value| serde_json::to_string(v).unwrap_or_default();
    let asked: Asked = serde_json::from_slice(&log.request_body).unwrap_or_default();
    if let Some(system) = &asked.system {
        span.str("gen_ai.system_instructions", &json(system));
    }
    if let Some(messages) = &asked.messages {
        span.str("gen_ai.input.messages", &json(messages));
    }
    let answered: Answered = serde_json::from_slice(&log.response_body).unwrap_or_default();
    let output: Vec<serde_json::Value> = if answered.choices.is_empty() {
        answered
            .content
            .map(|content| {
                serde_json::json!({
                    "role": answered.role.as_deref().unwrap_or("assistant"),
                    "content": content,
                })
            })
            .into_iter()
            .collect()
    } else {
        answered
            .choices
            .into_iter()
            .filter_map(|c| c.message)
            .collect()
    };
    if !output.is_empty() {
        span.str(
            "gen_ai.output.messages",
            &json(&serde_json::Value::Array(output)),
        );
    }
}
