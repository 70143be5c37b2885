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
    let key = |created: &Value| created["secret"].as_str().unwrap().to_owned();
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
