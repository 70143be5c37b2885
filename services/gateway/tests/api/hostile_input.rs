//! Bad and hostile input, as a careless or malicious client sends it: each is
//! refused with a clear error in the called API's shape, before anything goes
//! upstream.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn openai_image(url: &str, model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]}]})
}

fn anthropic_image(media_type: &str, data: &str, model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is it?"},
        {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}]}]})
}

#[tokio::test]
async fn inline_images_that_do_not_decode_are_400_invalid_image_naming_the_part() {
    let app = spawn_app().await;
    for model in ["gpt4", "claude"] {
        let (status, error) = post(
            &app,
            "/v1/chat/completions",
            &openai_image("data:image/png;base64,@@not base64@@", model),
        )
        .await;
        assert_eq!(status, 400, "{model}: {error}");
        assert_eq!(error["error"]["code"], "invalid_image", "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert_eq!(error["error"]["param"], "messages[1].content[1]");

        let (status, error) = post(
            &app,
            "/v1/messages",
            &anthropic_image("image/png", "@@not base64@@", model),
        )
        .await;
        assert_eq!(status, 400, "{model}: {error}");
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("messages[0].content[1]"), "{message}");
    }
    assert!(
        app.mock.requests().is_empty(),
        "a refused image went upstream"
    );
    // The same images, well formed, go through.
    let (status, _) = post(
        &app,
        "/v1/chat/completions",
        &openai_image(&format!("data:image/png;base64,{PNG}"), "gpt4"),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_media_type_with_a_line_break_is_refused_at_the_gateway() {
    let app = spawn_app().await;
    let (status, error) = post(
        &app,
        "/v1/chat/completions",
        &openai_image(&format!("data:image/png\r\nx-a: 1;base64,{PNG}"), "gpt4"),
    )
    .await;
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("invalid_image")));
    let (status, error) = post(
        &app,
        "/v1/messages",
        &anthropic_image("image/png\r\nx-a: 1", PNG, "claude"),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(app.mock.requests().is_empty());
}
