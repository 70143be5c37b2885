//! The server span of every HTTP request, by the HTTP semantic conventions (and the
//! RPC ones for gRPC), for an axum router:
//!
//! ```ignore
//! router
//!     .route_layer(axum::middleware::from_fn(trace::http::remember_route))
//!     .layer(axum::middleware::from_fn(trace::http::server_span))
//! ```
//!
//! The span joins the caller's trace (`traceparent`), lasts until the response
//! body's last byte (a stream's too), and is handed to the handlers as
//! [`ServerSpan`]. The query string is never recorded: it may carry a login token.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanContext, SpanKind, Status, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::Span;

/// The server span's context, in a request's extensions while it is handled; only
/// there when the span is sampled, so children are made only then.
#[derive(Debug, Clone)]
pub struct ServerSpan(pub SpanContext);

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's trace context, from `traceparent` and `tracestate` (an empty
/// context without them).
pub fn parent(headers: &HeaderMap) -> Context {
    if !headers.contains_key("traceparent") {
        return Context::new();
    }
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Headers(headers))
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Middleware: one server span per request, when tracing is on and the request is
/// sampled; otherwise the request passes untouched.
pub async fn server_span(mut request: Request, next: Next) -> Response {
    let Some(tracer) = super::tracer() else {
        return next.run(request).await;
    };
    let method = method(request.method());
    // Sampled first, with nothing built yet: a request sampled out costs this.
    let parent = parent(request.headers());
    let mut span = tracer
        .span_builder(method)
        .with_kind(SpanKind::Server)
        .start_with_context(tracer, &parent);
    if !span.is_recording() {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let grpc = is_grpc(request.headers());
    span.set_attributes([
        KeyValue::new("http.request.method", method),
        KeyValue::new("url.path", path.to_owned()),
        KeyValue::new("url.scheme", "http"),
        KeyValue::new("network.protocol.version", version(request.version())),
    ]);
    if let Some(agent) = request
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        span.set_attribute(KeyValue::new("user_agent.original", agent.to_owned()));
    }
    if grpc {
        // `/aiprox.v1.AdminService/ListLogs`: service and method.
        let full = path.trim_start_matches('/');
        let (service, rpc) = full.split_once('/').unwrap_or(("", ""));
        span.set_attributes([
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", rpc.to_owned()),
        ]);
        span.update_name(full.to_owned());
    }
    request
        .extensions_mut()
        .insert(ServerSpan(span.span_context().clone()));
    let response = next.run(request).await;
    let status = response.status();
    if let Some(route) = response.extensions().get::<MatchedPath>() {
        if !grpc {
            span.update_name(format!("{method} {}", route.as_str()));
        }
        span.set_attribute(KeyValue::new("http.route", route.as_str().to_owned()));
    }
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_attribute(KeyValue::new("error.type", status.as_str().to_owned()));
        span.set_status(Status::error(""));
    }
    if grpc {
        // A refusal before any message is "trailers only": the status is a header.
        grpc_status(&mut span, response.headers());
    }
    response.map(|body| Body::new(Traced { body, span, grpc }))
}

/// The method as the conventions name it: `HTTP` for one they do not know.
pub fn method(m: &http::Method) -> &'static str {
    match *m {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "HTTP",
    }
}

pub fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn grpc_status(span: &mut Span, headers: &HeaderMap) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return;
    };
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code));
    // The codes the RPC conventions count as server errors.
    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
        span.set_status(Status::error(""));
    }
}

/// Middleware for `route_layer`: hands the matched route out in the response's
/// extensions, where [`server_span`] (outside the routing) can read it.
pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// A response body that holds its request's span: the span ends when the body is
/// done (its last byte sent, or the client gone).
struct Traced {
    body: Body,
    span: Span,
    grpc: bool,
}

impl http_body::Body for Traced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && this.grpc
            && let Some(trailers) = frame.trailers_ref()
        {
            grpc_status(&mut this.span, trailers);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
