//! Building and running the gateway's HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use telemetry::health::Readiness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use config_model::ConfigError;

use crate::capture::Exchange;
use crate::capture::LogQueue;
use crate::config::Config;
use crate::error::Error;
use crate::routing::{RoutingTable, Source};
use crate::stream::Dialect;
use arc_swap::ArcSwap;

/// Shared by every handler: the routing table and the settings.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

/// [`AppState::downgrade`].
#[derive(Debug, Clone)]
pub struct WeakAppState(std::sync::Weak<Inner>);

impl WeakAppState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

#[derive(Debug)]
struct Inner {
    routing: ArcSwap<RoutingTable>,
    settings: crate::config::Settings,
    created: u64,
    log_queue: Option<LogQueue>,
    unrouted: crate::routes::unrouted::Unrouted,
    body_budget: crate::body_budget::BodyBudget,
    retry_budget: crate::retry::Budget,
    ejections: Arc<crate::ejection::Ejections>,
    limits: Arc<crate::limits::Limits>,
    conversations: crate::responses::Conversations,
}

impl AppState {
    /// `limits`: the client keys' limits, shared with the log publisher (which
    /// settles what requests reserved).
    pub fn new(
        config: &Config,
        log_queue: Option<LogQueue>,
        limits: Arc<crate::limits::Limits>,
    ) -> Result<Self, ConfigError> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ejections = Arc::new(crate::ejection::Ejections::new(
            config.settings.ejection.clone(),
        ));
        let routes = RoutingTable::build(&Source {
            config,
            keys: &[],
            keys_issued: false,
            created,
            previous: None,
            strict: true,
            ejections: &ejections,
            prices: &std::collections::BTreeMap::new(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                routing: ArcSwap::from_pointee(routes),
                settings: config.settings.clone(),
                created,
                log_queue,
                unrouted: crate::routes::unrouted::Unrouted::default(),
                body_budget: crate::body_budget::BodyBudget::new(
                    config.settings.max_body_bytes_in_flight,
                ),
                retry_budget: crate::retry::Budget::new(&config.settings.retry),
                ejections,
                conversations: crate::responses::Conversations::new(limits.bus().cloned()),
                limits,
            }),
        })
    }

    /// A handle that does not keep the state (and its log queue) alive: for
    /// what outlives the requests, as metrics collectors do.
    pub fn downgrade(&self) -> WeakAppState {
        WeakAppState(Arc::downgrade(&self.inner))
    }

    /// The current routing table and keys. Lock-free and without touching the
    /// shared reference count; hold it for one request at most.
    pub fn routing(&self) -> arc_swap::Guard<Arc<RoutingTable>> {
        self.inner.routing.load()
    }

    /// Replaces the routing table for the requests that start from now on.
    pub fn swap_routing(&self, routes: RoutingTable) {
        self.inner.routing.store(Arc::new(routes));
    }

    pub fn settings(&self) -> &crate::config::Settings {
        &self.inner.settings
    }

    /// When the gateway started (Unix seconds): the `created` of listed models.
    pub fn created(&self) -> u64 {
        self.inner.created
    }

    /// The room request bodies in flight share.
    pub fn body_budget(&self) -> &crate::body_budget::BodyBudget {
        &self.inner.body_budget
    }

    /// A request's upstream calls, by its route and what it asked.
    pub fn attempts<'a>(
        &'a self,
        route: &'a crate::routing::Route,
        asked: &crate::retry::Asked,
    ) -> Result<crate::retry::Attempts<'a>, Error> {
        crate::retry::Attempts::new(
            route,
            &self.inner.settings.retry,
            &self.inner.retry_budget,
            asked,
        )
    }

    /// Client keys' limits.
    pub fn limits(&self) -> &Arc<crate::limits::Limits> {
        &self.inner.limits
    }

    /// The stored Responses API conversations.
    pub fn conversations(&self) -> &crate::responses::Conversations {
        &self.inner.conversations
    }

    /// Every target's health (outlier ejection).
    pub fn ejections(&self) -> &Arc<crate::ejection::Ejections> {
        &self.inner.ejections
    }

    /// Requests no route served, counted.
    pub fn unrouted(&self) -> &crate::routes::unrouted::Unrouted {
        &self.inner.unrouted
    }

    /// The log pipeline, when events are on.
    pub fn log_queue(&self) -> Option<&LogQueue> {
        self.inner.log_queue.as_ref()
    }
}

/// Who and when: the request's id and arrival, for handlers, spans and the log.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: uuid::Uuid,
    pub received_at_us: i64,
    pub started: std::time::Instant,
    /// The client key's id, once authenticated.
    pub key_id: Option<Arc<str>>,
    /// Its limits, when it has any.
    pub limits: Option<Arc<config_model::KeyLimits>>,
    /// Who sent it, from `x-aiprox-source`: only the labels aiprox knows
    /// ([`source_of`]), so a client cannot fill the log with its own strings.
    pub source: &'static str,
    /// The request's server span, when sampled.
    pub span: Option<Arc<telemetry::trace::requests::RequestSpan>>,
    /// What the client asked of its routing (`x-aiprox-max-attempts`,
    /// `x-aiprox-fallbacks`).
    pub asked: crate::retry::Asked,
}

/// The `x-aiprox-source` labels the log keeps: the admin UI's Playground sets
/// `playground`; anything else is recorded as no label.
fn source_of(headers: &axum::http::HeaderMap) -> &'static str {
    match headers.get("x-aiprox-source").map(HeaderValue::as_bytes) {
        Some(b"playground") => "playground",
        _ => "",
    }
}

/// Gives every request a fresh UUIDv7 (never the client's: ids must be unique to
/// de-duplicate log events) and returns it in `x-request-id`.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = uuid::Uuid::now_v7();
    let received_at_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let source = source_of(request.headers());
    let asked = crate::retry::Asked::of(request.headers());
    let requests = telemetry::trace::requests::requests();
    let span = requests.and_then(|r| r.sample(&request));
    request.extensions_mut().insert(RequestContext {
        id,
        received_at_us,
        started: std::time::Instant::now(),
        key_id: None,
        limits: None,
        source,
        span: span.clone(),
        asked,
    });
    let debug_span = tracing::debug_span!("request", request_id = %id, method = %request.method(), path = request.uri().path());
    let mut response = tracing::Instrument::instrument(next.run(request), debug_span).await;
    if let (Some(span), Some(requests)) = (span, requests)
        && !span.claimed()
    {
        // No log record took the span (a model list, an unknown route): made here.
        let route = response
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map(|r| r.as_str().to_owned());
        let mut spans = telemetry::trace::otlp::Spans::default();
        let now = telemetry::trace::otlp::unix_nanos(SystemTime::now());
        let elapsed = std::time::Duration::from_nanos(now.saturating_sub(span.started));
        span.write(
            &mut spans,
            elapsed,
            response.status().as_u16(),
            route.as_deref(),
            |_| {},
        );
        requests.send(spans);
    }
    let mut buf = uuid::Uuid::encode_buffer();
    if let Ok(v) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The client key from `Authorization: Bearer` or `x-api-key` (what the OpenAI
/// and Anthropic SDKs send).
fn client_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// Checks the client key against the current snapshot's keys and records who
/// called; refusals in the error shape of the API called.
async fn authenticate(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let verdict = state.routing().authenticate(client_key(request.headers()));
    match verdict {
        Ok(caller) => {
            if let (Some(ctx), Some(caller)) =
                (request.extensions_mut().get_mut::<RequestContext>(), caller)
            {
                ctx.key_id = Some(caller.id);
                ctx.limits = caller.limits;
            }
            next.run(request).await
        }
        Err(e) => {
            let path = request.uri().path();
            let dialect = if path.starts_with("/v1/messages") {
                Dialect::Anthropic
            } else if path.starts_with("/v1/responses") {
                Dialect::Responses
            } else {
                Dialect::OpenAi
            };
            if let (Some(queue), Some(ctx)) = (
                state.log_queue(),
                request.extensions().get::<RequestContext>(),
            ) {
                queue.push(refusal(
                    ctx,
                    path,
                    dialect,
                    &e,
                    client_key(request.headers()),
                ));
            }
            match dialect {
                Dialect::Anthropic => e.into_anthropic_response(),
                Dialect::Responses => e.into_responses_response(),
                Dialect::OpenAi => e.into_response(),
            }
        }
    }
}

/// The log of a request refused for its key: metadata only (never the body, nor
/// more of the presented key than its first characters).
fn refusal(
    ctx: &RequestContext,
    path: &str,
    dialect: Dialect,
    e: &Error,
    key: Option<&str>,
) -> Exchange {
    let endpoint = ENDPOINTS
        .iter()
        .copied()
        .find(|known| path == *known || path.starts_with(&format!("{known}/")))
        .unwrap_or("other");
    let mut x = Exchange::new(ctx, endpoint, dialect);
    x.claim_trace();
    x.status = e.status_code().as_u16();
    let shown = key.map_or_else(
        || "no key presented".to_owned(),
        |k| {
            let prefix: String = k.chars().take(KEY_PREFIX_CHARS).collect();
            if k.chars().count() > 2 * KEY_PREFIX_CHARS {
                format!("key presented: {prefix}…")
            } else {
                "key presented: too short to show".to_owned()
            }
        },
    );
    x.fail(e.code(), format!("{e} ({shown})"));
    x.latency_us = u64::try_from(ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
    x
}

/// The endpoints a refused request is logged under (anything else: `other`).
const ENDPOINTS: [&str; 4] = [
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/models",
];

/// How much of a refused key the log shows: `sk-aiprox` and nothing secret.
const KEY_PREFIX_CHARS: usize = 9;

/// The whole HTTP API, ready to serve; `/metrics` serves `metrics`.
pub fn router(state: AppState, readiness: Readiness, metrics: telemetry::ops::Metrics) -> Router {
    // The routes whose server span no log record makes: the middleware makes it,
    // and needs their matched route, which only these hand out (a log record
    // names its endpoint itself, so the other requests skip the extra layer).
    let mut unlogged =
        crate::routes::openai::models_router().merge(crate::routes::responses::stored_router());
    if telemetry::trace::requests::requests().is_some() {
        unlogged =
            unlogged.route_layer(middleware::from_fn(telemetry::trace::http::remember_route));
    }
    let api = crate::routes::openai::router()
        .merge(crate::routes::responses::router())
        .merge(crate::routes::anthropic::router())
        .merge(unlogged)
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(telemetry::ops::metrics_router(metrics))
        .merge(api)
        .fallback(crate::routes::unrouted::unknown_route)
        .method_not_allowed_fallback(crate::routes::unrouted::method_not_allowed)
        .with_state(state)
        .merge(telemetry::health::router(readiness))
        .layer(middleware::from_fn(request_id))
}

/// A gateway bound to its port, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    router: Router,
    readiness: Readiness,
    metrics: telemetry::ops::Metrics,
    settings: crate::config::Settings,
    publisher: Option<tokio::task::JoinHandle<()>>,
    /// The live configuration's watch and the health reports, with a bus.
    watcher: Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)>,
}

impl Application {
    /// Validates the configuration, builds the providers, starts the log
    /// publisher on `bus` (no logging without one) and binds the listener.
    pub async fn build(config: Config, bus: Option<events::Bus>) -> anyhow::Result<Self> {
        Self::build_with_metrics(
            config,
            bus,
            prometheus_client::registry::Registry::default(),
        )
        .await
    }

    /// [`Self::build`], the gateway's metrics added to `registry` (which may hold
    /// other components' of the same process); `/metrics` serves all of it.
    pub async fn build_with_metrics(
        config: Config,
        bus: Option<events::Bus>,
        mut registry: prometheus_client::registry::Registry,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let limits = Arc::new(crate::limits::Limits::new(
            bus.clone(),
            config.settings.limits.clone(),
        ));
        let (log_queue, publisher) = match bus.clone() {
            Some(bus) => {
                let (r, p) = crate::publish::start(bus, &config.settings.events, limits.clone())
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "gateway.events.spill_dir: cannot use {}: {e}",
                            config.settings.events.spill_dir.display()
                        )
                    })?;
                (Some(r), Some(p))
            }
            None => (None, None),
        };
        let state = AppState::new(&config, log_queue, limits)?;
        if let Some(q) = state.log_queue() {
            q.metrics.register(&mut registry);
        }
        state.unrouted().register(&mut registry);
        state.ejections().register(&mut registry);
        state.limits().register(&mut registry);
        registry.register_collector(Box::new(crate::health_report::RestingKeys(
            state.downgrade(),
        )));
        if let Some(requests) = telemetry::trace::requests::requests() {
            registry.register(
                "aiprox_trace_spans_dropped",
                "Request spans not exported: the exporter's queue was full, or the collector refused or could not be reached.",
                requests.dropped.clone(),
            );
        }
        let metrics = std::sync::Arc::new(registry);
        let watcher = match bus {
            Some(bus) => {
                let reporter = tokio::spawn(crate::health_report::publish(
                    bus.clone(),
                    state.downgrade(),
                    config.settings.health_report_interval,
                ));
                Some((start_live_config(bus, &state).await, reporter))
            }
            None => None,
        };
        let listener = TcpListener::bind(config.settings.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "gateway.listen: cannot bind {}: {e}",
                    config.settings.listen
                )
            })?;
        let readiness = Readiness::default();
        Ok(Self {
            listener,
            router: router(state, readiness.clone(), metrics.clone()),
            readiness,
            metrics,
            settings: config.settings,
            publisher,
            watcher,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// Whether it takes traffic: off from the shutdown signal on.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Every metric `/metrics` serves, for the operations listener.
    pub fn metrics(&self) -> telemetry::ops::Metrics {
        self.metrics.clone()
    }

    /// Serves until `shutdown` is cancelled, then: readiness off, a drain delay,
    /// no new connections, in-flight requests and streams given the grace period.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let Self {
            listener,
            router,
            readiness,
            metrics: _,
            settings,
            publisher,
            watcher,
        } = self;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "gateway listening");
        let draining = CancellationToken::new();
        let stop_accepting = {
            let draining = draining.clone();
            let shutdown = shutdown.clone();
            async move {
                shutdown.cancelled().await;
                readiness.set(false);
                tokio::time::sleep(settings.drain_delay).await;
                tracing::info!("gateway draining");
                draining.cancel();
            }
        };
        let serve = crate::serve::serve(
            listener,
            router,
            settings.header_read_timeout,
            stop_accepting,
        );
        let deadline = async {
            draining.cancelled().await;
            tokio::time::sleep(settings.shutdown_grace).await;
        };
        tokio::select! {
            () = serve => {}
            () = deadline => {
                tracing::warn!(grace = ?settings.shutdown_grace, "grace period over, closing remaining connections");
            }
        }
        if let Some((watcher, reporter)) = watcher {
            watcher.abort();
            reporter.abort();
        }
        // Every request is answered and its log_queue dropped: flush the log.
        if let Some(publisher) = publisher
            && tokio::time::timeout(settings.shutdown_grace, publisher)
                .await
                .is_err()
        {
            tracing::error!("log events not flushed within the grace period");
        }
        Ok(())
    }
}

/// Applies the published configuration snapshot, when there is one, before the
/// gateway serves (a key revoked before this replica started must not work even
/// for a moment), then follows every change in the background.
async fn start_live_config(bus: events::Bus, state: &AppState) -> tokio::task::JoinHandle<()> {
    let applied = match tokio::time::timeout(std::time::Duration::from_secs(5), bus.get_config())
        .await
    {
        Ok(Ok(Some(bytes))) => crate::live::apply(state, &bytes).then_some(bytes),
        Ok(Ok(None)) => {
            tracing::info!("no configuration snapshot published yet; serving the file's");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the configuration snapshot; serving the file's until it arrives");
            None
        }
        Err(_) => {
            tracing::warn!(
                "timed out reading the configuration snapshot; serving the file's until it arrives"
            );
            None
        }
    };
    tokio::spawn(crate::live::watch(bus, state.clone(), applied))
}

/// Builds and runs a gateway until `shutdown`.
pub async fn run(
    config: Config,
    bus: Option<events::Bus>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    Application::build(config, bus)
        .await?
        .run_until_stopped(shutdown)
        .await?;
    Ok(())
}
