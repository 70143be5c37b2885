use std::time::Duration;

use mock_upstream::{Behavior, Failure, fixtures};
use serde_json::{Value, json};

use crate::helpers::{
    PROVIDER_KEY, json as parse, openai_error, openai_provider, spawn_app, spawn_app_with,
};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400_invalid_request_error() {
    let app = spawn_app().await;
    let cases: &[(&str, Option<&str>)] = &[
        ("{not json", None),
        ("", None),
        ("[1,2]", None),
        (r#"{"model":"gpt4","messages":"hello"}"#, Some("messages")),
        (r#"{"model":"gpt4"}"#, Some("messages")),
        (r#"{"model":["gpt4"],"messages":[]}"#, Some("model")),
        (
            r#"{"model":"gpt4","messages":[{"content":"no role"}]}"#,
            Some("messages[0]"),
        ),
        (
            r#"{"model":"gpt4","messages":[],"stream":"true"}"#,
            Some("stream"),
        ),
    ];
    for (body, param) in cases {
        let (status, error) = openai_error(app.post_raw("/v1/chat/completions", *body).await).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{body}");
        assert_eq!(error["error"]["param"].as_str(), *param, "{body}");
    }
    assert!(
        app.mock.requests().is_empty(),
        "a refused request went upstream"
    );
}

#[tokio::test]
async fn missing_and_unknown_models_are_404_model_not_found_without_secrets() {
    let app = spawn_app().await;
    for body in [
        json!({"messages": []}),
        chat("gpt-5-nope"),
        chat("nope/gpt-4o"),
        chat("mock/"),
    ] {
        let (status, error) = openai_error(app.post_chat(&body).await).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(error["error"]["code"], "model_not_found");
        let text = error.to_string();
        assert!(
            !text.contains(PROVIDER_KEY) && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
    let (status, error) = openai_error(
        app.post_embeddings(&json!({"model": "nope", "input": "x"}))
            .await,
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|c| c.settings.max_body_bytes = 4096).await;
    let big = json!({"model": "gpt4", "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let (status, error) = openai_error(app.post_chat(&big).await).await;
    assert_eq!(status, 413);
    assert_eq!(error["error"]["code"], "request_too_large");
    // Without a declared length (chunked upload), the limit still holds.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(big.to_string())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let (status, _) = openai_error(app.post_raw("/v1/chat/completions", body).await).await;
    assert_eq!(status, 413);
    // Just under the limit passes.
    let ok = json!({"model": "gpt4", "messages": [{"role": "user", "content": "x".repeat(3000)}]});
    assert_eq!(app.post_chat(&ok).await.status(), 200);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = spawn_app_with(|c| {
        c.providers.insert(
            "down".into(),
            openai_provider(&format!("http://127.0.0.1:{port}/v1")),
        );
    })
    .await;
    for stream in [false, true] {
        let mut body = chat("down/gpt-4o");
        body["stream"] = stream.into();
        let (status, error) = openai_error(app.post_chat(&body).await).await;
        assert_eq!(status, 502);
        assert_eq!(error["error"]["code"], "upstream_unreachable");
    }
}

#[tokio::test]
async fn a_connection_reset_before_the_answer_is_502() {
    let app = spawn_app().await;
    app.mock.fail_with(Failure::Reset);
    let (status, error) = openai_error(app.post_chat(&chat("gpt4")).await).await;
    assert_eq!(status, 502);
    assert_eq!(error["error"]["code"], "upstream_unreachable");
}

#[tokio::test]
async fn a_slow_upstream_is_504_after_the_first_byte_timeout() {
    let app = spawn_app_with(|c| c.settings.timeouts.first_byte = Duration::from_millis(300)).await;
    app.mock.set_behavior(Behavior {
        latency: Duration::from_secs(5),
        ..Behavior::default()
    });
    for stream in [false, true] {
        let mut body = chat("gpt4");
        body["stream"] = stream.into();
        let started = std::time::Instant::now();
        let (status, error) = openai_error(app.post_chat(&body).await).await;
        assert_eq!(status, 504);
        assert_eq!(error["error"]["code"], "upstream_timeout");
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

#[tokio::test]
async fn upstream_error_statuses_and_openai_bodies_pass_through() {
    let app = spawn_app().await;
    for (status, fixture) in [
        (429, fixtures::openai::ERROR_RATE_LIMIT_429),
        (401, fixtures::openai::ERROR_AUTH_401),
        (400, fixtures::openai::ERROR_INVALID_REQUEST),
        (404, fixtures::openai::ERROR_MODEL_NOT_FOUND_404),
    ] {
        app.mock.fail_with(Failure::Status { status, body: None });
        for stream in [false, true] {
            let mut body = chat("gpt4");
            body["stream"] = stream.into();
            let response = app.post_chat(&body).await;
            assert_eq!(response.headers()["content-type"], "application/json");
            let (got, error) = openai_error(response).await;
            assert_eq!(got, status);
            assert_eq!(error, parse(fixture), "status {status}, stream {stream}");
        }
    }
}

#[tokio::test]
async fn upstream_errors_in_other_shapes_are_normalised() {
    let app = spawn_app().await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let (status, error) = openai_error(app.post_chat(&chat("gpt4")).await).await;
    assert_eq!(status, 503);
    assert_eq!(error["error"]["message"], "upstream exploded");
    assert_eq!(error["error"]["type"], "api_error");

    app.mock.fail_with(Failure::Status {
        status: 400,
        body: Some(r#"{"error":"model \"llama9\" not found, try pulling it first"}"#.into()),
    });
    let (status, error) = openai_error(app.post_chat(&chat("gpt4")).await).await;
    assert_eq!(status, 400);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("llama9")
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_openai_shape() {
    let app = spawn_app().await;
    let (status, error) = openai_error(app.post_raw("/v1/completions-typo", "{}").await).await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["code"], "unknown_url");
    let (status, error) = openai_error(app.get("/v1/chat/completions").await).await;
    assert_eq!(status, 405);
    assert_eq!(error["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn no_input_makes_the_gateway_fail_or_panic() {
    let app = spawn_app().await;
    let mut bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00".to_vec(),
        b"null".to_vec(),
        b"{\"model\":null,\"messages\":null}".to_vec(),
        b"{\"model\":\"gpt4\",\"messages\":[null]}".to_vec(),
        b"{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":{\"deep\":1}}],\"stream\":true}".to_vec(),
        b"{\"model\":\"demo\",\"messages\":[{\"role\":\"user\"}]}".to_vec(),
        "{\"model\":\"\u{0}\",\"messages\":[]}".as_bytes().to_vec(),
        format!("{{\"model\":\"gpt4\",\"messages\":{}{}}}", "[".repeat(200), "]".repeat(200)).into_bytes(),
    ];
    let valid = chat("gpt4").to_string().into_bytes();
    for cut in (1..valid.len()).step_by(7) {
        bodies.push(valid[..cut].to_vec());
    }
    for body in bodies {
        let text = String::from_utf8_lossy(&body).into_owned();
        for path in ["/v1/chat/completions", "/v1/embeddings"] {
            let response = app.post_raw(path, body.clone()).await;
            let status = response.status().as_u16();
            assert!(
                status == 200 || (400..500).contains(&status),
                "{path} {text}: {status}"
            );
            if status != 200 {
                openai_error(response).await;
            }
        }
    }
    // Still serving.
    assert_eq!(app.post_chat(&chat("gpt4")).await.status(), 200);
}
