//! The logger: takes `LogBatch`es from its durable consumer in batches (by count
//! and by time), writes each batch in one transaction ([`store::Store::insert_batch`]:
//! logs, bodies, media links, rollups; idempotent), and acknowledges only after the
//! commit. A failed write is retried with the same batch until it succeeds or the
//! process stops (unacknowledged messages are then delivered again). It also keeps
//! daily partitions created ahead and drops those past the retention.

mod metrics;

pub use metrics::Metrics;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use events::proto::{LogBatch, LogEvent};
use events::{Bus, Delivery, subjects};
use prost::Message;
use serde::Deserialize;
use store::Store;
use telemetry::health::Readiness;
use telemetry::retry::{self, Pause};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// About how many events one transaction writes: messages are fetched
    /// `batch_max / 16` at a time, each a gateway's batch of up to 64 events.
    pub batch_max: usize,
    /// Longest wait for a batch to fill before writing what there is.
    #[serde(with = "humantime_serde")]
    pub batch_wait: Duration,
    /// Days of logs kept; older days are dropped whole. None keeps everything.
    pub retention_days: Option<u32>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_max: 1000,
            batch_wait: Duration::from_millis(200),
            retention_days: None,
        }
    }
}

const DAY_US: i64 = 86_400_000_000;

fn messages_per_fetch(config: &Settings) -> usize {
    (config.batch_max / 16).max(1)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// What the logger reports: its metrics, and whether it is consuming.
#[derive(Debug, Clone)]
pub struct Observed {
    pub metrics: Metrics,
    /// Set once the migrations ran and the consumer is up; unset while fetching
    /// or writing fails.
    pub readiness: Readiness,
}

/// Runs until `shutdown`: migrations first, then the consume-write-ack loop.
pub async fn run(
    config: Settings,
    bus: Bus,
    store: Store,
    observed: Observed,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    store.migrate().await?;
    store.ensure_partitions(now_us() - DAY_US, 4).await?;
    let mut consumer = bus.consumer(subjects::LOGGER, subjects::LOG).await?;
    let Observed { metrics, readiness } = observed;
    readiness.set(true);
    let mut days: HashSet<i64> = HashSet::new();
    let mut last_maintenance = std::time::Instant::now();
    tracing::info!("logger consuming");
    let mut pause = Pause::new(retry::policy(
        Duration::from_secs(1),
        Duration::from_secs(5),
    ));
    while !shutdown.is_cancelled() {
        let deliveries = tokio::select! {
            d = consumer.fetch(messages_per_fetch(&config), config.batch_wait) => d,
            () = shutdown.cancelled() => break,
        };
        let deliveries = match deliveries {
            Ok(d) => {
                pause.reset();
                readiness.set(true);
                d
            }
            Err(e) => {
                readiness.set(false);
                tracing::warn!(error = %e, "cannot fetch log events; retrying");
                pause.wait(&shutdown).await;
                continue;
            }
        };
        if last_maintenance.elapsed() > Duration::from_secs(3600) {
            last_maintenance = std::time::Instant::now();
            maintain(&store, &config).await;
        }
        if let Some(pending) = consumer.pending().await {
            metrics
                .pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        if deliveries.is_empty() {
            continue;
        }
        write(&store, deliveries, &mut days, &metrics, &shutdown).await;
    }
    readiness.set(false);
    // Drain what is already there (the in-process bus loses what stays queued).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match consumer
            .fetch(config.batch_max, Duration::from_millis(100))
            .await
        {
            Ok(d) if !d.is_empty() => write(&store, d, &mut days, &metrics, &shutdown).await,
            _ => break,
        }
    }
    tracing::info!("logger stopped");
    Ok(())
}

async fn maintain(store: &Store, config: &Settings) {
    if let Err(e) = store.ensure_partitions(now_us(), 3).await {
        tracing::warn!(error = %e, "cannot create partitions ahead");
    }
    if let Some(days) = config.retention_days {
        match store.drop_before(now_us() - i64::from(days) * DAY_US).await {
            Ok(n) => tracing::info!(dropped = n, "retention applied"),
            Err(e) => tracing::warn!(error = %e, "retention failed"),
        }
    }
}

/// Writes one batch, retrying until it is committed (or shutdown), then acks it.
async fn write(
    store: &Store,
    deliveries: Vec<Delivery>,
    days: &mut HashSet<i64>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let started = std::time::Instant::now();
    let redelivered = deliveries.iter().filter(|d| d.redelivered).count();
    metrics.redeliveries.inc_by(redelivered as u64);
    let mut events: Vec<LogEvent> = Vec::with_capacity(deliveries.len());
    for d in &deliveries {
        match LogBatch::decode(d.payload.clone()) {
            Ok(batch) => events.extend(batch.events),
            // A message that is not a LogBatch can never be written: ack it away.
            Err(e) => tracing::error!(error = %e, "undecodable log batch skipped"),
        }
    }
    // One span for the batch, linked to each traced request.
    let mut span = telemetry::trace::batch_span(
        subjects::LOG,
        subjects::LOGGER,
        events.iter().map(|e| e.traceparent.as_str()),
        events.len(),
    );
    let mut pause = Pause::new(retry::policy(
        Duration::from_millis(100),
        Duration::from_secs(5),
    ));
    loop {
        let new_days: Vec<i64> = events
            .iter()
            .map(|e| e.received_at_us.div_euclid(DAY_US))
            .filter(|d| !days.contains(d))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut ok = true;
        for day in &new_days {
            if let Err(e) = store.ensure_partitions(day * DAY_US, 1).await {
                tracing::warn!(error = %e, "cannot create a partition");
                ok = false;
            } else {
                days.insert(*day);
            }
        }
        if ok {
            match store.insert_batch(&events).await {
                Ok(inserted) => {
                    tracing::debug!(batch = events.len(), inserted, "log batch written");
                    metrics.rows_written.inc_by(inserted as u64);
                    metrics.batch_events.observe(events.len() as f64);
                    metrics
                        .write_seconds
                        .observe(started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    metrics.write_failures.inc();
                    if let Some(span) = &mut span {
                        use telemetry::trace::SpanTrait as _;
                        span.add_event("write failed; retrying", vec![]);
                    }
                    tracing::warn!(error = %e, batch = events.len(), "log batch not written; retrying");
                }
            }
        }
        if shutdown.is_cancelled() || !pause.wait(shutdown).await {
            // Unacknowledged: the bus delivers them again after restart.
            return;
        }
    }
    for d in deliveries {
        if let Err(e) = d.ack().await {
            // Written but not acknowledged: delivered again, and dropped by the
            // idempotent insert.
            tracing::warn!(error = %e, "ack failed");
        }
    }
}
