//! The admin API: the request log, media, usage statistics, providers, model
//! mappings and client keys. One core ([`core`]; configuration in [`providers`],
//! [`mappings`], [`keys`], published by [`publisher`]) behind two faces on
//! one port: HTTP/JSON under `/api/v1` ([`http`], described by the OpenAPI
//! document at `/api/v1/openapi.json`, [`openapi`]) and gRPC
//! `aiprox.v1.AdminService` ([`grpc`]). Every call needs the admin token
//! (constant-time comparison).
//!
//! - Logs: `GET /api/v1/logs` (filters, cursor pagination), `GET /api/v1/logs/{id}`,
//!   `GET /api/v1/media/{sha256}`.
//! - Stats from the rollups: `GET /api/v1/stats/summary`, `GET /api/v1/stats/series`.
//! - Configuration: `/api/v1/providers`, `/api/v1/mappings`, `/api/v1/keys`. Every
//!   change is saved in the database, then published whole to the gateways
//!   ([`publisher::Publisher`]). `POST /api/v1/providers/{name}/test` calls the
//!   provider ([`connection`]).
//! - The web UI ([`ui`], embedded at build time) at `/`, its login at
//!   `/api/v1/session` ([`login`], [`session`]: the token or a session cookie),
//!   its Playground's gateway calls at `/api/v1/playground/…` ([`playground`]).

pub mod connection;
pub mod core;
pub mod grpc;
pub mod health;
pub mod http;
pub mod keys;
pub mod login;
pub mod mappings;
pub mod metrics;
pub mod openapi;
pub mod playground;
pub mod prices;
pub mod providers;
pub mod publisher;
pub mod session;
pub mod ui;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("aiprox.v1");
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::core::{AdminCore, ApiError, Kind};
use crate::http::HttpError;

/// The admin's own settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// Every call must carry it as `Authorization: Bearer <token>`.
    pub token: SecretString,
    /// Where the media service writes files.
    pub media_root: PathBuf,
    /// Where this admin reaches a gateway (the Playground's calls) and what the
    /// UI shows clients as the gateway's address.
    pub gateway_url: Option<url::Url>,
    /// A one-time login code to admit (the link `aiprox all` prints).
    pub login_code: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    core: Arc<AdminCore>,
    token: Arc<SecretString>,
    sessions: Arc<session::Sessions>,
    playground: Option<Arc<playground::Forwarder>>,
    gateway_url: Option<url::Url>,
}

/// How a request proved it may call the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Token,
    Cookie,
}

/// The credential a request carries, if it is valid.
pub(crate) fn authorised(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Credential> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return core::constant_time_eq(given.as_bytes(), state.token.expose_secret().as_bytes())
            .then_some(Credential::Token);
    }
    session::cookie_value(headers)
        .filter(|v| state.sessions.check(&state.token, v))
        .map(|_| Credential::Cookie)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let refusal = |message: &str| {
        HttpError(ApiError::new(Kind::Unauthorized, "unauthorized", message)).into_response()
    };
    match authorised(&state, request.headers()) {
        Some(Credential::Token) => next.run(request).await,
        Some(Credential::Cookie) => {
            let reads = matches!(
                *request.method(),
                axum::http::Method::GET | axum::http::Method::HEAD
            );
            if reads || request.headers().contains_key(session::CSRF_HEADER) {
                next.run(request).await
            } else {
                HttpError(ApiError::new(
                    Kind::Forbidden,
                    "csrf",
                    format!(
                        "a write by session cookie needs the {} header",
                        session::CSRF_HEADER
                    ),
                ))
                .into_response()
            }
        }
        None => refusal("a valid admin token or session is required"),
    }
}

async fn openapi_json() -> Response {
    match openapi::document() {
        Ok(document) => ([(header::CONTENT_TYPE, "application/json")], document).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "OpenAPI document not serialisable");
            HttpError(ApiError::new(
                Kind::Unavailable,
                "openapi_failed",
                "the OpenAPI document could not be written",
            ))
            .into_response()
        }
    }
}

/// What the router needs besides the core and the token.
#[derive(Debug, Default)]
pub struct RouterOptions {
    pub gateway_url: Option<url::Url>,
    pub login_code: Option<String>,
    pub metrics: metrics::Metrics,
}

/// The admin API: HTTP/JSON and gRPC on one router (gRPC requests are told apart
/// by their content type, `application/grpc`), and the web UI.
pub fn router(core: AdminCore, token: SecretString, options: RouterOptions) -> Router {
    let core = Arc::new(core);
    let token = Arc::new(token);
    let sessions = Arc::new(session::Sessions::default());
    if let Some(code) = options.login_code {
        sessions.add_code(code);
    }
    let playground = options.gateway_url.clone().map(|gateway| {
        Arc::new(playground::Forwarder {
            gateway,
            client: reqwest::Client::new(),
        })
    });
    let state = AppState {
        core: core.clone(),
        token: token.clone(),
        sessions,
        playground,
        gateway_url: options.gateway_url,
    };
    let grpc = tonic::service::Routes::new(
        proto::admin_service_server::AdminServiceServer::with_interceptor(
            grpc::Grpc(core),
            grpc::check_token(token),
        ),
    )
    .into_axum_router();
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/logs", get(http::list_logs))
        .route("/api/v1/logs/{id}", get(http::get_log))
        .route("/api/v1/media/{sha256}", get(http::get_media))
        .route("/api/v1/stats/summary", get(http::summary))
        .route("/api/v1/stats/series", get(http::series))
        .route(
            "/api/v1/providers",
            get(http::list_providers).post(http::create_provider),
        )
        .route(
            "/api/v1/providers/{name}",
            get(http::get_provider)
                .put(http::update_provider)
                .delete(http::delete_provider),
        )
        .route(
            "/api/v1/mappings",
            get(http::list_mappings).post(http::create_mapping),
        )
        .route(
            "/api/v1/mappings/{alias}",
            get(http::get_mapping)
                .put(http::update_mapping)
                .delete(http::delete_mapping),
        )
        .route("/api/v1/provider-health", get(http::provider_health))
        .route("/api/v1/prices", get(http::list_prices))
        .route(
            "/api/v1/prices/{*key}",
            axum::routing::put(http::set_price).delete(http::delete_price),
        )
        .route("/api/v1/keys", get(http::list_keys).post(http::create_key))
        .route("/api/v1/keys/{id}", axum::routing::delete(http::revoke_key))
        .route(
            "/api/v1/keys/{id}/limits",
            axum::routing::put(http::set_key_limits),
        )
        .route(
            "/api/v1/providers/{name}/test",
            axum::routing::post(http::test_provider),
        )
        .route(
            "/api/v1/playground/{*path}",
            axum::routing::any(playground::forward),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .route(
            "/api/v1/session",
            get(login::state).post(login::login).delete(login::logout),
        )
        .route_layer(middleware::from_fn(telemetry::trace::http::remember_route))
        .with_state(state)
        .fallback(move |request: Request| grpc_or_not_found(grpc.clone(), request))
        .merge(telemetry::health::router(
            telemetry::health::Readiness::default(),
        ))
        .layer(middleware::from_fn_with_state(
            options.metrics,
            metrics::record,
        ))
        .layer(middleware::from_fn(telemetry::trace::http::server_span))
}

/// A request no HTTP route matched: a gRPC call (told by its content type) goes to
/// the gRPC service, which checks the token itself; anything else is a 404 in the
/// admin's JSON error shape, so a mistyped path never looks like it worked.
async fn grpc_or_not_found(grpc: Router, request: Request) -> Response {
    let is_grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if !is_grpc {
        let gzip = request
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
        if let Some(page) = ui::serve(request.method(), request.uri().path(), gzip) {
            return page;
        }
        let path = request.uri().path().to_owned();
        return HttpError(ApiError::new(
            Kind::NotFound,
            "not_found",
            format!("no {} {path} in the admin API", request.method()),
        ))
        .into_response();
    }
    match tower::ServiceExt::oneshot(grpc, request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// What the admin needs besides its settings.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Store,
    /// Sends the configuration to the gateways after every change.
    pub publisher: crate::publisher::Publisher,
    /// Seals provider API keys (`AIPROX_SECRET_KEY`).
    pub secret: Option<config_model::secret::SecretKey>,
    pub metrics: metrics::Metrics,
}

/// Serves the admin API until `shutdown`.
pub async fn run(config: Settings, deps: Deps, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("admin.listen: cannot bind {}: {e}", config.listen))?;
    tracing::info!(addr = %config.listen, "admin listening (HTTP/JSON and gRPC)");
    let core = AdminCore {
        store: deps.store,
        media_root: config.media_root,
        publisher: deps.publisher,
        secret: deps.secret,
    };
    let options = RouterOptions {
        gateway_url: config.gateway_url,
        login_code: config.login_code,
        metrics: deps.metrics,
    };
    axum::serve(listener, router(core, config.token, options))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
