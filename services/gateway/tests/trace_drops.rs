//! Spans the collector never gets are counted, never waited for: a process of its
//! own, since the tracer is per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use events::Bus;
use events::memory::InProcessBus;
use serde_json::json;

#[tokio::test]
async fn spans_an_unreachable_collector_never_gets_are_counted_and_requests_are_not_slowed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut target =
        telemetry::trace::requests::Target::grpc(format!("http://{closed}").parse().unwrap());
    target.delay = Duration::from_millis(20);
    telemetry::trace::requests::install(target, "aiprox-gateway", false).unwrap();
    let bus = InProcessBus::default();
    let spill = tempfile::tempdir().unwrap();
    let dir = spill.path().to_owned();
    let app = helpers::spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = dir;
        c.settings.events.linger_ms = 1;
    })
    .await;
    for _ in 0..3 {
        let response = app
            .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(response.status(), 200);
    }
    // Server and GenAI span of each request, and the batches' send spans.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.metric("aiprox_trace_spans_dropped_total").await < 6 {
        assert!(Instant::now() < deadline, "drops not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
