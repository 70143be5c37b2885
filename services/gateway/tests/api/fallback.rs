//! A mapping's targets in order: the next takes over when one fails in a way
//! another may not (unreachable, timed out, 408, 409, 429, 5xx), never on another
//! 4xx; once aiprox gave up after trying, `x-should-retry: false` keeps the SDKs
//! from multiplying the attempts.

use config_model::Target;
use mock_upstream::{Failure, MockUpstream};
use serde_json::json;

use crate::helpers::{TestApp, anthropic_provider, openai_provider, spawn_app_with, sse_payloads};

/// The app with a second upstream `backup` and the aliases `resilient` →
/// [mock, backup] (both OpenAI's API) and `cross` → [mock, backup's Anthropic API].
async fn with_backup() -> (TestApp, MockUpstream) {
    let backup = MockUpstream::start().await.unwrap();
    let (openai, anthropic) = (backup.base_url(), backup.anthropic_base_url());
    let app = spawn_app_with(move |c| {
        c.providers
            .insert("backup".into(), openai_provider(&openai));
        c.providers
            .insert("backup-claude".into(), anthropic_provider(&anthropic));
        let target = |provider: &str, model: &str| Target {
            provider: provider.into(),
            model: model.into(),
        };
        c.mappings.insert(
            "resilient".into(),
            vec![target("mock", "gpt-4o"), target("backup", "gpt-4o-mini")],
        );
        c.mappings.insert(
            "cross".into(),
            vec![
                target("mock", "gpt-4o"),
                target("backup-claude", "claude-haiku-4-5"),
            ],
        );
    })
    .await;
    (app, backup)
}

fn chat(model: &str) -> serde_json::Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_503_moves_to_the_next_target_and_its_answer_is_the_clients() {
    let (app, backup) = with_backup().await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert!(answer["choices"][0]["message"]["content"].is_string());
    assert_eq!(app.mock.requests().len(), 1);
    let sent = backup.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn unreachable_timed_out_and_rate_limited_targets_fail_over_but_a_400_does_not() {
    for (failure, moves) in [
        (Failure::Reset, true),
        (
            Failure::Status {
                status: 429,
                body: None,
            },
            true,
        ),
        (
            Failure::Status {
                status: 529,
                body: None,
            },
            true,
        ),
        (
            Failure::Status {
                status: 408,
                body: None,
            },
            true,
        ),
        (
            Failure::Status {
                status: 400,
                body: None,
            },
            false,
        ),
        (
            Failure::Status {
                status: 401,
                body: None,
            },
            false,
        ),
        (
            Failure::Status {
                status: 404,
                body: None,
            },
            false,
        ),
    ] {
        let (app, backup) = with_backup().await;
        app.mock.fail_with(failure.clone());
        let response = app.post_chat(&chat("resilient")).await;
        let status = response.status().as_u16();
        if moves {
            assert_eq!(status, 200, "{failure:?}");
            assert_eq!(backup.requests().len(), 1, "{failure:?}");
        } else {
            assert_eq!(
                status,
                match &failure {
                    Failure::Status { status, .. } => *status,
                    _ => unreachable!(),
                }
            );
            assert!(backup.requests().is_empty(), "{failure:?} moved on");
            assert!(response.headers().get("x-should-retry").is_none());
        }
    }
}

#[tokio::test]
async fn when_every_target_failed_the_last_error_is_answered_with_x_should_retry_false() {
    let (app, backup) = with_backup().await;
    for mock in [&app.mock, &backup] {
        mock.fail_with(Failure::Status {
            status: 503,
            body: None,
        });
    }
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-should-retry"], "false");
    assert_eq!(app.mock.requests().len() + backup.requests().len(), 2);
    // One target, one attempt: the SDK may retry as it always would.
    let single = app.post_chat(&chat("gpt4")).await;
    assert_eq!(single.status(), 503);
    assert!(single.headers().get("x-should-retry").is_none());
}

#[tokio::test]
async fn an_openai_request_falls_back_to_an_anthropic_target_translated() {
    let (app, backup) = with_backup().await;
    app.mock.fail_with(Failure::Status {
        status: 500,
        body: None,
    });
    let response = app.post_chat(&chat("cross")).await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    assert!(answer["choices"][0]["message"]["content"].is_string());
    let sent = backup.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].body["model"], "claude-haiku-4-5");
}

#[tokio::test]
async fn a_stream_refused_before_its_first_byte_is_served_by_the_next_target_on_both_apis() {
    let (app, backup) = with_backup().await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let mut body = chat("resilient");
    body["stream"] = json!(true);
    let response = app.post_chat(&body).await;
    assert_eq!(response.status(), 200);
    let payloads = sse_payloads(response).await;
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    assert_eq!(backup.requests().len(), 1);

    let response = app
        .post_messages(&json!({
            "model": "resilient",
            "max_tokens": 32,
            "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        }))
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    assert_eq!(backup.requests().len(), 2);
}
