//! The operations listener every component can serve on `ops.listen`: `/healthz`
//! (alive), `/readyz` (ready for work) and `/metrics` (Prometheus text, from the
//! process's one [`Registry`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::health::Readiness;

/// Where the operations listener listens; off when unset (the gateway and the
/// admin still answer health and metrics on their own ports).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsSettings {
    pub listen: Option<SocketAddr>,
}

/// The process's metrics, shared by every component it runs, registered once at
/// start and read by each scrape.
pub type Metrics = Arc<Registry>;

/// `/metrics`: the registry in the OpenMetrics text format Prometheus reads.
pub fn metrics_router<S: Clone + Send + Sync + 'static>(metrics: Metrics) -> Router<S> {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                let mut text = String::new();
                if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &metrics) {
                    tracing::warn!(error = %e, "cannot encode the metrics");
                }
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
                    .into_response()
            }
        }),
    )
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `listen` until `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    readiness: Readiness,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("ops.listen {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "health and metrics listening");
    let app = crate::health::router(readiness).merge(metrics_router(metrics));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}
