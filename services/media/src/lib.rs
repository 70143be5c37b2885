//! The media writer: takes `MediaEvent`s from its durable consumer and writes each
//! blob to `<root>/<sha256[0:2]>/<sha256>.<ext>` atomically (a temporary file in
//! the same directory, fsync, rename, fsync of the directory), so no partial file is
//! ever visible under the final name. Content-addressed, so a file already there is
//! done; the event is acknowledged only once the file is durable. Blobs too large
//! for one message are read from the object store and removed from it after.
//! `media_resources` rows are the logger's, from the log event's references.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use events::proto::MediaEvent;
use events::{Bus, subjects};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use prost::Message;
use sha2::{Digest, Sha256};
use telemetry::health::Readiness;
use telemetry::retry::{self, Pause};
use tokio_util::sync::CancellationToken;

/// What the media writer exports on `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub bytes_written: Counter,
    pub files_written: Counter,
    /// Events not handled yet (written later, after the ack wait).
    pub failures: Counter,
    /// Media events waiting in the durable consumer: the writer's lag.
    pub pending: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("aiprox_media");
        r.register_with_unit(
            "written",
            "Bytes of media files written",
            prometheus_client::registry::Unit::Bytes,
            m.bytes_written.clone(),
        );
        r.register(
            "files_written",
            "Media files written",
            m.files_written.clone(),
        );
        r.register(
            "failures",
            "Media events that failed, retried",
            m.failures.clone(),
        );
        r.register(
            "pending_messages",
            "Media events waiting in the durable consumer",
            m.pending.clone(),
        );
        m
    }
}

/// Runs until `shutdown`; `readiness` is set while the consumer is up.
pub async fn run(
    root: PathBuf,
    bus: Bus,
    (metrics, readiness): (Metrics, Readiness),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&root)?;
    remove_stale_temporaries(&root);
    let mut consumer = bus
        .consumer(subjects::MEDIA_WRITER, subjects::MEDIA)
        .await?;
    readiness.set(true);
    tracing::info!(root = %root.display(), "media writer consuming");
    let mut pause = Pause::new(retry::policy(
        Duration::from_secs(1),
        Duration::from_secs(5),
    ));
    while !shutdown.is_cancelled() {
        let deliveries = tokio::select! {
            d = consumer.fetch(64, Duration::from_millis(500)) => d,
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
                tracing::warn!(error = %e, "cannot fetch media events; retrying");
                pause.wait(&shutdown).await;
                continue;
            }
        };
        if let Some(pending) = consumer.pending().await {
            metrics
                .pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        handle_all(&root, &bus, deliveries, &metrics).await;
    }
    readiness.set(false);
    // Drain what is already there (the in-process bus loses what stays queued).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match consumer.fetch(64, Duration::from_millis(100)).await {
            Ok(d) if !d.is_empty() => handle_all(&root, &bus, d, &metrics).await,
            _ => break,
        }
    }
    tracing::info!("media writer stopped");
    Ok(())
}

async fn handle_all(root: &Path, bus: &Bus, deliveries: Vec<events::Delivery>, metrics: &Metrics) {
    // One span for the batch, linked to each message's request.
    let span = telemetry::trace::batch_span(
        subjects::MEDIA,
        subjects::MEDIA_WRITER,
        deliveries.iter().filter_map(|d| d.traceparent.as_deref()),
        deliveries.len(),
    );
    for d in deliveries {
        match handle(root, bus, &d.payload).await {
            Ok(written) => {
                if written > 0 {
                    metrics.files_written.inc();
                    metrics.bytes_written.inc_by(written);
                }
                if let Err(e) = d.ack().await {
                    tracing::warn!(error = %e, "ack failed");
                }
            }
            Err(e) => {
                metrics.failures.inc();
                // Not acknowledged: delivered again after the ack wait.
                tracing::warn!(error = %e, "media not written; will retry");
            }
        }
    }
    drop(span);
}

/// Handles one event; returns the bytes written (0: already there, or skipped).
async fn handle(root: &Path, bus: &Bus, payload: &[u8]) -> anyhow::Result<u64> {
    let event = match MediaEvent::decode(payload) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "undecodable media event skipped");
            return Ok(0);
        }
    };
    if event.sha256.len() != 64 || !event.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        tracing::error!(sha256 = %event.sha256, "media event with a bad sha256 skipped");
        return Ok(0);
    }
    let path = root.join(events::media_path(&event.sha256, &event.mime));
    if path.exists() {
        if !event.object_name.is_empty() {
            bus.delete_blob(&event.object_name).await?;
        }
        return Ok(0);
    }
    let data = if event.object_name.is_empty() {
        event.data.clone()
    } else {
        match bus.get_blob(&event.object_name).await? {
            Some(d) => d,
            None => {
                tracing::error!(sha256 = %event.sha256, "media blob missing from the object store");
                return Ok(0);
            }
        }
    };
    let digest = hex::encode(Sha256::digest(&data));
    if digest != event.sha256 {
        tracing::error!(expected = %event.sha256, got = %digest, "media blob does not match its sha256; skipped");
        return Ok(0);
    }
    let target = path.clone();
    let written = data.len() as u64;
    tokio::task::spawn_blocking(move || write_atomically(&target, &data)).await??;
    if !event.object_name.is_empty() {
        bus.delete_blob(&event.object_name).await?;
    }
    tracing::debug!(path = %path.display(), "media written");
    Ok(written)
}

/// Temporary files left by a writer killed mid-write: never visible under a final
/// name, removed at start.
fn remove_stale_temporaries(root: &Path) {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return;
    };
    for dir in dirs.filter_map(Result::ok) {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for file in files.filter_map(Result::ok) {
            if file.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(file.path());
            }
        }
    }
}

/// Temporary file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
