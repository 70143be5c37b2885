//! The background half of the log pipeline: turns [`Exchange`]s into `LogEvent`s
//! and `MediaEvent`s and publishes them, awaiting the bus's acknowledgements.
//!
//! While the bus is unreachable, events go to a bounded spill directory on local
//! disk (one file per batch, written whole then renamed) and are replayed in order
//! once it answers again; only past the spill limit is anything dropped, counted in
//! `aiprox_events_dropped_total` and logged. On shutdown, what is still queued is
//! published or spilled, so the next start replays it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use events::proto::{LogEvent, MediaEvent, MediaRef};
use events::{Bus, Outgoing, subjects};
use futures_util::FutureExt;
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{EventSettings, Price};
use crate::record::{Exchange, Metrics, Recorder};
use crate::stream::Dialect;

/// Starts the publisher; the returned recorder feeds it. The task ends once every
/// recorder clone is gone and the queue is flushed.
pub fn start(
    bus: Bus,
    settings: &EventSettings,
    prices: BTreeMap<String, Price>,
) -> std::io::Result<(Recorder, JoinHandle<()>)> {
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
        prices: Arc::new(prices),
        linger: Duration::from_millis(settings.linger_ms),
    };
    let task = tokio::spawn(publisher.run(rx));
    Ok((Recorder::new(tx, metrics), task))
}

/// Batches whose bodies and frames add up to at most this many bytes are prepared
/// on the publisher's runtime thread; bigger ones (media to decode and hash, long
/// streams) in the blocking pool.
const INLINE_BATCH_BYTES: usize = 512 * 1024;

/// Bytes of bodies and frames prepared between two yields when a batch is prepared
/// inline: about 60 ordinary requests or 10 streams, a few hundred microseconds at
/// most. (A yield every 8 requests measured 10–12 % instead of 5–8 % non-streaming.)
const INLINE_BYTES_BETWEEN_YIELDS: usize = 64 * 1024;

struct Publisher {
    bus: Bus,
    spill: Spill,
    metrics: Arc<Metrics>,
    prices: Arc<BTreeMap<String, Price>>,
    linger: Duration,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Exchange>) {
        let mut batch = Vec::new();
        let mut backoff = Duration::from_millis(200);
        loop {
            let received = if self.spill.is_empty() {
                rx.recv_many(&mut batch, 256).await
            } else {
                tokio::select! {
                    n = rx.recv_many(&mut batch, 256) => n,
                    () = tokio::time::sleep(backoff) => usize::MAX,
                }
            };
            if received == 0 {
                // Every sender is gone: shutdown. One last replay attempt.
                self.replay().await;
                break;
            }
            if received != usize::MAX && received < 256 {
                // Linger: let a busy gateway gather a bigger batch, so one wake-up
                // and one acknowledgement serve many requests.
                tokio::time::sleep(self.linger).await;
                // What arrived meanwhile, taken in one go (not one `try_recv` each).
                let room = 1024usize.saturating_sub(batch.len());
                if room > 0 {
                    let _ = rx.recv_many(&mut batch, room).now_or_never();
                }
            }
            if !self.spill.is_empty() {
                if self.replay().await {
                    backoff = Duration::from_millis(200);
                } else {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            if batch.is_empty() {
                continue;
            }
            let exchanges = std::mem::take(&mut batch);
            let count = exchanges.len() as u64;
            let max_bytes = self.bus.max_payload().min(8 << 20) / 2;
            let weight: usize = exchanges.iter().map(Exchange::weight).sum();
            let records = if weight <= INLINE_BATCH_BYTES {
                // A batch of ordinary requests: prepared here, a few at a time
                // between yields to the requests this thread serves. Handing it to
                // the blocking pool would cost two thread switches, and the pool
                // thread's frees of what request threads allocated are the
                // allocator's slow, cross-thread kind.
                let mut logs = Vec::with_capacity(exchanges.len());
                let mut records = Vec::new();
                let mut since_yield = 0;
                for x in exchanges {
                    if since_yield > INLINE_BYTES_BETWEEN_YIELDS {
                        tokio::task::yield_now().await;
                        since_yield = 0;
                    }
                    since_yield += x.weight();
                    logs.push(prepare(&self.prices, x, &mut records));
                }
                batch_logs(&logs, max_bytes, &mut records);
                records
            } else {
                // Decoding and hashing images, assembling long streams: CPU work
                // that must not hold up a runtime thread serving requests.
                let prices = self.prices.clone();
                match tokio::task::spawn_blocking(move || {
                    let mut logs = Vec::with_capacity(exchanges.len());
                    let mut records = Vec::new();
                    for x in exchanges {
                        logs.push(prepare(&prices, x, &mut records));
                    }
                    batch_logs(&logs, max_bytes, &mut records);
                    records
                })
                .await
                {
                    Ok(records) => records,
                    Err(e) => {
                        self.metrics.dropped.fetch_add(count, Ordering::Relaxed);
                        tracing::error!(error = %e, events = count, "log events could not be prepared: dropped");
                        continue;
                    }
                }
            };
            if self.spill.is_empty() {
                let failed = self.send(records).await;
                if !failed.is_empty() {
                    self.spill.append(&failed);
                }
            } else {
                // Keep the order: nothing overtakes what waits on disk.
                self.spill.append(&records);
            }
        }
    }

    /// Publishes the spill, oldest file first; true when it is empty again.
    async fn replay(&mut self) -> bool {
        while let Some((path, records)) = self.spill.oldest() {
            let count: u64 = records.iter().map(|r| u64::from(r.events)).sum();
            let failed = self.send(records).await;
            if !failed.is_empty() {
                return false;
            }
            self.spill.remove(&path);
            self.metrics.replayed.fetch_add(count, Ordering::Relaxed);
        }
        true
    }

    /// Sends records; returns those that failed, in order.
    async fn send(&self, records: Vec<Record>) -> Vec<Record> {
        let max = self.bus.max_payload().saturating_sub(4096);
        let mut outgoing = Vec::with_capacity(records.len());
        let mut failed_blobs = Vec::new();
        for (i, r) in records.iter().enumerate() {
            let mut payload = r.payload.clone();
            if r.subject == Subject::Media && payload.len() > max {
                match self.offload(&payload).await {
                    Some(p) => payload = p,
                    None => {
                        failed_blobs.push(i);
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
        let messages: Vec<Outgoing> = outgoing.iter().map(|(_, m)| m.clone()).collect();
        let results = self.bus.publish_all(&messages).await;
        let mut failed_idx = failed_blobs;
        for ((i, _), result) in outgoing.iter().zip(results) {
            match result {
                Ok(()) => {
                    self.metrics
                        .published
                        .fetch_add(u64::from(records[*i].events), Ordering::Relaxed);
                }
                Err(e) => {
                    self.metrics
                        .publish_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "publish failed");
                    failed_idx.push(*i);
                }
            }
        }
        if failed_idx.is_empty() {
            return Vec::new();
        }
        failed_idx.sort_unstable();
        tracing::warn!(
            failed = failed_idx.len(),
            "event bus unavailable, spilling to disk"
        );
        let mut records: Vec<Option<Record>> = records.into_iter().map(Some).collect();
        failed_idx
            .into_iter()
            .filter_map(|i| records.get_mut(i).and_then(Option::take))
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

/// Builds the log event of one exchange (media cut out of the request, a stream
/// assembled, tokens and cost computed); its media events go to `media`.
fn prepare(prices: &BTreeMap<String, Price>, x: Exchange, media: &mut Vec<Record>) -> LogEvent {
    let (request_body, found) = llm::record::extract_media(&x.request_body);
    let (response_body, tokens) = if x.stream {
        let (whole, tokens) = match x.dialect {
            Dialect::OpenAi => llm::record::assemble_openai(&x.frames),
            Dialect::Anthropic => {
                let whole = llm::record::assemble_anthropic(&x.frames);
                let tokens = llm::record::usage(&whole);
                (serde_json::to_vec(&whole).unwrap_or_default(), tokens)
            }
        };
        (Bytes::from(whole), tokens)
    } else {
        let tokens = llm::record::usage_of_body(&x.response_body);
        (x.response_body, tokens)
    };
    let tokens = tokens.unwrap_or_default();
    let cost = prices.get(&x.upstream_model).map_or(0.0, |p| {
        #[allow(clippy::cast_precision_loss)]
        let (i, o) = (tokens.input as f64, tokens.output as f64);
        (i * p.input + o * p.output) / 1e6
    });
    // Written straight, not through `fmt`: this runs for every request.
    let request_id = x
        .request_id
        .hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned();
    let refs = found
        .iter()
        .map(|m| MediaRef {
            sha256: m.sha256.clone(),
            mime: m.mime.clone(),
            size: m.data.len() as u64,
        })
        .collect();
    for m in found {
        media.push(Record {
            subject: Subject::Media,
            msg_id: format!("media-{}", m.sha256),
            traceparent: traceparent(x.request_id),
            payload: Bytes::from(
                MediaEvent {
                    sha256: m.sha256,
                    mime: m.mime,
                    size: m.data.len() as u64,
                    data: m.data,
                    object_name: String::new(),
                    request_id: request_id.clone(),
                }
                .encode_to_vec(),
            ),
            events: 0,
        });
    }
    LogEvent {
        request_id,
        received_at_us: x.received_at_us,
        endpoint: x.endpoint.to_owned(),
        client_key_id: x.key_id.as_deref().unwrap_or_default().to_owned(),
        requested_model: x.requested_model,
        provider: x.provider,
        upstream_model: x.upstream_model,
        stream: x.stream,
        status: u32::from(x.status),
        error_kind: x.error_kind,
        error_message: x.error_message,
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        cached_tokens: tokens.cached,
        cost_usd: cost,
        latency_us: x.latency_us,
        ttft_us: x.ttft_us,
        upstream_latency_us: x.upstream_latency_us,
        request_body,
        response_body,
        media: refs,
    }
}

/// The W3C trace context of a request: its id as the trace id, the second half as
/// the parent span.
fn traceparent(id: uuid::Uuid) -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    let simple = id.simple().encode_lower(&mut buf);
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    out.push_str(simple);
    out.push('-');
    out.push_str(&simple[16..]);
    out.push_str("-01");
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    Log,
    Media,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Self::Log => subjects::LOG,
            Self::Media => subjects::MEDIA,
        }
    }
}

/// An event ready to publish (media still carrying its bytes; logs batched).
#[derive(Debug, Clone)]
struct Record {
    subject: Subject,
    msg_id: String,
    traceparent: String,
    payload: Bytes,
    /// Log events carried (a batch carries several; media none).
    events: u32,
}

/// Most log events in one message: bounded so a batch stays far below the bus's
/// payload limit and a replay re-sends little.
const BATCH_EVENTS: usize = 64;

/// Packs log events into `LogBatch` messages, appended to `out`, each encoded once
/// straight into its message: the encoding of a `LogBatch` is its events'
/// encodings, each as field 1.
fn batch_logs(logs: &[LogEvent], max_bytes: usize, out: &mut Vec<Record>) {
    let mut start = 0;
    let mut lens = Vec::with_capacity(BATCH_EVENTS);
    while start < logs.len() {
        // The batch: up to BATCH_EVENTS events, cut before the byte bound (one
        // event alone may pass it).
        let mut size = 0;
        let mut end = start;
        lens.clear();
        while end < logs.len() && end - start < BATCH_EVENTS {
            let len = logs[end].encoded_len();
            let framed = 1 + prost::encoding::encoded_len_varint(len as u64) + len;
            if end > start && size + framed > max_bytes {
                break;
            }
            size += framed;
            lens.push(len);
            end += 1;
        }
        let batch = &logs[start..end];
        // Sized once: growing it would copy the batch's bodies again and again.
        let mut payload = Vec::with_capacity(size);
        for (event, &len) in batch.iter().zip(&lens) {
            prost::encoding::encode_key(
                1,
                prost::encoding::WireType::LengthDelimited,
                &mut payload,
            );
            prost::encoding::encode_varint(len as u64, &mut payload);
            event.encode_raw(&mut payload);
        }
        let (first, last) = (&batch[0], &batch[batch.len() - 1]);
        let request_id = uuid::Uuid::try_parse(&first.request_id).unwrap_or_default();
        out.push(Record {
            subject: Subject::Log,
            msg_id: format!(
                "logs-{}-{}-{}",
                first.request_id,
                last.request_id,
                batch.len()
            ),
            traceparent: traceparent(request_id),
            payload: Bytes::from(payload),
            events: u32::try_from(batch.len()).unwrap_or(u32::MAX),
        });
        start = end;
    }
}

/// The spill directory: files `<seq>.spill` of length-prefixed records.
struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    files: std::collections::VecDeque<(PathBuf, u64)>,
    next: u64,
    metrics: Arc<Metrics>,
}

impl Spill {
    fn open(dir: &Path, max_bytes: u64, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut files: Vec<(u64, PathBuf, u64)> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "spill")
                && let Some(seq) = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.parse::<u64>().ok())
            {
                files.push((seq, path, entry.metadata()?.len()));
            }
        }
        files.sort();
        let next = files.last().map_or(0, |f| f.0 + 1);
        let bytes = files.iter().map(|f| f.2).sum();
        if !files.is_empty() {
            tracing::info!(files = files.len(), bytes, "replaying spilled events");
        }
        metrics.spill_bytes.store(bytes, Ordering::Relaxed);
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            bytes,
            files: files.into_iter().map(|(_, p, len)| (p, len)).collect(),
            next,
            metrics,
        })
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn append(&mut self, records: &[Record]) {
        let mut buf = Vec::new();
        for r in records {
            buf.push(match r.subject {
                Subject::Log => 1u8,
                Subject::Media => 2u8,
            });
            buf.extend_from_slice(&r.events.to_le_bytes());
            for part in [r.msg_id.as_bytes(), r.traceparent.as_bytes(), &r.payload] {
                buf.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
                buf.extend_from_slice(part);
            }
        }
        let len = buf.len() as u64;
        let logs: u64 = records.iter().map(|r| u64::from(r.events)).sum();
        if self.bytes + len > self.max_bytes {
            self.metrics.dropped.fetch_add(logs, Ordering::Relaxed);
            tracing::error!(events = logs, "spill directory full: log events dropped");
            return;
        }
        let path = self.dir.join(format!("{:020}.spill", self.next));
        let tmp = self.dir.join(format!("{:020}.tmp", self.next));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(&buf)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        match written {
            Ok(()) => {
                self.next += 1;
                self.bytes += len;
                self.files.push_back((path, len));
                self.metrics.spilled.fetch_add(logs, Ordering::Relaxed);
                self.metrics
                    .spill_bytes
                    .store(self.bytes, Ordering::Relaxed);
            }
            Err(e) => {
                self.metrics.dropped.fetch_add(logs, Ordering::Relaxed);
                tracing::error!(error = %e, events = logs, "cannot write the spill: log events dropped");
            }
        }
    }

    fn oldest(&mut self) -> Option<(PathBuf, Vec<Record>)> {
        loop {
            let (path, _) = self.files.front()?.clone();
            match std::fs::read(&path).map(|b| decode_records(&b)) {
                Ok(Some(records)) => return Some((path, records)),
                _ => {
                    tracing::error!(path = %path.display(), "unreadable spill file skipped");
                    self.remove(&path);
                }
            }
        }
    }

    fn remove(&mut self, path: &Path) {
        let _ = std::fs::remove_file(path);
        if let Some(i) = self.files.iter().position(|(p, _)| p == path)
            && let Some((_, len)) = self.files.remove(i)
        {
            self.bytes = self.bytes.saturating_sub(len);
            self.metrics
                .spill_bytes
                .store(self.bytes, Ordering::Relaxed);
        }
    }
}

fn decode_records(mut b: &[u8]) -> Option<Vec<Record>> {
    fn part<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let out = b.get(4..4 + len)?;
        *b = &b[4 + len..];
        Some(out)
    }
    let mut out = Vec::new();
    while let Some((&kind, rest)) = b.split_first() {
        b = rest;
        let subject = match kind {
            1 => Subject::Log,
            2 => Subject::Media,
            _ => return None,
        };
        let events = u32::from_le_bytes(b.get(..4)?.try_into().ok()?);
        b = &b[4..];
        let msg_id = String::from_utf8(part(&mut b)?.to_vec()).ok()?;
        let traceparent = String::from_utf8(part(&mut b)?.to_vec()).ok()?;
        let payload = Bytes::copy_from_slice(part(&mut b)?);
        out.push(Record {
            subject,
            msg_id,
            traceparent,
            payload,
            events,
        });
    }
    Some(out)
}

/// The pipeline's counters in Prometheus text format.
pub fn render_metrics(recorder: &Recorder) -> String {
    let m = &recorder.metrics;
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
        recorder.queue_depth(),
    )
}

#[cfg(test)]
mod tests {
    use events::proto::LogBatch;

    use super::*;

    fn log(i: usize) -> Record {
        let event = LogEvent {
            request_id: format!("req-{i}"),
            request_body: Bytes::from(vec![b'x'; 100]),
            ..LogEvent::default()
        };
        Record {
            subject: Subject::Log,
            msg_id: event.request_id.clone(),
            traceparent: String::new(),
            payload: Bytes::from(event.encode_to_vec()),
            events: 1,
        }
    }

    fn media(i: usize) -> Record {
        Record {
            subject: Subject::Media,
            msg_id: format!("media-{i}"),
            traceparent: String::new(),
            payload: Bytes::from(vec![1, 2, 3]),
            events: 0,
        }
    }

    fn event(i: usize) -> LogEvent {
        LogEvent {
            request_id: uuid::Uuid::from_u128(i as u128).hyphenated().to_string(),
            request_body: Bytes::from(vec![b'x'; 100]),
            ..LogEvent::default()
        }
    }

    #[test]
    fn log_events_are_batched_and_decode_back_in_order() {
        let events: Vec<LogEvent> = (0..150).map(event).collect();
        let mut batched = vec![media(1)];
        batch_logs(&events, usize::MAX, &mut batched);
        let kinds: Vec<(Subject, u32)> = batched.iter().map(|r| (r.subject, r.events)).collect();
        assert_eq!(
            kinds,
            [
                (Subject::Media, 0),
                (Subject::Log, 64),
                (Subject::Log, 64),
                (Subject::Log, 22)
            ]
        );
        let decoded: Vec<LogEvent> = batched
            .iter()
            .filter(|r| r.subject == Subject::Log)
            .flat_map(|r| LogBatch::decode(r.payload.clone()).unwrap().events)
            .collect();
        assert_eq!(decoded, events);
        // Each batch is named by its first and last request and traced as the first.
        let first = &batched[1];
        assert_eq!(
            first.msg_id,
            format!("logs-{}-{}-64", events[0].request_id, events[63].request_id)
        );
        let trace = uuid::Uuid::from_u128(0).simple().to_string();
        assert_eq!(first.traceparent, format!("00-{trace}-{}-01", &trace[16..]));
        // The byte bound cuts batches too.
        let mut cut = Vec::new();
        batch_logs(&events[..10], 300, &mut cut);
        assert!(
            cut.iter().all(|r| r.payload.len() <= 300),
            "a batch past the byte bound"
        );
        assert!(cut.len() > 1);
        assert_eq!(cut.iter().map(|r| r.events).sum::<u32>(), 10);
    }

    #[test]
    fn the_spill_keeps_order_across_reopen_and_drops_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut spill = Spill::open(dir.path(), 10_000, metrics.clone()).unwrap();
        spill.append(&[log(1), media(2)]);
        spill.append(&[log(3)]);
        assert_eq!(metrics.spilled.load(Ordering::Relaxed), 2);
        drop(spill);

        let mut spill = Spill::open(dir.path(), 10_000, metrics.clone()).unwrap();
        let (first, records) = spill.oldest().unwrap();
        let ids: Vec<&str> = records.iter().map(|r| r.msg_id.as_str()).collect();
        assert_eq!(ids, ["req-1", "media-2"]);
        assert_eq!(records[0].payload, log(1).payload);
        spill.remove(&first);
        let (_, records) = spill.oldest().unwrap();
        assert_eq!(records[0].msg_id, "req-3");

        let big: Vec<Record> = (0..200).map(log).collect();
        spill.append(&big);
        assert_eq!(metrics.dropped.load(Ordering::Relaxed), 200);
    }
}
