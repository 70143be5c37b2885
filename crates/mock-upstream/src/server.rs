//! The accept loop, the record of received requests and the `/_mock/` control routes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::behavior::{Behavior, Failure};

/// One request the mock received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
}

/// Counters a test reads to see what happened on the wire.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Streams whose client went away before the last chunk was sent.
    pub aborted_streams: usize,
    /// Streams sent to the end.
    pub completed_streams: usize,
    /// Anthropic requests refused as invalid (the gateway sent a body the real API
    /// would refuse): should stay 0.
    pub invalid_requests: usize,
    /// The most vendor requests in flight at once (until their response
    /// headers), since the mock started.
    #[serde(default)]
    pub max_in_flight: usize,
}

#[derive(Debug, Default)]
pub struct Shared {
    behavior: RwLock<Behavior>,
    requests: Mutex<Vec<Recorded>>,
    aborted_streams: AtomicUsize,
    completed_streams: AtomicUsize,
    invalid_requests: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Why each invalid request was refused.
    invalid_reasons: Mutex<Vec<String>>,
}

impl Shared {
    pub fn behavior(&self) -> Behavior {
        self.behavior.read().clone()
    }

    pub(crate) fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
        if self.behavior.read().no_record {
            return;
        }
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        self.requests.lock().push(Recorded {
            method: method.to_string(),
            path: uri.path().to_owned(),
            headers,
            body,
        });
    }

    pub(crate) fn stream_aborted(&self) {
        self.aborted_streams.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn invalid_request(&self, reason: &str) {
        self.invalid_requests.fetch_add(1, Ordering::SeqCst);
        self.invalid_reasons.lock().push(reason.to_owned());
    }

    pub(crate) fn stream_completed(&self) {
        self.completed_streams.fetch_add(1, Ordering::SeqCst);
    }

    fn stats(&self) -> Stats {
        Stats {
            aborted_streams: self.aborted_streams.load(Ordering::SeqCst),
            completed_streams: self.completed_streams.load(Ordering::SeqCst),
            invalid_requests: self.invalid_requests.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
        }
    }
}

/// A running mock. Dropping it stops the server.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    /// Starts on 127.0.0.1 and a free port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?).await
    }

    pub async fn start_on(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Self { addr, shared, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, ending in `/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        *self.shared.behavior.write() = behavior;
    }

    pub fn fail_with(&self, failure: Failure) {
        self.shared.behavior.write().failure = Some(failure);
    }

    /// The vendor requests received so far (control routes are not recorded).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().clone()
    }

    pub fn last_request(&self) -> Option<Recorded> {
        self.shared.requests.lock().last().cloned()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Why the mock refused requests as invalid Anthropic requests.
    pub fn invalid_reasons(&self) -> Vec<String> {
        self.shared.invalid_reasons.lock().clone()
    }

    /// The Anthropic base URL (no `/v1`: Anthropic clients add it).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits up to `timeout` for `pred` to hold on the stats.
    pub async fn wait_for_stats(
        &self,
        timeout: std::time::Duration,
        pred: impl Fn(&Stats) -> bool,
    ) -> Stats {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if pred(&stats) || tokio::time::Instant::now() >= deadline {
                return stats;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

/// The error a connection is closed with when a reset is injected.
#[derive(Debug)]
struct InjectedReset;

impl std::fmt::Display for InjectedReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for InjectedReset {}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let router = router(shared.clone());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let router = router.clone();
                let reset = req.uri().path().starts_with("/v1/")
                    && matches!(shared.behavior.read().failure, Some(Failure::Reset));
                async move {
                    if reset {
                        return Err(InjectedReset);
                    }
                    let response = match router.oneshot(req.map(Body::new)).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    Ok::<_, InjectedReset>(response)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let vendors = Router::new()
        .merge(crate::openai::router())
        .merge(crate::anthropic::router())
        .merge(crate::responses::router())
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            count_in_flight,
        ));
    Router::new()
        .merge(vendors)
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .route("/_mock/behavior", get(get_behavior).put(put_behavior))
        .route("/_mock/stats", get(get_stats))
        .with_state(shared)
}

/// Counts a vendor request in flight until its response headers are ready.
async fn count_in_flight(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = next.run(request).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Json<Vec<Recorded>> {
    Json(shared.requests.lock().clone())
}

async fn clear_requests(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    shared.requests.lock().clear();
    axum::http::StatusCode::NO_CONTENT
}

async fn get_behavior(State(shared): State<Arc<Shared>>) -> Json<Behavior> {
    Json(shared.behavior())
}

async fn put_behavior(
    State(shared): State<Arc<Shared>>,
    Json(behavior): Json<Behavior>,
) -> Json<Behavior> {
    *shared.behavior.write() = behavior.clone();
    Json(behavior)
}

async fn get_stats(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "stats": shared.stats(),
        "invalid_reasons": *shared.invalid_reasons.lock(),
    }))
}

/// Reads a whole body; the mock has no size limit.
pub(crate) async fn read_body(body: Body) -> Bytes {
    axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default()
}
