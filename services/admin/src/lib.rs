//! The admin API (first part): the request log, media and usage statistics over
//! HTTP/JSON under `/api/v1`, every call behind the admin token.
//!
//! - `GET /api/v1/logs`: filters (`from`, `to` in Unix ms, `model`, `provider`,
//!   `status` class 2/4/5, `error_kind`, `key`, `stream`, `min_latency_ms`, `q` text
//!   in the bodies), newest first, cursor pagination (`cursor`, `limit`).
//! - `GET /api/v1/logs/{id}`: metadata, bodies, media references with URLs.
//! - `GET /api/v1/media/{sha256}`: the file, with its content type.
//! - `GET /api/v1/stats/summary`: totals and latency percentiles over a range, from
//!   the rollups (never a scan of raw logs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Cursor, LogFilter, Store, UsageSummary};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Every call must carry it as `Authorization: Bearer <token>`.
    pub token: SecretString,
    /// Where the media service writes files.
    pub media_root: PathBuf,
}

#[derive(Clone)]
struct AppState {
    store: Store,
    token: Arc<SecretString>,
    media_root: Arc<PathBuf>,
}

/// An admin API error: status, stable code, message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> Self {
        tracing::error!(error = %e, "database error");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database did not answer",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

/// Compares in time independent of where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), state.token.expose_secret().as_bytes()) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin token is required",
        )
        .into_response()
    }
}

/// The admin HTTP API.
pub fn router(store: Store, token: SecretString, media_root: PathBuf) -> Router {
    let state = AppState {
        store,
        token: Arc::new(token),
        media_root: Arc::new(media_root),
    };
    Router::new()
        .route("/api/v1/logs", get(list_logs))
        .route("/api/v1/logs/{id}", get(get_log))
        .route("/api/v1/media/{sha256}", get(get_media))
        .route("/api/v1/stats/summary", get(summary))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    from: Option<i64>,
    to: Option<i64>,
    model: Option<String>,
    provider: Option<String>,
    status: Option<u16>,
    error_kind: Option<String>,
    key: Option<String>,
    stream: Option<bool>,
    min_latency_ms: Option<i64>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list_logs(
    State(state): State<AppState>,
    query: Result<Query<LogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    if let Some(s) = q.status
        && !(1..=5).contains(&s)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "status is a class: 1 to 5",
        ));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "unknown cursor")
        })?),
        None => None,
    };
    let filter = LogFilter {
        from_us: q.from.map(|ms| ms * 1000),
        to_us: q.to.map(|ms| ms * 1000),
        model: q.model,
        provider: q.provider,
        status_class: q.status,
        error_kind: q.error_kind,
        client_key_id: q.key,
        stream: q.stream,
        min_latency_us: q.min_latency_ms.map(|ms| ms * 1000),
        text: q.q.filter(|t| !t.is_empty()),
    };
    let (rows, next) = state
        .store
        .list_logs(&filter, cursor.as_ref(), q.limit.unwrap_or(50))
        .await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "request_id": r.request_id, "received_at_ms": r.received_at_us / 1000,
                "endpoint": r.endpoint, "model": r.requested_model, "provider": r.provider,
                "stream": r.stream, "status": r.status, "error_kind": r.error_kind,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                "latency_ms": r.latency_us as f64 / 1000.0, "ttft_ms": r.ttft_us as f64 / 1000.0,
            })
        })
        .collect();
    Ok(Json(
        json!({"data": data, "next_cursor": next.map(|c| c.encode())}),
    ))
}

fn body_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

async fn get_log(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "log_not_found",
            format!("no log {id}"),
        )
    };
    if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(not_found());
    }
    let row = state.store.log(&id).await?.ok_or_else(not_found)?;
    Ok(Json(json!({
        "request_id": row.request_id, "received_at_ms": row.received_at_us / 1000,
        "endpoint": row.endpoint, "model": row.requested_model, "provider": row.provider,
        "upstream_model": row.upstream_model, "stream": row.stream, "status": row.status,
        "error_kind": row.error_kind, "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens, "cached_tokens": row.cached_tokens,
        "cost_usd": row.cost_usd, "latency_ms": row.latency_us as f64 / 1000.0,
        "ttft_ms": row.ttft_us as f64 / 1000.0,
        "upstream_latency_ms": row.upstream_latency_us as f64 / 1000.0,
        "request": body_value(&row.request_body), "response": body_value(&row.response_body),
        "media": row.media.iter().map(|(sha, _)| json!({"sha256": sha, "url": format!("/api/v1/media/{sha}")})).collect::<Vec<_>>(),
    })))
}

async fn get_media(
    State(state): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "media_not_found", "no such media");
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let (mime, path) = state.store.media(&sha).await?.ok_or_else(not_found)?;
    let bytes = tokio::fs::read(state.media_root.join(path))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "media_not_written",
                "the media file is not written yet",
            )
        })?;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    from: i64,
    to: i64,
}

async fn summary(
    State(state): State<AppState>,
    query: Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(r) = query
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))?;
    let s = state
        .store
        .usage_summary(r.from * 1000, r.to * 1000)
        .await?;
    let q = |h, p| UsageSummary::quantile_ms(h, p);
    Ok(Json(json!({
        "requests": s.requests, "errors": s.errors,
        "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "cost_usd": s.cost_usd,
        "latency_ms": {"p50": q(&s.latency_hist, 0.5), "p95": q(&s.latency_hist, 0.95), "p99": q(&s.latency_hist, 0.99)},
        "ttft_ms": {"p50": q(&s.ttft_hist, 0.5), "p95": q(&s.ttft_hist, 0.95)},
    })))
}

/// Serves the admin API until `shutdown`.
pub async fn run(config: Config, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen: cannot bind {}: {e}", config.listen))?;
    tracing::info!(addr = %config.listen, "admin listening");
    axum::serve(listener, router(store, config.token, config.media_root))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
