use mock_upstream::{Behavior, fixtures};
use serde_json::{Value, json};

use crate::helpers::{PROVIDER_KEY, json as parse, spawn_app};

#[tokio::test]
async fn unknown_request_fields_reach_the_upstream_and_only_model_is_rewritten() {
    let app = spawn_app().await;
    let request = json!({
        "model": "gpt4",
        "messages": [{"role": "user", "content": "hi", "name": "ann", "x_vendor": {"k": [1, 2]}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "seed": 42,
        "logprobs": true,
        "top_logprobs": 2,
        "n": 2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "none",
        "vendor_extra": {"nested": [null, true, 1.5e3, "é"]},
    });
    let response = app.post_chat(&request).await;
    assert_eq!(response.status(), 200);

    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    let mut expected = request.clone();
    expected["model"] = "gpt-4o".into();
    assert_eq!(sent.body, expected);
}

#[tokio::test]
async fn the_upstream_answer_reaches_the_client_unchanged_with_unknown_fields() {
    let app = spawn_app().await;
    let mut extra = serde_json::Map::new();
    extra.insert("vendor_field".into(), json!({"a": [1, "two"]}));
    app.mock.set_behavior(Behavior {
        extra_fields: extra,
        ..Behavior::default()
    });
    let response = app
        .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "capital of France?"}]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    let body: Value = response.json().await.unwrap();
    let mut expected = parse(fixtures::openai::CHAT_RESPONSE_BASIC);
    expected["vendor_field"] = json!({"a": [1, "two"]});
    assert_eq!(body, expected);
}

#[tokio::test]
async fn the_provider_key_goes_upstream_and_the_client_key_does_not() {
    let app = spawn_app().await;
    let response = app
        .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let sent = app.mock.last_request().unwrap();
    assert_eq!(
        sent.headers["authorization"],
        format!("Bearer {PROVIDER_KEY}")
    );
    assert_eq!(sent.headers["x-tenant"], "team-a");
    assert!(
        !serde_json::to_string(&sent)
            .unwrap()
            .contains("sk-client-key"),
        "the client's key leaked upstream: {sent:?}"
    );
}

#[tokio::test]
async fn provider_slash_model_addresses_a_provider_directly() {
    let app = spawn_app().await;
    let response = app
        .post_chat(&json!({"model": "mock/org/some-model:latest", "messages": [{"role": "user", "content": "x"}]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.mock.last_request().unwrap().body["model"],
        "org/some-model:latest"
    );
}

#[tokio::test]
async fn tool_calls_come_back_as_recorded() {
    let app = spawn_app().await;
    let request = parse(include_str!(
        "../../../../fixtures/openai/chat_request_tools.json"
    ));
    let mut request = request;
    request["model"] = "gpt4".into();
    let response = app.post_chat(&request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, parse(fixtures::openai::CHAT_RESPONSE_TOOL_CALLS));
    assert_eq!(
        app.mock.last_request().unwrap().body["tools"],
        request["tools"]
    );
}

#[tokio::test]
async fn the_demo_provider_echoes_the_last_user_message() {
    let app = spawn_app().await;
    let response = app
        .post_chat(&json!({"model": "demo", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "echo"}, {"type": "text", "text": "me please"}]},
        ]}))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "echo");
    assert_eq!(body["choices"][0]["message"]["content"], "echo me please");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], 3);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + 3
    );
    assert!(
        app.mock.requests().is_empty(),
        "the demo provider called an upstream"
    );
}
