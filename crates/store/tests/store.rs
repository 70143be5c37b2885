//! The same store tests on SQLite and on a throw-away PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use events::proto::{LogEvent, MediaRef};
use store::Store;

const NOW: i64 = 1_795_660_800_000_000; // 2026-11-26T00:00:00Z

fn event(i: u32, minute: i64) -> LogEvent {
    LogEvent {
        request_id: format!("01900000-0000-7000-8000-{i:012}"),
        received_at_us: NOW + minute * 60_000_000 + i64::from(i),
        endpoint: "/v1/chat/completions".into(),
        requested_model: if i.is_multiple_of(2) {
            "gpt4".into()
        } else {
            "claude".into()
        },
        provider: "mock".into(),
        upstream_model: "gpt-4o".into(),
        stream: i.is_multiple_of(3),
        status: if i.is_multiple_of(5) { 502 } else { 200 },
        error_kind: if i.is_multiple_of(5) {
            "upstream_unreachable".into()
        } else {
            String::new()
        },
        input_tokens: 10,
        output_tokens: u64::from(i),
        latency_us: 1_000 * u64::from(i),
        ttft_us: if i.is_multiple_of(3) { 500 } else { 0 },
        request_body: format!(r#"{{"i":{i},"nul":"\u0000"}}"#).into_bytes().into(),
        response_body: b"{}".to_vec().into(),
        media: if i == 1 {
            vec![MediaRef {
                sha256: "ab".repeat(32),
                mime: "image/png".into(),
                size: 70,
            }]
        } else {
            vec![]
        },
        ..LogEvent::default()
    }
}

async fn exercise(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap(); // idempotent
    store
        .ensure_partitions(NOW - 86_400_000_000, 4)
        .await
        .unwrap();

    let batch: Vec<LogEvent> = (1..=20).map(|i| event(i, i64::from(i % 3))).collect();
    assert_eq!(store.insert_batch(&batch).await.unwrap(), 20);
    // A replay (whole, or overlapping with new events) changes nothing but adds the new.
    assert_eq!(store.insert_batch(&batch).await.unwrap(), 0);
    let mut mixed = batch[..5].to_vec();
    mixed.push(event(21, 0));
    assert_eq!(store.insert_batch(&mixed).await.unwrap(), 1);

    assert_eq!(store.log_count().await.unwrap(), 21);
    let ids = store.log_ids().await.unwrap();
    assert_eq!(ids.len(), 21);
    assert!(ids.iter().all(|(_, n)| *n == 1));

    let totals = store.rollup_totals().await.unwrap();
    assert_eq!(totals.requests, 21);
    assert_eq!(totals.errors, 4); // 5, 10, 15, 20
    assert_eq!(totals.input_tokens, 210);
    assert_eq!(totals.output_tokens, (1..=21).sum::<i64>());
    assert_eq!(totals.histogram_count, 21);

    let row = store.log(&event(1, 0).request_id).await.unwrap().unwrap();
    assert_eq!(row.received_at_us, event(1, 1).received_at_us);
    assert_eq!(row.requested_model, "claude");
    assert_eq!(row.output_tokens, 1);
    assert!(row.request_body.contains(r#""i":1"#));
    assert_eq!(
        row.media,
        vec![("ab".repeat(32), format!("ab/{}.png", "ab".repeat(32)))]
    );
    assert_eq!(store.media_count().await.unwrap(), 1);

    list_and_page(&store).await;

    // The summary from rollups equals what the rows say.
    let summary = store
        .usage_summary(NOW - 3_600_000_000, NOW + 3_600_000_000)
        .await
        .unwrap();
    let (rows, _) = store
        .list_logs(&store::LogFilter::default(), None, 500)
        .await
        .unwrap();
    assert_eq!(summary.requests, rows.len() as i64);
    assert_eq!(
        summary.errors,
        rows.iter().filter(|r| r.status >= 400).count() as i64
    );
    assert_eq!(
        summary.output_tokens,
        rows.iter().map(|r| r.output_tokens).sum::<i64>()
    );
    assert_eq!(summary.latency_hist.iter().sum::<i64>(), summary.requests);
    let p50 = store::UsageSummary::quantile_ms(&summary.latency_hist, 0.5).unwrap();
    let mut latencies: Vec<i64> = rows.iter().map(|r| r.latency_us).collect();
    latencies.sort_unstable();
    let true_p50_ms = latencies[(latencies.len() - 1) / 2] as f64 / 1000.0;
    assert!(
        true_p50_ms <= p50 as f64,
        "p50 bucket {p50} ms below the true {true_p50_ms} ms"
    );
    // The series adds up to the summary, per model too.
    let hour = 3_600_000_000;
    let series = store
        .usage_series(NOW - hour, NOW + hour, 120_000_000, store::Split::Model)
        .await
        .unwrap();
    assert_eq!(
        series.iter().map(|p| p.usage.requests).sum::<i64>(),
        summary.requests
    );
    let gpt4: i64 = series
        .iter()
        .filter(|p| p.group == "gpt4")
        .map(|p| p.usage.requests)
        .sum();
    assert_eq!(
        gpt4,
        rows.iter().filter(|r| r.requested_model == "gpt4").count() as i64
    );
    assert!(
        series
            .iter()
            .all(|p| (p.start_us - (NOW - hour)) % 120_000_000 == 0)
    );
    let flat = store
        .usage_series(NOW - hour, NOW + hour, 60_000_000, store::Split::None)
        .await
        .unwrap();
    assert!(flat.iter().all(|p| p.group.is_empty()));
    assert_eq!(
        flat.iter().map(|p| p.usage.output_tokens).sum::<i64>(),
        summary.output_tokens
    );
    let empty = store.usage_summary(0, 1).await.unwrap();
    assert_eq!(empty.requests, 0);
    assert_eq!(
        store::UsageSummary::quantile_ms(&empty.latency_hist, 0.5),
        None
    );

    // Retention: everything before tomorrow goes.
    store.drop_before(NOW + 86_400_000_000).await.unwrap();
    assert_eq!(store.log_count().await.unwrap(), 0);
}

async fn list_and_page(store: &Store) {
    use store::{Cursor, LogFilter};

    let all = LogFilter::default();
    let (first, next) = store.list_logs(&all, None, 5).await.unwrap();
    assert_eq!(first.len(), 5);
    assert!(
        first
            .windows(2)
            .all(|w| (w[0].received_at_us, &w[0].request_id)
                > (w[1].received_at_us, &w[1].request_id))
    );
    let token = next.clone().unwrap().encode();
    assert_eq!(Cursor::decode(&token), next);
    assert_eq!(Cursor::decode("garbage"), None);

    // Page through while newer rows keep arriving: each original row exactly once.
    let mut seen: Vec<String> = first.iter().map(|r| r.request_id.clone()).collect();
    let mut cursor = next;
    let mut extra = 100;
    while let Some(c) = cursor {
        store
            .insert_batch(&[event(extra, 0), event(extra + 1, 2)])
            .await
            .unwrap();
        extra += 2;
        let (page, next) = store.list_logs(&all, Some(&c), 5).await.unwrap();
        seen.extend(page.iter().map(|r| r.request_id.clone()));
        cursor = next;
    }
    let original: Vec<String> = (1..=21).map(|i| event(i, 0).request_id).collect();
    for id in &original {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} seen {seen:?}"
        );
    }
    assert_eq!(seen.len(), {
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        unique.len()
    });

    let count = |f: LogFilter| async move { store.list_logs(&f, None, 500).await.unwrap().0 };
    let gpt4 = count(LogFilter {
        model: Some("gpt4".into()),
        ..LogFilter::default()
    })
    .await;
    assert!(!gpt4.is_empty() && gpt4.iter().all(|r| r.requested_model == "gpt4"));
    let errors = count(LogFilter {
        status_class: Some(5),
        ..LogFilter::default()
    })
    .await;
    assert!(errors.iter().all(|r| r.status == 502) && errors.len() >= 4);
    let streams = count(LogFilter {
        stream: Some(true),
        ..LogFilter::default()
    })
    .await;
    assert!(streams.iter().all(|r| r.stream));
    let slow = count(LogFilter {
        min_latency_us: Some(20_000),
        ..LogFilter::default()
    })
    .await;
    assert!(slow.iter().all(|r| r.latency_us >= 20_000) && !slow.is_empty());
    let text = count(LogFilter {
        text: Some("\"I\":7,".into()),
        ..LogFilter::default()
    })
    .await;
    assert_eq!(
        text.iter()
            .map(|r| r.request_id.clone())
            .collect::<Vec<_>>(),
        vec![event(7, 0).request_id]
    );
    let window = count(LogFilter {
        from_us: Some(NOW + 60_000_000),
        to_us: Some(NOW + 120_000_000),
        ..LogFilter::default()
    })
    .await;
    assert!(!window.is_empty());
    assert!(
        window
            .iter()
            .all(|r| (NOW + 60_000_000..NOW + 120_000_000).contains(&r.received_at_us))
    );
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aiprox.db").display());
    exercise(Store::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres() {
    let pg = test_services::Postgres::start();
    let url = pg.create_database("store_test");
    exercise(Store::connect(&url).await.unwrap()).await;
}
