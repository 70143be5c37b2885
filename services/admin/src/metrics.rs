//! What the admin exports on `/metrics`: the latency of its API calls by route.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Call {
    pub method: String,
    /// The route's pattern (`/api/v1/logs/{id}`), `other` for the UI and gRPC.
    pub route: String,
    pub status: u16,
}

type Latencies = Family<Call, Histogram, fn() -> Histogram>;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub requests: Latencies,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 12))
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        }
    }
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry
            .sub_registry_with_prefix("aiprox_admin")
            .register_with_unit(
                "request_duration",
                "Admin API calls by method, route and status",
                prometheus_client::registry::Unit::Seconds,
                m.requests.clone(),
            );
        m
    }
}

/// Times every call.
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .requests
        .get_or_create(&Call {
            method,
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}
