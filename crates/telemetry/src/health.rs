//! Liveness and readiness routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;

/// Whether the service should receive traffic. Starts ready; a draining service
/// marks itself not ready before it stops accepting work, so load balancers move
/// away first.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<AtomicBool>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Readiness {
    /// Not ready until [`Readiness::set`]: a consumer is ready once it consumes.
    pub fn not_yet() -> Self {
        Self(Arc::new(AtomicBool::new(false)))
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
}

/// `GET /healthz` answers 200 while the process runs; `GET /readyz` answers 200
/// while `readiness` is set, 503 after.
pub fn router<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.is_ready();
                async move {
                    if ready {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        )
}
