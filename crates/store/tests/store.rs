//! The store's behaviours, each its own test, run once per backend: `sqlite::…`
//! on a fresh file in a temporary directory, `postgres::…` and `mariadb::…` on a
//! fresh database (`CREATE DATABASE`) of a throw-away PostgreSQL or MariaDB
//! server that the test processes of one run share
//! (`test_services::SharedPostgres`, `SharedMariaDb`). A failure names the
//! backend and the behaviour: `mariadb::log_by_id`.
//!
//! Covered: migrations (idempotent); `insert_batch` (new-event counts,
//! idempotent on whole and overlapping replays); the per-minute rollups (each
//! request once); one log by id, with its media, failed calls and left-out
//! tools; `list_logs` (newest first,
//! cursors, keyset pagination stable while rows arrive, each filter, text search);
//! the usage summary and series (agreeing with the rows, the p50 bucket, empty
//! windows); retention (whole days, stored responses with the logs); stored
//! responses (put, replaced, deleted, bytes kept exactly); the configuration
//! rows (providers, model mappings, client keys, prices, the one-time seed).
//!
//! Where the backends store things differently, a behaviour pins what must
//! not differ: ties in time broken by request id when paging, the text search's
//! escaping of `%`, `_` and `\\`, case-sensitive model names (MySQL's default
//! collations are not), and long values cut alike in a row and its rollups.
//!
//! Each test sets up the state it needs itself (the fixtures `migrated`,
//! `with_logs`). Adding a backend is one more line in `backends!` and one more
//! `fresh_*_store` function.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use events::proto::{LogEvent, MediaRef};
use store::{Cursor, KeyRow, LogFilter, LogSummary, MappingRow, ProviderRow, Store};

const NOW: i64 = 1_795_660_800_000_000; // 2026-11-26T02:40:00Z
const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 86_400_000_000;

/// Generates, for each behaviour `async fn name(store: Store)` below, one
/// `#[tokio::test] name` in each backend's module, each given a fresh, empty
/// (unmigrated) store of its own. A backend is one line in the first arm:
/// `module => connect`, where `async fn connect(test_name: &str) -> Fresh`.
macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        backends!(@backend sqlite => fresh_sqlite_store; $($test),*);
        backends!(@backend postgres => fresh_postgres_store; $($test),*);
        backends!(@backend mariadb => fresh_mariadb_store; $($test),*);
    };
    (@backend $backend:ident => $connect:ident; $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let fresh = super::$connect(stringify!($test)).await;
                    super::$test(fresh.store.clone()).await;
                    drop(fresh);
                }
            )*
        }
    };
}

backends!(
    migrate_is_idempotent,
    insert_batch_counts_new_events,
    insert_batch_is_idempotent_on_replay,
    overlapping_replay_adds_only_the_new_events,
    rollups_count_each_request_once,
    log_by_id,
    log_by_id_lists_its_media,
    log_by_id_keeps_the_omitted_tools_in_order,
    list_logs_is_newest_first,
    cursor_round_trips_and_rejects_garbage,
    keyset_pagination_stays_stable_while_rows_arrive,
    filter_by_model,
    filter_by_status_class,
    filter_by_stream,
    filter_by_min_latency,
    filter_by_time_window,
    text_search_finds_the_request_body,
    keyset_pagination_breaks_ties_in_time_by_request_id,
    text_search_takes_percent_underscore_and_escapes_literally,
    model_names_are_case_sensitive,
    a_long_model_name_is_kept_alike_in_its_row_and_rollups,
    usage_summary_agrees_with_the_rows,
    usage_summary_p50_bucket_is_not_below_the_true_median,
    usage_series_adds_up_to_the_summary_per_model,
    usage_series_points_start_on_the_step,
    usage_series_without_split_adds_up_to_the_summary,
    usage_series_counts_match_the_series_without_percentiles,
    usage_summary_of_an_empty_window_is_zero,
    hourly_and_minute_rollups_add_up_over_odd_windows,
    hourly_rollups_are_filled_from_the_minutes_by_their_migration,
    retention_drops_the_days_before_the_cutoff,
    stored_responses_are_put_replaced_and_deleted,
    retention_drops_the_stored_responses_of_the_days_before_the_cutoff,
    providers_crud,
    mappings_crud,
    keys_are_listed_newest_first_and_revoked_once,
    seed_config_applies_once,
    prices_are_set_replaced_and_deleted,
);

// --- backends -------------------------------------------------------------------

/// A fresh store of one test and what keeps its database alive until the test
/// ends (a temporary directory, a server lease).
struct Fresh {
    store: Store,
    _keep: Box<dyn std::any::Any>,
}

async fn fresh_sqlite_store(_test: &str) -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aiprox.db").display());
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _keep: Box::new(dir),
    }
}

async fn fresh_postgres_store(test: &str) -> Fresh {
    let pg = test_services::SharedPostgres::get();
    let url = pg.fresh_database(test);
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _keep: Box::new(pg),
    }
}

async fn fresh_mariadb_store(test: &str) -> Fresh {
    let db = test_services::SharedMariaDb::get();
    let url = db.fresh_database(test);
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _keep: Box::new(db),
    }
}

// --- fixtures -------------------------------------------------------------------

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

/// Events 1..=20, spread over the first three minutes after [`NOW`].
fn batch() -> Vec<LogEvent> {
    (1..=20).map(|i| event(i, i64::from(i % 3))).collect()
}

/// The first five events of [`batch`] again, and event 21.
fn overlapping_replay() -> Vec<LogEvent> {
    let mut mixed = batch()[..5].to_vec();
    mixed.push(event(21, 0));
    mixed
}

/// Migrated, with partitions from the day before [`NOW`].
async fn migrated(store: Store) -> Store {
    store.migrate().await.unwrap();
    store.ensure_partitions(NOW - DAY, 4).await.unwrap();
    store
}

/// Migrated, holding events 1..=21 written as a batch, its replay and an
/// overlapping replay: 21 rows, each once.
async fn with_logs(store: Store) -> Store {
    let store = migrated(store).await;
    store.insert_batch(&batch()).await.unwrap();
    store.insert_batch(&batch()).await.unwrap();
    store.insert_batch(&overlapping_replay()).await.unwrap();
    store
}

/// Every row of [`with_logs`] (fewer than 500).
async fn all_rows(store: &Store) -> Vec<LogSummary> {
    store
        .list_logs(&LogFilter::default(), None, 500)
        .await
        .unwrap()
        .0
}

async fn filtered(store: &Store, filter: LogFilter) -> Vec<LogSummary> {
    store.list_logs(&filter, None, 500).await.unwrap().0
}

/// Runs raw SQL on whichever database the store holds.
async fn run(store: &Store, sql: &'static str) {
    match store {
        Store::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        Store::MySql(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
        Store::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap();
}

/// The request ids of `rows`, in order.
fn ids(rows: &[LogSummary]) -> Vec<String> {
    rows.iter().map(|r| r.request_id.clone()).collect()
}

fn summary_window() -> (i64, i64) {
    (NOW - HOUR, NOW + HOUR)
}

/// Events 1..=40 over about eight hours after [`NOW`], 12 or 13 minutes apart.
fn spread() -> Vec<LogEvent> {
    (1..=40)
        .map(|i| event(i, i64::from(i) * 12 + i64::from(i % 2)))
        .collect()
}

/// The requests, output tokens and histogram count of `events` in `[from, to)`.
fn counted(events: &[LogEvent], from: i64, to: i64) -> (i64, i64, i64) {
    let inside: Vec<_> = events
        .iter()
        .filter(|e| e.received_at_us >= from && e.received_at_us < to)
        .collect();
    let n = inside.len() as i64;
    (n, inside.iter().map(|e| e.output_tokens as i64).sum(), n)
}

// --- migrations and writes ------------------------------------------------------

async fn migrate_is_idempotent(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ensure_partitions(NOW - DAY, 4).await.unwrap();
    assert_eq!(store.log_count().await.unwrap(), 0);
}

async fn insert_batch_counts_new_events(store: Store) {
    let store = migrated(store).await;
    assert_eq!(store.insert_batch(&batch()).await.unwrap(), 20);
}

async fn insert_batch_is_idempotent_on_replay(store: Store) {
    let store = migrated(store).await;
    let batch = batch();
    store.insert_batch(&batch).await.unwrap();
    assert_eq!(store.insert_batch(&batch).await.unwrap(), 0);
}

async fn overlapping_replay_adds_only_the_new_events(store: Store) {
    let store = migrated(store).await;
    store.insert_batch(&batch()).await.unwrap();
    store.insert_batch(&batch()).await.unwrap();
    assert_eq!(store.insert_batch(&overlapping_replay()).await.unwrap(), 1);

    assert_eq!(store.log_count().await.unwrap(), 21);
    let ids = store.log_ids().await.unwrap();
    assert_eq!(ids.len(), 21);
    assert!(ids.iter().all(|(_, n)| *n == 1));
}

async fn rollups_count_each_request_once(store: Store) {
    let store = with_logs(store).await;
    let totals = store.rollup_totals().await.unwrap();
    assert_eq!(totals.requests, 21);
    assert_eq!(totals.errors, 4); // 5, 10, 15, 20
    assert_eq!(totals.input_tokens, 210);
    assert_eq!(totals.output_tokens, (1..=21).sum::<i64>());
    assert_eq!(totals.histogram_count, 21);
}

// --- one log --------------------------------------------------------------------

async fn log_by_id(store: Store) {
    let store = with_logs(store).await;
    let row = store.log(&event(1, 0).request_id).await.unwrap().unwrap();
    assert_eq!(row.received_at_us, event(1, 1).received_at_us);
    assert_eq!(row.requested_model, "claude");
    assert_eq!(row.output_tokens, 1);
    assert!(row.request_body.contains(r#""i":1"#));
    assert!(row.failed_attempts.is_empty());

    // A request that failed over keeps its failed calls, in order.
    let mut retried = event(90, 0);
    retried.failed_attempts = vec![
        events::proto::Attempt {
            provider: "primary".into(),
            upstream_model: "gpt-4o".into(),
            status: 503,
            error_kind: "upstream_error".into(),
            latency_us: 1200,
            key: 2,
        },
        events::proto::Attempt {
            provider: "second".into(),
            upstream_model: "gpt-4o-mini".into(),
            status: 0,
            error_kind: "upstream_unreachable".into(),
            latency_us: 30,
            key: 0,
        },
    ];
    store.insert_batch(&[retried.clone()]).await.unwrap();
    let row = store.log(&retried.request_id).await.unwrap().unwrap();
    let kept: Vec<(&str, u32, &str, u64, u32)> = row
        .failed_attempts
        .iter()
        .map(|a| {
            (
                a.provider.as_str(),
                a.status,
                a.error_kind.as_str(),
                a.latency_us,
                a.key,
            )
        })
        .collect();
    assert_eq!(
        kept,
        [
            ("primary", 503, "upstream_error", 1200, 2),
            ("second", 0, "upstream_unreachable", 30, 0)
        ]
    );
}

async fn log_by_id_lists_its_media(store: Store) {
    let store = with_logs(store).await;
    let row = store.log(&event(1, 0).request_id).await.unwrap().unwrap();
    assert_eq!(
        row.media,
        vec![("ab".repeat(32), format!("ab/{}.png", "ab".repeat(32)))]
    );
    assert_eq!(store.media_count().await.unwrap(), 1);
}

async fn log_by_id_keeps_the_omitted_tools_in_order(store: Store) {
    let store = with_logs(store).await;
    let row = store.log(&event(1, 0).request_id).await.unwrap().unwrap();
    assert!(row.omitted_tools.is_empty());

    // Written in a batch with a row that left none out, as the logger writes.
    let mut codex = event(91, 0);
    codex.endpoint = "/v1/responses".into();
    codex.omitted_tools = vec!["web_search".into(), "namespace".into()];
    let plain = event(92, 0);
    store
        .insert_batch(&[codex.clone(), plain.clone()])
        .await
        .unwrap();
    let row = store.log(&codex.request_id).await.unwrap().unwrap();
    assert_eq!(row.omitted_tools, ["web_search", "namespace"]);
    let row = store.log(&plain.request_id).await.unwrap().unwrap();
    assert!(row.omitted_tools.is_empty());
}

// --- listing --------------------------------------------------------------------

async fn list_logs_is_newest_first(store: Store) {
    let store = with_logs(store).await;
    let (first, _) = store
        .list_logs(&LogFilter::default(), None, 5)
        .await
        .unwrap();
    assert_eq!(first.len(), 5);
    assert!(
        first
            .windows(2)
            .all(|w| (w[0].received_at_us, &w[0].request_id)
                > (w[1].received_at_us, &w[1].request_id))
    );
}

async fn cursor_round_trips_and_rejects_garbage(store: Store) {
    let store = with_logs(store).await;
    let (_, next) = store
        .list_logs(&LogFilter::default(), None, 5)
        .await
        .unwrap();
    let token = next.clone().unwrap().encode();
    assert_eq!(Cursor::decode(&token), next);
    assert_eq!(Cursor::decode("garbage"), None);
}

async fn keyset_pagination_stays_stable_while_rows_arrive(store: Store) {
    let store = with_logs(store).await;
    let all = LogFilter::default();
    let (first, next) = store.list_logs(&all, None, 5).await.unwrap();

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
}

async fn filter_by_model(store: Store) {
    let store = with_logs(store).await;
    let gpt4 = filtered(
        &store,
        LogFilter {
            model: Some("gpt4".into()),
            ..LogFilter::default()
        },
    )
    .await;
    assert!(!gpt4.is_empty() && gpt4.iter().all(|r| r.requested_model == "gpt4"));
}

async fn filter_by_status_class(store: Store) {
    let store = with_logs(store).await;
    let errors = filtered(
        &store,
        LogFilter {
            status_class: Some(5),
            ..LogFilter::default()
        },
    )
    .await;
    assert!(errors.iter().all(|r| r.status == 502) && errors.len() >= 4);
}

async fn filter_by_stream(store: Store) {
    let store = with_logs(store).await;
    let streams = filtered(
        &store,
        LogFilter {
            stream: Some(true),
            ..LogFilter::default()
        },
    )
    .await;
    assert!(streams.iter().all(|r| r.stream));
}

async fn filter_by_min_latency(store: Store) {
    let store = with_logs(store).await;
    let slow = filtered(
        &store,
        LogFilter {
            min_latency_us: Some(20_000),
            ..LogFilter::default()
        },
    )
    .await;
    assert!(slow.iter().all(|r| r.latency_us >= 20_000) && !slow.is_empty());
}

async fn filter_by_time_window(store: Store) {
    let store = with_logs(store).await;
    let window = filtered(
        &store,
        LogFilter {
            from_us: Some(NOW + 60_000_000),
            to_us: Some(NOW + 120_000_000),
            ..LogFilter::default()
        },
    )
    .await;
    assert!(!window.is_empty());
    assert!(
        window
            .iter()
            .all(|r| (NOW + 60_000_000..NOW + 120_000_000).contains(&r.received_at_us))
    );
}

async fn text_search_finds_the_request_body(store: Store) {
    let store = with_logs(store).await;
    let text = filtered(
        &store,
        LogFilter {
            text: Some("\"I\":7,".into()),
            ..LogFilter::default()
        },
    )
    .await;
    assert_eq!(
        text.iter()
            .map(|r| r.request_id.clone())
            .collect::<Vec<_>>(),
        vec![event(7, 0).request_id]
    );
}

/// Seven requests received in the same microsecond, paged three at a time: the
/// request id orders them, so each comes once.
async fn keyset_pagination_breaks_ties_in_time_by_request_id(store: Store) {
    let store = migrated(store).await;
    let same_time: Vec<LogEvent> = (1..=7)
        .map(|i| LogEvent {
            received_at_us: NOW,
            ..event(i, 0)
        })
        .collect();
    store.insert_batch(&same_time).await.unwrap();
    let all = LogFilter::default();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = store.list_logs(&all, cursor.as_ref(), 3).await.unwrap();
        seen.extend(ids(&page));
        let Some(next) = next else { break };
        cursor = Some(next);
    }
    let mut expected: Vec<String> = same_time.iter().map(|e| e.request_id.clone()).collect();
    expected.reverse();
    assert_eq!(seen, expected);
}

/// The text search finds what was typed: `%` and `_` are no wildcards, and the
/// backslash and `!` (escape characters of the databases' LIKE) are plain too.
async fn text_search_takes_percent_underscore_and_escapes_literally(store: Store) {
    let store = migrated(store).await;
    let bodies = [
        r#"{"q":"100% sure"}"#,
        r#"{"q":"1000 sure"}"#,
        r#"{"q":"a_b"}"#,
        r#"{"q":"axb"}"#,
        r#"{"q":"C:\\dir"}"#,
        r#"{"q":"C:dir"}"#,
        r#"{"q":"hi! there"}"#,
        r#"{"q":"hi there"}"#,
    ];
    let events: Vec<LogEvent> = bodies
        .iter()
        .zip(1..)
        .map(|(b, i)| LogEvent {
            request_body: b.as_bytes().to_vec().into(),
            ..event(i, 0)
        })
        .collect();
    store.insert_batch(&events).await.unwrap();
    for (text, found) in [("100%", 1), ("a_b", 3), (r":\\d", 5), ("hi! ", 7)] {
        let rows = filtered(
            &store,
            LogFilter {
                text: Some(text.into()),
                ..LogFilter::default()
            },
        )
        .await;
        assert_eq!(ids(&rows), vec![event(found, 0).request_id], "{text}");
    }
}

/// `GPT4` and `gpt4` are two models, in the rows and in the rollups.
async fn model_names_are_case_sensitive(store: Store) {
    let store = migrated(store).await;
    let upper = LogEvent {
        requested_model: "GPT4".into(),
        ..event(2, 0)
    };
    store.insert_batch(&[upper, event(4, 0)]).await.unwrap();
    let lower = filtered(
        &store,
        LogFilter {
            model: Some("gpt4".into()),
            ..LogFilter::default()
        },
    )
    .await;
    assert_eq!(ids(&lower), vec![event(4, 0).request_id]);
    let (from, to) = summary_window();
    let series = store
        .usage_series(from, to, to - from, store::Split::Model)
        .await
        .unwrap();
    let groups: Vec<(&str, i64)> = series
        .iter()
        .map(|p| (p.group.as_str(), p.usage.requests))
        .collect();
    assert_eq!(groups, [("GPT4", 1), ("gpt4", 1)]);
}

/// A model name longer than MySQL's 255-character columns (300 two-byte
/// characters) is logged, and what the row keeps is what the rollups count it
/// under and what the Logs filter finds.
async fn a_long_model_name_is_kept_alike_in_its_row_and_rollups(store: Store) {
    let store = migrated(store).await;
    let long = LogEvent {
        requested_model: "é".repeat(300),
        ..event(1, 0)
    };
    assert_eq!(store.insert_batch(&[long]).await.unwrap(), 1);
    let kept = all_rows(&store).await[0].requested_model.clone();
    let expected = if matches!(store, Store::MySql(_)) {
        255
    } else {
        300
    };
    assert_eq!(kept.chars().count(), expected);
    let found = filtered(
        &store,
        LogFilter {
            model: Some(kept.clone()),
            ..LogFilter::default()
        },
    )
    .await;
    assert_eq!(found.len(), 1);
    let (from, to) = summary_window();
    let series = store
        .usage_series(from, to, to - from, store::Split::Model)
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    assert_eq!(
        (series[0].group.as_str(), series[0].usage.requests),
        (kept.as_str(), 1)
    );
}

// --- usage ----------------------------------------------------------------------

/// The summary from rollups equals what the rows say.
async fn usage_summary_agrees_with_the_rows(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let summary = store.usage_summary(from, to).await.unwrap();
    let rows = all_rows(&store).await;
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
}

async fn usage_summary_p50_bucket_is_not_below_the_true_median(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let summary = store.usage_summary(from, to).await.unwrap();
    let rows = all_rows(&store).await;
    let p50 = store::UsageSummary::quantile_ms(&summary.latency_hist, 0.5).unwrap();
    let mut latencies: Vec<i64> = rows.iter().map(|r| r.latency_us).collect();
    latencies.sort_unstable();
    let true_p50_ms = latencies[(latencies.len() - 1) / 2] as f64 / 1000.0;
    assert!(
        true_p50_ms <= p50 as f64,
        "p50 bucket {p50} ms below the true {true_p50_ms} ms"
    );
}

/// The series adds up to the summary, per model too.
async fn usage_series_adds_up_to_the_summary_per_model(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let summary = store.usage_summary(from, to).await.unwrap();
    let rows = all_rows(&store).await;
    let series = store
        .usage_series(from, to, 120_000_000, store::Split::Model)
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
}

async fn usage_series_points_start_on_the_step(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let series = store
        .usage_series(from, to, 120_000_000, store::Split::Model)
        .await
        .unwrap();
    assert!(
        series
            .iter()
            .all(|p| (p.start_us - (NOW - HOUR)) % 120_000_000 == 0)
    );
}

async fn usage_series_without_split_adds_up_to_the_summary(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let summary = store.usage_summary(from, to).await.unwrap();
    let flat = store
        .usage_series(from, to, 60_000_000, store::Split::None)
        .await
        .unwrap();
    assert!(flat.iter().all(|p| p.group.is_empty()));
    assert_eq!(
        flat.iter().map(|p| p.usage.output_tokens).sum::<i64>(),
        summary.output_tokens
    );
}

async fn usage_series_counts_match_the_series_without_percentiles(store: Store) {
    let store = with_logs(store).await;
    let (from, to) = summary_window();
    let full = store
        .usage_series(from, to, 120_000_000, store::Split::Model)
        .await
        .unwrap();
    let counts = store
        .usage_series_counts(from, to, 120_000_000, store::Split::Model)
        .await
        .unwrap();
    assert_eq!(full.len(), counts.len());
    for (f, c) in full.iter().zip(&counts) {
        assert_eq!((f.start_us, &f.group), (c.start_us, &c.group));
        assert_eq!(
            (f.usage.requests, f.usage.errors, f.usage.output_tokens),
            (c.usage.requests, c.usage.errors, c.usage.output_tokens)
        );
        assert!((f.usage.cost_usd - c.usage.cost_usd).abs() < 1e-9);
    }
    // On PostgreSQL and MySQL the histograms are left out (the point of the call).
    if !matches!(store, Store::Sqlite(_)) {
        assert!(
            counts
                .iter()
                .all(|c| c.usage.latency_hist.iter().all(|n| *n == 0))
        );
    }
}

/// Summaries and series over windows that start on odd minutes and cut hours,
/// read partly from the hourly rollups and partly from the minutes, count every
/// event once.
async fn hourly_and_minute_rollups_add_up_over_odd_windows(store: Store) {
    let store = migrated(store).await;
    let events = spread();
    store.insert_batch(&events).await.unwrap();
    let minute = 60_000_000;
    for (start, minutes) in [
        (0, 600),
        (7, 61),
        (23, 185),
        (59, 240),
        (60, 120),
        (-13, 333),
    ] {
        let from = NOW + start * minute;
        let to = from + minutes * minute;
        let s = store.usage_summary(from, to).await.unwrap();
        let (requests, output, hist) = counted(&events, from, to);
        assert_eq!(
            (
                s.requests,
                s.output_tokens,
                s.latency_hist.iter().sum::<i64>()
            ),
            (requests, output, hist),
            "summary of minutes {start}..+{minutes}"
        );
        for step in [30 * minute, 90 * minute, 2 * HOUR, 5 * HOUR] {
            let series = store
                .usage_series(from, to, step, store::Split::Model)
                .await
                .unwrap();
            let mut at = from;
            while at < to {
                let end = (at + step).min(to);
                let got: i64 = series
                    .iter()
                    .filter(|p| p.start_us == at)
                    .map(|p| p.usage.requests)
                    .sum();
                assert_eq!(
                    got,
                    counted(&events, at, end).0,
                    "bucket at +{} min of step {} min",
                    (at - NOW) / minute,
                    step / minute
                );
                at += step;
            }
        }
    }
}

/// The migration that adds the hourly rollups fills them from the minute rollups
/// already kept: an existing database's whole hours still count.
async fn hourly_rollups_are_filled_from_the_minutes_by_their_migration(store: Store) {
    let store = migrated(store).await;
    let events = spread();
    store.insert_batch(&events).await.unwrap();
    let (from, to) = (NOW - NOW % HOUR, NOW - NOW % HOUR + 9 * HOUR);
    let before = store.usage_summary(from, to).await.unwrap();
    let migration: &'static str = match &store {
        Store::Postgres(_) => {
            include_str!("../migrations/postgres/20261201000002_hourly_rollups.sql")
        }
        Store::MySql(_) => include_str!("../migrations/mysql/20261201000002_hourly_rollups.sql"),
        Store::Sqlite(_) => include_str!("../migrations/sqlite/20261201000002_hourly_rollups.sql"),
    };
    let fill = &migration[migration.find("INSERT INTO").unwrap()..];
    run(&store, "DELETE FROM usage_rollups_hourly").await;
    assert_eq!(store.usage_summary(from, to).await.unwrap().requests, 0);
    run(&store, fill).await;
    let after = store.usage_summary(from, to).await.unwrap();
    assert_eq!(after.requests, events.len() as i64);
    assert_eq!(
        (after.output_tokens, after.latency_hist, after.ttft_hist),
        (before.output_tokens, before.latency_hist, before.ttft_hist)
    );
}

async fn usage_summary_of_an_empty_window_is_zero(store: Store) {
    let store = with_logs(store).await;
    let empty = store.usage_summary(0, 1).await.unwrap();
    assert_eq!(empty.requests, 0);
    assert_eq!(
        store::UsageSummary::quantile_ms(&empty.latency_hist, 0.5),
        None
    );
}

// --- retention ------------------------------------------------------------------

async fn retention_drops_the_days_before_the_cutoff(store: Store) {
    let store = with_logs(store).await;
    // The cutoff's own day stays.
    store.drop_before(NOW + HOUR).await.unwrap();
    assert_eq!(store.log_count().await.unwrap(), 21);
    // Everything before tomorrow goes.
    store.drop_before(NOW + DAY).await.unwrap();
    assert_eq!(store.log_count().await.unwrap(), 0);
}

// --- stored responses -----------------------------------------------------------

async fn stored_responses_are_put_replaced_and_deleted(store: Store) {
    let store = migrated(store).await;
    assert_eq!(store.get_response("resp_a").await.unwrap(), None);
    // Bytes as given: no text encoding, NUL and invalid UTF-8 included.
    let first = [b"{\"n\":1}".as_slice(), &[0, 0xff, 0xfe]].concat();
    store.put_response("resp_a", &first, NOW).await.unwrap();
    let large = vec![b'x'; 200_000];
    store.put_response("resp_b", &large, NOW).await.unwrap();
    assert_eq!(store.get_response("resp_a").await.unwrap(), Some(first));
    assert_eq!(store.get_response("resp_b").await.unwrap(), Some(large));
    // Ids are exact: case matters.
    assert_eq!(store.get_response("RESP_A").await.unwrap(), None);
    // Putting again replaces.
    store
        .put_response("resp_a", b"{\"n\":2}", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.get_response("resp_a").await.unwrap(),
        Some(b"{\"n\":2}".to_vec())
    );
    assert!(store.delete_response("resp_a").await.unwrap());
    assert!(!store.delete_response("resp_a").await.unwrap());
    assert_eq!(store.get_response("resp_a").await.unwrap(), None);
    assert!(store.get_response("resp_b").await.unwrap().is_some());
}

/// Stored responses go with the logs of their day: the same cutoff, whole days.
async fn retention_drops_the_stored_responses_of_the_days_before_the_cutoff(store: Store) {
    let store = with_logs(store).await;
    // NOW is 02:40; its day started 2 h 40 min before.
    store
        .put_response("resp_yesterday", b"{}", NOW - 3 * HOUR)
        .await
        .unwrap();
    store
        .put_response("resp_today", b"{}", NOW - 2 * HOUR)
        .await
        .unwrap();
    // Put yesterday, put again today: kept from the last put.
    store
        .put_response("resp_refreshed", b"{}", NOW - 3 * HOUR)
        .await
        .unwrap();
    store
        .put_response("resp_refreshed", b"{}", NOW)
        .await
        .unwrap();
    store.drop_before(NOW + HOUR).await.unwrap();
    assert_eq!(store.get_response("resp_yesterday").await.unwrap(), None);
    assert!(store.get_response("resp_today").await.unwrap().is_some());
    assert!(
        store
            .get_response("resp_refreshed")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.log_count().await.unwrap(), 21);
    store.drop_before(NOW + DAY).await.unwrap();
    assert_eq!(store.get_response("resp_today").await.unwrap(), None);
    assert_eq!(store.get_response("resp_refreshed").await.unwrap(), None);
    assert_eq!(store.log_count().await.unwrap(), 0);
}

// --- configuration rows ---------------------------------------------------------

fn provider(name: &str, spec: &str, at: i64) -> ProviderRow {
    ProviderRow {
        name: name.into(),
        spec: spec.into(),
        api_key_sealed: Some(format!("sealed-{name}")),
        api_key_mask: Some("…abcd".into()),
        created_at_us: at,
        updated_at_us: at,
    }
}

fn mapping(alias: &str, targets: &str, at: i64) -> MappingRow {
    MappingRow {
        alias: alias.into(),
        targets: targets.into(),
        strategy: "fallback".into(),
        created_at_us: at,
        updated_at_us: at,
    }
}

fn key(id: &str, at: i64) -> KeyRow {
    KeyRow {
        id: id.into(),
        name: format!("key {id}"),
        hash: format!("{id:0>64}"),
        prefix: format!("sk-{id}"),
        created_at_us: at,
        revoked_at_us: None,
        limits: String::new(),
    }
}

async fn providers_crud(store: Store) {
    let store = migrated(store).await;
    let openai = provider("openai", r#"{"kind":"openai"}"#, NOW);
    let mock = provider("mock", r#"{"kind":"mock"}"#, NOW + 1);
    assert!(store.insert_provider(&openai).await.unwrap());
    assert!(store.insert_provider(&mock).await.unwrap());
    // A taken name is refused and changes nothing.
    assert!(
        !store
            .insert_provider(&provider("openai", "{}", NOW + 2))
            .await
            .unwrap()
    );
    assert_eq!(
        store.providers().await.unwrap(),
        vec![mock.clone(), openai.clone()]
    );
    assert_eq!(
        store.provider("openai").await.unwrap(),
        Some(openai.clone())
    );
    assert_eq!(store.provider("nope").await.unwrap(), None);

    // An update replaces the settings and key, keeps the creation time.
    let updated = ProviderRow {
        spec: r#"{"kind":"openai","url":"http://x"}"#.into(),
        api_key_sealed: None,
        api_key_mask: None,
        created_at_us: 0,
        updated_at_us: NOW + 3,
        ..openai.clone()
    };
    assert!(store.update_provider(&updated).await.unwrap());
    assert_eq!(
        store.provider("openai").await.unwrap(),
        Some(ProviderRow {
            created_at_us: NOW,
            ..updated.clone()
        })
    );
    assert!(
        !store
            .update_provider(&provider("nope", "{}", NOW))
            .await
            .unwrap()
    );

    assert!(store.delete_provider("openai").await.unwrap());
    assert!(!store.delete_provider("openai").await.unwrap());
    assert_eq!(store.providers().await.unwrap(), vec![mock]);
}

async fn mappings_crud(store: Store) {
    let store = migrated(store).await;
    let fast = mapping("fast", r#"[{"provider":"mock","model":"m"}]"#, NOW);
    let smart = mapping("smart", r#"[{"provider":"openai","model":"o"}]"#, NOW + 1);
    assert!(store.insert_mapping(&smart).await.unwrap());
    assert!(store.insert_mapping(&fast).await.unwrap());
    assert!(
        !store
            .insert_mapping(&mapping("fast", "[]", NOW + 2))
            .await
            .unwrap()
    );
    assert_eq!(
        store.mappings().await.unwrap(),
        vec![fast.clone(), smart.clone()]
    );
    assert_eq!(store.mapping("fast").await.unwrap(), Some(fast.clone()));
    assert_eq!(store.mapping("nope").await.unwrap(), None);

    let retargeted = MappingRow {
        targets: "[]".into(),
        strategy: "least_busy".into(),
        created_at_us: 0,
        updated_at_us: NOW + 3,
        ..fast.clone()
    };
    assert!(store.update_mapping(&retargeted).await.unwrap());
    assert_eq!(
        store.mapping("fast").await.unwrap(),
        Some(MappingRow {
            created_at_us: NOW,
            ..retargeted
        })
    );
    assert!(
        !store
            .update_mapping(&mapping("nope", "[]", NOW))
            .await
            .unwrap()
    );

    assert!(store.delete_mapping("fast").await.unwrap());
    assert!(!store.delete_mapping("fast").await.unwrap());
    assert_eq!(store.mappings().await.unwrap(), vec![smart]);
}

async fn keys_are_listed_newest_first_and_revoked_once(store: Store) {
    let store = migrated(store).await;
    let old = key("k1", NOW);
    let new = key("k2", NOW + 1);
    store.insert_key(&old).await.unwrap();
    store.insert_key(&new).await.unwrap();
    // A key's hash is unique.
    assert!(
        store
            .insert_key(&KeyRow {
                id: "k3".into(),
                ..old.clone()
            })
            .await
            .is_err()
    );
    assert_eq!(store.keys().await.unwrap(), vec![new.clone(), old.clone()]);

    let revoked = KeyRow {
        revoked_at_us: Some(NOW + 5),
        ..old.clone()
    };
    assert_eq!(
        store.revoke_key("k1", NOW + 5).await.unwrap(),
        Some(revoked.clone())
    );
    // Revoking twice keeps the first time.
    assert_eq!(
        store.revoke_key("k1", NOW + 9).await.unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(store.revoke_key("nope", NOW).await.unwrap(), None);
    assert_eq!(store.keys().await.unwrap(), vec![new.clone(), revoked]);

    // Limits are replaced whole.
    let limited = store
        .set_key_limits("k2", r#"{"requests_per_minute":60}"#)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(limited.limits, r#"{"requests_per_minute":60}"#);
    assert_eq!(store.keys().await.unwrap()[0], limited);
    assert_eq!(store.set_key_limits("nope", "").await.unwrap(), None);
}

async fn seed_config_applies_once(store: Store) {
    let store = migrated(store).await;
    let providers = [provider("mock", r#"{"kind":"mock"}"#, NOW)];
    let mappings = [mapping("fast", "[]", NOW)];
    assert!(store.seed_config(&providers, &mappings, NOW).await.unwrap());
    assert_eq!(store.providers().await.unwrap(), providers.to_vec());
    assert_eq!(store.mappings().await.unwrap(), mappings.to_vec());

    // Once seeded, a later seed (even after a delete) changes nothing.
    assert!(store.delete_provider("mock").await.unwrap());
    assert!(
        !store
            .seed_config(&[provider("other", "{}", NOW)], &[], NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(store.providers().await.unwrap(), vec![]);
    assert_eq!(store.mappings().await.unwrap(), mappings.to_vec());
}

async fn prices_are_set_replaced_and_deleted(store: Store) {
    let store = migrated(store).await;
    let price = |key: &str, spec: &str, at: i64| store::PriceRow {
        key: key.into(),
        spec: spec.into(),
        updated_at_us: at,
    };
    store
        .put_price(&price("openai/gpt-4o", r#"{"input":2.5}"#, NOW))
        .await
        .unwrap();
    store
        .put_price(&price("fast", r#"{"input":1}"#, NOW))
        .await
        .unwrap();
    // A second price of a key replaces the first.
    store
        .put_price(&price("fast", r#"{"input":0.5}"#, NOW + 1))
        .await
        .unwrap();
    assert_eq!(
        store.prices().await.unwrap(),
        vec![
            price("fast", r#"{"input":0.5}"#, NOW + 1),
            price("openai/gpt-4o", r#"{"input":2.5}"#, NOW),
        ]
    );
    assert!(store.delete_price("fast").await.unwrap());
    assert!(!store.delete_price("fast").await.unwrap());
    assert_eq!(store.prices().await.unwrap().len(), 1);
}

// --- MariaDB only ---------------------------------------------------------------

/// What only the MySQL backend does its own way: the write of a batch that
/// races another writer of the same events, and bodies spread over statements.
/// (Its retention in bounded batches is tested in `src/mysql/retention.rs`.)
mod mariadb_specific {
    use super::*;

    /// The first event's row is written by another transaction between the
    /// batch's read of what is stored and its insert: the batch finds fewer
    /// rows written than it read as new, and writes again row by row. The
    /// first event is counted by the other writer only.
    #[tokio::test]
    async fn a_batch_racing_another_writer_of_its_events_writes_each_once() {
        let fresh = fresh_mariadb_store("race").await;
        let store = migrated(fresh.store.clone()).await;
        let Store::MySql(pool) = &store else {
            unreachable!("a mysql:// URL")
        };
        let (first, second) = (event(1, 0), event(2, 0));
        let mut other = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO request_logs (request_id, received_at, endpoint, client_key_id,
               requested_model, provider, upstream_model, stream, status, error_kind, error_message,
               input_tokens, output_tokens, cached_tokens, cost_usd, latency_us, ttft_us,
               upstream_latency_us)
             VALUES (?, ?, '', '', '', '', '', 0, 200, '', '', 0, 0, 0, 0, 0, 0, 0)",
        )
        .bind(&first.request_id)
        .bind(first.received_at_us)
        .execute(&mut *other)
        .await
        .unwrap();
        let writer = store.clone();
        let batch = tokio::spawn(async move { writer.insert_batch(&[first, second]).await });
        // The batch reads before the other commits, then waits on its row lock.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        other.commit().await.unwrap();
        assert_eq!(batch.await.unwrap().unwrap(), 1);
        assert_eq!(store.log_count().await.unwrap(), 2);
        assert_eq!(store.rollup_totals().await.unwrap().requests, 1);
        assert!(store.log(&event(2, 0).request_id).await.unwrap().is_some());
    }

    /// A provider's name longer than its column is refused, not cut to fit
    /// (and then a taken name is still told apart from an error).
    #[tokio::test]
    async fn a_name_too_long_for_its_column_is_refused() {
        let fresh = fresh_mariadb_store("long_name").await;
        let store = migrated(fresh.store.clone()).await;
        let long = provider(&"p".repeat(300), "{}", NOW);
        assert!(store.insert_provider(&long).await.is_err());
        assert_eq!(store.providers().await.unwrap(), vec![]);
        let short = provider("p", "{}", NOW);
        assert!(store.insert_provider(&short).await.unwrap());
        assert!(!store.insert_provider(&short).await.unwrap());
    }

    /// `mariadb://` is the same protocol as `mysql://`.
    #[tokio::test]
    async fn a_mariadb_url_opens_the_store() {
        let db = test_services::SharedMariaDb::get();
        let url = db.fresh_database("mariadb_url");
        let store = Store::connect(&url.replacen("mysql://", "mariadb://", 1))
            .await
            .unwrap();
        assert!(matches!(store, Store::MySql(_)));
        store.migrate().await.unwrap();
        assert_eq!(store.log_count().await.unwrap(), 0);
    }

    /// Bodies larger together than one statement holds are written over
    /// several, each whole.
    #[tokio::test]
    async fn bodies_larger_than_a_statement_are_written_whole() {
        let fresh = fresh_mariadb_store("big_bodies").await;
        let store = migrated(fresh.store.clone()).await;
        let big: Vec<LogEvent> = (1..=3)
            .map(|i| LogEvent {
                request_body: format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 << 20))
                    .into_bytes()
                    .into(),
                ..event(i, 0)
            })
            .collect();
        assert_eq!(store.insert_batch(&big).await.unwrap(), 3);
        for e in &big {
            let row = store.log(&e.request_id).await.unwrap().unwrap();
            assert_eq!(row.request_body.len(), e.request_body.len());
        }
    }
}
