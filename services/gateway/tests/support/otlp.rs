//! A real OTLP/gRPC trace receiver for the tests (the collector's own service, from
//! `opentelemetry-proto`), on a free port, keeping every span it is sent; and the
//! gateway's request tracer installed to export to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

#[derive(Clone, Default)]
pub struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.spans.lock().unwrap();
        for r in request.into_inner().resource_spans {
            for s in r.scope_spans {
                kept.extend(s.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Starts the receiver and installs the request tracer exporting to it (once
    /// per process: the tracer is global).
    pub async fn start(capture_content: bool) -> Self {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let mut target =
            telemetry::trace::requests::Target::grpc(format!("http://{addr}").parse().unwrap());
        // Exported at once, not after the SDK's default 5 s.
        target.delay = Duration::from_millis(20);
        telemetry::trace::requests::install(target, "aiprox-gateway", capture_content).unwrap();
        receiver
    }

    /// The spans received of `trace_id`, once `want` of them arrived (or 10 s).
    pub async fn trace(&self, trace_id: &[u8], want: usize) -> Vec<Span> {
        self.wait(|s| s.trace_id == trace_id, want).await
    }

    /// The spans received that `keep` keeps, once `want` of them arrived (or 10 s).
    pub async fn wait(&self, keep: impl Fn(&Span) -> bool, want: usize) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| keep(s))
                .cloned()
                .collect();
            if found.len() >= want || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn all(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

pub fn attr(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v| v.value)
}

pub fn text(span: &Span, key: &str) -> Option<String> {
    match attr(span, key)? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

pub fn int(span: &Span, key: &str) -> Option<i64> {
    match attr(span, key)? {
        Value::IntValue(i) => Some(i),
        _ => None,
    }
}

pub fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<_> = spans.iter().map(|s| s.name.clone()).collect();
        panic!("no span {name} among {names:?}")
    })
}
