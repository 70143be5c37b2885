//! The log pipeline's counters, shared by the request path (queued, dropped when
//! full) and the publisher (published, spilled, replayed), and their Prometheus
//! text on `GET /metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::capture::LogQueue;

/// Counters of the log pipeline, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub recorded: AtomicU64,
    pub published: AtomicU64,
    pub spilled: AtomicU64,
    pub replayed: AtomicU64,
    pub dropped: AtomicU64,
    pub publish_failures: AtomicU64,
    pub spill_bytes: AtomicU64,
}

/// The pipeline's counters in Prometheus text format.
pub fn render(log_queue: &LogQueue) -> String {
    let m = &log_queue.metrics;
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    format!(
        "# TYPE aiprox_events_recorded_total counter\naiprox_events_recorded_total {}\n\
         # TYPE aiprox_events_published_total counter\naiprox_events_published_total {}\n\
         # TYPE aiprox_events_spilled_total counter\naiprox_events_spilled_total {}\n\
         # TYPE aiprox_events_replayed_total counter\naiprox_events_replayed_total {}\n\
         # TYPE aiprox_events_dropped_total counter\naiprox_events_dropped_total {}\n\
         # TYPE aiprox_event_publish_failures_total counter\naiprox_event_publish_failures_total {}\n\
         # TYPE aiprox_event_spill_bytes gauge\naiprox_event_spill_bytes {}\n\
         # TYPE aiprox_event_queue_depth gauge\naiprox_event_queue_depth {}\n",
        c(&m.recorded),
        c(&m.published),
        c(&m.spilled),
        c(&m.replayed),
        c(&m.dropped),
        c(&m.publish_failures),
        c(&m.spill_bytes),
        log_queue.queue_depth(),
    )
}
