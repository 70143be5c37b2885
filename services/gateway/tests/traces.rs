//! The gateway's request spans as a real OTLP/gRPC receiver gets them: the server
//! span of each request, the GenAI client span of its upstream call, the `send`
//! span of its log batch, and the `traceparent` its log event carries. A test
//! binary of its own: the tracer is per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use std::time::{Duration, Instant};

use events::Bus;
use events::memory::InProcessBus;
use events::proto::{LogBatch, LogEvent};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tokio::sync::OnceCell;

use helpers::{TestApp, spawn_app_on};
use otlp::{Receiver, attr, int, named, text};

/// The one receiver of this process, the tracer installed to export to it.
async fn receiver() -> &'static Receiver {
    static RECEIVER: OnceCell<Receiver> = OnceCell::const_new();
    RECEIVER.get_or_init(|| Receiver::start(false)).await
}

async fn traced_app(bus: &InProcessBus) -> TestApp {
    receiver().await;
    let spill = tempfile::tempdir().unwrap().keep();
    spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = spill;
        c.settings.events.linger_ms = 1;
    })
    .await
}

/// The log event of `request_id` as the bus delivers it.
async fn logged(bus: &InProcessBus, request_id: &str) -> LogEvent {
    let mut consumer = Bus::InProcess(bus.clone())
        .consumer(events::subjects::LOGGER, events::subjects::LOG)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for d in consumer
            .fetch(64, Duration::from_millis(100))
            .await
            .unwrap()
        {
            for event in LogBatch::decode(d.payload.clone()).unwrap().events {
                if event.request_id == request_id {
                    return event;
                }
            }
        }
    }
    panic!("{request_id} never logged");
}

fn trace_of(traceparent: &str) -> telemetry::trace::SpanContext {
    telemetry::trace::parse_traceparent(traceparent).expect("a valid traceparent")
}

fn is_error(span: &Span) -> bool {
    span.status.as_ref().is_some_and(|s| s.code == 2)
}

#[tokio::test]
async fn a_chat_request_is_a_server_span_with_a_gen_ai_child_and_its_log_event_carries_the_trace() {
    let bus = InProcessBus::default();
    let app = traced_app(&bus).await;
    let response = app
        .post_chat(&json!({
            "model": "gpt4",
            "temperature": 0.2,
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "a secret prompt"}]
        }))
        .await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer: serde_json::Value = response.json().await.unwrap();

    let event = logged(&bus, &id).await;
    let traced = trace_of(&event.traceparent);
    let trace_id = traced.trace_id().to_bytes();
    let spans = receiver().await.trace(&trace_id, 3).await;

    let server = named(&spans, "POST /v1/chat/completions");
    assert_eq!(server.kind, 2);
    // The event carries the server span's context: the logger links to it.
    assert_eq!(server.span_id, traced.span_id().to_bytes());
    assert!(server.parent_span_id.is_empty());
    assert_eq!(text(server, "http.request.method").as_deref(), Some("POST"));
    assert_eq!(
        text(server, "http.route").as_deref(),
        Some("/v1/chat/completions")
    );
    assert_eq!(int(server, "http.response.status_code"), Some(200));
    assert_eq!(text(server, "aiprox.request_id"), Some(id.clone()));

    let call = named(&spans, "chat gpt-4o");
    assert_eq!(call.kind, 3);
    assert_eq!(call.parent_span_id, server.span_id);
    for (key, value) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "openai"),
        ("gen_ai.request.model", "gpt-4o"),
        ("gen_ai.response.model", answer["model"].as_str().unwrap()),
        ("gen_ai.response.id", answer["id"].as_str().unwrap()),
        ("server.address", "127.0.0.1"),
        ("aiprox.provider", "mock"),
        ("aiprox.requested_model", "gpt4"),
    ] {
        assert_eq!(text(call, key).as_deref(), Some(value), "{key}");
    }
    for (key, value) in [
        ("gen_ai.request.max_tokens", 50),
        (
            "gen_ai.usage.input_tokens",
            answer["usage"]["prompt_tokens"].as_i64().unwrap(),
        ),
        (
            "gen_ai.usage.output_tokens",
            answer["usage"]["completion_tokens"].as_i64().unwrap(),
        ),
        ("server.port", i64::from(app.mock.addr().port())),
    ] {
        assert_eq!(int(call, key), Some(value), "{key}");
    }
    assert_eq!(
        attr(call, "gen_ai.request.temperature"),
        Some(Value::DoubleValue(0.2))
    );
    let Some(Value::ArrayValue(reasons)) = attr(call, "gen_ai.response.finish_reasons") else {
        panic!("no finish reasons");
    };
    assert_eq!(
        reasons.values[0].value,
        Some(Value::StringValue("stop".into()))
    );
    assert!(call.start_time_unix_nano >= server.start_time_unix_nano);
    assert!(call.end_time_unix_nano <= server.end_time_unix_nano);
    assert!(!is_error(call) && !is_error(server));

    // The batch's `send` span is in the trace of its first traced event, linked
    // to every traced event it carried.
    let sends = receiver()
        .await
        .wait(
            |s| {
                s.name == "send aiprox.log.v1"
                    && s.links.iter().any(|l| l.span_id == server.span_id)
            },
            1,
        )
        .await;
    let send = sends.first().expect("a send span linked to the request");
    assert_eq!(text(send, "messaging.system").as_deref(), Some("nats"));
    assert!(int(send, "messaging.batch.message_count").unwrap() >= 1);

    // No prompt text, no key, unless switched on.
    for span in receiver().await.all() {
        for kv in &span.attributes {
            let value = format!("{:?}", kv.value);
            assert!(
                !value.contains("secret prompt"),
                "{} in {}",
                kv.key,
                span.name
            );
            assert!(
                !value.contains("must-not-travel"),
                "{} in {}",
                kv.key,
                span.name
            );
        }
        assert!(attr(&span, "gen_ai.input.messages").is_none());
    }
}

#[tokio::test]
async fn a_stream_through_translation_ends_its_spans_with_the_stream_and_joins_the_callers_trace() {
    let bus = InProcessBus::default();
    let app = traced_app(&bus).await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = app
        .client
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("traceparent", caller)
        .body(
            json!({
                "model": "gpt4",
                "max_tokens": 64,
                "stream": true,
                "messages": [{"role": "user", "content": "hi"}]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert!(body.contains("message_stop"), "{body}");

    let event = logged(&bus, &id).await;
    let caller = trace_of(caller);
    assert_eq!(trace_of(&event.traceparent).trace_id(), caller.trace_id());
    let spans = receiver()
        .await
        .trace(&caller.trace_id().to_bytes(), 2)
        .await;
    let server = named(&spans, "POST /v1/messages");
    assert_eq!(server.parent_span_id, caller.span_id().to_bytes());
    let call = named(&spans, "chat gpt-4o");
    assert_eq!(attr(call, "aiprox.stream"), Some(Value::BoolValue(true)));
    // The client got Anthropic events: the reason is Anthropic's.
    let Some(Value::ArrayValue(reasons)) = attr(call, "gen_ai.response.finish_reasons") else {
        panic!("no finish reasons");
    };
    assert_eq!(
        reasons.values[0].value,
        Some(Value::StringValue("end_turn".into()))
    );
    assert!(int(call, "gen_ai.usage.output_tokens").is_some());
    // The server span lasts until the stream's last byte.
    assert!(server.end_time_unix_nano >= call.end_time_unix_nano);
}

#[tokio::test]
async fn a_request_its_caller_did_not_sample_makes_no_span_and_its_event_no_link() {
    let bus = InProcessBus::default();
    let app = traced_app(&bus).await;
    let caller = "00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("traceparent", caller)
        .body(json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let event = logged(&bus, &id).await;
    assert_eq!(event.traceparent, "");
    // A traced request after it is exported: had this one made spans, they would
    // have gone before.
    let later = app
        .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let later = later.headers()["x-request-id"].to_str().unwrap().to_owned();
    let server = receiver()
        .await
        .wait(
            |s| text(s, "aiprox.request_id").as_deref() == Some(&later),
            1,
        )
        .await;
    assert_eq!(server.len(), 1);
    // Its server and GenAI spans (and the batch's `send`, in its trace too).
    let arrived = receiver().await.trace(&server[0].trace_id, 2).await;
    let names: Vec<&str> = arrived.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"POST /v1/chat/completions"), "{names:?}");
    assert!(names.contains(&"chat gpt-4o"), "{names:?}");
    let trace_id = trace_of(caller).trace_id().to_bytes();
    assert!(
        receiver()
            .await
            .all()
            .iter()
            .all(|s| s.trace_id != trace_id)
    );
}

#[tokio::test]
async fn an_upstream_error_marks_the_gen_ai_span_failed_and_a_model_list_has_its_server_span() {
    let bus = InProcessBus::default();
    let app = traced_app(&bus).await;
    app.mock.fail_with(mock_upstream::Failure::Status {
        status: 429,
        body: None,
    });
    let response = app
        .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.status(), 429);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let event = logged(&bus, &id).await;
    let spans = receiver()
        .await
        .trace(&trace_of(&event.traceparent).trace_id().to_bytes(), 2)
        .await;
    let call = named(&spans, "chat gpt-4o");
    assert!(is_error(call));
    assert!(text(call, "error.type").is_some());
    // A 429 is the client's to handle: the server span is no error.
    let server = named(&spans, "POST /v1/chat/completions");
    assert!(!is_error(server));
    assert_eq!(int(server, "http.response.status_code"), Some(429));

    // No log record: the middleware makes the server span.
    let caller = "00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let listed = app
        .client
        .get(app.url("/v1/models"))
        .header("traceparent", caller)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let spans = receiver()
        .await
        .trace(&trace_of(caller).trace_id().to_bytes(), 1)
        .await;
    let list = named(&spans, "GET /v1/models");
    assert_eq!(int(list, "http.response.status_code"), Some(200));
}
