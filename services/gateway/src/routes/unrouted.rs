//! Requests for routes the gateway does not serve: answered 404 (or 405 for a
//! known path with the wrong method) in the error shape of the API the path
//! belongs to (Anthropic's under `/v1/messages`), logged at info with the path,
//! and counted by status on `/metrics`, so an operator sees which client wants
//! what.

use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::error::Error;

/// Requests no route served, by the status they got.
#[derive(Debug, Default)]
pub struct Unrouted {
    requests: Family<Status, Counter>,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Status {
    status: u16,
}

impl Unrouted {
    /// Registers `aiprox_unrouted_requests_total{status}`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aiprox_unrouted_requests",
            "Requests no route served, by status",
            self.requests.clone(),
        );
    }

    fn count(&self, status: u16) {
        self.requests.get_or_create(&Status { status }).inc();
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
    state.unrouted().count(404);
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
    state.unrouted().count(405);
    let path = uri.path();
    tracing::info!(%method, path, status = 405, "request with a method its route does not serve");
    let error = Error::MethodNotAllowed {
        method: method.to_string(),
        path: path.to_owned(),
    };
    answer(path, error)
}
