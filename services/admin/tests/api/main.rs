//! Logs, media and usage statistics through the admin API (HTTP and gRPC) on
//! port 0 over a real database. Each behaviour is its own test, run once per
//! backend (see `common`): a failure names the backend and the behaviour,
//! `postgres::pages_stay_whole_while_rows_arrive`.
//!
//! Covered: the admin token; logs (`logs.rs`: keyset pages stable while rows
//! arrive, each filter, text search, also paged across time windows, bad
//! filters and cursors refused); one log and its media (`media.rs`); the usage
//! summary and series (`stats.rs`); the same through gRPC (`grpc.rs`); the web
//! UI's session, pages and Playground forwarding (`ui.rs`).
//!
//! Each test sets up the state it needs itself, with the fixtures below
//! (`with_logs`, `with_spread_logs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod grpc;
mod logs;
mod media;
mod stats;
mod ui;

use events::proto::{LogEvent, MediaRef};
use secrecy::SecretString;
use serde_json::Value;
use store::Store;

const NOW_MS: i64 = 1_795_660_800_000;
const TOKEN: &str = "admin-token-for-tests";
const LOGIN_CODE: &str = "one-time-login-code-for-tests";

common::backends!(
    logs::logs_need_the_admin_token,
    logs::pages_stay_whole_while_rows_arrive,
    logs::logs_filter_by_status_class_before_a_time,
    logs::logs_filter_by_model_and_min_latency,
    logs::text_search_finds_the_request_bodies,
    logs::text_search_without_a_match_finds_nothing,
    logs::bad_filters_and_cursors_are_refused,
    logs::text_search_pages_across_time_windows,
    media::a_log_shows_its_request_and_serves_its_media,
    media::a_missing_log_is_not_found,
    media::missing_media_is_not_found,
    media::media_is_never_served_as_a_page,
    media::paths_that_match_nothing_are_404_json_even_without_the_token,
    stats::the_summary_agrees_with_the_rows_of_its_window,
    stats::the_series_adds_up_to_the_requests_per_model,
    stats::an_unknown_series_split_is_refused,
    grpc::grpc_needs_the_admin_token,
    grpc::grpc_pages_through_the_logs_of_a_window,
    grpc::grpc_filters_by_model_and_status_class,
    grpc::grpc_refuses_an_invalid_status_class,
    grpc::grpc_shows_a_log_and_serves_its_media,
    grpc::grpc_a_missing_log_is_not_found,
    grpc::grpc_the_summary_agrees_with_the_rows_of_its_window,
    logs::logs_list_the_upstream_model_cost_key_and_source,
    logs::a_key_shows_when_it_was_last_used,
    logs::a_key_shows_its_spend_against_its_budget,
    ui::a_session_cookie_opens_the_api_and_writes_need_the_csrf_header,
    ui::a_login_code_works_once_and_logout_ends_the_session,
    ui::the_ui_is_served_with_client_routes_and_a_strict_policy,
    ui::the_playground_reaches_the_gateway_marked_and_streamed,
    ui::the_playground_calls_only_the_gateway_api,
);

// --- the API under test -----------------------------------------------------------

pub struct Api {
    base: String,
    client: reqwest::Client,
    store: Store,
    media: tempfile::TempDir,
    gateway: ui::FakeGateway,
}

impl Api {
    /// The API over `store` (migrated, partitions around `NOW_MS`), with one
    /// media file: `cd…cd.png`, of event 3.
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
        let gateway = ui::FakeGateway::start().await;
        let options = admin::RouterOptions {
            gateway_url: Some(gateway.url.parse().unwrap()),
            login_code: Some(LOGIN_CODE.to_owned()),
            ..Default::default()
        };
        let app = admin::router(core, SecretString::from(TOKEN), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            store,
            media,
            gateway,
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

// --- fixtures ---------------------------------------------------------------------

/// Request `i`, `i` seconds after `NOW_MS`: even ones for `gpt4`, odd ones for
/// `claude`, every tenth a 429, `i` output tokens, `2i` ms; event 3 has an image.
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

/// The 30 requests of the window `NOW_MS - 60 s ..= NOW_MS + 31 s` (events
/// 1–30: 3 of them 429s, 15 for `claude`).
async fn with_window_logs(api: &Api) {
    api.store
        .insert_batch(&(1..=30).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
}

/// [`with_window_logs`], and four newer requests after the window (events
/// 100–103, one of them a 429), as arrive while a client pages, that the
/// window's bounds must leave out.
async fn with_logs(api: &Api) {
    with_window_logs(api).await;
    api.store
        .insert_batch(&(100..=103).map(event).collect::<Vec<_>>())
        .await
        .unwrap();
}

/// The id of spread request `i` (see [`with_spread_logs`]).
fn spread_id(i: u32) -> String {
    format!("01900000-0000-7000-9000-{i:012}")
}

/// 30 older requests spread over the ten days before the window, one every 8
/// hours from 12 days before `NOW_MS`: every third one's body says `needle`,
/// the others `hay`.
async fn with_spread_logs(api: &Api) {
    let day_us = 86_400_000_000;
    let base_us = NOW_MS * 1000 - 12 * day_us;
    api.store.ensure_partitions(base_us, 11).await.unwrap();
    let spread: Vec<LogEvent> = (0..30u32)
        .map(|i| LogEvent {
            request_id: spread_id(i),
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
}
