//! NATS JetStream: the stream `AIPROX` (file storage), durable pull consumers with
//! explicit ack, and the object store bucket for large media.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Acker, BusError, Delivery, Outgoing, subjects};

#[derive(Debug, Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    /// The limit counters' bucket, looked up once (a lease is on the request
    /// path: one round trip, not two).
    rate: std::sync::Arc<tokio::sync::OnceCell<kv::Store>>,
    /// The spend counters' bucket, likewise.
    spend: std::sync::Arc<tokio::sync::OnceCell<kv::Store>>,
    /// The stored responses' bucket, likewise.
    responses: std::sync::Arc<tokio::sync::OnceCell<kv::Store>>,
}

#[derive(Debug)]
pub struct NatsConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// The last pending count asked of the server, and when.
    pending: Option<(std::time::Instant, u64)>,
}

/// How long a pending count is reused: asking costs a round trip to the server,
/// and a consumer fetches many times a second under load.
const PENDING_MAX_AGE: Duration = Duration::from_secs(1);

/// Compare-and-set tries on one counter before giving up: gateways racing for
/// it each win in turn.
const CAS_ATTEMPTS: u32 = 64;

/// A random pause after losing a compare-and-set race, longer as the losses
/// add up (at most about 5 ms), so racing gateways spread out.
async fn contended(attempt: u32) {
    let ceiling_us = 100u64 << attempt.min(6);
    let jitter = fastrand::u64(..ceiling_us.max(1));
    tokio::time::sleep(Duration::from_micros(jitter)).await;
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

impl NatsBus {
    /// Connects (retrying in the background if the server is down at first) and
    /// makes sure the stream exists.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name("aiprox")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(unavailable)?;
        let js = jetstream::new(client.clone());
        let bus = Self {
            client,
            js,
            rate: std::sync::Arc::default(),
            spend: std::sync::Arc::default(),
            responses: std::sync::Arc::default(),
        };
        Ok(bus)
    }

    /// Creates the stream and the media bucket when missing. Safe to call from
    /// every replica.
    pub async fn ensure_stream(&self) -> Result<(), BusError> {
        self.js
            .get_or_create_stream(stream::Config {
                name: subjects::STREAM.to_owned(),
                subjects: vec![subjects::ALL.to_owned()],
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..stream::Config::default()
            })
            .await
            .map_err(unavailable)?;
        if self
            .js
            .get_object_store(subjects::MEDIA_BUCKET)
            .await
            .is_err()
        {
            self.js
                .create_object_store(object_store::Config {
                    bucket: subjects::MEDIA_BUCKET.to_owned(),
                    storage: stream::StorageType::File,
                    ..object_store::Config::default()
                })
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The config bucket, created when missing.
    async fn config_bucket(&self) -> Result<kv::Store, BusError> {
        self.kv_bucket(subjects::CONFIG_BUCKET, stream::StorageType::File, None)
            .await
    }

    /// The health bucket: in memory, each entry gone `HEALTH_MAX_AGE` after its
    /// last put.
    async fn health_bucket(&self) -> Result<kv::Store, BusError> {
        self.kv_bucket(
            subjects::HEALTH_BUCKET,
            stream::StorageType::Memory,
            Some(crate::HEALTH_MAX_AGE),
        )
        .await
    }

    /// A KV bucket, created when missing. The stream is declared by hand, as a
    /// KV bucket's stream is (one message per key, rollups, direct gets), so the
    /// bucket works on NATS servers older than the client's own defaults expect.
    async fn kv_bucket(
        &self,
        bucket: &str,
        storage: stream::StorageType,
        max_age: Option<Duration>,
    ) -> Result<kv::Store, BusError> {
        if let Ok(store) = self.js.get_key_value(bucket).await {
            return Ok(store);
        }
        self.js
            .get_or_create_stream(stream::Config {
                name: format!("KV_{bucket}"),
                subjects: vec![format!("$KV.{bucket}.>")],
                storage,
                max_messages_per_subject: 1,
                max_age: max_age.unwrap_or_default(),
                discard: stream::DiscardPolicy::New,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                duplicate_window: Duration::from_secs(120).min(max_age.unwrap_or(Duration::MAX)),
                ..stream::Config::default()
            })
            .await
            .map_err(unavailable)?;
        self.js.get_key_value(bucket).await.map_err(unavailable)
    }

    /// The per-minute counters' bucket.
    async fn rate_bucket(&self) -> Result<kv::Store, BusError> {
        self.rate
            .get_or_try_init(|| {
                self.kv_bucket(
                    subjects::RATE_BUCKET,
                    stream::StorageType::File,
                    Some(crate::RATE_MAX_AGE),
                )
            })
            .await
            .cloned()
    }

    /// The spend counters' bucket: on disk, no expiry.
    async fn spend_bucket(&self) -> Result<kv::Store, BusError> {
        self.spend
            .get_or_try_init(|| {
                self.kv_bucket(subjects::SPEND_BUCKET, stream::StorageType::File, None)
            })
            .await
            .cloned()
    }

    /// Takes up to `want` of `counter` (a spend counter when `spend`) without
    /// passing `limit`: read, then a compare-and-set on the revision read,
    /// again while another gateway got in between.
    pub async fn lease(
        &self,
        spend: bool,
        counter: &str,
        want: u64,
        limit: u64,
    ) -> Result<crate::Lease, BusError> {
        let bucket = if spend {
            self.spend_bucket().await?
        } else {
            self.rate_bucket().await?
        };
        for attempt in 0..CAS_ATTEMPTS {
            let entry = bucket.entry(counter).await.map_err(unavailable)?;
            let (used, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0),
                    Some(e.revision),
                ),
                _ => (0, None),
            };
            let granted = want.min(limit.saturating_sub(used));
            if granted == 0 {
                return Ok(crate::Lease { granted, used });
            }
            let value = Bytes::from((used + granted).to_string());
            // Another gateway wrote in between: read again, after a moment.
            let lost = match revision {
                Some(r) => match bucket.update(counter, value, r).await {
                    Ok(_) => false,
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => true,
                    Err(e) => return Err(unavailable(e)),
                },
                None => match bucket.create(counter, value).await {
                    Ok(_) => false,
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => true,
                    Err(e) => return Err(unavailable(e)),
                },
            };
            if !lost {
                return Ok(crate::Lease {
                    granted,
                    used: used + granted,
                });
            }
            contended(attempt).await;
        }
        Err(BusError::Refused(format!(
            "{counter}: too many concurrent leases"
        )))
    }

    /// Takes `n` off a rate counter (compare-and-set, never below 0).
    pub async fn release(&self, counter: &str, n: u64) -> Result<(), BusError> {
        let bucket = self.rate_bucket().await?;
        for attempt in 0..CAS_ATTEMPTS {
            let Some(entry) = bucket.entry(counter).await.map_err(unavailable)? else {
                return Ok(());
            };
            let used = std::str::from_utf8(&entry.value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let value = Bytes::from(used.saturating_sub(n).to_string());
            match bucket.update(counter, value, entry.revision).await {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    contended(attempt).await;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(BusError::Unavailable(format!(
            "{counter}: too many concurrent releases"
        )))
    }

    /// The stored responses' bucket: on disk, entries expire.
    async fn responses_bucket(&self) -> Result<kv::Store, BusError> {
        self.responses
            .get_or_try_init(|| {
                self.kv_bucket(
                    subjects::RESPONSES_BUCKET,
                    stream::StorageType::File,
                    Some(crate::RESPONSES_MAX_AGE),
                )
            })
            .await
            .cloned()
    }

    pub async fn put_response(&self, id: &str, entry: Bytes) -> Result<(), BusError> {
        if entry.len() > self.max_payload() {
            return Err(BusError::Refused(format!(
                "the conversation is {} bytes, over the bus's {}-byte messages",
                entry.len(),
                self.max_payload()
            )));
        }
        self.responses_bucket()
            .await?
            .put(id, entry)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn get_response(&self, id: &str) -> Result<Option<Bytes>, BusError> {
        self.responses_bucket()
            .await?
            .get(id)
            .await
            .map_err(unavailable)
    }

    pub async fn delete_response(&self, id: &str) -> Result<(), BusError> {
        self.responses_bucket()
            .await?
            .purge(id)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Puts one gateway's health report.
    pub async fn put_health(&self, gateway: &str, report: Bytes) -> Result<(), BusError> {
        self.health_bucket()
            .await?
            .put(gateway, report)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Every gateway's latest report (those that stopped reporting expired).
    pub async fn health_reports(&self) -> Result<Vec<Bytes>, BusError> {
        let bucket = self.health_bucket().await?;
        let mut keys = bucket.keys().await.map_err(unavailable)?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            names.push(key.map_err(unavailable)?);
        }
        let mut reports = Vec::with_capacity(names.len());
        for name in names {
            if let Some(report) = bucket.get(&name).await.map_err(unavailable)? {
                reports.push(report);
            }
        }
        Ok(reports)
    }

    pub async fn put_config(&self, value: Bytes) -> Result<(), BusError> {
        let bucket = self.config_bucket().await?;
        bucket
            .put(subjects::CONFIG_KEY, value)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    pub async fn get_config(&self) -> Result<Option<Bytes>, BusError> {
        let bucket = self.config_bucket().await?;
        bucket.get(subjects::CONFIG_KEY).await.map_err(unavailable)
    }

    /// Every value of the config key from the current one on, into `tx`. Returns
    /// when the watch breaks (NATS went away); the caller watches again.
    pub async fn watch_config(
        &self,
        tx: &tokio::sync::mpsc::Sender<Bytes>,
    ) -> Result<(), BusError> {
        let bucket = self.config_bucket().await?;
        let mut watch = bucket
            .watch_with_history(subjects::CONFIG_KEY)
            .await
            .map_err(unavailable)?;
        while let Some(entry) = watch.next().await {
            let entry = entry.map_err(unavailable)?;
            if entry.operation == kv::Operation::Put && tx.send(entry.value).await.is_err() {
                return Ok(());
            }
        }
        Err(BusError::Unavailable("the config watch ended".into()))
    }

    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    pub async fn publish_all(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        let mut pending = Vec::with_capacity(messages.len());
        for m in messages {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", m.msg_id.as_str());
            if let Some(tp) = &m.traceparent {
                headers.insert("traceparent", tp.as_str());
            }
            let sent = self
                .js
                .publish_with_headers(m.subject, headers, m.payload.clone())
                .await;
            pending.push(sent);
        }
        let mut out = Vec::with_capacity(pending.len());
        for sent in pending {
            out.push(match sent {
                Err(e) => Err(unavailable(e)),
                Ok(ack) => match tokio::time::timeout(Duration::from_secs(5), ack).await {
                    Err(_) => Err(BusError::Timeout),
                    Ok(Err(e)) => Err(unavailable(e)),
                    Ok(Ok(_)) => Ok(()),
                },
            });
        }
        out
    }

    pub async fn consumer(&self, durable: &str, subject: &str) -> Result<NatsConsumer, BusError> {
        let stream = self
            .js
            .get_stream(subjects::STREAM)
            .await
            .map_err(unavailable)?;
        let consumer = stream
            .get_or_create_consumer(
                durable,
                consumer::pull::Config {
                    durable_name: Some(durable.to_owned()),
                    filter_subject: subject.to_owned(),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(30),
                    max_ack_pending: 10_000,
                    ..consumer::pull::Config::default()
                },
            )
            .await
            .map_err(unavailable)?;
        Ok(NatsConsumer {
            consumer,
            pending: None,
        })
    }

    async fn bucket(&self) -> Result<object_store::ObjectStore, BusError> {
        self.js
            .get_object_store(subjects::MEDIA_BUCKET)
            .await
            .map_err(unavailable)
    }

    pub async fn put_blob(&self, name: &str, data: Bytes) -> Result<(), BusError> {
        let bucket = self.bucket().await?;
        let mut reader: &[u8] = &data;
        bucket.put(name, &mut reader).await.map_err(unavailable)?;
        Ok(())
    }

    pub async fn get_blob(&self, name: &str) -> Result<Option<Bytes>, BusError> {
        use tokio::io::AsyncReadExt;
        let bucket = self.bucket().await?;
        let mut object = match bucket.get(name).await {
            Ok(o) => o,
            Err(e) if e.kind() == object_store::GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let mut out = Vec::new();
        object.read_to_end(&mut out).await.map_err(unavailable)?;
        Ok(Some(Bytes::from(out)))
    }

    pub async fn delete_blob(&self, name: &str) -> Result<(), BusError> {
        let bucket = self.bucket().await?;
        match bucket.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

impl NatsConsumer {
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(unavailable)?;
        let mut out = Vec::new();
        while let Some(message) = batch.next().await {
            let message = message.map_err(unavailable)?;
            let traceparent = message
                .headers
                .as_ref()
                .and_then(|h| h.get("traceparent"))
                .map(|v| v.as_str().to_owned());
            let redelivered = message.info().is_ok_and(|i| i.delivered > 1);
            out.push(Delivery {
                payload: message.payload.clone(),
                traceparent,
                redelivered,
                ack: Acker::Nats(Box::new(message)),
            });
        }
        Ok(out)
    }

    pub async fn pending(&mut self) -> Option<u64> {
        if let Some((at, n)) = self.pending
            && at.elapsed() < PENDING_MAX_AGE
        {
            return Some(n);
        }
        let n = self.consumer.info().await.ok()?.num_pending;
        self.pending = Some((std::time::Instant::now(), n));
        Some(n)
    }
}
