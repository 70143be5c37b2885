//! The pipeline on the MySQL store, a throw-away MariaDB in place of PostgreSQL:
//! requests through `aiprox gateway` (non-streamed and streamed, two client
//! keys, a refusal) are written by `aiprox logger` and read back through
//! `aiprox admin`: the Logs page with each filter, its pages and its text
//! search, one log whole, and the usage rollups; then `aiprox all` with a
//! `mysql://` URL serves and logs.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mock_upstream::Behavior;
use serde_json::{Value, json};
use test_services::free_port;

use crate::harness::{Admin, Stack, plain};

const ADMIN_TOKEN: &str = "admin-token-mariadb-test";

/// USD of a recorded non-streamed answer (24 in, 8 out) at gpt-4o's price in
/// the stack's configuration (2.5 and 10 per million).
const PLAIN_COST: f64 = (24.0 * 2.5 + 8.0 * 10.0) / 1e6;
/// USD of the recorded stream (14 in, 8 out).
const STREAM_COST: f64 = (14.0 * 2.5 + 8.0 * 10.0) / 1e6;

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A chat request with a client key: its status and request id.
async fn chat_as(stack: &Stack, key: &str, body: &Value) -> (u16, String) {
    let r = stack
        .client
        .post(stack.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    if body["stream"] == true {
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    }
    (status, id)
}

/// The request ids of a Logs page (`GET /api/v1/logs?QUERY`), in its order.
async fn ids(admin: &Admin, query: &str) -> Vec<String> {
    let page = admin.get(&format!("/api/v1/logs?{query}")).await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["request_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The requests of `GET /api/v1/stats/series` over `range` (Unix ms) in
/// minutes, summed per line of `split`.
async fn requests_per(admin: &Admin, (from, to): (i64, i64), split: &str) -> BTreeMap<String, i64> {
    let series = admin
        .get(&format!(
            "/api/v1/stats/series?from={from}&to={to}&step_s=60&split={split}"
        ))
        .await;
    let mut sums = BTreeMap::new();
    for point in series["data"].as_array().unwrap() {
        *sums
            .entry(point["group"].as_str().unwrap().to_owned())
            .or_insert(0) += point["requests"].as_i64().unwrap();
    }
    sums
}

fn approx(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap();
    assert!(
        (actual - expected).abs() < 1e-12,
        "{actual} is not {expected}"
    );
}

#[tokio::test]
async fn the_split_on_mariadb_logs_requests_that_the_admin_api_reads_back() {
    let started_ms = now_ms();
    let stack = Stack::start_on_mariadb().await;
    assert!(stack.database_url.starts_with("mysql://"));
    let admin_listen = format!("127.0.0.1:{}", free_port());
    let _admin = stack.spawn(
        "admin",
        &[
            ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
            ("AIPROX_ADMIN__LISTEN", &admin_listen),
        ],
    );
    let admin = Admin::at(&admin_listen, ADMIN_TOKEN);
    admin.wait_up().await;
    // Two client keys, made before the gateway starts, which then requires one:
    // a 200 proves it knows the key it logs.
    let mut keys = Vec::new();
    for name in ["alice", "bob"] {
        let (status, created) = admin
            .call("POST", "/api/v1/keys", Some(json!({"name": name})))
            .await;
        assert_eq!(status, 201, "{created}");
        keys.push((
            created["key"]["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let [(alice_id, alice), (bob_id, bob)] = <[_; 2]>::try_from(keys).unwrap();
    let _logger = stack.spawn("logger", &[]);
    let _gateway = stack.spawn("gateway", &[("AIPROX_GATEWAY__AUTH", "required")]);
    stack.wait_ready().await;

    // Alice: four questions, then a mark in time; Bob after it: a stream, a slow
    // answer through `provider/model`, and a model that does not exist.
    let mut alice_ids = Vec::new();
    for i in 0..4 {
        let (status, id) = chat_as(&stack, &alice, &plain(i)).await;
        assert_eq!(status, 200, "{}", stack.log("gateway"));
        alice_ids.push(id);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mark_ms = now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, streamed) = chat_as(
        &stack,
        &bob,
        &json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "capital of Mexico?"}]}),
    )
    .await;
    assert_eq!(status, 200);
    stack.mock.set_behavior(Behavior {
        latency: Duration::from_millis(300),
        no_record: true,
        ..Behavior::default()
    });
    let (status, slow) = chat_as(&stack, &bob, &plain(7)).await;
    assert_eq!(status, 200);
    let (status, slow_direct) = chat_as(
        &stack,
        &bob,
        &json!({"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "Zebra crossing"}]}),
    )
    .await;
    assert_eq!(status, 200);
    stack.mock.set_behavior(Behavior {
        no_record: true,
        ..Behavior::default()
    });
    let (status, missing) = chat_as(&stack, &bob, &json!({"model": "nope", "messages": []})).await;
    assert_eq!(status, 404);

    assert_eq!(
        stack.wait_rows(8, Duration::from_secs(30)).await,
        8,
        "{}",
        stack.log("logger")
    );
    stack.assert_no_duplicates().await;

    // Newest first, and the same rows page by page (3 a page) as in one.
    let all = ids(&admin, "").await;
    let mut expected: Vec<String> = alice_ids.clone();
    expected.extend([
        streamed.clone(),
        slow.clone(),
        slow_direct.clone(),
        missing.clone(),
    ]);
    expected.reverse();
    assert_eq!(all, expected);
    let (mut paged, mut cursor, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let page = admin
            .get(&format!("/api/v1/logs?limit=3&cursor={cursor}"))
            .await;
        pages += 1;
        paged.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["request_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((paged, pages), (expected.clone(), 3));

    // Each filter, alone and combined.
    let newest_first = |v: &[&String]| v.iter().rev().map(|s| (*s).clone()).collect::<Vec<_>>();
    let alice_newest_first = newest_first(&alice_ids.iter().collect::<Vec<_>>());
    assert_eq!(
        ids(&admin, &format!("key={alice_id}")).await,
        alice_newest_first
    );
    assert_eq!(
        ids(&admin, &format!("key={bob_id}")).await,
        newest_first(&[&streamed, &slow, &slow_direct, &missing])
    );
    assert_eq!(
        ids(&admin, &format!("to={mark_ms}")).await,
        alice_newest_first
    );
    assert_eq!(ids(&admin, &format!("from={mark_ms}")).await.len(), 4);
    assert_eq!(
        ids(&admin, "model=mock/gpt-4o").await,
        vec![slow_direct.clone()]
    );
    assert_eq!(ids(&admin, "model=gpt4").await.len(), 6);
    assert_eq!(ids(&admin, "provider=mock").await.len(), 7);
    assert_eq!(ids(&admin, "stream=true").await, vec![streamed.clone()]);
    assert_eq!(ids(&admin, "stream=false").await.len(), 7);
    assert_eq!(ids(&admin, "status=4").await, vec![missing.clone()]);
    assert_eq!(ids(&admin, "status=2").await.len(), 7);
    assert_eq!(
        ids(&admin, "min_latency_ms=250").await,
        newest_first(&[&slow, &slow_direct])
    );
    assert_eq!(
        ids(
            &admin,
            &format!("key={bob_id}&status=2&min_latency_ms=250&model=gpt4")
        )
        .await,
        vec![slow.clone()]
    );
    let page = admin
        .get(&format!("/api/v1/logs?status=4&key={bob_id}"))
        .await;
    let not_found = &page["data"][0];
    assert_eq!(not_found["status"], 404);
    assert_eq!(not_found["model"], "nope");
    assert_ne!(not_found["error_kind"], "");
    // Text search in the bodies, case-insensitive: a request's words, the
    // assembled answer of a stream, nothing for words nobody wrote.
    assert_eq!(
        ids(&admin, "q=QUESTION%202").await,
        vec![alice_ids[2].clone()]
    );
    assert_eq!(ids(&admin, "q=zebra").await, vec![slow_direct.clone()]);
    assert_eq!(ids(&admin, "q=mexico%20city").await, vec![streamed.clone()]);
    assert_eq!(
        ids(&admin, &format!("q=question&key={alice_id}&limit=2")).await,
        newest_first(&[&alice_ids[2], &alice_ids[3]])
    );
    assert!(ids(&admin, "q=100%25%20off").await.is_empty());

    // The stream whole: usage asked upstream, the answer assembled, the price.
    let log = admin.get(&format!("/api/v1/logs/{streamed}")).await;
    assert_eq!(log["stream"], true);
    assert_eq!(log["key"], bob_id.as_str());
    assert_eq!(
        (&log["input_tokens"], &log["output_tokens"]),
        (&json!(14), &json!(8))
    );
    assert_eq!(
        log["response"]["choices"][0]["message"]["content"],
        "The capital of Mexico is Mexico City."
    );
    assert_eq!(
        log["request"]["messages"][0]["content"],
        "capital of Mexico?"
    );
    assert_eq!(
        (&log["provider"], &log["upstream_model"]),
        (&json!("mock"), &json!("gpt-4o"))
    );
    approx(&log["cost_usd"], STREAM_COST);
    let ttft = log["ttft_ms"].as_f64().unwrap();
    assert!(
        ttft > 0.0 && ttft <= log["latency_ms"].as_f64().unwrap(),
        "{log}"
    );
    assert!(
        admin.get(&format!("/api/v1/logs/{slow}")).await["latency_ms"]
            .as_f64()
            .unwrap()
            >= 300.0
    );

    // The rollups, over a range of whole hours and partial ones.
    let (from, to) = (started_ms - 2 * 3_600_000, now_ms() + 3_600_000);
    let usage = admin
        .get(&format!("/api/v1/stats/summary?from={from}&to={to}"))
        .await;
    assert_eq!(usage["requests"], 8, "{usage}");
    assert_eq!(usage["errors"], 1);
    assert_eq!(usage["input_tokens"], 6 * 24 + 14);
    assert_eq!(usage["output_tokens"], 7 * 8);
    approx(&usage["cost_usd"], 6.0 * PLAIN_COST + STREAM_COST);
    let p95 = usage["latency_ms"]["p95"].as_u64().unwrap();
    assert!(p95 >= 300, "two of eight took 300 ms: {usage}");
    assert!(usage["ttft_ms"]["p50"].as_u64().is_some(), "{usage}");
    assert_eq!(
        requests_per(&admin, (from, to), "model").await,
        BTreeMap::from([
            ("gpt4".to_owned(), 6),
            ("mock/gpt-4o".to_owned(), 1),
            ("nope".to_owned(), 1)
        ])
    );
    assert_eq!(
        requests_per(&admin, (from, to), "key").await,
        BTreeMap::from([(alice_id.clone(), 4), (bob_id.clone(), 4)])
    );
}

#[tokio::test]
async fn aiprox_all_with_a_mysql_url_serves_and_logs() {
    let stack = Stack::start_on_mariadb().await;
    assert!(stack.database_url.starts_with("mysql://"));
    let admin_listen = format!("127.0.0.1:{}", free_port());
    let all = stack.spawn(
        "all",
        &[
            ("AIPROX_NATS_URL", ""),
            ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
            ("AIPROX_ADMIN__LISTEN", &admin_listen),
        ],
    );
    stack.wait_ready().await;
    for i in 0..2 {
        assert_eq!(stack.chat(&plain(i)).await.status(), 200);
    }
    let streamed = stack
        .chat(&json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "capital of Mexico?"}]}))
        .await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    assert_eq!(
        stack.wait_rows(3, Duration::from_secs(30)).await,
        3,
        "{}",
        stack.log("all")
    );

    // Its own admin API reads the rows back from MariaDB.
    let admin = Admin::at(&admin_listen, ADMIN_TOKEN);
    admin.wait_up().await;
    let page = admin.get("/api/v1/logs?stream=true").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"][0]["input_tokens"], 14);

    let status = all.terminate();
    assert!(status.success(), "{}", stack.log("all"));
    let totals = stack.store().await.rollup_totals().await.unwrap();
    assert_eq!(
        (totals.requests, totals.input_tokens, totals.output_tokens),
        (3, 2 * 24 + 14, 3 * 8)
    );
}
