//! The pipeline when nothing fails: requests through `aiprox gateway`, the
//! logger and the media writer land in PostgreSQL once each, with their tokens,
//! times, cost, bodies and media (an image sent twice is one file, out of the
//! log); `aiprox all` on SQLite without NATS logs every request and exits
//! cleanly on SIGTERM.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Stack, files_under, plain};

#[tokio::test]
async fn requests_land_in_postgres_with_tokens_times_bodies_and_media() {
    let stack = Stack::start().await;
    let _logger = stack.spawn("logger", &[]);
    let _media = stack.spawn("media", &[]);
    let _gateway = stack.gateway().await;

    for i in 0..5 {
        assert_eq!(stack.chat(&plain(i)).await.status(), 200);
    }
    let streamed = stack
        .chat(&json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "capital of Mexico?"}]}))
        .await;
    let stream_id = streamed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = streamed.text().await.unwrap();
    assert!(
        !text.contains("\"usage\":{"),
        "the client did not ask for usage: {text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(
        stack
            .chat(&json!({"model": "nope", "messages": []}))
            .await
            .status(),
        404
    );

    // A 5 MiB image, sent twice: one file.
    let image: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|i: usize| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&image));
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&image)
    );
    let mut image_ids = Vec::new();
    for _ in 0..2 {
        let r = stack
            .chat(
                &json!({"model": "gpt4", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": data_url}}]}]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        image_ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
    }

    assert_eq!(
        stack.wait_rows(9, Duration::from_secs(30)).await,
        9,
        "{}",
        stack.log("logger")
    );
    stack.assert_no_duplicates().await;
    let store = stack.store().await;

    let s = store.log(&stream_id).await.unwrap().unwrap();
    assert!(s.stream);
    assert_eq!(
        (s.input_tokens, s.output_tokens),
        (14, 8),
        "usage asked upstream, hidden from the client"
    );
    assert!(s.ttft_us > 0 && s.ttft_us <= s.latency_us);
    assert!(s.upstream_latency_us > 0);
    let assembled: Value = serde_json::from_str(&s.response_body).unwrap();
    assert_eq!(
        assembled["choices"][0]["message"]["content"],
        "The capital of Mexico is Mexico City."
    );
    assert_eq!(s.provider, "mock");
    assert_eq!(s.upstream_model, "gpt-4o");
    assert!((s.cost_usd - (14.0 * 2.5 + 8.0 * 10.0) / 1e6).abs() < 1e-12);

    let img = store.log(&image_ids[0]).await.unwrap().unwrap();
    assert!(img.request_body.contains(&format!("aiprox-media://{sha}")));
    assert!(
        !img.request_body.contains("base64"),
        "the image stays out of the log"
    );
    assert_eq!(
        img.media,
        vec![(sha.clone(), format!("{}/{sha}.png", &sha[..2]))]
    );
    assert_eq!(img.input_tokens, 24);

    let totals = store.rollup_totals().await.unwrap();
    assert_eq!(totals.requests, 9);
    assert_eq!(totals.errors, 1);

    // The file lands once, with the right bytes.
    let path = stack
        .media_root()
        .join(&sha[..2])
        .join(format!("{sha}.png"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !path.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}: {}", stack.log("media")));
    assert_eq!(hex::encode(Sha256::digest(&written)), sha);
    assert_eq!(files_under(&stack.media_root()), vec![path]);
}

#[tokio::test]
async fn aiprox_all_on_the_embedded_default_logs_to_sqlite() {
    let stack = Stack::start().await;
    let db = stack.dir.path().join("data/aiprox.db");
    let url = format!("sqlite://{}", db.display());
    let all = stack.spawn(
        "all",
        &[
            ("AIPROX_DATABASE_URL", &url),
            ("AIPROX_NATS_URL", ""),
            ("AIPROX_ADMIN__LISTEN", "127.0.0.1:0"),
        ],
    );
    stack.wait_ready().await;
    for i in 0..7 {
        assert_eq!(stack.chat(&plain(i)).await.status(), 200);
    }
    let status = all.terminate();
    assert!(status.success(), "{}", stack.log("all"));
    let store = store::Store::connect(&url).await.unwrap();
    assert_eq!(store.log_count().await.unwrap(), 7);
    assert_eq!(store.rollup_totals().await.unwrap().input_tokens, 7 * 24);
}
