//! What the gateway puts on the bus for the log: every answered request once, even
//! when the consumers fall behind a bounded in-process backlog.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use events::Bus;
use events::memory::InProcessBus;
use events::proto::{LogBatch, LogEvent};
use prost::Message;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app_on};

/// A gateway publishing on an in-process bus, its spill in a temporary directory.
pub async fn logged_app(bus: &InProcessBus, spill: &std::path::Path) -> TestApp {
    let spill = spill.to_owned();
    spawn_app_on(Some(Bus::InProcess(bus.clone())), move |c| {
        c.settings.events.spill_dir = spill;
        c.settings.events.linger_ms = 1;
    })
    .await
}

/// The log events the bus delivers within `timeout`, by request id (with how many
/// times each came), until `want` distinct ones arrived.
pub async fn logged_events(
    bus: &InProcessBus,
    want: usize,
    timeout: Duration,
) -> HashMap<String, (LogEvent, usize)> {
    let mut consumer = Bus::InProcess(bus.clone())
        .consumer(events::subjects::LOGGER, events::subjects::LOG)
        .await
        .unwrap();
    let mut seen: HashMap<String, (LogEvent, usize)> = HashMap::new();
    let deadline = Instant::now() + timeout;
    while seen.len() < want && Instant::now() < deadline {
        for d in consumer.fetch(64, Duration::from_millis(100)).await.unwrap() {
            for event in LogBatch::decode(d.payload.clone()).unwrap().events {
                seen.entry(event.request_id.clone())
                    .or_insert((event, 0))
                    .1 += 1;
            }
        }
    }
    seen
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics: {text}"))
}

#[tokio::test]
async fn a_full_in_process_backlog_spills_to_disk_and_loses_nothing() {
    let spill = tempfile::tempdir().unwrap();
    // One byte: anything beyond the first waiting message is refused.
    let bus = InProcessBus::with_backlog_limit(1);
    let app = logged_app(&bus, spill.path()).await;
    let mut ids = Vec::new();
    for i in 0..60 {
        let response = app
            .post_chat(&json!({"model": "gpt4", "messages": [{"role": "user", "content": format!("n{i}")}]}))
            .await;
        assert_eq!(response.status(), 200);
        ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    // Nobody consumes yet: the backlog stays at its bound, the rest is on disk.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "aiprox_events_spilled_total").await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metric(&app, "aiprox_events_spilled_total").await > 0);
    assert!(metric(&app, "aiprox_event_spill_bytes").await > 0);
    assert!(bus.backlog_bytes() < 64 * 1024, "{}", bus.backlog_bytes());

    // The consumer catches up: every request arrives, once.
    let seen = logged_events(&bus, ids.len(), Duration::from_secs(20)).await;
    for id in &ids {
        assert_eq!(seen.get(id).map(|(_, n)| *n), Some(1), "request {id}");
    }
    assert_eq!(metric(&app, "aiprox_events_dropped_total").await, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&app, "aiprox_event_spill_bytes").await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metric(&app, "aiprox_event_spill_bytes").await, 0);
}
