//! The in-process bus of `aiprox all`: unbounded queues per subject and a blob map.
//! Nothing crosses a process boundary, so there is nothing to lose in transit; what
//! a consumer took it keeps until it has written it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::{Acker, BusError, Delivery, Outgoing};

type Queue = (
    mpsc::UnboundedSender<Outgoing>,
    Option<mpsc::UnboundedReceiver<Outgoing>>,
);

#[derive(Debug, Clone, Default)]
pub struct InProcessBus {
    queues: Arc<Mutex<HashMap<String, Queue>>>,
    blobs: Arc<Mutex<HashMap<String, Bytes>>>,
    config: Arc<tokio::sync::watch::Sender<Option<Bytes>>>,
}

#[derive(Debug)]
pub struct InProcessConsumer {
    receiver: Option<mpsc::UnboundedReceiver<Outgoing>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
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
                self.sender(m.subject)
                    .send(m.clone())
                    .map_err(|_| BusError::Unavailable("the in-process consumer stopped".into()))
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
        InProcessConsumer { receiver }
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
        out.push(delivery(first));
        while out.len() < max {
            match rx.try_recv() {
                Ok(m) => out.push(delivery(m)),
                Err(_) => break,
            }
        }
        out
    }
}

fn delivery(m: Outgoing) -> Delivery {
    Delivery {
        payload: m.payload,
        traceparent: m.traceparent,
        ack: Acker::None,
    }
}
