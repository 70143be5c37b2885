//! Client keys' limits across replicas, with real processes: three `aiprox
//! gateway`s over one NATS and an `aiprox admin`. A 60-requests-a-minute key
//! under load spread over the three is admitted at most 60 times in the
//! minute; a restarted gateway still counts the minute's requests; a limit
//! raised through the admin API holds on all three within a second; with NATS
//! down, a gateway set to `allow` serves and one set to `refuse` answers 503.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use test_services::free_port;

use crate::harness::Stack;

const ADMIN_TOKEN: &str = "admin-token-limits-test";

async fn admin_call(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let sent = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await;
    // Not up yet: no status.
    let Ok(r) = sent else {
        return (0, Value::Null);
    };
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A chat request with `key`: its status and its `x-ratelimit-limit-requests`.
async fn chat(client: &reqwest::Client, port: u16, key: &str) -> (u16, Option<String>) {
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let limit = r
        .headers()
        .get("x-ratelimit-limit-requests")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), limit)
}

/// `n` chat requests with `key` and `body`, all at once, spread over `ports`:
/// their statuses.
async fn all_at_once(
    client: &reqwest::Client,
    ports: &[u16],
    key: &str,
    body: &Value,
    n: usize,
) -> Vec<u16> {
    futures_util::future::join_all((0..n).map(|i| {
        client
            .post(format!(
                "http://127.0.0.1:{}/v1/chat/completions",
                ports[i % ports.len()]
            ))
            .bearer_auth(key)
            .json(body)
            .send()
    }))
    .await
    .into_iter()
    .map(|r| r.unwrap().status().as_u16())
    .collect()
}

/// Waits for the start of a minute when more than 20 s of this one are gone,
/// so the test's counted requests fall in one calendar minute.
async fn early_in_a_minute() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 > 20 {
        tokio::time::sleep(Duration::from_secs(60 - now % 60)).await;
    }
}

#[tokio::test]
async fn three_gateways_share_a_keys_minute_and_nats_down_is_as_configured() {
    let mut stack = Stack::start().await;
    let admin_listen = format!("127.0.0.1:{}", free_port());
    let admin_base = format!("http://{admin_listen}");
    let common = [
        ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
        (
            "AIPROX_SECRET_KEY",
            "limits-test-master-secret-0123456789abcdef",
        ),
        ("AIPROX_GATEWAY__AUTH", "required"),
    ];
    let mut env = common.to_vec();
    env.push(("AIPROX_ADMIN__LISTEN", admin_listen.as_str()));
    let _admin = stack.spawn("admin", &env);
    let client = stack.client.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin_call(&client, &admin_base, "GET", "/api/v1/keys", Value::Null)
        .await
        .0
        != 200
    {
        assert!(Instant::now() < deadline, "admin not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ports = [free_port(), free_port(), free_port()];
    let listens: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let spawn = |i: usize| {
        let mut env = common.to_vec();
        env.push(("AIPROX_GATEWAY__LISTEN", listens[i].as_str()));
        // The third fails closed while NATS is down; the others open (the default).
        if i == 2 {
            env.push(("AIPROX_GATEWAY__LIMITS__WHEN_BUS_DOWN", "refuse"));
        }
        stack.spawn_named(&format!("gateway{i}"), "gateway", &env)
    };
    let mut gateways: Vec<_> = (0..3).map(spawn).collect();
    for port in ports {
        stack.wait_ready_at(port).await;
    }
    let _logger = stack.spawn("logger", &[]);
    let key = |created: &Value| created["secret"].as_str().unwrap().to_owned();
    let accepted_everywhere = |secret: String| {
        let client = client.clone();
        async move {
            for port in ports {
                let start = Instant::now();
                while chat(&client, port, &secret).await.0 == 401 {
                    assert!(
                        start.elapsed() < Duration::from_secs(2),
                        "key not on :{port}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };

    // Calls in flight: 4 at most for the key, 40 sent at once over the three
    // (each held 300 ms upstream); the mock counts what it has in flight.
    let (_, busy) = admin_call(
        &client,
        &admin_base,
        "POST",
        "/api/v1/keys",
        json!({"name": "four", "limits": {"max_concurrent": 4}}),
    )
    .await;
    let busy = key(&busy);
    accepted_everywhere(busy.clone()).await;
    stack.mock.set_behavior(mock_upstream::Behavior {
        latency: Duration::from_millis(300),
        no_record: true,
        ..Default::default()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(
        (0..40)
            .map(|i| chat(&client, ports[i % 3], &busy))
            .collect::<Vec<_>>(),
    )
    .await
    .into_iter()
    .map(|(s, _)| s)
    .collect();
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=4).contains(&served), "{statuses:?}");
    assert!(
        stack.mock.stats().max_in_flight <= 4,
        "{:?}",
        stack.mock.stats()
    );
    eprintln!(
        "4 in flight over three gateways: {served} of 40 served at once, the mock saw at most {}",
        stack.mock.stats().max_in_flight
    );
    stack.mock.set_behavior(mock_upstream::Behavior {
        no_record: true,
        ..Default::default()
    });
    let (status, limited) = admin_call(
        &client,
        &admin_base,
        "POST",
        "/api/v1/keys",
        json!({"name": "sixty", "limits": {"requests_per_minute": 60}}),
    )
    .await;
    assert_eq!(status, 201, "{limited}");
    let limited_id = limited["key"]["id"].as_str().unwrap().to_owned();
    let limited = key(&limited);
    let (_, other) = admin_call(
        &client,
        &admin_base,
        "POST",
        "/api/v1/keys",
        json!({"name": "thirty", "limits": {"requests_per_minute": 30}}),
    )
    .await;
    let other = key(&other);

    early_in_a_minute().await;
    // Every admitted request of the minute counts, those that waited for the
    // key to reach each gateway too.
    let mut admitted = 0;
    for port in ports {
        let start = Instant::now();
        loop {
            match chat(&client, port, &limited).await {
                (200, Some(limit)) => {
                    assert_eq!(limit, "60");
                    admitted += 1;
                    break;
                }
                (401, _) => {}
                other => panic!("{other:?}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "key not on :{port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // 180 requests over the three, 12 at a time.
    let statuses: Vec<u16> = futures_util::stream::iter(0..180)
        .map(|i| {
            let client = client.clone();
            let limited = limited.clone();
            async move { chat(&client, ports[i % 3], &limited).await.0 }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    admitted += statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    // Never more than the limit; fewer by at most the leases the three hold
    // unused (3 requests each at this limit).
    assert!(admitted <= 60, "{admitted} admitted of 60 a minute");
    assert!(admitted >= 60 - 3 * 3, "{admitted} admitted");
    eprintln!("60 a minute over three gateways: {admitted} admitted of 183");

    // A gateway restarted within the minute still finds the minute used up.
    drop(gateways.remove(0));
    gateways.insert(0, spawn(0));
    stack.wait_ready_at(ports[0]).await;
    let start = Instant::now();
    loop {
        match chat(&client, ports[0], &limited).await.0 {
            429 => break,
            401 => {}
            other => panic!("restarted gateway answered {other}"),
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Raised through the admin API: all three admit again within a second.
    let (status, _) = admin_call(
        &client,
        &admin_base,
        "PUT",
        &format!("/api/v1/keys/{limited_id}/limits"),
        json!({"requests_per_minute": 1000}),
    )
    .await;
    assert_eq!(status, 200);
    let start = Instant::now();
    for port in ports {
        while chat(&client, port, &limited).await.0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                ":{port} still refuses"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    eprintln!("a raised limit held on all three in {:?}", start.elapsed());

    // A budget for ten calls' upper bound (the body's bytes at the input price
    // and max_tokens at the output price of gpt-4o in the stack's prices), 100
    // calls at once over the three: ten served, the spend at or under it.
    let body = json!({"model": "gpt4", "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}]});
    let body_len = serde_json::to_vec(&body).unwrap().len() as f64;
    let budget = 10.0 * (body_len * 2.5 + 50.0 * 10.0) / 1e6;
    let (_, spender) = admin_call(
        &client,
        &admin_base,
        "POST",
        "/api/v1/keys",
        json!({"name": "ten", "limits": {"budget": {"usd": budget, "period": "day"}}}),
    )
    .await;
    let spender_id = spender["key"]["id"].as_str().unwrap().to_owned();
    let spender = key(&spender);
    // Known everywhere before the calls (a model off the list costs nothing).
    let (_, _) = admin_call(
        &client,
        &admin_base,
        "PUT",
        &format!("/api/v1/keys/{spender_id}/limits"),
        json!({"models": ["nothing"], "budget": {"usd": budget, "period": "day"}}),
    )
    .await;
    for port in ports {
        let start = Instant::now();
        while chat(&client, port, &spender).await.0 != 403 {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "key not on :{port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    admin_call(
        &client,
        &admin_base,
        "PUT",
        &format!("/api/v1/keys/{spender_id}/limits"),
        json!({"budget": {"usd": budget, "period": "day"}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Held upstream, the hundred are all in flight together.
    stack.mock.set_behavior(mock_upstream::Behavior {
        latency: Duration::from_millis(300),
        no_record: true,
        ..Default::default()
    });
    let sent = all_at_once(&client, &ports, &spender, &body, 100).await;
    let served = sent.iter().filter(|s| **s == 200).count();
    assert_eq!(served, 10, "{sent:?}");
    assert_eq!(sent.iter().filter(|s| **s == 429).count(), 90);
    // What the ten spent, once logged: at or under the budget.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = -1.0;
    let spent = loop {
        let (_, keys) = admin_call(&client, &admin_base, "GET", "/api/v1/keys", Value::Null).await;
        let spent = keys["data"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["id"] == spender_id.as_str()))
            .and_then(|k| k["spend_usd"].as_f64())
            .unwrap_or(0.0);
        // All ten logged: the spend stops moving.
        if (spent > 0.0 && spent == last) || Instant::now() > deadline {
            break spent;
        }
        last = spent;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(spent > 0.0 && spent <= budget, "spent {spent} of {budget}");
    eprintln!(
        "a budget for ten over three gateways: 10 of 100 served, {spent:.6} $ of {budget:.6} $"
    );

    // Tokens a minute: 2,000, and 30 calls at once over the three reserving
    // their upper bound (body bytes and max_tokens) each: the tokens they used,
    // as logged, stay within the limit.
    let (_, counted) = admin_call(
        &client,
        &admin_base,
        "POST",
        "/api/v1/keys",
        json!({"name": "tokens", "limits": {"tokens_per_minute": 2000}}),
    )
    .await;
    let counted_id = counted["key"]["id"].as_str().unwrap().to_owned();
    let counted = key(&counted);
    accepted_everywhere(counted.clone()).await;
    let sent = all_at_once(&client, &ports, &counted, &body, 30).await;
    let served = sent.iter().filter(|s| **s == 200).count();
    // Refused for the limit only: racing for the counter is no outage.
    assert!(
        served > 0 && sent.iter().all(|s| *s == 200 || *s == 429),
        "{sent:?}"
    );
    assert!(sent.contains(&429), "{sent:?}");
    let filter = store::LogFilter {
        client_key_id: Some(counted_id),
        status_class: Some(2),
        ..store::LogFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = stack
            .store()
            .await
            .list_logs(&filter, None, 500)
            .await
            .unwrap()
            .0;
        if rows.len() >= served || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tokens: i64 = rows.iter().map(|r| r.input_tokens + r.output_tokens).sum();
    assert!(tokens <= 2000, "{tokens} tokens logged of 2,000 a minute");
    eprintln!(
        "2,000 tokens a minute over three gateways: {served} of 30 served, {tokens} tokens used"
    );
    stack.mock.set_behavior(mock_upstream::Behavior {
        no_record: true,
        ..Default::default()
    });

    // NATS down: the 30-a-minute key leases every request (a lease of 1).
    assert_eq!(chat(&client, ports[1], &other).await.0, 200);
    stack.nats.stop();
    let start = Instant::now();
    assert_eq!(
        chat(&client, ports[1], &other).await.0,
        200,
        "allow: served"
    );
    let r = client
        .post(format!("http://127.0.0.1:{}/v1/chat/completions", ports[2]))
        .bearer_auth(&other)
        .json(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "refuse: refused");
    assert!(r.headers().get("retry-after").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "limits_unavailable");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    stack.nats.start_again();
}
