//! Client keys' limits: a model outside the key's list is 403, an expired key
//! 401, and requests per minute are counted by every gateway together (two
//! gateways on one bus here; three processes over NATS in `services/aiprox`),
//! each answer carrying OpenAI's `x-ratelimit-*-requests` headers, a refusal
//! 429 with `Retry-After` in the called API's shape.

use std::time::Duration;

use config_model::{ClientKey, ConfigSnapshot, KeyLimits, Mapping, Target, key_hash};
use events::Bus;
use events::memory::InProcessBus;
use gateway::config::AuthMode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on};

const KEY: &str = "sk-aiprox-limited-test-key-000000000001";

async fn gateway(bus: &InProcessBus) -> TestApp {
    spawn_app_on(Some(Bus::InProcess(bus.clone())), |c| {
        c.settings.auth = Some(AuthMode::Required);
    })
    .await
}

/// Publishes `gpt4` and `other` on `app`'s mock, and `KEY` with `limits`.
async fn publish(bus: &InProcessBus, app: &TestApp, limits: KeyLimits) {
    let config = crate::helpers::base_config(&app.mock);
    let snapshot = ConfigSnapshot {
        providers: config.providers,
        mappings: ["gpt4", "other"]
            .iter()
            .map(|a| {
                (
                    (*a).to_owned(),
                    Mapping::fallback(vec![Target::new("mock", "gpt-4o")]),
                )
            })
            .collect(),
        keys: vec![ClientKey {
            id: "key_limited".into(),
            sha256: hex::encode(key_hash(KEY)),
            limits,
        }],
        keys_issued: true,
    };
    Bus::InProcess(bus.clone())
        .put_config(snapshot.to_bytes().unwrap())
        .await
        .unwrap();
    // Applied by both within a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn chat(app: &TestApp, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
}

/// Waits out the minute when fewer than 10 s of it are left, so a test's
/// requests fall in one calendar minute.
async fn early_in_a_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 >= 50 {
        tokio::time::sleep(Duration::from_secs(61 - now % 60)).await;
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn two_gateways_admit_a_keys_requests_per_minute_together() {
    let bus = InProcessBus::new();
    let (a, b) = (gateway(&bus).await, gateway(&bus).await);
    publish(
        &bus,
        &a,
        KeyLimits {
            requests_per_minute: Some(10),
            ..KeyLimits::default()
        },
    )
    .await;
    early_in_a_minute().await;
    let mut admitted = 0;
    let mut refused = None;
    for i in 0..30 {
        let r = chat(if i % 2 == 0 { &a } else { &b }, "gpt4").await;
        assert_eq!(
            header(&r, "x-ratelimit-limit-requests").as_deref(),
            Some("10")
        );
        let remaining: u64 = header(&r, "x-ratelimit-remaining-requests")
            .unwrap()
            .parse()
            .unwrap();
        assert!(remaining <= 10);
        assert!(
            header(&r, "x-ratelimit-reset-requests")
                .unwrap()
                .ends_with('s')
        );
        match r.status().as_u16() {
            200 => admitted += 1,
            429 => refused = Some(r),
            other => panic!("{other}"),
        }
    }
    // Leases are counted when taken: the two together admit no more than the
    // limit; less only by what one holds unused (a lease is 1 at this limit).
    assert_eq!(admitted, 10);
    let refused = refused.expect("refusals past the limit");
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    // Anthropic's shape on /v1/messages.
    let r = a
        .client
        .post(a.url("/v1/messages"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "gpt4", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(header(&r, "retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let metrics = a.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("aiprox_gateway_limit_refusals_total{reason=\"rate_limit_exceeded\"}"),
        "{metrics}"
    );
    // The upstreams saw the admitted requests only.
    assert_eq!(a.mock.requests().len(), 10);
}

#[tokio::test]
async fn a_model_off_the_keys_list_is_403_and_an_expired_key_401() {
    let bus = InProcessBus::new();
    let app = gateway(&bus).await;
    publish(
        &bus,
        &app,
        KeyLimits {
            models: vec!["gpt4".into()],
            ..KeyLimits::default()
        },
    )
    .await;
    assert_eq!(chat(&app, "gpt4").await.status(), 200);
    let r = chat(&app, "other").await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert_eq!(body["error"]["type"], "permission_error");
    let r = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", KEY)
        .json(&json!({"model": "other", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error");

    publish(
        &bus,
        &app,
        KeyLimits {
            expires_at_ms: Some(1_000),
            ..KeyLimits::default()
        },
    )
    .await;
    let r = chat(&app, "gpt4").await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_expired");
    assert_eq!(app.mock.requests().len(), 1);
}
