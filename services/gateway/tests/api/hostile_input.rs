//! Bad and hostile input, as a careless or malicious client sends it: each is
//! refused with a clear error in the called API's shape, before anything goes
//! upstream.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let (_, status, text) = app.send_json(path, body).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
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
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_image"))
    );
    let (status, error) = post(
        &app,
        "/v1/messages",
        &anthropic_image("image/png\r\nx-a: 1", PNG, "claude"),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(app.mock.requests().is_empty());
}

#[tokio::test]
async fn an_object_field_given_as_an_array_is_400_naming_the_field() {
    let app = spawn_app().await;
    let chat = |model: &str, extra: Value| {
        let mut body = json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    // The OpenAI path (passed through) and the one translated for Anthropic.
    for model in ["gpt4", "claude"] {
        for options in [json!([]), json!([true])] {
            let (status, error) = post(
                &app,
                "/v1/chat/completions",
                &chat(model, json!({"stream_options": options})),
            )
            .await;
            assert_eq!(status, 400, "{model} {options}: {error}");
            assert_eq!(error["error"]["param"], "stream_options", "{error}");
        }
        let (status, error) = post(
            &app,
            "/v1/chat/completions",
            &json!({"model": model, "messages": [["user", "hi"]]}),
        )
        .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["param"], "messages[0]", "{error}");
    }
    // Anthropic clients on an OpenAI-compatible provider (translated).
    let messages = |extra: Value| {
        let mut body = json!({"model": "gpt4", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    for (extra, field) in [
        (json!({"system": [7]}), "system"),
        (json!({"system": [null]}), "system"),
        (json!({"metadata": []}), "metadata"),
        (json!({"metadata": ["user-1"]}), "metadata"),
    ] {
        let (status, error) = post(&app, "/v1/messages", &messages(extra.clone())).await;
        assert_eq!(status, 400, "{extra}: {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{extra}: {message}");
    }
    assert!(
        app.mock.requests().is_empty(),
        "a refused body went upstream"
    );
}

#[tokio::test]
async fn a_model_name_past_256_bytes_is_400_and_not_echoed() {
    let app = spawn_app().await;
    let long = "m".repeat(16 * 1024);
    let (status, error) = post(
        &app,
        "/v1/chat/completions",
        &json!({"model": long, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["param"], "model");
    assert!(
        error.to_string().len() < 1024,
        "the name is echoed: {error}"
    );
    let (status, error) = post(
        &app,
        "/v1/messages",
        &json!({"model": long, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!((status, error["type"].as_str()), (400, Some("error")));
    assert!(error.to_string().len() < 1024);
    // 256 bytes is still a name (unknown here: 404).
    let (status, _) = post(
        &app,
        "/v1/chat/completions",
        &json!({"model": "m".repeat(256), "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_routes_answer_in_their_api_shape_and_are_counted() {
    let app = spawn_app().await;
    let (status, error) = post(&app, "/v1/messages/batches", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(error["type"], "error", "Anthropic's shape: {error}");
    assert_eq!(error["error"]["type"], "not_found_error");
    let (status, error) = post(&app, "/v1/nothing-here", &json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(
        error["error"]["code"], "unknown_url",
        "OpenAI's shape: {error}"
    );
    let wrong_method = app
        .client
        .get(app.url("/v1/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("aiprox_unrouted_requests_total{status=\"404\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aiprox_unrouted_requests_total{status=\"405\"} 1"),
        "{metrics}"
    );
}

mod slow_clients {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use crate::helpers::spawn_app_with;

    /// Reads until the server closes the connection; what it sent, and when.
    fn read_to_close(mut tcp: TcpStream, within: Duration) -> (String, Duration) {
        tcp.set_read_timeout(Some(within)).unwrap();
        let started = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        (
            String::from_utf8_lossy(&got).into_owned(),
            started.elapsed(),
        )
    }

    #[tokio::test]
    async fn unfinished_headers_are_cut_off_after_the_header_read_timeout() {
        let app = spawn_app_with(|c| {
            c.settings.header_read_timeout = Duration::from_millis(300);
        })
        .await;
        let addr = app.addr;
        let elapsed = tokio::task::spawn_blocking(move || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .unwrap();
            read_to_close(tcp, Duration::from_secs(10)).1
        })
        .await
        .unwrap();
        assert!(
            elapsed < Duration::from_secs(5),
            "held open for {elapsed:?}"
        );
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_length_is_408_after_the_idle_timeout() {
        let app = spawn_app_with(|c| {
            c.settings.body_idle_timeout = Duration::from_millis(300);
        })
        .await;
        let addr = app.addr;
        let (answer, elapsed) = tokio::task::spawn_blocking(move || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":",
            )
            .unwrap();
            read_to_close(tcp, Duration::from_secs(10))
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("request_timeout"), "{answer}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert!(app.mock.requests().is_empty());
    }

    #[tokio::test]
    async fn bodies_past_the_in_flight_budget_wait_then_get_503_with_retry_after() {
        let app = spawn_app_with(|c| {
            c.settings.max_body_bytes_in_flight = 64 * 1024;
            c.settings.body_wait = Duration::from_millis(300);
        })
        .await;
        let addr = app.addr;
        // One client holds 60 KiB of the budget with a body it never finishes.
        let holder = std::thread::spawn(move || {
            let mut tcp = TcpStream::connect(addr).unwrap();
            tcp.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n").unwrap();
            tcp.write_all(&vec![b' '; 60 * 1024]).unwrap();
            std::thread::sleep(Duration::from_secs(2));
            drop(tcp);
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let big = serde_json::json!({"model": "gpt4", "messages": [{"role": "user", "content": "x".repeat(32 * 1024)}]});
        let refused = app.post_chat(&big).await;
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.headers()["retry-after"], "1");
        let error: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(error["error"]["code"], "overloaded");
        // Small requests still fit beside it.
        let small =
            serde_json::json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(app.post_chat(&small).await.status(), 200);
        holder.join().unwrap();
        // Once the room is given back, the big one goes through.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(app.post_chat(&big).await.status(), 200);
    }
}
