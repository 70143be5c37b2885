//! The admin HTTP API on port 0 over a real database: SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use events::proto::{LogEvent, MediaRef};
use secrecy::SecretString;
use serde_json::Value;
use store::Store;

const NOW_MS: i64 = 1_795_660_800_000;
const TOKEN: &str = "admin-token-for-tests";

fn event(i: u32) -> LogEvent {
    LogEvent {
        request_id: format!("01900000-0000-7000-8000-{i:012}"),
        received_at_us: (NOW_MS + i64::from(i) * 1000) * 1000,
        endpoint: "/v1/chat/completions".into(),
        requested_model: if i.is_multiple_of(2) {
            "gpt4".into()
        } else {
            "claude".into()
        },
        provider: "mock".into(),
        status: if i.is_multiple_of(10) { 429 } else { 200 },
        input_tokens: 10,
        output_tokens: u64::from(i),
        latency_us: 2_000 * u64::from(i),
        request_body: br#"{"messages":[{"role":"user","content":"hello"}]}"#
            .to_vec()
            .into(),
        response_body: br#"{"choices":[]}"#.to_vec().into(),
        media: if i == 3 {
            vec![MediaRef {
                sha256: "cd".repeat(32),
                mime: "image/png".into(),
                size: 4,
            }]
        } else {
            vec![]
        },
        ..LogEvent::default()
    }
}

struct Api {
    base: String,
    client: reqwest::Client,
    store: Store,
    _media: tempfile::TempDir,
}

impl Api {
    async fn start(store: Store) -> Self {
        store.migrate().await.unwrap();
        store.ensure_partitions(NOW_MS * 1000, 2).await.unwrap();
        let media = tempfile::tempdir().unwrap();
        let sha = "cd".repeat(32);
        std::fs::create_dir_all(media.path().join("cd")).unwrap();
        std::fs::write(media.path().join(format!("cd/{sha}.png")), b"\x89PNG").unwrap();
        let core = admin::core::AdminCore {
            store: store.clone(),
            media_root: media.path().to_owned(),
            publisher: admin::publisher::Publisher::new(
                store.clone(),
                None,
                tokio_util::sync::CancellationToken::new(),
            ),
            secret: None,
        };
        let app = admin::router(core, SecretString::from(TOKEN));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            _media: media,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }
}

/// Text search scans back in growing time windows, a page at a time: over logs
/// spread across ten days, paging with a small limit finds every match once, in
/// order, the same as one unbounded query.
async fn search_across_windows(api: &Api) {
    let day_us = 86_400_000_000;
    let base_us = NOW_MS * 1000 - 12 * day_us;
    api.store.ensure_partitions(base_us, 11).await.unwrap();
    let spread: Vec<LogEvent> = (0..30u32)
        .map(|i| LogEvent {
            request_id: format!("01900000-0000-7000-9000-{i:012}"),
            received_at_us: base_us + i64::from(i) * 8 * 3_600_000_000,
            request_body: format!(
                r#"{{"content":"{} {i}"}}"#,
                if i % 3 == 0 { "needle" } else { "hay" }
            )
            .into_bytes()
            .into(),
            ..event(100 + i)
        })
        .collect();
    api.store.insert_batch(&spread).await.unwrap();
    let expected: Vec<String> = (0..30u32)
        .rev()
        .filter(|i| i % 3 == 0)
        .map(|i| format!("01900000-0000-7000-9000-{i:012}"))
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

async fn exercise(store: Store) {
    let api = Api::start(store).await;
    api.store
        .insert_batch(&(1..=30).map(event).collect::<Vec<_>>())
        .await
        .unwrap();

    // Auth: nothing without the token.
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

    // Pages while rows arrive: each original row once.
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

    let errors = api
        .json(&format!("/api/v1/logs?status=4&to={}", NOW_MS + 31_000))
        .await;
    assert_eq!(errors["data"].as_array().unwrap().len(), 3);
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
    let text = api.json("/api/v1/logs?q=HELLO&limit=500").await;
    assert!(text["data"].as_array().unwrap().len() >= 30);
    let none = api.json("/api/v1/logs?q=no-such-words&limit=500").await;
    assert!(
        none["data"].as_array().unwrap().is_empty(),
        "the text filter was ignored"
    );
    assert_eq!(api.get("/api/v1/logs?status=9").await.status(), 400);
    assert_eq!(api.get("/api/v1/logs?cursor=nope").await.status(), 400);

    let detail = api
        .json(&format!("/api/v1/logs/{}", event(3).request_id))
        .await;
    assert_eq!(detail["request"]["messages"][0]["content"], "hello");
    let url = detail["media"][0]["url"].as_str().unwrap().to_owned();
    let media = api.get(&url).await;
    assert_eq!(media.status(), 200);
    assert_eq!(media.headers()["content-type"], "image/png");
    assert_eq!(&media.bytes().await.unwrap()[..], b"\x89PNG");
    assert_eq!(
        api.get("/api/v1/logs/01900000-0000-7000-8000-999999999999")
            .await
            .status(),
        404
    );
    assert_eq!(
        api.get(&format!("/api/v1/media/{}", "ee".repeat(32)))
            .await
            .status(),
        404
    );

    grpc(&api).await;
    search_across_windows(&api).await;

    // Stats from the rollups match the rows inserted in the range.
    let s = api
        .json(&format!(
            "/api/v1/stats/summary?from={}&to={}",
            NOW_MS - 60_000,
            NOW_MS + 31_000
        ))
        .await;
    assert_eq!(s["requests"], 30);
    assert_eq!(s["errors"], 3);
    assert_eq!(s["input_tokens"], 300);
    assert_eq!(s["output_tokens"], (1..=30).sum::<i64>());
    assert!(s["latency_ms"]["p50"].as_u64().unwrap() >= 30);
    assert!(s["latency_ms"]["p99"].as_u64().unwrap() >= s["latency_ms"]["p50"].as_u64().unwrap());

    let series = api
        .json(&format!(
            "/api/v1/stats/series?from={}&to={}&step_s=60&split=model",
            NOW_MS - 60_000,
            NOW_MS + 31_000
        ))
        .await;
    let points = series["data"].as_array().unwrap();
    assert_eq!(
        points
            .iter()
            .map(|p| p["requests"].as_i64().unwrap())
            .sum::<i64>(),
        30
    );
    let claude: i64 = points
        .iter()
        .filter(|p| p["group"] == "claude")
        .map(|p| p["requests"].as_i64().unwrap())
        .sum();
    assert_eq!(claude, 15);
    assert_eq!(
        api.get("/api/v1/stats/series?from=0&to=1&split=colour")
            .await
            .status(),
        400
    );
}

/// The same core through gRPC with the generated tonic client.
async fn grpc(api: &Api) {
    use admin::proto::admin_service_client::AdminServiceClient;
    use admin::proto::{GetLogRequest, GetMediaRequest, ListLogsRequest, UsageSummaryRequest};

    let channel = tonic::transport::Endpoint::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anonymous = AdminServiceClient::new(channel.clone());
    let refused = anonymous
        .list_logs(ListLogsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let mut client = AdminServiceClient::with_interceptor(channel, |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        Ok(r)
    });
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_logs(ListLogsRequest {
                cursor: cursor.clone(),
                limit: 9,
                to_ms: Some(NOW_MS + 31_000),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.data.into_iter().map(|r| r.request_id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(ids.len(), 30);
    let claude = client
        .list_logs(ListLogsRequest {
            model: Some("claude".into()),
            status_class: Some(2),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        claude
            .data
            .iter()
            .all(|r| r.model == "claude" && (200..300).contains(&r.status))
    );
    let bad = client
        .list_logs(ListLogsRequest {
            status_class: Some(7),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);

    let detail = client
        .get_log(GetLogRequest {
            request_id: event(3).request_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.row.unwrap().output_tokens, 3);
    assert!(detail.request_body.contains("hello"));
    let blob = client
        .get_media(GetMediaRequest {
            sha256: detail.media[0].sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (blob.mime.as_str(), &blob.data[..]),
        ("image/png", &b"\x89PNG"[..])
    );
    let missing = client
        .get_log(GetLogRequest {
            request_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let summary = client
        .get_usage_summary(UsageSummaryRequest {
            from_ms: NOW_MS - 60_000,
            to_ms: NOW_MS + 31_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.requests, summary.errors, summary.input_tokens),
        (30, 3, 300)
    );
}

#[tokio::test]
async fn over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(
        Store::connect(&format!("sqlite://{}", dir.path().join("a.db").display()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn over_postgres() {
    let pg = test_services::Postgres::start();
    exercise(Store::connect(&pg.create_database("admin")).await.unwrap()).await;
}
