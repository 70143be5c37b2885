//! Prompt and completion text in the GenAI span, once switched on
//! (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`): a process of its
//! own, since the tracer and the switch are per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;
#[path = "support/otlp.rs"]
#[allow(dead_code)]
mod otlp;

use events::Bus;
use events::memory::InProcessBus;
use serde_json::json;

#[tokio::test]
async fn with_content_on_the_gen_ai_span_holds_the_messages_in_and_out() {
    let receiver = otlp::Receiver::start(true).await;
    let bus = InProcessBus::default();
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_owned();
    let app = helpers::spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = dir;
        c.settings.events.linger_ms = 1;
    })
    .await;
    let response = app
        .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "a prompt to keep"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let spans = receiver.wait(|s| s.name == "chat gpt-4o", 1).await;
    let call = spans.first().expect("a GenAI span");
    let value = |key: &str| -> serde_json::Value {
        serde_json::from_str(&otlp::text(call, key).unwrap_or_else(|| panic!("no {key}"))).unwrap()
    };
    assert_eq!(
        value("gen_ai.input.messages"),
        json!([{"role": "user", "content": "a prompt to keep"}])
    );
    assert_eq!(
        value("gen_ai.output.messages")[0],
        answer["choices"][0]["message"]
    );
}
