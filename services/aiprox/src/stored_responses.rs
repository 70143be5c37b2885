//! `aiprox all`'s stored Responses API conversations, in its database: the
//! in-process bus's [`ResponseKeeper`] over the store, so a `previous_response_id`
//! outlives a restart, and the logs' retention deletes the conversations with
//! them. (On NATS the bus keeps them in its own bucket.)

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use events::BusError;
use events::memory::{KeeperFuture, ResponseKeeper};

/// The store, as the bus's keeper of stored responses.
#[derive(Debug, Clone)]
pub struct StoredResponses {
    store: store::Store,
}

impl StoredResponses {
    /// Keeps responses in `store` (migrated before the gateway serves).
    pub fn new(store: store::Store) -> Self {
        Self { store }
    }
}

/// The gateway reports a bus error as its conversations being unavailable,
/// and logs the detail.
fn unavailable(e: store::StoreError) -> BusError {
    BusError::Unavailable(e.to_string())
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl ResponseKeeper for StoredResponses {
    fn put<'a>(&'a self, id: &'a str, entry: Bytes) -> KeeperFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .put_response(id, &entry, now_us())
                .await
                .map_err(unavailable)
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let entry = self.store.get_response(id).await.map_err(unavailable)?;
            Ok(entry.map(Bytes::from))
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> KeeperFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .delete_response(id)
                .await
                .map(drop)
                .map_err(unavailable)
        })
    }
}
