//! OpenAI clients on `/v1/chat/completions`, served by an Anthropic upstream.

use mock_upstream::{Behavior, Failure};
use serde_json::{Value, json};

use crate::helpers::{PROVIDER_KEY, openai_error, spawn_app, sse_payloads};

fn chat(content: Value) -> Value {
    json!({"model": "claude", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}]})
}

#[tokio::test]
async fn a_plain_completion_is_translated_both_ways() {
    let app = spawn_app().await;
    let response = app
        .post_chat(&chat(json!("What is the capital of France?")))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-3-opus-20240229");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The capital of France is Paris."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 0}})
    );

    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.headers["x-api-key"], PROVIDER_KEY);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(sent.body["model"], "claude-haiku-4-5");
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(
        sent.body["max_tokens"], 2048,
        "the configured default applies"
    );
    assert_eq!(
        app.mock.stats().invalid_requests,
        0,
        "{:?}",
        app.mock.invalid_reasons()
    );
}

#[tokio::test]
async fn a_stream_is_translated_chunk_by_chunk_with_usage_on_request() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(6),
        ..Behavior::default()
    });
    let mut body = chat(json!("1+1?"));
    body["stream"] = true.into();
    body["stream_options"] = json!({"include_usage": true});
    let payloads = sse_payloads(app.post_chat(&body).await).await;
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| crate::helpers::json(p))
        .collect();
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "One plus one is two.");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(usage["usage"]["prompt_tokens"], 20);
    assert_eq!(app.mock.last_request().unwrap().body["stream"], true);
}

#[tokio::test]
async fn a_tool_call_round_trip_sends_valid_anthropic_turns() {
    let app = spawn_app().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "units": {"type": "string"}}}}}]);
    let mut messages = vec![json!({"role": "user", "content": "What is the weather in SF?"})];
    let first: Value = app
        .post_chat(&json!({"model": "claude", "messages": messages, "tools": tools, "tool_choice": "auto"}))
        .await
        .json()
        .await
        .unwrap();
    let message = &first["choices"][0]["message"];
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let call = &message["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"location": "San Francisco, CA", "units": "f"}));

    messages.push(message.clone());
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "{\"temperature\": \"68°F\"}"}));
    let second: Value = app
        .post_chat(&json!({"model": "claude", "messages": messages, "tools": tools}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        second["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("Sunny")
    );
    let sent = app.mock.last_request().unwrap().body;
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(sent["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], call["id"]);
    assert_eq!(
        app.mock.stats().invalid_requests,
        0,
        "{:?}",
        app.mock.invalid_reasons()
    );
}

#[tokio::test]
async fn images_become_anthropic_image_sources() {
    let app = spawn_app().await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let response = app
        .post_chat(&chat(json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}},
            {"type": "image_url", "image_url": {"url": "https://example.com/kiwi.jpg", "detail": "low"}}
        ])))
        .await;
    assert_eq!(response.status(), 200);
    let content = &app.mock.last_request().unwrap().body["messages"][0]["content"];
    assert_eq!(
        content[1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": png})
    );
    assert_eq!(
        content[2]["source"],
        json!({"type": "url", "url": "https://example.com/kiwi.jpg"})
    );
    assert_eq!(app.mock.stats().invalid_requests, 0);
}

#[tokio::test]
async fn thinking_streams_as_reasoning_content() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        fixture: Some("messages_stream_thinking.sse".into()),
        ..Behavior::default()
    });
    let mut body = chat(json!("How do I cross the street?"));
    body["stream"] = true.into();
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let payloads = sse_payloads(app.post_chat(&body).await).await;
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| crate::helpers::json(p))
        .collect();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        reasoning.starts_with("This is a straightforward question about pedestrian safety."),
        "{reasoning}"
    );
    assert!(!text.is_empty());
    assert_eq!(
        app.mock.last_request().unwrap().body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
}

#[tokio::test]
async fn anthropic_errors_reach_openai_clients_in_openai_shape() {
    let app = spawn_app().await;
    for (status, expected_status, code) in [
        (529, 503, Some("overloaded")),
        (429, 429, Some("rate_limit_exceeded")),
        (401, 401, Some("invalid_api_key")),
        (400, 400, None),
        (404, 404, Some("model_not_found")),
    ] {
        app.mock.fail_with(Failure::Status { status, body: None });
        let (got, error) = openai_error(app.post_chat(&chat(json!("x"))).await).await;
        assert_eq!(got, expected_status, "{error}");
        assert_eq!(error["error"]["code"].as_str(), code, "{error}");
    }
}

#[tokio::test]
async fn an_overload_mid_stream_ends_the_openai_stream_with_an_error_event() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(4),
        failure: Some(Failure::ErrorEventMidStream { after_chunks: 3 }),
        ..Behavior::default()
    });
    let mut body = chat(json!("x"));
    body["stream"] = true.into();
    let payloads = sse_payloads(app.post_chat(&body).await).await;
    let last = crate::helpers::json(payloads.last().unwrap());
    assert_eq!(last["error"]["code"], "overloaded");
    assert_eq!(last["error"]["message"], "Overloaded");
    assert!(!payloads.contains(&"[DONE]".to_owned()));
}

#[tokio::test]
async fn a_truncated_anthropic_stream_ends_with_an_error_event() {
    let app = spawn_app().await;
    app.mock
        .fail_with(Failure::TruncateMidStream { after_chunks: 4 });
    let mut body = chat(json!("x"));
    body["stream"] = true.into();
    let payloads = sse_payloads(app.post_chat(&body).await).await;
    let last = crate::helpers::json(payloads.last().unwrap());
    assert_eq!(last["error"]["code"], "stream_interrupted");
}

#[tokio::test]
async fn what_anthropic_cannot_do_is_a_clear_400() {
    let app = spawn_app().await;
    let mut body = chat(json!("x"));
    body["n"] = 3.into();
    let (status, error) = openai_error(app.post_chat(&body).await).await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "unsupported_by_provider");
    let (status, error) = openai_error(
        app.post_embeddings(&json!({"model": "claude", "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["code"], "unsupported_endpoint");
    assert!(app.mock.requests().is_empty());
}
