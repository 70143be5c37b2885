//! Anthropic clients on `/v1/messages`, served natively by an Anthropic upstream
//! and by translation by OpenAI-compatible ones.

use mock_upstream::{Behavior, Failure, fixtures};
use serde_json::{Value, json};

use crate::helpers::{PROVIDER_KEY, anthropic_error, json as parse, spawn_app, sse_events};

fn messages(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream, "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "vendor_extra": {"kept": true}})
}

fn recorded_events(sse: &str) -> Vec<(String, Value)> {
    llm::sse::Decoder::new()
        .feed(sse.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| (e.event.unwrap(), parse(&e.data)))
        .collect()
}

#[tokio::test]
async fn to_anthropic_the_body_passes_through_with_only_model_rewritten() {
    let app = spawn_app().await;
    let request = messages("claude", false);
    let response = app.post_messages(&request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, parse(fixtures::anthropic::RESPONSE_BASIC));

    let sent = app.mock.last_request().unwrap();
    let mut expected = request.clone();
    expected["model"] = "claude-haiku-4-5".into();
    assert_eq!(sent.body, expected);
    assert_eq!(sent.headers["x-api-key"], PROVIDER_KEY);
    assert_eq!(sent.headers["anthropic-beta"], "tools-2024-04-04");
    assert!(
        !serde_json::to_string(&sent)
            .unwrap()
            .contains("sk-ant-client")
    );
}

#[tokio::test]
async fn to_anthropic_a_stream_passes_through_event_for_event() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        fixture: Some("messages_stream_text_then_tool_use.sse".into()),
        ..Behavior::default()
    });
    let events = sse_events(app.post_messages(&messages("claude", true)).await).await;
    assert_eq!(
        events,
        recorded_events(fixtures::anthropic::STREAM_TEXT_THEN_TOOL_USE)
    );
}

#[tokio::test]
async fn to_anthropic_an_error_event_passes_through_and_a_cut_stream_gets_one() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(3),
        failure: Some(Failure::ErrorEventMidStream { after_chunks: 2 }),
        ..Behavior::default()
    });
    let events = sse_events(app.post_messages(&messages("claude", true)).await).await;
    assert_eq!(
        events.last().unwrap(),
        &(
            "error".to_owned(),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        )
    );

    app.mock
        .fail_with(Failure::TruncateMidStream { after_chunks: 3 });
    let events = sse_events(app.post_messages(&messages("claude", true)).await).await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before")
    );
}

#[tokio::test]
async fn to_anthropic_upstream_errors_pass_through_unchanged() {
    let app = spawn_app().await;
    for (status, fixture) in [
        (529, fixtures::anthropic::ERROR_OVERLOADED),
        (429, fixtures::anthropic::ERROR_RATE_LIMIT_429),
    ] {
        app.mock.fail_with(Failure::Status { status, body: None });
        let (got, body) =
            anthropic_error(app.post_messages(&messages("claude", false)).await).await;
        assert_eq!(got, status);
        assert_eq!(body, parse(fixture));
    }
}

#[tokio::test]
async fn to_openai_a_message_is_translated_both_ways() {
    let app = spawn_app().await;
    let response = app.post_messages(&messages("gpt4", false)).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "The capital of France is Paris."}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 24);
    assert_eq!(body["usage"]["output_tokens"], 8);

    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(sent.body["max_tokens"], 256);
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
}

#[tokio::test]
async fn to_openai_a_stream_becomes_anthropics_exact_event_sequence() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(5),
        ..Behavior::default()
    });
    let events = sse_events(app.post_messages(&messages("gpt4", true)).await).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str());
    }
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "The quick brown fox jumps");
    assert_eq!(events[8].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[8].1["usage"]["output_tokens"], 8);
    assert_eq!(events[8].1["usage"]["input_tokens"], 14);
    // The upstream was asked for usage, which Anthropic reports in message_delta.
    assert_eq!(
        app.mock.last_request().unwrap().body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn to_openai_tool_use_round_trips() {
    let app = spawn_app().await;
    let tools = json!([{"name": "get_temperature", "description": "t", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let first: Value = app
        .post_messages(&json!({"model": "gpt4", "max_tokens": 100, "tools": tools,
            "messages": [{"role": "user", "content": "What is the temperature in Tokyo?"}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["stop_reason"], "tool_use");
    let tool_use = &first["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["input"], json!({"city": "Tokyo"}));

    let second: Value = app
        .post_messages(&json!({"model": "gpt4", "max_tokens": 100, "tools": tools, "messages": [
            {"role": "user", "content": "What is the temperature in Tokyo?"},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "20.0"}]}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["content"][0]["text"],
        "The temperature in Tokyo is currently 20.0 degrees Celsius."
    );
    let sent = app.mock.last_request().unwrap().body;
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], tool_use["id"]);
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "tool_call_id": tool_use["id"], "content": "20.0"})
    );
}

#[tokio::test]
async fn to_the_demo_provider_it_works_without_an_upstream() {
    let app = spawn_app().await;
    let body: Value = app
        .post_messages(&json!({"model": "demo", "max_tokens": 10, "messages": [{"role": "user", "content": "hi there"}]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["content"][0]["text"], "hi there");
    let events = sse_events(
        app.post_messages(&json!({"model": "demo", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "a b"}]}))
            .await,
    )
    .await;
    assert_eq!(events.first().unwrap().0, "message_start");
    assert_eq!(events.last().unwrap().0, "message_stop");
}

#[tokio::test]
async fn errors_answer_in_anthropic_shape() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"model": "claude", "messages": []}),
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        (
            json!({"max_tokens": 5, "messages": []}),
            400,
            "invalid_request_error",
            "model",
        ),
        (
            json!({"model": "claude", "max_tokens": 5, "messages": "hi"}),
            400,
            "invalid_request_error",
            "messages",
        ),
        (
            json!({"model": "nope", "max_tokens": 5, "messages": []}),
            404,
            "not_found_error",
            "nope",
        ),
        (
            json!({"model": "gpt4", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}),
            400,
            "invalid_request_error",
            "document",
        ),
    ];
    for (body, status, kind, mentions) in cases {
        let (got, error) = anthropic_error(app.post_messages(&body).await).await;
        assert_eq!(got, status, "{body}: {error}");
        assert_eq!(error["error"]["type"], kind);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(mentions),
            "{error}"
        );
    }
    let (status, _) = anthropic_error(app.post_raw("/v1/messages", "{broken").await).await;
    assert_eq!(status, 400);

    // OpenAI upstream errors become Anthropic's.
    for (status, expected, kind) in [
        (429, 429, "rate_limit_error"),
        (401, 401, "authentication_error"),
        (503, 529, "overloaded_error"),
    ] {
        app.mock.fail_with(Failure::Status { status, body: None });
        let (got, error) = anthropic_error(app.post_messages(&messages("gpt4", false)).await).await;
        assert_eq!(
            (got, error["error"]["type"].as_str().unwrap()),
            (expected, kind)
        );
    }
}
