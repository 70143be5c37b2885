//! What the logger exports on `/metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone)]
pub struct Metrics {
    /// Events per written batch.
    pub batch_events: Histogram,
    /// Seconds from the first write attempt of a batch to its commit.
    pub write_seconds: Histogram,
    /// Log rows that were new (a replayed event writes none).
    pub rows_written: Counter,
    /// Messages the bus delivered again (not acknowledged in time, or after a restart).
    pub redeliveries: Counter,
    /// Write attempts that failed and were retried.
    pub write_failures: Counter,
    /// Messages of the durable consumer not yet delivered: the logger's lag.
    pub pending: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            write_seconds: Histogram::new(exponential_buckets(0.001, 2.5, 12)),
            rows_written: Counter::default(),
            redeliveries: Counter::default(),
            write_failures: Counter::default(),
            pending: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("aiprox_logger");
        r.register(
            "batch_events",
            "Events per written batch",
            m.batch_events.clone(),
        );
        r.register_with_unit(
            "write_duration",
            "From a batch's first write attempt to its commit",
            prometheus_client::registry::Unit::Seconds,
            m.write_seconds.clone(),
        );
        r.register(
            "rows_written",
            "Log rows written (new events only)",
            m.rows_written.clone(),
        );
        r.register(
            "redeliveries",
            "Messages the bus delivered again",
            m.redeliveries.clone(),
        );
        r.register(
            "write_failures",
            "Failed batch writes, retried",
            m.write_failures.clone(),
        );
        r.register(
            "pending_messages",
            "Messages waiting in the durable consumer",
            m.pending.clone(),
        );
        m
    }
}
