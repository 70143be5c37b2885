//! Every log row's cost at its model's price, from the bundled table unless
//! `gateway.prices` overrides it: plain usage, cached input (OpenAI's
//! `cached_tokens`) and cache writes and reads (Anthropic's), each at its own
//! price.

use std::time::Duration;

use config_model::prices::{Price, Usage, bundled};
use mock_upstream::Behavior;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_on};

/// The app on an in-process bus, with `prices` configured.
async fn logged_app(
    prices: &[(&str, Price)],
) -> (TestApp, events::memory::InProcessBus, tempfile::TempDir) {
    let bus = events::memory::InProcessBus::default();
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_owned();
    let prices: Vec<(String, Price)> = prices.iter().map(|(k, p)| ((*k).to_owned(), *p)).collect();
    let app = spawn_app_on(Some(events::Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = dir;
        c.settings.events.linger_ms = 1;
        c.settings.prices = prices.into_iter().collect();
    })
    .await;
    (app, bus, spill)
}

/// The upstream answers with `usage` in place of the recorded one.
fn usage(app: &TestApp, usage: Value) {
    app.mock.set_behavior(Behavior {
        extra_fields: serde_json::from_value(json!({ "usage": usage })).unwrap(),
        ..Behavior::default()
    });
}

/// The request id of an answered request.
fn id_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The log events of `ids`, in order (read once: the in-process bus has one
/// consumer).
async fn events_of(
    bus: &events::memory::InProcessBus,
    ids: &[String],
) -> Vec<events::proto::LogEvent> {
    let seen = crate::logging::logged_events(bus, ids.len(), Duration::from_secs(10)).await;
    ids.iter().map(|id| seen[id].0.clone()).collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[tokio::test]
async fn plain_and_cached_openai_usage_cost_the_bundled_prices() {
    let (app, bus, _spill) = logged_app(&[]).await;
    let price = bundled("gpt-4o").expect("gpt-4o is in the table");
    usage(
        &app,
        json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}),
    );
    let chat = json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]});
    let first = id_of(&app.post_chat(&chat).await);
    usage(
        &app,
        json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1000}}),
    );
    let second = id_of(&app.post_chat(&chat).await);
    let [plain, cached] = &events_of(&bus, &[first, second]).await[..] else {
        panic!("two events")
    };
    let expected = (1200.0 * price.input + 300.0 * price.output) / 1e6;
    assert!(
        close(plain.cost_usd, expected),
        "{} ≠ {expected}",
        plain.cost_usd
    );
    assert_eq!(cached.cached_tokens, 1000);
    let cached_price = price.cached_input.expect("gpt-4o has a cached-input price");
    let expected = (200.0 * price.input + 1000.0 * cached_price + 300.0 * price.output) / 1e6;
    assert!(
        close(cached.cost_usd, expected),
        "{} ≠ {expected}",
        cached.cost_usd
    );
    assert!(cached.cost_usd < plain.cost_usd);
}

#[tokio::test]
async fn anthropic_cache_writes_and_reads_cost_their_own_prices() {
    let (app, bus, _spill) = logged_app(&[]).await;
    let price = bundled("claude-haiku-4-5").expect("claude-haiku-4-5 is in the table");
    usage(
        &app,
        json!({"input_tokens": 100, "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 3000, "output_tokens": 50}),
    );
    let response = app
        .post_messages(&json!({"model": "claude", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let id = id_of(&response);
    let e = &events_of(&bus, &[id]).await[0];
    assert_eq!(
        (e.input_tokens, e.cached_tokens, e.cache_write_tokens),
        (5100, 3000, 2000)
    );
    let usage = Usage {
        input: 5100,
        output: 50,
        cached: 3000,
        cache_write: 2000,
        cache_write_1h: 0,
    };
    let expected = (100.0 * price.input
        + 3000.0 * price.cached_input.unwrap()
        + 2000.0 * price.cache_write.unwrap()
        + 50.0 * price.output)
        / 1e6;
    assert!(close(e.cost_usd, expected), "{} ≠ {expected}", e.cost_usd);
    assert!(close(price.cost(usage), expected));
}

/// An OpenAI client served by Anthropic keeps the cache writes its usage would
/// lose in OpenAI's shape, and one-hour writes cost twice the input price.
#[tokio::test]
async fn cache_writes_survive_translation_and_one_hour_writes_cost_more() {
    let (app, bus, _spill) = logged_app(&[]).await;
    let price = bundled("claude-haiku-4-5").expect("claude-haiku-4-5 is in the table");
    usage(
        &app,
        json!({"input_tokens": 100, "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 0, "output_tokens": 50,
        "cache_creation": {"ephemeral_5m_input_tokens": 500, "ephemeral_1h_input_tokens": 1500}}),
    );
    let response = app
        .post_chat(&json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let chat_id = id_of(&response);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["cache_creation_input_tokens"], 2000);
    assert_eq!(body["usage"]["prompt_tokens"], 2100);
    // Through /v1/messages the split is there: 1,500 at twice the input price.
    let response = app
        .post_messages(&json!({"model": "claude", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let messages_id = id_of(&response);
    let logged = events_of(&bus, &[chat_id, messages_id]).await;
    let e = &logged[0];
    assert_eq!((e.input_tokens, e.cache_write_tokens), (2100, 2000));
    let five_minute_only =
        (100.0 * price.input + 2000.0 * price.cache_write.unwrap() + 50.0 * price.output) / 1e6;
    // The one-hour part is not in an OpenAI usage: priced as five-minute writes.
    assert!(
        close(e.cost_usd, five_minute_only),
        "{} ≠ {five_minute_only}",
        e.cost_usd
    );
    let e = &logged[1];
    let expected = (100.0 * price.input
        + 500.0 * price.cache_write.unwrap()
        + 1500.0 * 2.0 * price.input
        + 50.0 * price.output)
        / 1e6;
    assert!(close(e.cost_usd, expected), "{} ≠ {expected}", e.cost_usd);
}

#[tokio::test]
async fn a_configured_price_overrides_the_table_by_provider_model_then_alias_then_model() {
    let flat = |input: f64| Price {
        input,
        output: 0.0,
        ..Price::default()
    };
    let (app, bus, _spill) = logged_app(&[
        ("mock/gpt-4o", flat(1.0)),
        ("gpt4", flat(2.0)),
        ("gpt-4o", flat(3.0)),
    ])
    .await;
    usage(
        &app,
        json!({"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}),
    );
    let chat = json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]});
    let direct = json!({"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let ids = [
        id_of(&app.post_chat(&chat).await),
        id_of(&app.post_chat(&direct).await),
    ];
    let costs: Vec<f64> = events_of(&bus, &ids)
        .await
        .iter()
        .map(|e| e.cost_usd)
        .collect();
    // provider/model first, asked by alias or directly.
    assert!(close(costs[0], 1.0) && close(costs[1], 1.0), "{costs:?}");

    let (app, bus, _spill) = logged_app(&[("gpt4", flat(2.0)), ("gpt-4o", flat(3.0))]).await;
    usage(
        &app,
        json!({"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}),
    );
    let ids = [
        id_of(&app.post_chat(&chat).await),
        id_of(&app.post_chat(&direct).await),
    ];
    let costs: Vec<f64> = events_of(&bus, &ids)
        .await
        .iter()
        .map(|e| e.cost_usd)
        .collect();
    // Then the alias asked for; without one, the model.
    assert!(close(costs[0], 2.0) && close(costs[1], 3.0), "{costs:?}");
}

#[tokio::test]
async fn a_price_set_through_the_admin_api_reaches_the_gateway_live() {
    let (app, bus, _spill) = logged_app(&[]).await;
    let config = crate::helpers::base_config(&app.mock);
    let snapshot = config_model::ConfigSnapshot {
        providers: config.providers,
        mappings: config.mappings,
        keys: vec![],
        keys_issued: false,
        prices: [(
            "gpt4".to_owned(),
            Price {
                input: 7.0,
                output: 0.0,
                ..Price::default()
            },
        )]
        .into(),
    };
    events::Bus::InProcess(bus.clone())
        .put_config(snapshot.to_bytes().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    usage(
        &app,
        json!({"prompt_tokens": 1_000_000, "completion_tokens": 0, "total_tokens": 1_000_000}),
    );
    let chat = json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]});
    let id = id_of(&app.post_chat(&chat).await);
    let e = &events_of(&bus, &[id]).await[0];
    assert!(close(e.cost_usd, 7.0), "{}", e.cost_usd);
}
