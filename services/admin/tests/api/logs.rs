//! Logs over HTTP: the admin token, keyset pages stable while rows arrive, each
//! filter, text search (also paged back across time windows), bad filters and
//! cursors refused.

use serde_json::Value;

use crate::{Api, NOW_MS, event, spread_id, with_logs, with_spread_logs, with_window_logs};

pub async fn logs_need_the_admin_token(api: &Api) {
    for token in [None, Some("wrong"), Some("admin-token-for-test")] {
        let mut r = api.client.get(format!("{}/api/v1/logs", api.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

/// Pages while rows arrive: each original row once.
pub async fn pages_stay_whole_while_rows_arrive(api: &Api) {
    with_window_logs(api).await;
    let mut seen = Vec::new();
    let mut page = api.json("/api/v1/logs?limit=7").await;
    let mut extra = 100;
    loop {
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["request_id"].as_str().unwrap().to_owned()),
        );
        let Some(cursor) = page["next_cursor"].as_str().map(str::to_owned) else {
            break;
        };
        api.store.insert_batch(&[event(extra)]).await.unwrap();
        extra += 1;
        page = api
            .json(&format!("/api/v1/logs?limit=7&cursor={cursor}"))
            .await;
    }
    for i in 1..=30 {
        assert_eq!(
            seen.iter().filter(|s| **s == event(i).request_id).count(),
            1,
            "row {i}"
        );
    }
}

pub async fn logs_filter_by_status_class_before_a_time(api: &Api) {
    with_logs(api).await;
    let errors = api
        .json(&format!("/api/v1/logs?status=4&to={}", NOW_MS + 31_000))
        .await;
    assert_eq!(errors["data"].as_array().unwrap().len(), 3);
}

pub async fn logs_filter_by_model_and_min_latency(api: &Api) {
    with_logs(api).await;
    let claude = api
        .json("/api/v1/logs?model=claude&min_latency_ms=50&limit=500")
        .await;
    assert!(
        claude["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["model"] == "claude" && r["latency_ms"].as_f64().unwrap() >= 50.0)
    );
}

pub async fn text_search_finds_the_request_bodies(api: &Api) {
    with_logs(api).await;
    let text = api.json("/api/v1/logs?q=HELLO&limit=500").await;
    assert!(text["data"].as_array().unwrap().len() >= 30);
}

pub async fn text_search_without_a_match_finds_nothing(api: &Api) {
    with_logs(api).await;
    let none = api.json("/api/v1/logs?q=no-such-words&limit=500").await;
    assert!(
        none["data"].as_array().unwrap().is_empty(),
        "the text filter was ignored"
    );
}

pub async fn bad_filters_and_cursors_are_refused(api: &Api) {
    assert_eq!(api.get("/api/v1/logs?status=9").await.status(), 400);
    assert_eq!(api.get("/api/v1/logs?cursor=nope").await.status(), 400);
}

/// Text search scans back in growing time windows, a page at a time: over logs
/// spread across ten days, paging with a small limit finds every match once, in
/// order, the same as one unbounded query.
pub async fn text_search_pages_across_time_windows(api: &Api) {
    with_logs(api).await;
    with_spread_logs(api).await;
    let expected: Vec<String> = (0..30u32)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(spread_id)
        .collect();
    let mut found = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let page = api
            .json(&format!("/api/v1/logs?q=needle&limit=2&cursor={cursor}"))
            .await;
        assert!(page["data"].as_array().unwrap().len() <= 2);
        found.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["request_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(found, expected);
}

/// The Logs table's columns come with each row, and `source` filters; the
/// detail adds the failed calls and the tools left out.
pub async fn logs_list_the_upstream_model_cost_key_and_source(api: &Api) {
    let mut played = event(1);
    played.upstream_model = "gpt-4o-2024".into();
    played.cost_usd = 0.0031;
    played.client_key_id = "key_0011".into();
    played.source = "playground".into();
    played.failed_attempts = vec![events::proto::Attempt {
        provider: "primary".into(),
        upstream_model: "gpt-4o".into(),
        status: 429,
        error_kind: "rate_limit_exceeded".into(),
        latency_us: 2500,
        key: 2,
    }];
    played.omitted_tools = vec!["web_search".into(), "namespace".into()];
    api.store.insert_batch(&[played, event(2)]).await.unwrap();
    let all = api.json("/api/v1/logs").await;
    let rows = all["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let row = rows
        .iter()
        .find(|r| r["request_id"] == event(1).request_id)
        .unwrap();
    assert_eq!(row["upstream_model"], "gpt-4o-2024");
    assert_eq!(row["cost_usd"], 0.0031);
    assert_eq!(row["key"], "key_0011");
    assert_eq!(row["source"], "playground");
    let played = api.json("/api/v1/logs?source=playground").await;
    assert_eq!(played["data"].as_array().unwrap().len(), 1);
    assert_eq!(played["data"][0]["request_id"], event(1).request_id);
    let detail = api
        .json(&format!("/api/v1/logs/{}", event(1).request_id))
        .await;
    assert_eq!(detail["source"], "playground");
    assert_eq!(detail["key"], "key_0011");
    assert_eq!(
        detail["failed_attempts"],
        serde_json::json!([{"provider": "primary", "upstream_model": "gpt-4o", "status": 429,
            "error_kind": "rate_limit_exceeded", "latency_ms": 2.5, "key": 2}])
    );
    assert_eq!(
        detail["omitted_tools"],
        serde_json::json!(["web_search", "namespace"])
    );
    let other = api
        .json(&format!("/api/v1/logs/{}", event(2).request_id))
        .await;
    assert_eq!(other["failed_attempts"], serde_json::json!([]));
    assert_eq!(other["omitted_tools"], serde_json::json!([]));
}

/// A key's last use comes from the usage rollups, to the minute.
pub async fn a_key_shows_when_it_was_last_used(api: &Api) {
    let created: Value = api
        .client
        .post(format!("{}/api/v1/keys", api.base))
        .bearer_auth(crate::TOKEN)
        .json(&serde_json::json!({"name": "team-a"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    assert!(created["key"]["last_used_at_ms"].is_null());
    let mut used = event(5);
    used.client_key_id = id.clone();
    api.store.insert_batch(&[used.clone()]).await.unwrap();
    let keys = api.json("/api/v1/keys").await;
    let key = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap();
    let minute = used.received_at_us / 1000 / 60_000 * 60_000;
    assert_eq!(key["last_used_at_ms"], minute);
}

/// A key with a budget shows its logged spend of the budget's period.
pub async fn a_key_shows_its_spend_against_its_budget(api: &Api) {
    let create = |name: &str, period: &str| {
        let body = serde_json::json!({"name": name,
            "limits": {"budget": {"usd": 5.0, "period": period}}});
        let request = api
            .client
            .post(format!("{}/api/v1/keys", api.base))
            .bearer_auth(crate::TOKEN)
            .json(&body);
        async move {
            let created: Value = request.send().await.unwrap().json().await.unwrap();
            created["key"]["id"].as_str().unwrap().to_owned()
        }
    };
    let total = create("all-time", "total").await;
    let monthly = create("this-month", "month").await;
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let spend = |i: u32, key: &str, cost: f64, at_us: i64| {
        let mut e = event(i);
        e.client_key_id = key.to_owned();
        e.cost_usd = cost;
        e.received_at_us = at_us;
        e
    };
    let last_year_us = now_us - 86_400_000_000 * 400;
    for at in [now_us, last_year_us] {
        api.store.ensure_partitions(at, 2).await.unwrap();
    }
    api.store
        .insert_batch(&[
            spend(40, &total, 0.25, now_us),
            spend(41, &total, 0.5, last_year_us),
            spend(42, &monthly, 1.25, now_us),
            // Last year: another month.
            spend(43, &monthly, 2.0, last_year_us),
        ])
        .await
        .unwrap();
    let keys = api.json("/api/v1/keys").await;
    let spent = |id: &str| {
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .unwrap()["spend_usd"]
            .as_f64()
    };
    assert_eq!(spent(&total), Some(0.75));
    assert_eq!(spent(&monthly), Some(1.25));
}
