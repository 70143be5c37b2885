//! A mapping's strategy picks the target that serves first: `weighted` by the
//! targets' weights (0: a backup, never first), `least_latency` away from a
//! target made slow, `least_busy` away from one with calls in flight (a stream
//! counting until it ends); a target's own timeout hands the call on.

use std::time::{Duration, Instant};

use config_model::{Mapping, Strategy, Target};
use futures_util::StreamExt;
use mock_upstream::{Behavior, Failure, MockUpstream};
use serde_json::json;

use crate::helpers::{TestApp, openai_provider, spawn_app_with};

/// The app's `mock` and two more upstreams, `b` and `c`, and the alias `pool`
/// over the targets `mock`, `b`, `c` (in that order, weights as given) under
/// `strategy`.
async fn pool(strategy: Strategy, weights: [u32; 3]) -> (TestApp, MockUpstream, MockUpstream) {
    let b = MockUpstream::start().await.unwrap();
    let c = MockUpstream::start().await.unwrap();
    let (b_url, c_url) = (b.base_url(), c.base_url());
    let app = spawn_app_with(move |config| {
        config.providers.insert("b".into(), openai_provider(&b_url));
        config.providers.insert("c".into(), openai_provider(&c_url));
        let targets = ["mock", "b", "c"]
            .iter()
            .zip(weights)
            .map(|(provider, weight)| Target {
                weight,
                ..Target::new(*provider, "gpt-4o")
            })
            .collect();
        config
            .mappings
            .insert("pool".into(), Mapping { strategy, targets });
    })
    .await;
    (app, b, c)
}

fn chat() -> serde_json::Value {
    json!({"model": "pool", "messages": [{"role": "user", "content": "hi"}]})
}

fn calls(mocks: [&MockUpstream; 3]) -> [usize; 3] {
    mocks.map(|m| m.requests().len())
}

/// `n` chat requests, `parallel` at a time, each answered 200.
async fn send(app: &TestApp, n: usize, parallel: usize) {
    futures_util::stream::iter(0..n)
        .map(|_| async {
            let r = app.post_chat(&chat()).await;
            assert_eq!(r.status(), 200);
        })
        .buffer_unordered(parallel)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test]
async fn weighted_targets_share_2000_requests_by_their_weights_and_a_backup_gets_none() {
    let (app, b, c) = pool(Strategy::Weighted, [1, 3, 0]).await;
    send(&app, 2000, 16).await;
    let [mock, b, c] = calls([&app.mock, &b, &c]);
    assert_eq!(mock + b + c, 2000);
    // Expected 500 and 1500; the binomial's standard deviation is 19, the
    // tolerance stated is ±4 points of share (80 requests, over 4σ).
    assert!((420..=580).contains(&mock), "weight 1: {mock} of 2000");
    assert!((1420..=1580).contains(&b), "weight 3: {b} of 2000");
    assert_eq!(c, 0, "weight 0 is a backup, never first");
}

#[tokio::test]
async fn a_backup_of_weight_zero_serves_when_the_others_fail() {
    let (app, b, c) = pool(Strategy::Weighted, [1, 1, 0]).await;
    let down = Failure::Status {
        status: 503,
        body: None,
    };
    app.mock.fail_with(down.clone());
    b.fail_with(down);
    send(&app, 5, 1).await;
    assert_eq!(c.requests().len(), 5);
}

#[tokio::test]
async fn least_latency_moves_traffic_off_a_target_made_slow() {
    let (app, b, c) = pool(Strategy::LeastLatency, [1, 1, 1]).await;
    send(&app, 30, 1).await;
    let before = calls([&app.mock, &b, &c]);
    assert!(
        before.iter().all(|&n| n > 0),
        "all fast: every target serves some ({before:?})"
    );
    app.mock.set_behavior(Behavior {
        latency: Duration::from_millis(200),
        ..Behavior::default()
    });
    send(&app, 60, 1).await;
    let after = calls([&app.mock, &b, &c]);
    let slow = after[0] - before[0];
    // Its first slow answer sets its average at once; after that, a pair
    // holding it goes to the other (a pair of the two fast ones, not to it).
    assert!(slow <= 3, "the slow target served {slow} of 60");
    assert_eq!(
        after.iter().sum::<usize>() - before.iter().sum::<usize>(),
        60
    );
}

#[tokio::test]
async fn least_busy_sends_calls_away_from_a_target_holding_a_stream() {
    let (app, b, c) = pool(Strategy::LeastBusy, [1, 1, 0]).await;
    // c is a backup (weight 0): never first.
    let slow_stream = Behavior {
        chunks: Some(4),
        chunk_interval: Duration::from_millis(300),
        ..Behavior::default()
    };
    app.mock.set_behavior(slow_stream.clone());
    b.set_behavior(slow_stream);
    let stream = app
        .post_chat(&json!({"model": "pool", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();
    body.next().await.unwrap().unwrap();
    let holding = calls([&app.mock, &b, &c]);
    let held = usize::from(holding[1] == 1);
    // While the stream is open its target has a call in flight: every call
    // goes to the other.
    send(&app, 10, 1).await;
    let after = calls([&app.mock, &b, &c]);
    assert_eq!(after[held], 1, "the busy target took no more ({after:?})");
    assert_eq!(after[1 - held], 10);
    while body.next().await.is_some() {}
    drop(body);
    // Ended, it is idle again: ties are drawn at random, so both serve.
    tokio::time::sleep(Duration::from_millis(50)).await;
    send(&app, 40, 1).await;
    let last = calls([&app.mock, &b, &c]);
    assert!(
        last[held] > 1,
        "the target is used again once idle ({last:?})"
    );
}

#[tokio::test]
async fn a_targets_own_timeout_hands_the_call_to_the_next() {
    let b = MockUpstream::start().await.unwrap();
    let b_url = b.base_url();
    let app = spawn_app_with(move |config| {
        config.providers.insert("b".into(), openai_provider(&b_url));
        config.mappings.insert(
            "pool".into(),
            Mapping::fallback(vec![
                Target {
                    timeout_ms: Some(150),
                    ..Target::new("mock", "gpt-4o")
                },
                Target::new("b", "gpt-4o"),
            ]),
        );
    })
    .await;
    app.mock.set_behavior(Behavior {
        latency: Duration::from_secs(5),
        ..Behavior::default()
    });
    let started = Instant::now();
    let r = app.post_chat(&chat()).await;
    assert_eq!(r.status(), 200);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(b.requests().len(), 1);

    // A stream: until its first event.
    app.mock.fail_with(Failure::Stall);
    let started = Instant::now();
    let r = app
        .post_chat(&json!({"model": "pool", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("[DONE]"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(b.requests().len(), 2);
}
