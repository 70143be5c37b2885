//! The background half of the log pipeline: turns captured [`Exchange`]s into
//! `LogEvent`s and `MediaEvent`s and publishes them, awaiting the bus's
//! acknowledgements.
//!
//! - this module: the publisher task: gathers exchanges, has them prepared, sends
//!   them, spills what the bus refused and replays the spill in order.
//! - [`prepare`]: one exchange → its log event and media events (the CPU work).
//! - [`batch`]: messages ready to publish, and log events packed into batches.
//! - [`spill`]: the bounded directory on local disk where messages wait while the
//!   bus is away (its file system work off the runtime's threads).
//! - [`metrics`]: the pipeline's counters on `/metrics`.
//!
//! Only past the spill limit is anything dropped, counted in
//! `aiprox_events_dropped_total` and logged. On shutdown, what is still queued is
//! published or spilled, so the next start replays it.

mod batch;
pub mod metrics;
mod prepare;
mod route_attributes;
mod spans;
mod spill;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use events::proto::MediaEvent;
use events::{Bus, Outgoing};
use futures_util::FutureExt;
use prost::Message;
use telemetry::retry::{self, Pause};
use telemetry::trace::otlp::Spans;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::batch::{Outbound, Subject, batch_logs};
use self::metrics::Metrics;
use self::prepare::prepare;
use self::spill::Spill;
use crate::capture::{Exchange, LogQueue};
use crate::config::EventSettings;

/// Starts the publisher; the returned queue feeds it. The task ends once every
/// clone of the queue is gone and what it held is flushed.
pub fn start(
    bus: Bus,
    settings: &EventSettings,
    limits: Arc<crate::limits::Limits>,
) -> std::io::Result<(LogQueue, JoinHandle<()>)> {
    let metrics = Arc::new(Metrics::default());
    let spill = Spill::open(
        &settings.spill_dir,
        settings.spill_max_bytes,
        metrics.clone(),
    )?;
    let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
    let publisher = Publisher {
        bus,
        spill,
        metrics: metrics.clone(),
        limits,
        linger: Duration::from_millis(settings.linger_ms),
    };
    let task = tokio::spawn(publisher.run(rx));
    Ok((LogQueue::new(tx, metrics), task))
}

/// A batch of exchanges, prepared.
struct Prepared {
    messages: Vec<Outbound>,
    /// The contexts of its traced requests, and their encoded spans.
    traced: Vec<telemetry::trace::SpanContext>,
    spans: Spans,
}

/// The server span contexts of the traced exchanges, and room for their spans
/// (about 1 KiB each, reserved once).
fn traced(exchanges: &[Exchange]) -> (Vec<telemetry::trace::SpanContext>, Spans) {
    let traced: Vec<_> = exchanges
        .iter()
        .filter_map(|x| x.trace.as_ref().map(|t| t.context.clone()))
        .collect();
    let spans = match telemetry::trace::requests::requests() {
        Some(requests) if !traced.is_empty() => requests.spans(traced.len() * 1024),
        _ => Spans::default(),
    };
    (traced, spans)
}

/// Batches whose bodies and frames add up to at most this many bytes are prepared
/// on the publisher's runtime thread; bigger ones (media to decode and hash, long
/// streams) in the blocking pool.
const INLINE_BATCH_BYTES: usize = 512 * 1024;

/// Bytes of bodies and frames prepared between two yields when a batch is prepared
/// inline: about 60 ordinary requests or 10 streams, a few hundred microseconds at
/// most. (A yield every 8 requests measured 10–12 % instead of 5–8 % non-streaming.)
const INLINE_BYTES_BETWEEN_YIELDS: usize = 64 * 1024;

/// Most exchanges taken at the first wake-up, and in all for one batch.
const FIRST_TAKE: usize = 256;
const MOST_PER_BATCH: usize = 1024;
/// Most in one batch while the spill holds messages: each batch then costs an
/// fsync, so when the bus is behind (`aiprox all` overloaded, NATS away) the
/// batches grow with the queue, and the spill keeps up with what arrives.
const MOST_PER_SPILLED_BATCH: usize = 8192;

struct Publisher {
    bus: Bus,
    spill: Spill,
    metrics: Arc<Metrics>,
    /// Settles what each request's limits reserved, once its cost is known.
    limits: Arc<crate::limits::Limits>,
    linger: Duration,
}

/// What the publisher woke up for.
enum Woken {
    /// Exchanges arrived.
    Exchanges,
    /// Time to try the spill again.
    Replay,
    /// Every sender is gone: shutdown.
    Closed,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Exchange>) {
        let mut batch = Vec::new();
        // At most 1 s: in `aiprox all` a full in-process backlog is routine under
        // overload, and the writer must not sit idle for long once it has room.
        let mut pause = Pause::new(retry::policy(
            Duration::from_millis(200),
            Duration::from_secs(1),
        ));
        let mut replay_in = pause.next_delay();
        loop {
            let woken = self.wait(&mut rx, &mut batch, replay_in).await;
            self.metrics
                .queue_depth
                .set(i64::try_from(rx.len()).unwrap_or(i64::MAX));
            if matches!(woken, Woken::Closed) {
                self.replay().await; // one last attempt
                break;
            }
            if !self.spill.is_empty() {
                if self.replay().await {
                    pause.reset();
                }
                replay_in = pause.next_delay();
            }
            if batch.is_empty() {
                continue;
            }
            let Some(Prepared {
                messages,
                traced,
                mut spans,
            }) = self.prepare_batch(std::mem::take(&mut batch)).await
            else {
                continue;
            };
            if self.spill.is_empty() {
                let sent = std::time::SystemTime::now();
                let failed = self.send(messages).await;
                if let Some(requests) = telemetry::trace::requests::requests() {
                    spans::send(&mut spans, requests, &traced, sent, !failed.is_empty());
                    requests.send(spans);
                }
                if !failed.is_empty() {
                    self.spill.append(&failed).await;
                }
            } else {
                // Keep the order: nothing overtakes what waits on disk.
                self.spill.append(&messages).await;
                if let Some(requests) = telemetry::trace::requests::requests() {
                    requests.send(spans);
                }
            }
        }
    }

    /// Waits for exchanges (or, while the spill holds some, for the next replay);
    /// a first few are followed by the linger, so a busy gateway gathers a bigger
    /// batch and one wake-up and one acknowledgement serve many requests.
    async fn wait(
        &self,
        rx: &mut mpsc::Receiver<Exchange>,
        batch: &mut Vec<Exchange>,
        replay_in: Duration,
    ) -> Woken {
        let received = if self.spill.is_empty() {
            rx.recv_many(batch, FIRST_TAKE).await
        } else {
            tokio::select! {
                n = rx.recv_many(batch, FIRST_TAKE) => n,
                () = tokio::time::sleep(replay_in) => return Woken::Replay,
            }
        };
        if received == 0 {
            return Woken::Closed;
        }
        if received < FIRST_TAKE {
            tokio::time::sleep(self.linger).await;
        }
        // What is queued (or arrived during the linger), taken in one go (not one
        // `try_recv` each).
        let most = if self.spill.is_empty() {
            MOST_PER_BATCH
        } else {
            MOST_PER_SPILLED_BATCH
        };
        let room = most.saturating_sub(batch.len());
        if room > 0 {
            let _ = rx.recv_many(batch, room).now_or_never();
        }
        Woken::Exchanges
    }

    /// The batch's messages (log batches after the media they reference), the
    /// contexts of its traced events and their spans. `None` (counted as dropped)
    /// if preparing them failed.
    async fn prepare_batch(&self, exchanges: Vec<Exchange>) -> Option<Prepared> {
        let count = exchanges.len() as u64;
        let max_bytes = self.bus.max_payload().min(8 << 20) / 2;
        let weight: usize = exchanges.iter().map(Exchange::weight).sum();
        if weight <= INLINE_BATCH_BYTES {
            // A batch of ordinary requests: prepared here, a few at a time between
            // yields to the requests this thread serves. Handing it to the blocking
            // pool would cost two thread switches, and the pool thread's frees of
            // what request threads allocated are the allocator's slow, cross-thread
            // kind.
            let mut logs = Vec::with_capacity(exchanges.len());
            let mut messages = Vec::new();
            let (traced, mut spans) = traced(&exchanges);
            let mut since_yield = 0;
            for mut x in exchanges {
                if since_yield > INLINE_BYTES_BETWEEN_YIELDS {
                    tokio::task::yield_now().await;
                    since_yield = 0;
                }
                since_yield += x.weight();
                let reserved = x.reservation.take();
                let log = prepare(x, &mut messages, &mut spans);
                self.limits
                    .settle(reserved, log.input_tokens + log.output_tokens, log.cost_usd);
                self.metrics.observe(&log);
                logs.push(log);
            }
            batch_logs(&logs, max_bytes, &mut messages);
            return Some(Prepared {
                messages,
                traced,
                spans,
            });
        }
        // Decoding and hashing images, assembling long streams: CPU work that must
        // not hold up a runtime thread serving requests.
        let metrics = self.metrics.clone();
        let limits = self.limits.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let mut logs = Vec::with_capacity(exchanges.len());
            let mut messages = Vec::new();
            let (traced, mut spans) = traced(&exchanges);
            for mut x in exchanges {
                let reserved = x.reservation.take();
                let log = prepare(x, &mut messages, &mut spans);
                limits.settle(reserved, log.input_tokens + log.output_tokens, log.cost_usd);
                metrics.observe(&log);
                logs.push(log);
            }
            batch_logs(&logs, max_bytes, &mut messages);
            Prepared {
                messages,
                traced,
                spans,
            }
        })
        .await;
        match prepared {
            Ok(prepared) => Some(prepared),
            Err(e) => {
                self.metrics.dropped.inc_by(count);
                tracing::error!(error = %e, events = count, "log events could not be prepared: dropped");
                None
            }
        }
    }

    /// Publishes the spill, oldest file first; true when it is empty again. A
    /// file partly published keeps only what is left, so nothing is sent twice.
    async fn replay(&mut self) -> bool {
        while let Some((path, messages)) = self.spill.oldest().await {
            let count: u64 = messages.iter().map(|r| u64::from(r.events)).sum();
            let failed = self.send(messages).await;
            let left: u64 = failed.iter().map(|r| u64::from(r.events)).sum();
            self.metrics.replayed.inc_by(count - left);
            if !failed.is_empty() {
                self.spill.rewrite(&path, &failed).await;
                return false;
            }
            self.spill.remove(&path).await;
        }
        true
    }

    /// Sends messages; returns those that failed, in order.
    async fn send(&self, messages: Vec<Outbound>) -> Vec<Outbound> {
        let max = self.bus.max_payload().saturating_sub(4096);
        let mut outgoing = Vec::with_capacity(messages.len());
        let mut failed = Vec::new();
        for (i, r) in messages.iter().enumerate() {
            let mut payload = r.payload.clone();
            if r.subject == Subject::Media && payload.len() > max {
                match self.offload(&payload).await {
                    Some(p) => payload = p,
                    None => {
                        failed.push(i);
                        continue;
                    }
                }
            }
            outgoing.push((
                i,
                Outgoing {
                    subject: r.subject.name(),
                    msg_id: r.msg_id.clone(),
                    payload,
                    traceparent: Some(r.traceparent.clone()),
                },
            ));
        }
        let batch: Vec<Outgoing> = outgoing.iter().map(|(_, m)| m.clone()).collect();
        let results = self.bus.publish_all(&batch).await;
        for ((i, _), result) in outgoing.iter().zip(results) {
            match result {
                Ok(()) => {
                    self.metrics
                        .published
                        .inc_by(u64::from(messages[*i].events));
                }
                Err(e) => {
                    self.metrics.publish_failures.inc_by(1);
                    tracing::debug!(error = %e, "publish failed");
                    failed.push(*i);
                }
            }
        }
        if failed.is_empty() {
            return Vec::new();
        }
        failed.sort_unstable();
        tracing::warn!(
            failed = failed.len(),
            "event bus unavailable, spilling to disk"
        );
        let mut messages: Vec<Option<Outbound>> = messages.into_iter().map(Some).collect();
        failed
            .into_iter()
            .filter_map(|i| messages.get_mut(i).and_then(Option::take))
            .collect()
    }

    /// Puts a large media blob in the object store; returns the event without the
    /// bytes, naming the object.
    async fn offload(&self, payload: &Bytes) -> Option<Bytes> {
        let mut event = MediaEvent::decode(payload.clone()).ok()?;
        let data = std::mem::take(&mut event.data);
        if let Err(e) = self.bus.put_blob(&event.sha256, data).await {
            tracing::debug!(error = %e, "blob upload failed");
            return None;
        }
        event.object_name = event.sha256.clone();
        Some(Bytes::from(event.encode_to_vec()))
    }
}
