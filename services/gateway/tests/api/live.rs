//! Client keys and live configuration through the in-process bus (what `aiprox
//! all` uses; the NATS KV path is proven end to end in `services/aiprox`).

use std::time::{Duration, Instant};

use config_model::{ClientKey, ConfigSnapshot, Mapping, Target, key_hash};
use events::Bus;
use events::memory::InProcessBus;
use gateway::config::AuthMode;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on};

const KEY: &str = "sk-aiprox-live-test-key-0000000000000001";

fn snapshot(app: &TestApp, aliases: &[(&str, &str)], keys: &[&str]) -> ConfigSnapshot {
    let config = crate::helpers::base_config(&app.mock);
    ConfigSnapshot {
        providers: config.providers,
        mappings: aliases
            .iter()
            .map(|(alias, model)| {
                (
                    (*alias).to_owned(),
                    Mapping::fallback(vec![Target::new("mock", *model)]),
                )
            })
            .collect(),
        keys: keys
            .iter()
            .enumerate()
            .map(|(i, k)| ClientKey {
                id: format!("key_{i}"),
                sha256: hex(&key_hash(k)),
                limits: config_model::KeyLimits::default(),
            })
            .collect(),
        keys_issued: !keys.is_empty(),
        prices: Default::default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn chat(app: &TestApp, model: &str, key: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

/// Polls until `check` holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn required_keys_refuse_missing_and_unknown_keys_in_each_apis_error_shape() {
    let bus = InProcessBus::new();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), |c| {
        c.settings.auth = Some(AuthMode::Required);
    })
    .await;
    let (status, body) = chat(&app, "gpt4", None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "missing_api_key");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let (status, body) = chat(&app, "gpt4", Some("sk-wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(!body.to_string().contains("sk-wrong"));

    let resp = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", "sk-wrong")
        .json(&json!({"model": "gpt4", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    // Health stays open; the upstream saw nothing.
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(app.mock.requests().len(), 0);
}

#[tokio::test]
async fn a_published_snapshot_adds_aliases_and_keys_and_a_revoked_key_stops_working() {
    let bus = InProcessBus::new();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), |c| {
        c.settings.auth = Some(AuthMode::Required);
    })
    .await;
    let mut logs = Bus::InProcess(bus.clone())
        .consumer(events::subjects::LOGGER, events::subjects::LOG)
        .await
        .unwrap();

    // Publish: a new alias and a key.
    let bus = Bus::InProcess(bus);
    bus.put_config(
        snapshot(&app, &[("fresh", "gpt-4o-mini")], &[KEY])
            .to_bytes()
            .unwrap(),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(1), || async {
        chat(&app, "fresh", Some(KEY)).await.0 == 200
    })
    .await;
    // The old YAML alias is gone with the snapshot; `x-api-key` works too.
    assert_eq!(chat(&app, "gpt4", Some(KEY)).await.0, 404);
    let resp = app
        .client
        .get(app.url("/v1/models"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    let models: Value = resp.json().await.unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "fresh")
    );
    let upstream = app.mock.requests();
    assert_eq!(upstream.last().unwrap().body["model"], "gpt-4o-mini");

    // The key id is in the logged event.
    let mut key_ids = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while key_ids.is_empty() && Instant::now() < deadline {
        for d in logs.fetch(16, Duration::from_millis(200)).await.unwrap() {
            let batch = events::proto::LogBatch::decode(d.payload.clone()).unwrap();
            key_ids.extend(
                batch
                    .events
                    .iter()
                    .filter(|e| e.status == 200)
                    .map(|e| e.client_key_id.clone()),
            );
        }
    }
    assert_eq!(key_ids.first().map(String::as_str), Some("key_0"));

    // Revoke (the key leaves the snapshot): refused within a second.
    bus.put_config(
        snapshot(&app, &[("fresh", "gpt-4o-mini")], &[])
            .to_bytes()
            .unwrap(),
    )
    .await
    .unwrap();
    let took = eventually(Duration::from_secs(1), || async {
        chat(&app, "fresh", Some(KEY)).await.0 == 401
    })
    .await;
    assert!(took < Duration::from_secs(1));
}

#[tokio::test]
async fn auto_mode_is_open_on_loopback_until_the_first_key_exists() {
    let bus = InProcessBus::new();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), |c| {
        c.settings.auth = Some(AuthMode::Auto);
    })
    .await;
    assert_eq!(chat(&app, "gpt4", None).await.0, 200);
    let app_bus = Bus::InProcess(bus);
    app_bus
        .put_config(
            snapshot(&app, &[("gpt4", "gpt-4o")], &[KEY])
                .to_bytes()
                .unwrap(),
        )
        .await
        .unwrap();
    eventually(Duration::from_secs(1), || async {
        chat(&app, "gpt4", None).await.0 == 401
    })
    .await;
    assert_eq!(chat(&app, "gpt4", Some(KEY)).await.0, 200);
    // Revoking the last key does not open the gateway again.
    let mut revoked = snapshot(&app, &[("gpt4", "gpt-4o")], &[]);
    revoked.keys_issued = true;
    app_bus
        .put_config(revoked.to_bytes().unwrap())
        .await
        .unwrap();
    eventually(Duration::from_secs(1), || async {
        chat(&app, "gpt4", Some(KEY)).await.0 == 401
    })
    .await;
    assert_eq!(chat(&app, "gpt4", None).await.0, 401);
}

#[tokio::test]
async fn an_unreadable_snapshot_is_refused_and_the_current_configuration_stays() {
    let bus = InProcessBus::new();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), |c| {
        c.settings.auth = Some(AuthMode::Open);
    })
    .await;
    let bus = Bus::InProcess(bus);
    bus.put_config(bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(chat(&app, "gpt4", None).await.0, 200);
    // A snapshot whose provider cannot be built (sealed key, no secret here) leaves
    // that provider out and keeps the rest.
    let mut snap = snapshot(&app, &[("fresh", "gpt-4o")], &[]);
    let Some(config_model::ProviderConfig::Openai(mut broken)) =
        snap.providers.get("mock").cloned()
    else {
        panic!("mock is an OpenAI provider")
    };
    broken.api_key_env = None;
    broken.api_key_sealed = Some("v1.not-a-sealed-key".into());
    snap.providers.insert(
        "broken".into(),
        config_model::ProviderConfig::Openai(broken),
    );
    snap.mappings.insert(
        "via-broken".into(),
        Mapping::fallback(vec![Target::new("broken", "gpt-4o")]),
    );
    bus.put_config(snap.to_bytes().unwrap()).await.unwrap();
    eventually(Duration::from_secs(1), || async {
        chat(&app, "fresh", None).await.0 == 200
    })
    .await;
    assert_eq!(chat(&app, "via-broken", None).await.0, 404);
}
