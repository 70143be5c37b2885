//! Requests for routes the gateway does not serve: answered 404 (or 405 for a
//! known path with the wrong method) in the error shape of the API the path
//! belongs to (Anthropic's under `/v1/messages`), logged at info with the path,
//! and counted by status on `/metrics`, so an operator sees which client wants
//! what.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;

use crate::app::AppState;
use crate::error::Error;

/// Requests no route served, by the status they got.
#[derive(Debug, Default)]
pub struct Unrouted {
    not_found: AtomicU64,
    method_not_allowed: AtomicU64,
}

impl Unrouted {
    /// The counters in Prometheus text format.
    pub fn render(&self) -> String {
        format!(
            "# TYPE aiprox_unrouted_requests_total counter\n\
             aiprox_unrouted_requests_total{{status=\"404\"}} {}\n\
             aiprox_unrouted_requests_total{{status=\"405\"}} {}\n",
            self.not_found.load(Ordering::Relaxed),
            self.method_not_allowed.load(Ordering::Relaxed),
        )
    }
}

/// The error in the shape of the API `path` belongs to.
fn answer(path: &str, error: Error) -> Response {
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        error.into_anthropic_response()
    } else {
        axum::response::IntoResponse::into_response(error)
    }
}

pub async fn unknown_route(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    state.unrouted().not_found.fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    tracing::info!(%method, path, status = 404, "request for a route aiprox does not serve");
    let error = Error::UnknownRoute {
        method: method.to_string(),
        path: path.to_owned(),
    };
    answer(path, error)
}

pub async fn method_not_allowed(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
) -> Response {
    state
        .unrouted()
        .method_not_allowed
        .fetch_add(1, Ordering::Relaxed);
    let path = uri.path();
    tracing::info!(%method, path, status = 405, "request with a method its route does not serve");
    let error = Error::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
    };
    answer(path, error)
}
