//! The events aiprox's services exchange, and the bus that carries them.
//!
//! - [`proto`]: `LogBatch` of `LogEvent`s, `MediaEvent`, and the gateway's
//!   `SpillFile` (generated from `proto/aiprox/v1/events.proto`).
//! - [`subjects`]: stream, subject, consumer and bucket names: the contract between
//!   the gateway, the logger and the media service.
//! - [`Bus`]: publish with acknowledgement, durable pull consumers with explicit ack,
//!   and a blob store for media too large for one message. Two implementations
//!   behind one closed enum: [`nats::NatsBus`] (JetStream, the microservice split)
//!   and [`memory::InProcessBus`] (`aiprox all`, one process).

pub mod memory;
pub mod nats;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/aiprox.v1.rs"));
}

use std::time::Duration;

use bytes::Bytes;
use telemetry::retry::{self, Pause};

pub mod subjects {
    /// The JetStream stream holding every aiprox event.
    pub const STREAM: &str = "AIPROX";
    pub const ALL: &str = "aiprox.>";
    pub const LOG: &str = "aiprox.log.v1";
    pub const MEDIA: &str = "aiprox.media.v1";
    /// Durable consumer names.
    pub const LOGGER: &str = "logger";
    pub const MEDIA_WRITER: &str = "media";
    /// Object store bucket for media blobs larger than a message.
    pub const MEDIA_BUCKET: &str = "aiprox-media";
    /// Key-value bucket holding the live configuration snapshot, under one key.
    pub const CONFIG_BUCKET: &str = "aiprox-config";
    pub const CONFIG_KEY: &str = "snapshot";
    /// Key-value bucket of the gateways' health reports, a key per gateway.
    pub const HEALTH_BUCKET: &str = "aiprox-health";
    /// Key-value bucket of the per-minute counters of client keys' limits.
    pub const RATE_BUCKET: &str = "aiprox-rate";
    /// Key-value bucket of client keys' spend (micro-USD) per budget period;
    /// kept on disk, without expiry.
    pub const SPEND_BUCKET: &str = "aiprox-spend";
    /// Key-value bucket of stored Responses API conversations, a key per
    /// response id; on disk, each entry gone [`super::RESPONSES_MAX_AGE`] after
    /// it was put.
    pub const RESPONSES_BUCKET: &str = "aiprox-responses";
}

/// How long a stored response is kept (OpenAI keeps them 30 days).
pub const RESPONSES_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long a per-minute counter is kept (its minute, and a margin).
pub const RATE_MAX_AGE: Duration = Duration::from_secs(300);

/// What [`Bus::lease`] granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Units taken now (0: the limit is reached).
    pub granted: u64,
    /// The counter after this lease, every gateway's leases together.
    pub used: u64,
}

/// How long a gateway's health report stands without a newer one: a gateway
/// gone quiet that long is taken for stopped.
pub const HEALTH_MAX_AGE: Duration = Duration::from_secs(30);

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub subject: &'static str,
    /// `Nats-Msg-Id`: JetStream drops a message whose id it saw within its
    /// duplicate window.
    pub msg_id: String,
    pub payload: Bytes,
    /// W3C trace context of the request, so consumers' spans join its trace.
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach the event bus: {0}")]
    Unavailable(String),
    #[error("the event bus refused the operation: {0}")]
    Refused(String),
    #[error("timed out waiting for the event bus")]
    Timeout,
}

/// A message taken from a durable consumer, to be acknowledged once handled.
#[derive(Debug)]
pub struct Delivery {
    pub payload: Bytes,
    pub traceparent: Option<String>,
    /// Delivered before and not acknowledged (timed out, or a consumer restarted).
    pub redelivered: bool,
    ack: Acker,
}

#[derive(Debug)]
enum Acker {
    Nats(Box<async_nats::jetstream::Message>),
    None,
}

impl Delivery {
    /// Acknowledges the message: it will not be delivered again.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.ack {
            Acker::Nats(message) => message
                .ack()
                .await
                .map_err(|e| BusError::Unavailable(e.to_string())),
            Acker::None => Ok(()),
        }
    }
}

/// The bus, by kind.
#[derive(Debug, Clone)]
pub enum Bus {
    Nats(Box<nats::NatsBus>),
    InProcess(memory::InProcessBus),
}

/// A durable consumer, by kind.
#[derive(Debug)]
pub enum Consumer {
    Nats(Box<nats::NatsConsumer>),
    InProcess(memory::InProcessConsumer),
}

impl Bus {
    /// Publishes `messages` with their acknowledgements awaited concurrently; one
    /// result per message, in order.
    pub async fn publish_all(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        match self {
            Self::Nats(b) => b.publish_all(messages).await,
            Self::InProcess(b) => b.publish_all(messages),
        }
    }

    /// The largest payload one message may carry.
    pub fn max_payload(&self) -> usize {
        match self {
            Self::Nats(b) => b.max_payload(),
            Self::InProcess(_) => usize::MAX,
        }
    }

    /// The durable consumer `durable` of `subject`, created when missing.
    pub async fn consumer(&self, durable: &str, subject: &str) -> Result<Consumer, BusError> {
        Ok(match self {
            Self::Nats(b) => Consumer::Nats(Box::new(b.consumer(durable, subject).await?)),
            Self::InProcess(b) => Consumer::InProcess(b.consumer(subject)),
        })
    }

    /// Stores a media blob under `name` (content-addressed: storing twice is fine).
    pub async fn put_blob(&self, name: &str, data: Bytes) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.put_blob(name, data).await,
            Self::InProcess(b) => {
                b.put_blob(name, data);
                Ok(())
            }
        }
    }

    /// A stored blob, `None` when absent (already written and removed).
    pub async fn get_blob(&self, name: &str) -> Result<Option<Bytes>, BusError> {
        match self {
            Self::Nats(b) => b.get_blob(name).await,
            Self::InProcess(b) => Ok(b.get_blob(name)),
        }
    }

    pub async fn delete_blob(&self, name: &str) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.delete_blob(name).await,
            Self::InProcess(b) => {
                b.delete_blob(name);
                Ok(())
            }
        }
    }
}

/// Stored Responses API conversations, shared by every gateway (a
/// `previous_response_id` may reach any replica).
impl Bus {
    /// Stores the entry of response `id` (larger than a message: refused).
    pub async fn put_response(&self, id: &str, entry: Bytes) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.put_response(id, entry).await,
            Self::InProcess(b) => b.put_response(id, entry).await,
        }
    }

    /// The entry of response `id`, `None` when absent, deleted or expired.
    pub async fn get_response(&self, id: &str) -> Result<Option<Bytes>, BusError> {
        match self {
            Self::Nats(b) => b.get_response(id).await,
            Self::InProcess(b) => b.get_response(id).await,
        }
    }

    pub async fn delete_response(&self, id: &str) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.delete_response(id).await,
            Self::InProcess(b) => b.delete_response(id).await,
        }
    }
}

/// Counters shared by every gateway, for client keys' limits.
impl Bus {
    /// Takes up to `want` units of `counter` without passing `limit`
    /// (compare-and-set: concurrent leases from other gateways never
    /// overshoot). Counters live [`RATE_MAX_AGE`].
    pub async fn lease(&self, counter: &str, want: u64, limit: u64) -> Result<Lease, BusError> {
        match self {
            Self::Nats(b) => b.lease(false, counter, want, limit).await,
            Self::InProcess(b) => Ok(b.lease(counter, want, limit)),
        }
    }

    /// Gives `n` back to a [`Bus::lease`] counter (a call in flight ended).
    pub async fn release(&self, counter: &str, n: u64) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.release(counter, n).await,
            Self::InProcess(b) => {
                b.release(counter, n);
                Ok(())
            }
        }
    }

    /// [`Bus::lease`] on a spend counter: kept without expiry (restarts and
    /// the period's length do not lose it).
    pub async fn lease_spend(
        &self,
        counter: &str,
        want: u64,
        limit: u64,
    ) -> Result<Lease, BusError> {
        match self {
            Self::Nats(b) => b.lease(true, counter, want, limit).await,
            Self::InProcess(b) => Ok(b.lease_spend(counter, want, limit)),
        }
    }
}

/// The gateways' health reports ([`HEALTH_MAX_AGE`]).
impl Bus {
    /// Replaces `gateway`'s report.
    pub async fn put_health(&self, gateway: &str, report: Bytes) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.put_health(gateway, report).await,
            Self::InProcess(b) => {
                b.put_health(gateway, report);
                Ok(())
            }
        }
    }

    /// Every gateway's latest report.
    pub async fn health_reports(&self) -> Result<Vec<Bytes>, BusError> {
        match self {
            Self::Nats(b) => b.health_reports().await,
            Self::InProcess(b) => Ok(b.health_reports()),
        }
    }
}

/// The live configuration: admin puts a whole snapshot, every gateway watches it.
impl Bus {
    /// Replaces the snapshot.
    pub async fn put_config(&self, value: Bytes) -> Result<(), BusError> {
        match self {
            Self::Nats(b) => b.put_config(value).await,
            Self::InProcess(b) => {
                b.put_config(value);
                Ok(())
            }
        }
    }

    /// The current snapshot, if one was ever put.
    pub async fn get_config(&self) -> Result<Option<Bytes>, BusError> {
        match self {
            Self::Nats(b) => b.get_config().await,
            Self::InProcess(b) => Ok(b.get_config()),
        }
    }

    /// Sends the current snapshot, then each new one, into the returned channel
    /// until it is dropped; reconnects by itself when the bus goes away.
    pub fn watch_config(&self) -> tokio::sync::mpsc::Receiver<Bytes> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let bus = self.clone();
        tokio::spawn(async move {
            match bus {
                Self::Nats(b) => {
                    // Quick to come back after a blip, quiet while NATS stays away;
                    // ends as soon as the receiver is dropped.
                    let mut pause = Pause::new(retry::policy(
                        Duration::from_millis(250),
                        Duration::from_secs(5),
                    ));
                    loop {
                        let started = tokio::time::Instant::now();
                        let watched = tokio::select! {
                            watched = b.watch_config(&tx) => watched,
                            () = tx.closed() => break,
                        };
                        if started.elapsed() > Duration::from_secs(30) {
                            pause.reset();
                        }
                        let delay = pause.next_delay();
                        if let Err(e) = watched {
                            tracing::warn!(error = %e, retry_in = ?delay, "config watch interrupted; watching again");
                        }
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = tx.closed() => break,
                        }
                    }
                }
                Self::InProcess(b) => {
                    let mut watch = b.subscribe_config();
                    loop {
                        let value = watch.borrow_and_update().clone();
                        if let Some(v) = value
                            && tx.send(v).await.is_err()
                        {
                            break;
                        }
                        if watch.changed().await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        rx
    }
}

impl Consumer {
    /// Up to `max` messages, waiting at most `wait` for the first.
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        match self {
            Self::Nats(c) => c.fetch(max, wait).await,
            Self::InProcess(c) => Ok(c.fetch(max, wait).await),
        }
    }

    /// Messages waiting to be delivered (the consumer's lag); `None` when the bus
    /// cannot say right now. On NATS a count up to a second old.
    pub async fn pending(&mut self) -> Option<u64> {
        match self {
            Self::Nats(c) => c.pending().await,
            Self::InProcess(c) => Some(c.pending()),
        }
    }
}

/// The media type a media file is stored and served under: the image and audio
/// types a browser shows or plays without running anything (no SVG, which can carry
/// script), lower-cased; anything else is `application/octet-stream`. A client
/// chooses the type it writes in its `data:` URL, so this is what keeps a stored
/// "image" from being served back as HTML.
pub fn stored_media_type(mime: &str) -> String {
    const IMAGES: [&str; 8] = [
        "image/png",
        "image/jpeg",
        "image/jpg",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/bmp",
        "image/heic",
    ];
    let mime = mime.trim().to_ascii_lowercase();
    let audio = mime.strip_prefix("audio/").is_some_and(|sub| {
        !sub.is_empty()
            && sub
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'+'))
    });
    if IMAGES.contains(&mime.as_str()) || audio {
        mime
    } else {
        "application/octet-stream".to_owned()
    }
}

/// Where a media file lives under the media root: `<sha256[0:2]>/<sha256>.<ext>`.
pub fn media_path(sha256: &str, mime: &str) -> String {
    let ext = match mime {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "application/pdf" => "pdf",
        _ => "bin",
    };
    let prefix = sha256.get(..2).unwrap_or("00");
    format!("{prefix}/{sha256}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_image_and_audio_types_are_stored_as_such() {
        for (given, stored) in [
            ("image/png", "image/png"),
            ("IMAGE/JPEG", "image/jpeg"),
            ("audio/wav", "audio/wav"),
            ("audio/x-m4a", "audio/x-m4a"),
            ("text/html", "application/octet-stream"),
            ("image/svg+xml", "application/octet-stream"),
            ("application/pdf", "application/octet-stream"),
            ("audio/wav\r\nx-a: 1", "application/octet-stream"),
            ("", "application/octet-stream"),
        ] {
            assert_eq!(stored_media_type(given), stored, "{given:?}");
        }
    }
}
