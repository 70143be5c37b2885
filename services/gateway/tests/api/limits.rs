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
        prices: Default::default(),
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

async fn messages(app: &TestApp, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/messages"))
        .header("x-api-key", KEY)
        .json(&json!({"model": model, "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}]}))
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
    let r = messages(&a, "gpt4").await;
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
    let r = messages(&app, "other").await;
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

#[tokio::test]
async fn a_hundred_concurrent_requests_on_a_budget_for_ten_spend_no_more_than_it() {
    let bus = InProcessBus::new();
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_owned();
    let app = spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.auth = Some(AuthMode::Required);
        c.settings.events.spill_dir = dir;
        c.settings.events.linger_ms = 1;
        // A dollar per million tokens, in and out: a token is a micro-dollar.
        c.settings.prices.insert(
            "gpt-4o".into(),
            config_model::prices::Price {
                input: 1.0,
                output: 1.0,
                ..Default::default()
            },
        );
    })
    .await;
    let body = json!({"model": "gpt4", "max_tokens": 100,
        "messages": [{"role": "user", "content": "spend"}]});
    let body_len = serde_json::to_vec(&body).unwrap().len() as u64;
    // Each call uses what it reserves (its body's bytes in, max_tokens out), so
    // a budget of ten calls' cost admits ten at most, however many at once.
    let cost = (body_len + 100) as f64 / 1e6;
    let budget = cost * 10.0;
    app.mock.set_behavior(mock_upstream::Behavior {
        latency: Duration::from_millis(300),
        extra_fields: serde_json::from_value(json!({"usage": {
            "prompt_tokens": body_len, "completion_tokens": 100, "total_tokens": body_len + 100}}))
        .unwrap(),
        ..Default::default()
    });
    publish(
        &bus,
        &app,
        KeyLimits {
            budget: Some(config_model::Budget {
                usd: budget,
                period: config_model::BudgetPeriod::Month,
            }),
            ..KeyLimits::default()
        },
    )
    .await;
    let answers: Vec<(u16, Value)> = futures_util::future::join_all((0..100).map(|_| async {
        let r = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }))
    .await;
    let admitted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(admitted, 10, "a budget for ten admitted {admitted}");
    let refusal = answers.iter().find(|(s, _)| *s == 429).unwrap();
    assert_eq!(refusal.1["error"]["code"], "budget_exceeded");
    assert_eq!(refusal.1["error"]["type"], "insufficient_quota");
    assert!(
        refusal.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("monthly budget")
    );
    let logged = crate::logging::logged_events(&bus, 100, Duration::from_secs(10)).await;
    let spent: f64 = logged.values().map(|(e, _)| e.cost_usd).sum();
    assert!(spent <= budget + 1e-9, "spent {spent} of {budget}");
    assert!(
        (spent - budget).abs() < 1e-9,
        "the ten admitted spent it: {spent}"
    );
    let refused_logged = logged
        .values()
        .filter(|(e, _)| e.error_kind == "budget_exceeded")
        .count();
    assert_eq!(refused_logged, 90);
}

#[tokio::test]
async fn tokens_per_minute_reserve_an_upper_bound_and_refuse_past_the_limit() {
    let bus = InProcessBus::new();
    let app = gateway(&bus).await;
    let body = json!({"model": "gpt4", "max_tokens": 100,
        "messages": [{"role": "user", "content": "tokens"}]});
    let body_len = serde_json::to_vec(&body).unwrap().len() as u64;
    let per_call = body_len + 100;
    // Each call uses what it reserves: settling gives nothing back.
    app.mock.set_behavior(mock_upstream::Behavior {
        extra_fields: serde_json::from_value(json!({"usage": {
            "prompt_tokens": body_len, "completion_tokens": 100, "total_tokens": per_call}}))
        .unwrap(),
        ..Default::default()
    });
    publish(
        &bus,
        &app,
        KeyLimits {
            tokens_per_minute: Some(3 * per_call),
            ..KeyLimits::default()
        },
    )
    .await;
    early_in_a_minute().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let limit = header(&r, "x-ratelimit-limit-tokens");
        assert_eq!(limit, Some((3 * per_call).to_string()));
        assert!(header(&r, "x-ratelimit-remaining-tokens").is_some());
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["type"], "tokens");
        }
    }
    // Three calls' tokens fit in the minute; the fourth is refused.
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn two_gateways_never_exceed_a_keys_calls_in_flight_and_give_them_back() {
    let bus = InProcessBus::new();
    let (a, b) = (gateway(&bus).await, gateway(&bus).await);
    a.mock.set_behavior(mock_upstream::Behavior {
        latency: Duration::from_millis(300),
        ..Default::default()
    });
    publish(
        &bus,
        &a,
        KeyLimits {
            max_concurrent: Some(3),
            ..KeyLimits::default()
        },
    )
    .await;
    let answers: Vec<(u16, Value)> = futures_util::future::join_all((0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        async move {
            let r = chat(app, "gpt4").await;
            (r.status().as_u16(), r.json().await.unwrap())
        }
    }))
    .await;
    let admitted = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(admitted, 3, "{answers:?}");
    assert!(a.mock.stats().max_in_flight <= 3, "{:?}", a.mock.stats());
    let refused = answers.iter().find(|(s, _)| *s == 429).unwrap();
    assert_eq!(refused.1["error"]["code"], "concurrency_limit_exceeded");
    // Done, the calls are given back: the key may call again, on either.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.mock.set_behavior(mock_upstream::Behavior::default());
    assert_eq!(chat(&b, "gpt4").await.status(), 200);
    assert_eq!(chat(&a, "gpt4").await.status(), 200);
}
