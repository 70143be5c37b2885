//! The spill: where messages wait on local disk while the bus is unreachable,
//! bounded in bytes, replayed oldest first once it answers again.
//!
//! One file per batch of messages, `<seq>.spill`, a protobuf `SpillFile`
//! (`proto/aiprox/v1/events.proto`), written to `<seq>.tmp`, synced, then renamed,
//! so a file is whole or absent. The file system work (write, fsync, rename, read,
//! remove) runs on the blocking pool: an fsync must never stall a runtime thread
//! that serves requests, and it happens exactly when the bus is away and requests
//! keep coming. Only [`Spill::open`] reads the directory in place, at start-up,
//! before the gateway serves.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use events::proto::{SpillFile, SpilledMessage};
use prost::Message;

use super::batch::{Outbound, Subject};
use super::metrics::Metrics;

pub(super) struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    files: VecDeque<(PathBuf, u64)>,
    next: u64,
    metrics: Arc<Metrics>,
}

/// Runs file system work on the blocking pool.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

fn write_whole(tmp: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)
}

fn encode(messages: &[Outbound]) -> Vec<u8> {
    SpillFile {
        messages: messages
            .iter()
            .map(|r| SpilledMessage {
                subject: r.subject.name().to_owned(),
                msg_id: r.msg_id.clone(),
                traceparent: r.traceparent.clone(),
                payload: r.payload.clone(),
                events: r.events,
            })
            .collect(),
    }
    .encode_to_vec()
}

fn decode(bytes: Vec<u8>) -> Option<Vec<Outbound>> {
    let file = SpillFile::decode(bytes.as_slice()).ok()?;
    file.messages
        .into_iter()
        .map(|m| {
            Some(Outbound {
                subject: Subject::of_name(&m.subject)?,
                msg_id: m.msg_id,
                traceparent: m.traceparent,
                payload: m.payload,
                events: m.events,
            })
        })
        .collect()
}

impl Spill {
    pub(super) fn open(dir: &Path, max_bytes: u64, metrics: Arc<Metrics>) -> std::io::Result<Self> {
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
        metrics
            .spill_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            bytes,
            files: files.into_iter().map(|(_, p, len)| (p, len)).collect(),
            next,
            metrics,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Writes the messages as the newest file; past the limit (or when the disk
    /// refuses) they are dropped, counted and logged.
    pub(super) async fn append(&mut self, messages: &[Outbound]) {
        let bytes = encode(messages);
        let len = bytes.len() as u64;
        let logs: u64 = messages.iter().map(|r| u64::from(r.events)).sum();
        if self.bytes + len > self.max_bytes {
            self.metrics.dropped.inc_by(logs);
            tracing::error!(events = logs, "spill directory full: log events dropped");
            return;
        }
        let path = self.dir.join(format!("{:020}.spill", self.next));
        let tmp = self.dir.join(format!("{:020}.tmp", self.next));
        let target = path.clone();
        match off_runtime(move || write_whole(&tmp, &target, &bytes)).await {
            Ok(()) => {
                self.next += 1;
                self.bytes += len;
                self.files.push_back((path, len));
                self.metrics.spilled.inc_by(logs);
                self.metrics
                    .spill_bytes
                    .set(i64::try_from(self.bytes).unwrap_or(i64::MAX));
            }
            Err(e) => {
                self.metrics.dropped.inc_by(logs);
                tracing::error!(error = %e, events = logs, "cannot write the spill: log events dropped");
            }
        }
    }

    /// Replaces a file's messages with `left` (the ones a replay could not
    /// publish), in place: written whole then renamed over it.
    pub(super) async fn rewrite(&mut self, path: &Path, left: &[Outbound]) {
        let bytes = encode(left);
        let len = bytes.len() as u64;
        let tmp = path.with_extension("tmp");
        let target = path.to_owned();
        match off_runtime(move || write_whole(&tmp, &target, &bytes)).await {
            Ok(()) => {
                if let Some(entry) = self.files.iter_mut().find(|(p, _)| p == path) {
                    self.bytes = self.bytes.saturating_sub(entry.1) + len;
                    entry.1 = len;
                }
                self.metrics
                    .spill_bytes
                    .set(i64::try_from(self.bytes).unwrap_or(i64::MAX));
            }
            // The file stays as it was: what was published goes again, and the
            // consumers' idempotent writes drop it.
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "spill file not rewritten");
            }
        }
    }

    /// The oldest file's messages; unreadable files are skipped (logged).
    pub(super) async fn oldest(&mut self) -> Option<(PathBuf, Vec<Outbound>)> {
        loop {
            let (path, _) = self.files.front()?.clone();
            let reading = path.clone();
            match off_runtime(move || std::fs::read(reading))
                .await
                .map(decode)
            {
                Ok(Some(messages)) => return Some((path, messages)),
                _ => {
                    tracing::error!(path = %path.display(), "unreadable spill file skipped");
                    self.remove(&path).await;
                }
            }
        }
    }

    pub(super) async fn remove(&mut self, path: &Path) {
        let removing = path.to_owned();
        if let Err(e) = off_runtime(move || std::fs::remove_file(removing)).await {
            tracing::warn!(error = %e, path = %path.display(), "spill file not removed");
        }
        if let Some(i) = self.files.iter().position(|(p, _)| p == path)
            && let Some((_, len)) = self.files.remove(i)
        {
            self.bytes = self.bytes.saturating_sub(len);
            self.metrics
                .spill_bytes
                .set(i64::try_from(self.bytes).unwrap_or(i64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use events::proto::LogEvent;

    use super::*;
    use crate::publish::batch::tests::media;

    fn log(i: usize) -> Outbound {
        let event = LogEvent {
            request_id: format!("req-{i}"),
            request_body: Bytes::from(vec![b'x'; 100]),
            ..LogEvent::default()
        };
        Outbound {
            subject: Subject::Log,
            msg_id: event.request_id.clone(),
            traceparent: String::new(),
            payload: Bytes::from(event.encode_to_vec()),
            events: 1,
        }
    }

    #[tokio::test]
    async fn the_spill_keeps_order_across_reopen_and_drops_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut spill = Spill::open(dir.path(), 10_000, metrics.clone()).unwrap();
        spill.append(&[log(1), media(2)]).await;
        spill.append(&[log(3)]).await;
        assert_eq!(metrics.spilled.get(), 2);
        drop(spill);

        let mut spill = Spill::open(dir.path(), 10_000, metrics.clone()).unwrap();
        let (first, messages) = spill.oldest().await.unwrap();
        let ids: Vec<&str> = messages.iter().map(|r| r.msg_id.as_str()).collect();
        assert_eq!(ids, ["req-1", "media-2"]);
        assert_eq!(messages[0].payload, log(1).payload);
        spill.remove(&first).await;
        let (_, messages) = spill.oldest().await.unwrap();
        assert_eq!(messages[0].msg_id, "req-3");

        let big: Vec<Outbound> = (0..200).map(log).collect();
        spill.append(&big).await;
        assert_eq!(metrics.dropped.get(), 200);
    }

    #[tokio::test]
    async fn a_rewritten_file_keeps_only_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut spill = Spill::open(dir.path(), 10_000, metrics.clone()).unwrap();
        spill.append(&[log(1), log(2), log(3)]).await;
        let full = metrics.spill_bytes.get();
        let (path, _) = spill.oldest().await.unwrap();
        spill.rewrite(&path, &[log(3)]).await;
        let (_, left) = spill.oldest().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].msg_id, "req-3");
        assert!(metrics.spill_bytes.get() < full);
        drop(spill);
        let mut reopened = Spill::open(dir.path(), 10_000, metrics).unwrap();
        assert_eq!(reopened.oldest().await.unwrap().1.len(), 1);
    }

    #[tokio::test]
    async fn an_unreadable_spill_file_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("00000000000000000000.spill"),
            b"\xff\xff garbage",
        )
        .unwrap();
        let metrics = Arc::new(Metrics::default());
        let mut spill = Spill::open(dir.path(), 10_000, metrics).unwrap();
        spill.append(&[log(7)]).await;
        let (_, messages) = spill.oldest().await.unwrap();
        assert_eq!(messages[0].msg_id, "req-7");
    }
}
