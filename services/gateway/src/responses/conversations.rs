//! Stored Responses conversations: what `previous_response_id` continues and
//! what `GET /v1/responses/{id}` returns. One entry per response, holding its
//! own input items and the Response answered, on the bus: in NATS's
//! `aiprox-responses` bucket (on disk, expiring after
//! `events::RESPONSES_MAX_AGE`, read by every gateway); in `aiprox all`'s
//! database (`stored_responses`, deleted with the logs by retention); in this
//! process when the gateway runs without a bus. A conversation is the chain of
//! entries its `previous_response_id`s link.
//!
//! An entry belongs to the client key that created it: another key (or no key,
//! where keys are required) finds nothing, as for an id that never existed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use llm::responses::Item;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;

/// The longest chain of `previous_response_id`s followed.
const MOST_TURNS: usize = 1_000;

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The client key that created it.
    pub key_id: Option<String>,
    pub previous_response_id: Option<String>,
    /// The provider that answered.
    pub provider: String,
    /// Whether it answered natively: the upstream holds the response under the
    /// same id, so a continuation on the same provider may name it there.
    pub native: bool,
    /// This response's input items, ids given to those sent without one (the
    /// history before it is in the entries it links to).
    pub input: Vec<Value>,
    /// The Response object as answered.
    pub response: Value,
}

impl Entry {
    pub fn id(&self) -> &str {
        self.response["id"].as_str().unwrap_or_default()
    }
}

/// A conversation up to a response: its entries, oldest first.
#[derive(Debug, Default)]
pub struct Chain {
    pub entries: Vec<Entry>,
}

impl Chain {
    /// Every item of the conversation, in order: each response's input, then
    /// its output.
    pub fn items(&self) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        for entry in &self.entries {
            let output = entry.response["output"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for value in entry.input.iter().cloned().chain(output) {
                items.push(Item::from_value(value).map_err(|e| {
                    Error::Unexpected(anyhow::anyhow!("a stored item is unreadable: {e}"))
                })?);
            }
        }
        Ok(items)
    }

    /// The newest entry.
    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }
}

/// Where entries are kept.
#[derive(Debug, Clone)]
pub struct Conversations {
    bus: Option<events::Bus>,
    /// Without a bus: this process's entries.
    local: Arc<Mutex<HashMap<String, Bytes>>>,
    /// A WebSocket connection's own responses, stored or not (read first).
    connection: Option<Arc<Mutex<HashMap<String, Bytes>>>>,
}

impl Conversations {
    pub fn new(bus: Option<events::Bus>) -> Self {
        Self {
            bus,
            local: Arc::default(),
            connection: None,
        }
    }

    /// The same store, with a connection's own responses on top: every
    /// response made through it is remembered there, `store` or not.
    pub fn for_connection(&self) -> Self {
        Self {
            connection: Some(Arc::default()),
            ..self.clone()
        }
    }

    /// Whether responses are remembered whatever their `store`.
    pub fn remembers_all(&self) -> bool {
        self.connection.is_some()
    }

    /// Stores `entry` under its response's id: for every gateway when `shared`,
    /// and in the connection's own memory if there is one.
    pub async fn put(&self, entry: &Entry, shared: bool) -> Result<(), Error> {
        let bytes =
            Bytes::from(serde_json::to_vec(entry).map_err(|e| Error::Unexpected(e.into()))?);
        if let Some(connection) = &self.connection {
            connection
                .lock()
                .insert(entry.id().to_owned(), bytes.clone());
        }
        if !shared {
            return Ok(());
        }
        match &self.bus {
            Some(bus) => bus.put_response(entry.id(), bytes).await.map_err(|e| {
                tracing::warn!(error = %e, response_id = entry.id(), "response not stored");
                Error::ConversationsUnavailable
            }),
            None => {
                self.local.lock().insert(entry.id().to_owned(), bytes);
                Ok(())
            }
        }
    }

    /// The entry of response `id`, if it is `key`'s.
    pub async fn get(&self, id: &str, key: Option<&str>) -> Result<Option<Entry>, Error> {
        let remembered = self
            .connection
            .as_ref()
            .and_then(|c| c.lock().get(id).cloned());
        let bytes = match (remembered, &self.bus) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(bus)) => bus.get_response(id).await.map_err(|e| {
                tracing::warn!(error = %e, response_id = id, "stored responses unreachable");
                Error::ConversationsUnavailable
            })?,
            (None, None) => self.local.lock().get(id).cloned(),
        };
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let entry: Entry =
            serde_json::from_slice(&bytes).map_err(|e| Error::Unexpected(e.into()))?;
        Ok((entry.key_id.as_deref() == key).then_some(entry))
    }

    /// Deletes response `id`, if it is `key`'s; whether it was.
    pub async fn delete(&self, id: &str, key: Option<&str>) -> Result<bool, Error> {
        if self.get(id, key).await?.is_none() {
            return Ok(false);
        }
        match &self.bus {
            Some(bus) => bus.delete_response(id).await.map_err(|e| {
                tracing::warn!(error = %e, response_id = id, "stored responses unreachable");
                Error::ConversationsUnavailable
            })?,
            None => {
                self.local.lock().remove(id);
            }
        }
        Ok(true)
    }

    /// The conversation up to response `id`; refused when any response of it is
    /// missing (deleted, expired, or another key's).
    pub async fn chain(&self, id: &str, key: Option<&str>) -> Result<Chain, Error> {
        let mut entries = Vec::new();
        let mut next = Some(id.to_owned());
        while let Some(id) = next {
            if entries.len() == MOST_TURNS {
                break;
            }
            let entry = self
                .get(&id, key)
                .await?
                .ok_or_else(|| Error::PreviousResponseNotFound(id.clone()))?;
            next = entry.previous_response_id.clone();
            entries.push(entry);
        }
        entries.reverse();
        Ok(Chain { entries })
    }
}
