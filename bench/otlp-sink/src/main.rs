//! `otlp-sink ADDR`: an OTLP/gRPC trace receiver for the tracing benchmark. It
//! decodes every export (as a collector must) and counts the spans; `GET`-less, it
//! prints the count to stdout each second, so the benchmark can tell what arrived.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::{Request, Response, Status};

struct Sink(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4317".into())
        .parse()?;
    let count = Arc::new(AtomicU64::new(0));
    let shown = count.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            let n = shown.load(Ordering::Relaxed);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{n}");
            let _ = out.flush();
        }
    });
    tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(Sink(count)))
        .serve(addr)
        .await?;
    Ok(())
}
