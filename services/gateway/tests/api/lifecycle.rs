use std::time::Duration;

use mock_upstream::Behavior;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, sse_payloads};

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn shutdown_lets_in_flight_streams_finish_and_flips_readiness_first() {
    let app = spawn_app_with(|c| c.settings.drain_delay = Duration::from_millis(300)).await;
    app.mock.set_behavior(Behavior {
        chunks: Some(10),
        chunk_interval: Duration::from_millis(100),
        ..Behavior::default()
    });
    let response = app
        .post_chat(&json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    app.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.get("/readyz").await.status(), 503);
    let payloads = sse_payloads(response).await;
    assert_eq!(payloads.len(), 13, "role + 10 + finish + [DONE]");
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let result = tokio::time::timeout(Duration::from_secs(5), app.server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "the server did not stop: {result:?}"
    );
}
