//! The web UI's Playground reaches the gateway through the admin: same origin as
//! the UI (no CORS, the session cookie), the gateway's own public API behind it.
//! `/api/v1/playground/v1/{chat/completions,messages,models}` is forwarded to the
//! configured gateway with `x-aiprox-source: playground` (its log rows say so)
//! and the client key the user gave (`x-aiprox-client-key`, as a bearer token),
//! the answer streamed back as it arrives. When the browser stops reading (the
//! Stop button), the forwarded request is dropped, and the gateway cancels the
//! upstream call as it does for any client that leaves.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use url::Url;

use crate::AppState;
use crate::core::{ApiError, Kind};
use crate::http::HttpError;

/// The gateway paths the Playground may call.
const ALLOWED: [&str; 3] = ["v1/chat/completions", "v1/messages", "v1/models"];
/// A request body the Playground sends (an attached image included).
const MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Forwarder {
    pub gateway: Url,
    pub client: reqwest::Client,
}

fn refused(kind: Kind, code: &'static str, message: impl Into<String>) -> Response {
    HttpError(ApiError::new(kind, code, message)).into_response()
}

pub async fn forward(
    State(state): State<AppState>,
    Path(path): Path<String>,
    request: Request,
) -> Response {
    let Some(forwarder) = state.playground.as_ref() else {
        return refused(
            Kind::Unavailable,
            "playground_off",
            "the Playground needs admin.gateway_url: where this admin reaches a gateway",
        );
    };
    if !ALLOWED.contains(&path.as_str()) {
        return refused(
            Kind::NotFound,
            "not_found",
            format!("the Playground does not call /{path}"),
        );
    }
    let Ok(url) = forwarder.gateway.join(&path) else {
        return refused(Kind::Invalid, "invalid_path", "not a gateway path");
    };
    let method = request.method().clone();
    let headers = request.headers().clone();
    let request_span = request
        .extensions()
        .get::<telemetry::trace::http::ServerSpan>()
        .cloned();
    let Ok(body) = axum::body::to_bytes(request.into_body(), MAX_BODY).await else {
        return refused(
            Kind::Invalid,
            "body_too_large",
            "a Playground request is at most 32 MiB",
        );
    };
    let mut out = forwarder
        .client
        .request(method, url)
        .header("x-aiprox-source", "playground")
        .body(body);
    // The gateway's spans join this request's trace.
    if let Some(span) = request_span {
        out = out.header("traceparent", telemetry::trace::traceparent(&span.0));
    }
    if let Some(v) = headers.get(header::CONTENT_TYPE) {
        out = out.header(header::CONTENT_TYPE, v);
    }
    if let Some(key) = headers
        .get("x-aiprox-client-key")
        .and_then(|v| v.to_str().ok())
    {
        out = out.bearer_auth(key.trim());
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "playground: gateway unreachable");
            return refused(
                Kind::Unavailable,
                "gateway_unreachable",
                format!("the gateway at {} cannot be reached", forwarder.gateway),
            );
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    // The answer's own headers the Playground reads; nothing else of the gateway's.
    let kept: Vec<(&'static str, HeaderValue)> = ["content-type", "x-request-id"]
        .into_iter()
        .filter_map(|name| {
            let v = answer.headers().get(name)?.to_str().ok()?;
            Some((name, HeaderValue::from_str(v).ok()?))
        })
        .collect();
    let mut response = Response::new(Body::from_stream(
        answer.bytes_stream().map_err(std::io::Error::other),
    ));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, v) in kept {
        h.insert(name, v);
    }
    response
}
