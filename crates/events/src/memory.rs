//! The in-process bus of `aiprox all`: queues per subject and a blob map. Nothing
//! crosses a process boundary, so there is nothing to lose in transit; what a
//! consumer took it keeps until it has written it.
//!
//! The bytes waiting in its queues are bounded ([`InProcessBus::with_backlog_limit`]):
//! past the bound a publish is refused as a bus that is away would refuse it, so
//! the gateway spills to disk and replays later, and memory stays flat however
//! far the consumers fall behind.
//!
//! Stored responses live in memory, for [`crate::RESPONSES_MAX_AGE`], unless the
//! bus is given a [`ResponseKeeper`] ([`InProcessBus::with_response_keeper`]):
//! `aiprox all` keeps them in its database, so they outlive a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::{Acker, BusError, Delivery, Outgoing};

type Queue = (
    mpsc::UnboundedSender<Outgoing>,
    Option<mpsc::UnboundedReceiver<Outgoing>>,
);

#[derive(Debug, Clone)]
pub struct InProcessBus {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    blobs: Arc<Mutex<HashMap<String, Bytes>>>,
    config: Arc<tokio::sync::watch::Sender<Option<Bytes>>>,
    backlog: Arc<Backlog>,
    /// Each gateway's latest health report and when it was put.
    health: Arc<Mutex<HashMap<String, (std::time::Instant, Bytes)>>>,
    /// Limit counters and when each was first taken from.
    counters: Arc<Mutex<HashMap<String, (std::time::Instant, u64)>>>,
    /// Spend counters: never expire.
    spend: Arc<Mutex<HashMap<String, u64>>>,
    responses: Responses,
}

/// Keeps stored responses for the in-process bus somewhere lasting (a
/// database), where this crate cannot reach: the bus hands it each put, get
/// and delete as they come, and answers with its errors.
pub trait ResponseKeeper: std::fmt::Debug + Send + Sync {
    /// Stores the entry of response `id`, in place of any it had.
    fn put<'a>(&'a self, id: &'a str, entry: Bytes) -> KeeperFuture<'a, ()>;
    /// The entry of response `id`, `None` when absent, deleted or expired.
    fn get<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, Option<Bytes>>;
    fn delete<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, ()>;
}

/// What a [`ResponseKeeper`]'s methods return (boxed, so the bus can hold any
/// keeper behind one pointer).
pub type KeeperFuture<'a, T> = BoxFuture<'a, Result<T, BusError>>;

/// Where the bus keeps stored responses.
#[derive(Debug, Clone)]
enum Responses {
    /// In this process, each with when it was put; gone with it.
    Memory(Arc<Mutex<HashMap<String, (std::time::Instant, Bytes)>>>),
    Kept(Arc<dyn ResponseKeeper>),
}

/// Payload bytes published and not yet taken by a consumer, and their bound.
#[derive(Debug)]
struct Backlog {
    bytes: AtomicUsize,
    max: usize,
}

impl Backlog {
    /// Reserves room for `len` bytes; `false` when that would pass the bound (a
    /// message alone larger than the bound is let in while nothing waits).
    fn reserve(&self, len: usize) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued == 0 || queued + len <= self.max).then_some(queued + len)
            })
            .is_ok()
    }

    fn release(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
    }
}

#[derive(Debug)]
pub struct InProcessConsumer {
    receiver: Option<mpsc::UnboundedReceiver<Outgoing>>,
    backlog: Arc<Backlog>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::with_backlog_limit(usize::MAX)
    }
}

impl InProcessBus {
    /// A bus whose queues hold any amount.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus whose queues hold at most `max_bytes` of payloads waiting for their
    /// consumers; past that, publishing fails until they catch up.
    pub fn with_backlog_limit(max_bytes: usize) -> Self {
        Self {
            queues: Arc::default(),
            blobs: Arc::default(),
            config: Arc::default(),
            health: Arc::default(),
            counters: Arc::default(),
            spend: Arc::default(),
            responses: Responses::Memory(Arc::default()),
            backlog: Arc::new(Backlog {
                bytes: AtomicUsize::new(0),
                max: max_bytes,
            }),
        }
    }

    /// This bus, with its stored responses kept by `keeper` instead of in memory.
    pub fn with_response_keeper(mut self, keeper: Arc<dyn ResponseKeeper>) -> Self {
        self.responses = Responses::Kept(keeper);
        self
    }

    /// Payload bytes waiting for a consumer.
    pub fn backlog_bytes(&self) -> usize {
        self.backlog.bytes.load(Ordering::Acquire)
    }

    fn sender(&self, subject: &str) -> mpsc::UnboundedSender<Outgoing> {
        let mut queues = self.queues.lock();
        queues
            .entry(subject.to_owned())
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                (tx, Some(rx))
            })
            .0
            .clone()
    }

    pub fn publish_all(&self, messages: &[Outgoing]) -> Vec<Result<(), BusError>> {
        messages
            .iter()
            .map(|m| {
                if !self.backlog.reserve(m.payload.len()) {
                    return Err(BusError::Unavailable(
                        "the in-process backlog is full: the consumers are behind".into(),
                    ));
                }
                self.sender(m.subject).send(m.clone()).map_err(|_| {
                    self.backlog.release(m.payload.len());
                    BusError::Unavailable("the in-process consumer stopped".into())
                })
            })
            .collect()
    }

    /// The one consumer of `subject` (a second call gets an empty consumer).
    pub fn consumer(&self, subject: &str) -> InProcessConsumer {
        let _ = self.sender(subject);
        let receiver = self
            .queues
            .lock()
            .get_mut(subject)
            .and_then(|(_, rx)| rx.take());
        InProcessConsumer {
            receiver,
            backlog: self.backlog.clone(),
        }
    }

    pub fn put_config(&self, value: Bytes) {
        self.config.send_replace(Some(value));
    }

    pub fn get_config(&self) -> Option<Bytes> {
        self.config.borrow().clone()
    }

    pub fn subscribe_config(&self) -> tokio::sync::watch::Receiver<Option<Bytes>> {
        self.config.subscribe()
    }

    pub fn put_health(&self, gateway: &str, report: Bytes) {
        self.health
            .lock()
            .insert(gateway.to_owned(), (std::time::Instant::now(), report));
    }

    /// Every gateway's latest report put within `HEALTH_MAX_AGE`.
    pub fn health_reports(&self) -> Vec<Bytes> {
        let mut health = self.health.lock();
        health.retain(|_, (at, _)| at.elapsed() < crate::HEALTH_MAX_AGE);
        health.values().map(|(_, r)| r.clone()).collect()
    }

    pub fn lease(&self, counter: &str, want: u64, limit: u64) -> crate::Lease {
        let mut counters = self.counters.lock();
        counters.retain(|_, (at, _)| at.elapsed() < crate::RATE_MAX_AGE);
        let (_, used) = counters
            .entry(counter.to_owned())
            .or_insert_with(|| (std::time::Instant::now(), 0));
        let granted = want.min(limit.saturating_sub(*used));
        *used += granted;
        crate::Lease {
            granted,
            used: *used,
        }
    }

    pub fn release(&self, counter: &str, n: u64) {
        if let Some((_, used)) = self.counters.lock().get_mut(counter) {
            *used = used.saturating_sub(n);
        }
    }

    /// Starts a spend counter at `micro_usd` at least (from the logged spend,
    /// when the process starts: this bus keeps nothing across restarts).
    pub fn seed_spend(&self, counter: &str, micro_usd: u64) {
        let mut spend = self.spend.lock();
        let used = spend.entry(counter.to_owned()).or_insert(0);
        *used = (*used).max(micro_usd);
    }

    pub fn lease_spend(&self, counter: &str, want: u64, limit: u64) -> crate::Lease {
        let mut spend = self.spend.lock();
        let used = spend.entry(counter.to_owned()).or_insert(0);
        let granted = want.min(limit.saturating_sub(*used));
        *used += granted;
        crate::Lease {
            granted,
            used: *used,
        }
    }

    pub async fn put_response(&self, id: &str, entry: Bytes) -> Result<(), BusError> {
        match &self.responses {
            Responses::Memory(map) => {
                let mut responses = map.lock();
                responses.retain(|_, (put, _)| put.elapsed() < crate::RESPONSES_MAX_AGE);
                responses.insert(id.to_owned(), (std::time::Instant::now(), entry));
                Ok(())
            }
            Responses::Kept(keeper) => keeper.put(id, entry).await,
        }
    }

    pub async fn get_response(&self, id: &str) -> Result<Option<Bytes>, BusError> {
        match &self.responses {
            Responses::Memory(map) => {
                let responses = map.lock();
                Ok(responses.get(id).and_then(|(put, entry)| {
                    (put.elapsed() < crate::RESPONSES_MAX_AGE).then(|| entry.clone())
                }))
            }
            Responses::Kept(keeper) => keeper.get(id).await,
        }
    }

    pub async fn delete_response(&self, id: &str) -> Result<(), BusError> {
        match &self.responses {
            Responses::Memory(map) => {
                map.lock().remove(id);
                Ok(())
            }
            Responses::Kept(keeper) => keeper.delete(id).await,
        }
    }

    pub fn put_blob(&self, name: &str, data: Bytes) {
        self.blobs.lock().insert(name.to_owned(), data);
    }

    pub fn get_blob(&self, name: &str) -> Option<Bytes> {
        self.blobs.lock().get(name).cloned()
    }

    pub fn delete_blob(&self, name: &str) {
        self.blobs.lock().remove(name);
    }
}

impl InProcessConsumer {
    pub async fn fetch(&mut self, max: usize, wait: Duration) -> Vec<Delivery> {
        let Some(rx) = self.receiver.as_mut() else {
            tokio::time::sleep(wait).await;
            return Vec::new();
        };
        let mut out = Vec::new();
        let Ok(Some(first)) = tokio::time::timeout(wait, rx.recv()).await else {
            return out;
        };
        let mut taken = first.payload.len();
        out.push(delivery(first));
        while out.len() < max {
            match rx.try_recv() {
                Ok(m) => {
                    taken += m.payload.len();
                    out.push(delivery(m));
                }
                Err(_) => break,
            }
        }
        self.backlog.release(taken);
        out
    }

    /// Messages queued and not yet fetched.
    pub fn pending(&self) -> u64 {
        self.receiver.as_ref().map_or(0, |rx| rx.len() as u64)
    }
}

fn delivery(m: Outgoing) -> Delivery {
    Delivery {
        payload: m.payload,
        traceparent: m.traceparent,
        redelivered: false,
        ack: Acker::None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A keeper over a map of its own, standing for a database.
    #[derive(Debug, Default)]
    struct MapKeeper(Mutex<HashMap<String, Bytes>>);

    impl ResponseKeeper for MapKeeper {
        fn put<'a>(&'a self, id: &'a str, entry: Bytes) -> KeeperFuture<'a, ()> {
            self.0.lock().insert(id.to_owned(), entry);
            Box::pin(async { Ok(()) })
        }

        fn get<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, Option<Bytes>> {
            let entry = self.0.lock().get(id).cloned();
            Box::pin(async { Ok(entry) })
        }

        fn delete<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, ()> {
            self.0.lock().remove(id);
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn responses_go_through_the_keeper_when_there_is_one() {
        let keeper = Arc::new(MapKeeper::default());
        let bus = InProcessBus::new().with_response_keeper(keeper.clone());
        bus.put_response("resp_1", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(
            keeper.0.lock().get("resp_1"),
            Some(&Bytes::from_static(b"{}"))
        );
        // Another bus on the same keeper (a restarted process) finds it.
        let restarted = InProcessBus::new().with_response_keeper(keeper.clone());
        assert_eq!(
            restarted.get_response("resp_1").await.unwrap(),
            Some(Bytes::from_static(b"{}"))
        );
        restarted.delete_response("resp_1").await.unwrap();
        assert!(keeper.0.lock().is_empty());
    }

    #[tokio::test]
    async fn without_a_keeper_responses_stay_in_this_bus() {
        let bus = InProcessBus::new();
        bus.put_response("resp_1", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert!(bus.clone().get_response("resp_1").await.unwrap().is_some());
        assert_eq!(
            InProcessBus::new().get_response("resp_1").await.unwrap(),
            None
        );
        bus.delete_response("resp_1").await.unwrap();
        assert_eq!(bus.get_response("resp_1").await.unwrap(), None);
    }
}
