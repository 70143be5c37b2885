//! The HTTP/JSON face under `/api/v1`, on the same core as gRPC. Every handler is
//! described for the OpenAPI document ([`crate::openapi`]) by its annotations and
//! its typed request and response bodies.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::{LogFilter, UsageSummary};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::core::{self, ApiError, Kind, LogQuery};
use crate::health::ProviderHealth;
use crate::keys::{CreatedKey, Key, KeyInput};
use crate::mappings::{Mapping, MappingInput};
use crate::providers::{Provider, ProviderInput};

/// An [`ApiError`] as the HTTP face answers it: `{"error": {"code", "message"}}`.
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case: `invalid_query`, `provider_exists`, `unauthorized`…
    pub code: String,
    pub message: String,
    /// The input field it is about, when it is about one (`base_url`, `alias`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = match self.0.kind {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.0.code.to_owned(),
                message: self.0.message,
                field: self.0.field.map(str::to_owned),
            },
        };
        (status, Json(body)).into_response()
    }
}

fn invalid_query(e: &QueryRejection) -> HttpError {
    HttpError(ApiError::new(Kind::Invalid, "invalid_query", e.body_text()))
}

fn invalid_body(e: &JsonRejection) -> HttpError {
    HttpError(ApiError::new(Kind::Invalid, "invalid_body", e.body_text()))
}

type Result<T> = std::result::Result<T, HttpError>;

/// A list.
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Received at or after, Unix ms.
    from: Option<i64>,
    /// Received before, Unix ms.
    to: Option<i64>,
    /// The requested model (alias).
    model: Option<String>,
    provider: Option<String>,
    /// HTTP status class, 1 to 5.
    status: Option<u16>,
    error_kind: Option<String>,
    /// Client key id.
    key: Option<String>,
    stream: Option<bool>,
    min_latency_ms: Option<i64>,
    /// Case-insensitive text in the request or response body.
    q: Option<String>,
    /// `playground` for the web UI's Playground, empty for other clients.
    source: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// 1 to 500, default 50.
    limit: Option<u32>,
}

/// One log's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogItem {
    pub request_id: String,
    pub received_at_ms: i64,
    pub endpoint: String,
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub stream: bool,
    pub status: i32,
    pub error_kind: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    /// The client key's id; empty on an open gateway.
    pub key: String,
    /// `playground`, or empty.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogPage {
    pub data: Vec<LogItem>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[allow(clippy::cast_precision_loss)]
fn ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

fn item(r: &store::LogSummary) -> LogItem {
    LogItem {
        request_id: r.request_id.clone(),
        received_at_ms: r.received_at_us / 1000,
        endpoint: r.endpoint.clone(),
        model: r.requested_model.clone(),
        provider: r.provider.clone(),
        upstream_model: r.upstream_model.clone(),
        stream: r.stream,
        status: r.status,
        error_kind: r.error_kind.clone(),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        cost_usd: r.cost_usd,
        latency_ms: ms(r.latency_us),
        ttft_ms: ms(r.ttft_us),
        key: r.client_key_id.clone(),
        source: r.source.clone(),
    }
}

/// Logs, newest first.
#[utoipa::path(get, path = "/api/v1/logs", tag = "logs", params(LogsQuery),
    responses((status = 200, body = LogPage), (status = 400, body = ErrorBody)))]
pub async fn list_logs(
    State(state): State<AppState>,
    query: std::result::Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Json<LogPage>> {
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
            source: q.source,
        },
        cursor: q.cursor,
        limit: q.limit,
    };
    let (rows, next) = state.core.list_logs(&query).await?;
    Ok(Json(LogPage {
        data: rows.iter().map(item).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaLink {
    pub sha256: String,
    /// Where to download it.
    pub url: String,
}

/// One log whole.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogDetail {
    pub request_id: String,
    pub received_at_ms: i64,
    pub endpoint: String,
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub stream: bool,
    pub status: i32,
    pub error_kind: String,
    pub error_message: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    /// Input tokens written to the provider's prompt cache (part of the input).
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub ttft_ms: f64,
    pub upstream_latency_ms: f64,
    pub key: String,
    pub source: String,
    /// The request body (JSON, or a string when it was not JSON); media parts are
    /// `aiprox-media://<sha256>` references.
    #[schema(value_type = Object)]
    pub request: Value,
    /// The response body; a stream assembled whole.
    #[schema(value_type = Object)]
    pub response: Value,
    pub media: Vec<MediaLink>,
    /// The upstream calls that failed before the logged one (retries and
    /// fallbacks), in order.
    pub failed_attempts: Vec<FailedAttempt>,
    /// The types of the built-in tools (`web_search`, `namespace`, …) the
    /// provider could not run, left out of the upstream request, in request
    /// order; empty when none was.
    pub omitted_tools: Vec<String>,
}

/// An upstream call that failed before another was made.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedAttempt {
    pub provider: String,
    pub upstream_model: String,
    /// 0 when the upstream gave no status (unreachable, timed out).
    pub status: u32,
    pub error_kind: String,
    pub latency_ms: f64,
    /// The key of the provider's pool that made it: its place, from 1; 0 when
    /// the provider has no key.
    pub key: u32,
}

fn body_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// One log: metadata, bodies, media links.
#[utoipa::path(get, path = "/api/v1/logs/{id}", tag = "logs", params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = LogDetail), (status = 404, body = ErrorBody)))]
pub async fn get_log(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LogDetail>> {
    let row = state.core.get_log(&id).await?;
    Ok(Json(LogDetail {
        media: row
            .media
            .iter()
            .map(|(sha, _)| MediaLink {
                sha256: sha.clone(),
                url: core::media_url(sha),
            })
            .collect(),
        failed_attempts: row
            .failed_attempts
            .iter()
            .map(|a| FailedAttempt {
                provider: a.provider.clone(),
                upstream_model: a.upstream_model.clone(),
                status: a.status,
                error_kind: a.error_kind.clone(),
                latency_ms: a.latency_us as f64 / 1000.0,
                key: a.key,
            })
            .collect(),
        omitted_tools: row.omitted_tools,
        request: body_value(&row.request_body),
        response: body_value(&row.response_body),
        request_id: row.request_id,
        received_at_ms: row.received_at_us / 1000,
        endpoint: row.endpoint,
        model: row.requested_model,
        provider: row.provider,
        upstream_model: row.upstream_model,
        stream: row.stream,
        status: row.status,
        error_kind: row.error_kind,
        error_message: row.error_message,
        key: row.client_key_id,
        source: row.source,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cached_tokens: row.cached_tokens,
        cache_write_tokens: row.cache_write_tokens,
        cost_usd: row.cost_usd,
        latency_ms: ms(row.latency_us),
        ttft_ms: ms(row.ttft_us),
        upstream_latency_ms: ms(row.upstream_latency_us),
    }))
}

/// A media file, with its content type.
#[utoipa::path(get, path = "/api/v1/media/{sha256}", tag = "logs", params(("sha256" = String, Path)),
    responses((status = 200, description = "the file", content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
pub async fn get_media(State(state): State<AppState>, Path(sha): Path<String>) -> Result<Response> {
    let (mime, bytes) = state.core.media(&sha).await?;
    // What a client wrote is never trusted to be harmless: only image and audio
    // types are served as such (files stored before the gateway checked, too), the
    // browser may not sniff another, nothing in the file may run, and anything
    // but an image is a download.
    let mime = events::stored_media_type(&mime);
    let disposition = if mime.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, disposition.to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// Unix ms.
    from: i64,
    /// Unix ms.
    to: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Percentiles {
    /// Milliseconds (the upper bound of the histogram bucket); null without data.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

/// Usage over a range, from the per-minute rollups.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: Percentiles,
    pub ttft_ms: Percentiles,
}

fn usage(s: &UsageSummary) -> Usage {
    let q = |h, p| UsageSummary::quantile_ms(h, p);
    Usage {
        requests: s.requests,
        errors: s.errors,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cost_usd: s.cost_usd,
        latency_ms: Percentiles {
            p50: q(&s.latency_hist, 0.5),
            p95: q(&s.latency_hist, 0.95),
            p99: q(&s.latency_hist, 0.99),
        },
        ttft_ms: Percentiles {
            p50: q(&s.ttft_hist, 0.5),
            p95: q(&s.ttft_hist, 0.95),
            p99: q(&s.ttft_hist, 0.99),
        },
    }
}

/// Totals and percentiles over a range.
#[utoipa::path(get, path = "/api/v1/stats/summary", tag = "stats", params(RangeQuery),
    responses((status = 200, body = Usage), (status = 400, body = ErrorBody)))]
pub async fn summary(
    State(state): State<AppState>,
    query: std::result::Result<Query<RangeQuery>, QueryRejection>,
) -> Result<Json<Usage>> {
    let Query(r) = query.map_err(|e| invalid_query(&e))?;
    Ok(Json(usage(&state.core.summary(r.from, r.to).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesQuery {
    /// Unix ms.
    from: i64,
    /// Unix ms.
    to: i64,
    /// Bucket width in seconds, at least 60.
    #[serde(default)]
    step_s: i64,
    /// `none`, `model`, `provider` or `key`.
    #[serde(default)]
    split: String,
    /// `false`: counts, tokens and cost only, the percentiles null (cheaper).
    /// Default `true`.
    percentiles: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Bucket start, Unix ms.
    pub start_ms: i64,
    /// The model, provider or key of this line; empty without a split.
    pub group: String,
    #[serde(flatten)]
    pub usage: Usage,
}

/// Usage per time bucket, one line per model, provider or key.
#[utoipa::path(get, path = "/api/v1/stats/series", tag = "stats", params(SeriesQuery),
    responses((status = 200, body = List<SeriesPoint>), (status = 400, body = ErrorBody)))]
pub async fn series(
    State(state): State<AppState>,
    query: std::result::Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Json<List<SeriesPoint>>> {
    let Query(r) = query.map_err(|e| invalid_query(&e))?;
    let percentiles = r.percentiles.unwrap_or(true);
    let points = state
        .core
        .series(r.from, r.to, r.step_s, &r.split, percentiles)
        .await?;
    Ok(Json(List {
        data: points
            .iter()
            .map(|p| SeriesPoint {
                start_ms: p.start_us / 1000,
                group: p.group.clone(),
                usage: usage(&p.usage),
            })
            .collect(),
    }))
}

/// Every provider.
#[utoipa::path(get, path = "/api/v1/providers", tag = "providers",
    responses((status = 200, body = List<Provider>)))]
pub async fn list_providers(State(state): State<AppState>) -> Result<Json<List<Provider>>> {
    Ok(Json(List {
        data: state.core.list_providers().await?,
    }))
}

/// Adds a provider.
#[utoipa::path(post, path = "/api/v1/providers", tag = "providers", request_body = ProviderInput,
    responses((status = 201, body = Provider), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_provider(
    State(state): State<AppState>,
    body: std::result::Result<Json<ProviderInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Provider>)> {
    let Json(input) = body.map_err(|e| invalid_body(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(state.core.create_provider(&input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/providers/{name}", tag = "providers", params(("name" = String, Path)),
    responses((status = 200, body = Provider), (status = 404, body = ErrorBody)))]
pub async fn get_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Provider>> {
    Ok(Json(state.core.get_provider(&name).await?))
}

/// Replaces a provider; an absent `api_key` keeps the stored key.
#[utoipa::path(put, path = "/api/v1/providers/{name}", tag = "providers", params(("name" = String, Path)), request_body = ProviderInput,
    responses((status = 200, body = Provider), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: std::result::Result<Json<ProviderInput>, JsonRejection>,
) -> Result<Json<Provider>> {
    let Json(input) = body.map_err(|e| invalid_body(&e))?;
    Ok(Json(state.core.update_provider(&name, &input).await?))
}

/// Deletes a provider no mapping targets.
#[utoipa::path(delete, path = "/api/v1/providers/{name}", tag = "providers", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    state.core.delete_provider(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/mappings", tag = "mappings",
    responses((status = 200, body = List<Mapping>)))]
pub async fn list_mappings(State(state): State<AppState>) -> Result<Json<List<Mapping>>> {
    Ok(Json(List {
        data: state.core.list_mappings().await?,
    }))
}

/// Adds an alias.
#[utoipa::path(post, path = "/api/v1/mappings", tag = "mappings", request_body = MappingInput,
    responses((status = 201, body = Mapping), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_mapping(
    State(state): State<AppState>,
    body: std::result::Result<Json<MappingInput>, JsonRejection>,
) -> Result<(StatusCode, Json<Mapping>)> {
    let Json(input) = body.map_err(|e| invalid_body(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(state.core.create_mapping(&input).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/mappings/{alias}", tag = "mappings", params(("alias" = String, Path)),
    responses((status = 200, body = Mapping), (status = 404, body = ErrorBody)))]
pub async fn get_mapping(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<Json<Mapping>> {
    Ok(Json(state.core.get_mapping(&alias).await?))
}

/// Replaces an alias's targets.
#[utoipa::path(put, path = "/api/v1/mappings/{alias}", tag = "mappings", params(("alias" = String, Path)), request_body = MappingInput,
    responses((status = 200, body = Mapping), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_mapping(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    body: std::result::Result<Json<MappingInput>, JsonRejection>,
) -> Result<Json<Mapping>> {
    let Json(input) = body.map_err(|e| invalid_body(&e))?;
    Ok(Json(state.core.update_mapping(&alias, &input).await?))
}

#[utoipa::path(delete, path = "/api/v1/mappings/{alias}", tag = "mappings", params(("alias" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_mapping(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<StatusCode> {
    state.core.delete_mapping(&alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every target's health across the gateways heard from in the last 30 s:
/// ejections (outlier ejection is per gateway), calls in flight, latency, and
/// the keys of a pool resting after a 429 or 401.
#[utoipa::path(get, path = "/api/v1/provider-health", tag = "providers", responses((status = 200, body = ProviderHealth)))]
pub async fn provider_health(State(state): State<AppState>) -> Result<Json<ProviderHealth>> {
    Ok(Json(state.core.provider_health().await?))
}

/// Every price: the table shipped with aiprox (each vendor's source and date)
/// and those set here.
#[utoipa::path(get, path = "/api/v1/prices", tag = "prices", responses((status = 200, body = crate::prices::Prices)))]
pub async fn list_prices(State(state): State<AppState>) -> Result<Json<crate::prices::Prices>> {
    Ok(Json(state.core.list_prices().await?))
}

/// Sets the price of a model, an alias or `provider/model` (USD per million
/// tokens), over `gateway.prices` and the bundled table, on every gateway.
#[utoipa::path(put, path = "/api/v1/prices/{key}", tag = "prices", params(("key" = String, Path)),
    request_body = config_model::prices::Price,
    responses((status = 200, body = crate::prices::PriceOverride), (status = 400, body = ErrorBody)))]
pub async fn set_price(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Json(price): Json<config_model::prices::Price>,
) -> Result<Json<crate::prices::PriceOverride>> {
    Ok(Json(state.core.set_price(&key, &price).await?))
}

/// Removes a price set through the admin API.
#[utoipa::path(delete, path = "/api/v1/prices/{key}", tag = "prices", params(("key" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_price(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    state.core.delete_price(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every client key, revoked ones included; never the keys themselves.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys", responses((status = 200, body = List<Key>)))]
pub async fn list_keys(State(state): State<AppState>) -> Result<Json<List<Key>>> {
    Ok(Json(List {
        data: state.core.list_keys().await?,
    }))
}

/// Issues a client key; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/keys", tag = "keys", request_body = KeyInput,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    body: std::result::Result<Json<KeyInput>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>)> {
    let Json(input) = body.map_err(|e| invalid_body(&e))?;
    Ok((
        StatusCode::CREATED,
        Json(state.core.create_key(&input).await?),
    ))
}

/// Revokes a key: every gateway refuses it within a second.
#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "keys", params(("id" = String, Path)),
    responses((status = 200, body = Key), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Key>> {
    Ok(Json(state.core.revoke_key(&id).await?))
}

/// Replaces a key's limits: every gateway applies them within a second.
#[utoipa::path(put, path = "/api/v1/keys/{id}/limits", tag = "keys", params(("id" = String, Path)),
    request_body = config_model::KeyLimits,
    responses((status = 200, body = Key), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_key_limits(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(limits): Json<config_model::KeyLimits>,
) -> Result<Json<Key>> {
    Ok(Json(state.core.set_key_limits(&id, &limits).await?))
}

/// Calls the provider's model list as a gateway would; reports latency or the error.
#[utoipa::path(post, path = "/api/v1/providers/{name}/test", tag = "providers", params(("name" = String, Path)),
    responses((status = 200, body = crate::connection::ConnectionTest), (status = 404, body = ErrorBody)))]
pub async fn test_provider(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<crate::connection::ConnectionTest>> {
    Ok(Json(state.core.test_provider(&name).await?))
}
