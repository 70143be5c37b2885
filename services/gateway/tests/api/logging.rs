//! What the gateway puts on the bus for the log: every answered request once, even
//! when the consumers fall behind a bounded in-process backlog.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use events::Bus;
use events::memory::InProcessBus;
use events::proto::{LogBatch, LogEvent};
use prost::Message;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_on};

/// A gateway publishing on an in-process bus, its spill in a temporary directory;
/// with a provider `dead` that nothing answers.
pub async fn logged_app(bus: &InProcessBus, spill: &std::path::Path) -> TestApp {
    let spill = spill.to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = spill;
        c.settings.events.linger_ms = 1;
        c.providers.insert(
            "dead".into(),
            crate::helpers::openai_provider(&format!("http://{closed}/v1")),
        );
    })
    .await
}

/// The log events the bus delivers within `timeout`, by request id (with how many
/// times each came), until `want` distinct ones arrived.
pub async fn logged_events(
    bus: &InProcessBus,
    want: usize,
    timeout: Duration,
) -> HashMap<String, (LogEvent, usize)> {
    let mut consumer = Bus::InProcess(bus.clone())
        .consumer(events::subjects::LOGGER, events::subjects::LOG)
        .await
        .unwrap();
    let mut seen: HashMap<String, (LogEvent, usize)> = HashMap::new();
    let deadline = Instant::now() + timeout;
    while seen.len() < want && Instant::now() < deadline {
        for d in consumer
            .fetch(64, Duration::from_millis(100))
            .await
            .unwrap()
        {
            for event in LogBatch::decode(d.payload.clone()).unwrap().events {
                seen.entry(event.request_id.clone()).or_insert((event, 0)).1 += 1;
            }
        }
    }
    seen
}

#[tokio::test]
async fn a_full_in_process_backlog_spills_to_disk_and_loses_nothing() {
    let spill = tempfile::tempdir().unwrap();
    // One byte: anything beyond the first waiting message is refused.
    let bus = InProcessBus::with_backlog_limit(1);
    let app = logged_app(&bus, spill.path()).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let response = app
            .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": format!("n{i}")}]}))
            .await;
        assert_eq!(response.status(), 200);
        ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Nobody consumes yet: the backlog stays at its bound, the rest is on disk.
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.metric("aiprox_events_spilled_total").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.metric("aiprox_events_spilled_total").await > 0);
    assert!(app.metric("aiprox_event_spill_bytes").await > 0);
    assert!(bus.backlog_bytes() < 64 * 1024, "{}", bus.backlog_bytes());

    // The consumer catches up: every request arrives, once.
    let seen = logged_events(&bus, ids.len(), Duration::from_secs(20)).await;
    for id in &ids {
        assert_eq!(seen.get(id).map(|(_, n)| *n), Some(1), "request {id}");
    }
    assert_eq!(app.metric("aiprox_events_dropped_total").await, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.metric("aiprox_event_spill_bytes").await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric("aiprox_event_spill_bytes").await, 0);
}

#[tokio::test]
async fn a_stream_refused_before_it_began_is_logged_with_the_error_the_client_got() {
    let spill = tempfile::tempdir().unwrap();
    let bus = InProcessBus::new();
    let app = logged_app(&bus, spill.path()).await;
    let chat = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let messages = |model: &str| json!({"model": model, "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let mut sent = vec![
        app.send_json("/v1/chat/completions", &chat("nope")).await,
        app.send_json("/v1/messages", &messages("nope")).await,
    ];
    app.mock.fail_with(mock_upstream::Failure::Status {
        status: 429,
        body: None,
    });
    for model in ["gpt4", "claude"] {
        sent.push(app.send_json("/v1/chat/completions", &chat(model)).await);
        sent.push(app.send_json("/v1/messages", &messages(model)).await);
    }
    app.mock.fail_with(mock_upstream::Failure::Status {
        status: 500,
        body: Some("{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}".into()),
    });
    sent.push(app.send_json("/v1/chat/completions", &chat("gpt4")).await);
    sent.push(app.send_json("/v1/messages", &messages("claude")).await);
    // An upstream that cannot be reached: 502.
    sent.push(
        app.send_json("/v1/chat/completions", &chat("dead/gpt-4o"))
            .await,
    );
    sent.push(
        app.send_json("/v1/messages", &messages("dead/gpt-4o"))
            .await,
    );

    let seen = logged_events(&bus, sent.len(), Duration::from_secs(10)).await;
    for (id, status, body) in &sent {
        assert!(*status >= 400, "{status} {body}");
        let (event, _) = seen.get(id).unwrap_or_else(|| panic!("{id} not logged"));
        assert!(event.stream, "logged as the stream request it was");
        assert_eq!(event.status, u32::from(*status));
        let logged: serde_json::Value = serde_json::from_slice(&event.response_body)
            .unwrap_or_else(|e| {
                panic!(
                    "{id}: logged body not JSON ({e}): {:?}",
                    event.response_body
                )
            });
        let answered: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            logged, answered,
            "{id}: the log keeps the error the client got"
        );
    }
}

#[tokio::test]
async fn requests_refused_for_their_key_are_logged_without_the_key() {
    let spill = tempfile::tempdir().unwrap();
    let bus = InProcessBus::new();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), {
        let spill = spill.path().to_owned();
        move |c| {
            c.settings.events.spill_dir = spill;
            c.settings.events.linger_ms = 1;
            c.settings.auth = Some(gateway::config::AuthMode::Required);
        }
    })
    .await;
    const WRONG: &str = "sk-aiprox-not-a-key-we-issued-0123456789";
    let chat = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(WRONG)
        .json(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "secret prompt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 401);
    let chat_id = chat.headers()["x-request-id"].to_str().unwrap().to_owned();
    let messages = app
        .client
        .post(app.url("/v1/messages"))
        .json(&json!({"model": "claude", "max_tokens": 1, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(messages.status(), 401);
    let messages_id = messages.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let seen = logged_events(&bus, 2, Duration::from_secs(10)).await;
    let (chat, _) = &seen[&chat_id];
    assert_eq!(
        (chat.status, chat.endpoint.as_str()),
        (401, "/v1/chat/completions")
    );
    assert_eq!(chat.error_kind, "invalid_api_key");
    assert!(
        chat.error_message.contains("sk-aiprox"),
        "{}",
        chat.error_message
    );
    let logged = format!("{chat:?}");
    assert!(
        !logged.contains(WRONG) && !logged.contains("not-a-key"),
        "{logged}"
    );
    assert!(!logged.contains("secret prompt"), "no body: {logged}");
    let (messages, _) = &seen[&messages_id];
    assert_eq!(
        (messages.status, messages.endpoint.as_str()),
        (401, "/v1/messages")
    );
    assert_eq!(messages.error_kind, "missing_api_key");
}

/// The admin UI's Playground marks its requests `x-aiprox-source: playground`;
/// the log keeps that label, and only labels aiprox knows.
#[tokio::test]
async fn the_playground_label_is_logged_and_other_labels_are_not() {
    let spill = tempfile::tempdir().unwrap();
    let bus = InProcessBus::new();
    let app = logged_app(&bus, spill.path()).await;
    let body = json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]});
    let mut ids = Vec::new();
    for source in [Some("playground"), Some("<script>"), None] {
        let mut request = app
            .client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = source {
            request = request.header("x-aiprox-source", s);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        ids.push(
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    let seen = logged_events(&bus, ids.len(), Duration::from_secs(10)).await;
    let source = |i: usize| seen[&ids[i]].0.source.clone();
    assert_eq!(source(0), "playground");
    assert_eq!(source(1), "");
    assert_eq!(source(2), "");
}
