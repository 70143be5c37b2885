//! The admin API (first part): the request log, media and usage statistics, one
//! core ([`core`]) behind two faces on one port: HTTP/JSON under `/api/v1` (this
//! file) and gRPC `aiprox.v1.AdminService` ([`grpc`]). Every call needs the admin
//! token (constant-time comparison).
//!
//! - `GET /api/v1/logs`: filters (`from`, `to` in Unix ms, `model`, `provider`,
//!   `status` class 1–5, `error_kind`, `key`, `stream`, `min_latency_ms`, `q` text
//!   in the bodies), newest first, cursor pagination (`cursor`, `limit`).
//! - `GET /api/v1/logs/{id}`: metadata, bodies, media references with URLs.
//! - `GET /api/v1/media/{sha256}`: the file, with its content type.
//! - `GET /api/v1/stats/summary?from=&to=`: totals and latency percentiles over a
//!   range, from the rollups (never a scan of raw logs).
//! - `GET /api/v1/stats/series?from=&to=&step_s=&split=`: the same per time bucket,
//!   one line per model, provider or key (`split`), also from the rollups.

pub mod core;
pub mod grpc;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("aiprox.v1");
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{LogFilter, Store, UsageSummary};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::core::{AdminCore, ApiError, Kind, LogQuery};

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
    core: Arc<AdminCore>,
    token: Arc<SecretString>,
}

/// An [`ApiError`] as the HTTP face answers it.
struct HttpError(ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = json!({"error": {"code": self.0.code, "message": self.0.message}});
        (status, Json(body)).into_response()
    }
}

fn invalid_query(e: &QueryRejection) -> HttpError {
    HttpError(ApiError::new(Kind::Invalid, "invalid_query", e.body_text()))
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if core::constant_time_eq(given.as_bytes(), state.token.expose_secret().as_bytes()) {
        next.run(request).await
    } else {
        HttpError(ApiError::new(
            Kind::Unauthorized,
            "unauthorized",
            "a valid admin token is required",
        ))
        .into_response()
    }
}

/// The admin API: HTTP/JSON and gRPC on one router (gRPC requests are told apart
/// by their path, `/aiprox.v1.AdminService/...`).
pub fn router(store: Store, token: SecretString, media_root: PathBuf) -> Router {
    let core = Arc::new(AdminCore { store, media_root });
    let token = Arc::new(token);
    let state = AppState {
        core: core.clone(),
        token: token.clone(),
    };
    let grpc = tonic::service::Routes::new(
        proto::admin_service_server::AdminServiceServer::with_interceptor(
            grpc::Grpc(core),
            grpc::check_token(token),
        ),
    )
    .into_axum_router();
    Router::new()
        .route("/api/v1/logs", get(list_logs))
        .route("/api/v1/logs/{id}", get(get_log))
        .route("/api/v1/media/{sha256}", get(get_media))
        .route("/api/v1/stats/summary", get(summary))
        .route("/api/v1/stats/series", get(series))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
        .merge(grpc)
}

#[derive(Debug, Deserialize)]
struct HttpLogQuery {
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

#[allow(clippy::cast_precision_loss)]
fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

async fn list_logs(
    State(state): State<AppState>,
    query: Result<Query<HttpLogQuery>, QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let query = LogQuery {
        filter: LogFilter {
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
        },
        cursor: q.cursor,
        limit: q.limit,
    };
    let (rows, next) = state.core.list_logs(&query).await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "request_id": r.request_id, "received_at_ms": r.received_at_us / 1000,
                "endpoint": r.endpoint, "model": r.requested_model, "provider": r.provider,
                "stream": r.stream, "status": r.status, "error_kind": r.error_kind,
                "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                "latency_ms": ms(r.latency_us), "ttft_ms": ms(r.ttft_us),
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
) -> Result<Json<Value>, HttpError> {
    let row = state.core.get_log(&id).await?;
    let media: Vec<Value> = row
        .media
        .iter()
        .map(|(sha, _)| json!({"sha256": sha, "url": core::media_url(sha)}))
        .collect();
    Ok(Json(json!({
        "request_id": row.request_id, "received_at_ms": row.received_at_us / 1000,
        "endpoint": row.endpoint, "model": row.requested_model, "provider": row.provider,
        "upstream_model": row.upstream_model, "stream": row.stream, "status": row.status,
        "error_kind": row.error_kind, "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens, "cached_tokens": row.cached_tokens,
        "cost_usd": row.cost_usd, "latency_ms": ms(row.latency_us), "ttft_ms": ms(row.ttft_us),
        "upstream_latency_ms": ms(row.upstream_latency_us),
        "request": body_value(&row.request_body), "response": body_value(&row.response_body),
        "media": media,
    })))
}

async fn get_media(
    State(state): State<AppState>,
    Path(sha): Path<String>,
) -> Result<Response, HttpError> {
    let (mime, bytes) = state.core.media(&sha).await?;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

#[derive(Debug, Deserialize)]
struct RangeQuery {
    from: i64,
    to: i64,
}

async fn summary(
    State(state): State<AppState>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let Query(r) = query.map_err(|e| invalid_query(&e))?;
    let s = state.core.summary(r.from, r.to).await?;
    Ok(Json(usage_json(&s)))
}

/// Usage numbers as both faces show them.
fn usage_json(s: &UsageSummary) -> Value {
    let q = |h, p| UsageSummary::quantile_ms(h, p);
    json!({
        "requests": s.requests, "errors": s.errors,
        "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "cost_usd": s.cost_usd,
        "latency_ms": {"p50": q(&s.latency_hist, 0.5), "p95": q(&s.latency_hist, 0.95), "p99": q(&s.latency_hist, 0.99)},
        "ttft_ms": {"p50": q(&s.ttft_hist, 0.5), "p95": q(&s.ttft_hist, 0.95)},
    })
}

#[derive(Debug, Deserialize)]
struct SeriesQuery {
    from: i64,
    to: i64,
    #[serde(default)]
    step_s: i64,
    #[serde(default)]
    split: String,
}

async fn series(
    State(state): State<AppState>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Json<Value>, HttpError> {
    let Query(r) = query.map_err(|e| invalid_query(&e))?;
    let points = state.core.series(r.from, r.to, r.step_s, &r.split).await?;
    let data: Vec<Value> = points
        .iter()
        .map(|p| {
            let mut v = usage_json(&p.usage);
            v["start_ms"] = json!(p.start_us / 1000);
            v["group"] = json!(p.group);
            v
        })
        .collect();
    Ok(Json(json!({"data": data})))
}

/// Serves the admin API until `shutdown`.
pub async fn run(config: Config, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen: cannot bind {}: {e}", config.listen))?;
    tracing::info!(addr = %config.listen, "admin listening (HTTP/JSON and gRPC)");
    axum::serve(listener, router(store, config.token, config.media_root))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
