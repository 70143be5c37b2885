//! A mapping's targets in order: the next takes over when one fails in a way
//! another may not (unreachable, timed out, 408, 409, 429, 5xx), never on another
//! 4xx; the same target is called again after a backoff, or after what it asked;
//! a budget bounds the retries; once aiprox gave up after trying,
//! `x-should-retry: false` keeps the SDKs from multiplying the attempts.

use std::time::{Duration, Instant};

use config_model::{Mapping, Target};
use mock_upstream::{Failure, MockUpstream};
use serde_json::json;

use crate::helpers::{TestApp, anthropic_provider, openai_provider, spawn_app_with, sse_payloads};

/// The app with backoffs of a millisecond (the tests count calls, not waits).
async fn quick(customise: impl FnOnce(&mut gateway::config::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.settings.retry.backoff_base = Duration::from_millis(1);
        c.settings.retry.backoff_max = Duration::from_millis(2);
        customise(c);
    })
    .await
}

/// Provider `backup` at `url` and the alias `resilient` → [mock, backup].
fn resilient(c: &mut gateway::config::Config, url: &str) {
    c.providers.insert("backup".into(), openai_provider(url));
    c.mappings.insert(
        "resilient".into(),
        Mapping::fallback(vec![
            Target::new("mock", "gpt-4o"),
            Target::new("backup", "gpt-4o-mini"),
        ]),
    );
}

/// The app with a second upstream `backup` and the aliases `resilient` →
/// [mock, backup] (both OpenAI's API) and `cross` → [mock, backup's Anthropic API].
async fn with_backup() -> (TestApp, MockUpstream) {
    let backup = MockUpstream::start().await.unwrap();
    let (openai, anthropic) = (backup.base_url(), backup.anthropic_base_url());
    let app = quick(move |c| {
        resilient(c, &openai);
        c.providers
            .insert("backup-claude".into(), anthropic_provider(&anthropic));
        c.mappings.insert(
            "cross".into(),
            Mapping::fallback(vec![
                Target::new("mock", "gpt-4o"),
                Target::new("backup-claude", "claude-haiku-4-5"),
            ]),
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
async fn when_every_attempt_failed_the_last_error_is_answered_with_x_should_retry_false() {
    let (app, backup) = with_backup().await;
    for mock in [&app.mock, &backup] {
        mock.fail_with(Failure::Status {
            status: 503,
            body: None,
        });
    }
    // Three attempts (the default): mock, backup, then mock again.
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-should-retry"], "false");
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (2, 1));
    // One target: called again after a backoff, three times in all.
    let single = app.post_chat(&chat("gpt4")).await;
    assert_eq!(single.status(), 503);
    assert_eq!(single.headers()["x-should-retry"], "false");
    assert_eq!(app.mock.requests().len(), 5);
}

#[tokio::test]
async fn a_client_may_lower_the_attempts_or_switch_fallbacks_off() {
    let (app, backup) = with_backup().await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let send = |header: &'static str, value: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header(header, value)
            .body(chat("resilient").to_string())
            .send()
    };
    let once = send("x-aiprox-max-attempts", "1").await.unwrap();
    assert_eq!(once.status(), 503);
    // One attempt: nothing was retried, the SDK may.
    assert!(once.headers().get("x-should-retry").is_none());
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (1, 0));
    let pinned = send("x-aiprox-fallbacks", "off").await.unwrap();
    assert_eq!(pinned.status(), 503);
    // The first target only, called three times.
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (4, 0));
}

#[tokio::test]
async fn the_wait_an_upstream_asks_for_is_honoured_up_to_the_cap() {
    let app = quick(|c| c.settings.retry.retry_after_max = Duration::from_secs(1)).await;
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 300,
    });
    let started = Instant::now();
    let response = app.post_chat(&chat("gpt4")).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 429);
    assert_eq!(app.mock.requests().len(), 3);
    // Two waits of 300 ms between the three calls.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");

    // Longer than the cap: answered at once, not waited.
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 5_000,
    });
    let started = Instant::now();
    let response = app.post_chat(&chat("gpt4")).await;
    assert_eq!(response.status(), 429);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(app.mock.requests().len(), 4);
}

#[tokio::test]
async fn in_a_full_outage_the_budget_keeps_the_upstream_calls_near_the_requests() {
    // Retries: 10 % of the requests plus 1 a second over ten seconds.
    let app = quick(|c| {
        c.settings.retry.budget_ratio = 0.1;
        c.settings.retry.budget_floor_per_second = 1;
    })
    .await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let requests = 100;
    for _ in 0..requests {
        assert_eq!(app.post_chat(&chat("gpt4")).await.status(), 503);
    }
    let calls = app.mock.requests().len();
    // Without the budget: 300 calls (three attempts each).
    assert!(calls >= requests, "{calls}");
    assert!(
        calls <= requests + 10 + 10,
        "{calls} upstream calls for {requests} requests"
    );
}

/// 60 s of a total outage (both targets of `resilient` answering 503) under a
/// steady 20 requests a second, with the default budget: retries at most 20 %
/// of the requests plus 5 a second (over a ten-second window), so the upstreams
/// see at most 1.2 × the requests + 5 × (60 + 10) calls; without the budget,
/// three attempts each would be 3 ×.
#[tokio::test]
async fn a_60_second_outage_under_steady_load_costs_no_more_calls_than_the_budget() {
    let (app, backup) = with_backup().await;
    let down = Failure::Status {
        status: 503,
        body: None,
    };
    app.mock.fail_with(down.clone());
    backup.fail_with(down);
    let app = std::sync::Arc::new(app);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let started = Instant::now();
    let mut sent = Vec::new();
    while started.elapsed() < Duration::from_secs(60) {
        tick.tick().await;
        let app = app.clone();
        sent.push(tokio::spawn(async move {
            app.post_chat(&chat("resilient")).await.status().as_u16()
        }));
    }
    let requests = sent.len();
    for request in sent {
        assert_eq!(request.await.unwrap(), 503);
    }
    let calls = app.mock.requests().len() + backup.requests().len();
    let allowed = requests + requests / 5 + 5 * (60 + 10);
    eprintln!(
        "{requests} requests in a 60 s outage: {calls} upstream calls (budget allows {allowed}; without it {})",
        requests * 3
    );
    assert!(calls >= requests, "{calls}");
    assert!(
        calls <= allowed,
        "{calls} upstream calls for {requests} requests"
    );
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

fn streamed(model: &str) -> serde_json::Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_stream_that_fails_or_stalls_before_its_first_event_goes_to_the_next_target() {
    for failure in [
        Failure::ResetMidStream { after_chunks: 0 },
        Failure::ErrorEventMidStream { after_chunks: 0 },
        Failure::StallMidStream { after_chunks: 0 },
    ] {
        let backup = MockUpstream::start().await.unwrap();
        let url = backup.base_url();
        let app = quick(move |c| {
            c.settings.retry.first_event_timeout = Duration::from_millis(300);
            resilient(c, &url);
        })
        .await;
        app.mock.fail_with(failure.clone());
        let response = app.post_chat(&streamed("resilient")).await;
        assert_eq!(response.status(), 200, "{failure:?}");
        let payloads = sse_payloads(response).await;
        assert_eq!(
            payloads.last().map(String::as_str),
            Some("[DONE]"),
            "{failure:?}"
        );
        assert!(
            payloads.iter().all(|p| !p.contains("\"error\"")),
            "{failure:?}: {payloads:?}"
        );
        assert_eq!(backup.requests().len(), 1, "{failure:?}");
    }
}

#[tokio::test]
async fn after_its_first_event_a_failing_stream_ends_with_the_error_event_on_both_apis() {
    let (app, backup) = with_backup().await;
    app.mock
        .fail_with(Failure::ResetMidStream { after_chunks: 3 });
    let response = app.post_chat(&streamed("resilient")).await;
    assert_eq!(response.status(), 200);
    let payloads = sse_payloads(response).await;
    assert!(
        payloads.iter().any(|p| p.contains("\"error\"")),
        "no error event: {payloads:?}"
    );
    assert_ne!(payloads.last().map(String::as_str), Some("[DONE]"));

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
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("event: message_stop"), "{text}");
    // Once the client had bytes, no other target was asked.
    assert!(backup.requests().is_empty());
}

/// `aiprox_gateway_target_ejected` of provider `mock`'s `gpt-4o`.
async fn ejected(app: &TestApp) -> Option<u64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("aiprox_gateway_target_ejected{")
                && l.contains("provider=\"mock\"")
                && l.contains("model=\"gpt-4o\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// With ejection after `failures` in a row and a first cool-down of `cooldown`.
async fn ejecting(failures: u32, cooldown: Duration) -> (TestApp, MockUpstream) {
    let backup = MockUpstream::start().await.unwrap();
    let url = backup.base_url();
    let app = quick(move |c| {
        c.settings.ejection.consecutive_failures = failures;
        c.settings.ejection.cooldown = cooldown;
        resilient(c, &url);
    })
    .await;
    (app, backup)
}

#[tokio::test]
async fn a_failing_target_is_ejected_then_probed_and_put_back() {
    let (app, backup) = ejecting(2, Duration::from_millis(400)).await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    for _ in 0..2 {
        assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    }
    assert_eq!(app.mock.requests().len(), 2);
    assert_eq!(ejected(&app).await, Some(1));
    // Ejected: the backup serves at once, the failing target is not called.
    for _ in 0..3 {
        assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    }
    assert_eq!(app.mock.requests().len(), 2);
    assert_eq!(backup.requests().len(), 5);

    // Past the cool-down, still failing: the probe fails and ejects it again, for
    // twice as long.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(app.mock.requests().len(), 3);
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(
        app.mock.requests().len(),
        3,
        "probed before its doubled cool-down"
    );

    // Healed: the next probe succeeds and it serves again.
    app.mock.set_behavior(mock_upstream::Behavior::default());
    tokio::time::sleep(Duration::from_millis(400)).await;
    for _ in 0..2 {
        assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    }
    assert_eq!(app.mock.requests().len(), 5);
    assert_eq!(ejected(&app).await, Some(0));
}

#[tokio::test]
async fn a_429_asking_to_wait_ejects_at_once_for_that_long() {
    let (app, backup) = ejecting(5, Duration::from_secs(60)).await;
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 300,
    });
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (1, 2));
    app.mock.set_behavior(mock_upstream::Behavior::default());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(app.mock.requests().len(), 2);
}

#[tokio::test]
async fn when_every_target_is_ejected_the_route_is_still_served() {
    let (app, backup) = ejecting(1, Duration::from_secs(60)).await;
    for mock in [&app.mock, &backup] {
        mock.fail_with(Failure::Status {
            status: 503,
            body: None,
        });
    }
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 503);
    backup.set_behavior(mock_upstream::Behavior::default());
    // Both out: the least recently failed (the backup) is called first, not refused.
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 200);
}

/// The app with `resilient` (its backup upstream returned), logging to an
/// in-process bus (its spill directory returned, to keep).
async fn logged_resilient(
    customise: impl FnOnce(&mut gateway::config::Config) + Send + 'static,
) -> (
    TestApp,
    MockUpstream,
    events::memory::InProcessBus,
    tempfile::TempDir,
) {
    let bus = events::memory::InProcessBus::default();
    let backup = MockUpstream::start().await.unwrap();
    let url = backup.base_url();
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_owned();
    let app = crate::helpers::spawn_app_on(Some(events::Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = dir;
        c.settings.events.linger_ms = 1;
        resilient(c, &url);
        customise(c);
    })
    .await;
    (app, backup, bus, spill)
}

#[tokio::test]
async fn the_log_keeps_the_failed_calls_and_the_target_that_answered() {
    let (app, _backup, bus, _spill) = logged_resilient(|_| {}).await;
    app.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = crate::logging::logged_events(&bus, 1, Duration::from_secs(10)).await;
    let (event, _) = &seen[&id];
    assert_eq!(
        (
            event.provider.as_str(),
            event.upstream_model.as_str(),
            event.status
        ),
        ("backup", "gpt-4o-mini", 200)
    );
    let failed: Vec<(&str, &str, u32)> = event
        .failed_attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.upstream_model.as_str(), a.status))
        .collect();
    assert_eq!(failed, [("mock", "gpt-4o", 503)]);
    assert!(!event.failed_attempts[0].error_kind.is_empty());
}

#[tokio::test]
async fn a_client_may_pin_one_target_of_the_mapping() {
    let (app, backup) = with_backup().await;
    let send = |pin: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-aiprox-target", pin)
            .body(chat("resilient").to_string())
            .send()
    };
    assert_eq!(send("backup").await.unwrap().status(), 200);
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (0, 1));
    let wrong = send("nobody").await.unwrap();
    assert_eq!(wrong.status(), 400);
    let body: serde_json::Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["param"], "x-aiprox-target");
    assert_eq!(backup.requests().len(), 1);
}

#[tokio::test]
async fn the_clients_own_timeout_bounds_every_call_and_wait() {
    let app = quick(|_| {}).await;
    let send = |seconds: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-stainless-timeout", seconds)
            .body(chat("gpt4").to_string())
            .send()
    };
    // A slow upstream: cut off when the client stops waiting, not retried.
    app.mock.set_behavior(mock_upstream::Behavior {
        latency: Duration::from_millis(600),
        ..mock_upstream::Behavior::default()
    });
    let started = Instant::now();
    let response = send("0.25").await.unwrap();
    assert_eq!(response.status(), 504);
    assert!(
        started.elapsed() < Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.mock.requests().len(), 1);

    // A wait the upstream asks for that would outlast the client: not waited.
    app.mock.set_behavior(mock_upstream::Behavior::default());
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 300,
    });
    let started = Instant::now();
    let response = send("0.5").await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(
        app.mock.requests().len(),
        3,
        "one call, one after 300 ms, no third"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
}

/// The app whose provider `mock` has two keys (a pool).
async fn two_keys() -> TestApp {
    quick(|c| {
        if let Some(config_model::ProviderConfig::Openai(p)) = c.providers.get_mut("mock") {
            p.api_key_env = Some("AIPROX_TEST_PROVIDER_KEY, AIPROX_TEST_PROVIDER_KEY_2".into());
        }
    })
    .await
}

fn keys_used(mock: &MockUpstream) -> Vec<String> {
    mock.requests()
        .iter()
        .map(|r| r.headers["authorization"].clone())
        .collect()
}

#[tokio::test]
async fn a_providers_keys_are_used_in_turn() {
    let app = two_keys().await;
    for _ in 0..4 {
        assert_eq!(app.post_chat(&chat("gpt4")).await.status(), 200);
    }
    let used = keys_used(&app.mock);
    assert_ne!(used[0], used[1]);
    assert_eq!((&used[0], &used[1]), (&used[2], &used[3]));
}

#[tokio::test]
async fn a_key_answered_429_rests_and_the_next_key_takes_the_call() {
    let app = two_keys().await;
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 60_000,
    });
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-aiprox-max-attempts", "1")
        .body(chat("gpt4").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    // One client request, one call per key.
    let used = keys_used(&app.mock);
    assert_eq!(used.len(), 2);
    assert_ne!(used[0], used[1]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("aiprox_gateway_provider_keys_resting{provider=\"mock\"} 2"),
        "{metrics}"
    );

    // Healed, both keys resting a minute: the one back soonest (the first) serves
    // rather than no key at all.
    app.mock.set_behavior(mock_upstream::Behavior::default());
    assert_eq!(app.post_chat(&chat("gpt4")).await.status(), 200);
    assert_eq!(keys_used(&app.mock)[2], used[0]);
}

#[tokio::test]
async fn a_target_failing_half_its_calls_is_ejected_though_never_twice_in_a_row() {
    let backup = MockUpstream::start().await.unwrap();
    let url = backup.base_url();
    let app = quick(move |c| {
        c.settings.ejection.consecutive_failures = 100;
        c.settings.ejection.error_ratio = 0.5;
        c.settings.ejection.min_calls = 4;
        c.settings.ejection.cooldown = Duration::from_secs(60);
        resilient(c, &url);
    })
    .await;
    let failing = Failure::Status {
        status: 503,
        body: None,
    };
    for fail in [false, true, false, true] {
        if fail {
            app.mock.fail_with(failing.clone());
        } else {
            app.mock.set_behavior(mock_upstream::Behavior::default());
        }
        assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    }
    assert_eq!(app.mock.requests().len(), 4);
    // Two failures in four calls: out, though it never failed twice in a row.
    app.mock.set_behavior(mock_upstream::Behavior::default());
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(app.mock.requests().len(), 4);
    assert_eq!(backup.requests().len(), 3);
    assert_eq!(ejected(&app).await, Some(1));
}

#[tokio::test]
async fn calls_to_a_target_still_out_do_not_lengthen_its_cool_down() {
    let (app, backup) = ejecting(1, Duration::from_millis(400)).await;
    for mock in [&app.mock, &backup] {
        mock.fail_with(Failure::Status {
            status: 503,
            body: None,
        });
    }
    // Both out after the first request; the next ones still call them (last
    // resort), which must not push their cool-downs further.
    for _ in 0..4 {
        assert_eq!(app.post_chat(&chat("resilient")).await.status(), 503);
    }
    for mock in [&app.mock, &backup] {
        mock.set_behavior(mock_upstream::Behavior::default());
    }
    // 400 ms after the first ejection (not 400 ms · 2⁴), both are back.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let before = app.mock.requests().len();
    assert_eq!(app.post_chat(&chat("resilient")).await.status(), 200);
    assert_eq!(
        app.mock.requests().len(),
        before + 1,
        "the first target probed"
    );
    assert_eq!(ejected(&app).await, Some(0));
}

#[tokio::test]
async fn a_pin_holds_with_fallbacks_off() {
    let (app, backup) = with_backup().await;
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-aiprox-target", "backup")
        .header("x-aiprox-fallbacks", "off")
        .body(chat("resilient").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!((app.mock.requests().len(), backup.requests().len()), (0, 1));
}

#[tokio::test]
async fn the_log_names_the_key_of_each_failed_call() {
    let (app, _backup, bus, _spill) = logged_resilient(|c| {
        if let Some(config_model::ProviderConfig::Openai(p)) = c.providers.get_mut("mock") {
            p.api_key_env = Some("AIPROX_TEST_PROVIDER_KEY, AIPROX_TEST_PROVIDER_KEY_2".into());
        }
    })
    .await;
    // Both keys of `mock` answer 429 (the first rests, the second takes the
    // call, rests too); the target fails over to `backup`, which answers.
    app.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 60_000,
    });
    let response = app.post_chat(&chat("resilient")).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen = crate::logging::logged_events(&bus, 1, Duration::from_secs(10)).await;
    let (event, _) = &seen[&id];
    let failed: Vec<(&str, u32, u32, &str)> = event
        .failed_attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.key, a.status, a.error_kind.as_str()))
        .collect();
    let first = keys_used(&app.mock);
    // The key tried first is whichever the pool's turn gave; the other second.
    let one = if first[0].ends_with("0123456789") {
        1
    } else {
        2
    };
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed[0], ("mock", one, 429, "key_rate_limited"));
    assert_eq!(
        (failed[1].0, failed[1].1, failed[1].2),
        ("mock", 3 - one, 429)
    );
    assert_eq!(event.provider, "backup");
}
