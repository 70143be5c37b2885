//! The bytes of request bodies the gateway holds at once, bounded: each request
//! reserves room for its body as it reads it and keeps it until its log event is
//! built (the body stays in memory until then). Past the bound a request waits for
//! room, then gets 503 with `Retry-After`: many large bodies (images) at once
//! cannot take the memory of the machine.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::error::Error;

/// The room all bodies in flight share.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    room: Arc<Semaphore>,
    max: usize,
}

impl BodyBudget {
    pub fn new(max_bytes: usize) -> Self {
        let max = max_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            room: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// An empty reservation, to grow as the body arrives.
    pub fn reserve(&self) -> Room {
        Room {
            budget: self.clone(),
            held: None,
            bytes: 0,
        }
    }

    /// Bytes free now.
    pub fn available(&self) -> usize {
        self.room.available_permits()
    }
}

/// One request's share, given back when dropped.
pub struct Room {
    budget: BodyBudget,
    held: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("bytes", &self.bytes).finish()
    }
}

impl Room {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes room for `n` more bytes, waiting until `until` at most. A body larger
    /// than the whole budget takes all of it (it is still bounded by
    /// `max_body_bytes`).
    pub async fn grow(&mut self, n: usize, until: Instant) -> Result<(), Error> {
        let n = n.min(self.budget.max.saturating_sub(self.bytes));
        if n == 0 {
            return Ok(());
        }
        let permits = u32::try_from(n).unwrap_or(u32::MAX);
        let acquire = self.budget.room.clone().acquire_many_owned(permits);
        let permit = match tokio::time::timeout_at(until, acquire).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(closed)) => return Err(Error::Unexpected(closed.into())),
            Err(_) => return Err(Error::Overloaded),
        };
        self.bytes += permits as usize;
        match &mut self.held {
            Some(held) => held.merge(permit),
            None => self.held = Some(permit),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn room_is_shared_waited_for_and_given_back() {
        let budget = BodyBudget::new(100);
        let soon = || Instant::now() + Duration::from_millis(50);
        let mut a = budget.reserve();
        a.grow(60, soon()).await.unwrap();
        let mut b = budget.reserve();
        assert!(matches!(b.grow(60, soon()).await, Err(Error::Overloaded)));
        b.grow(40, soon()).await.unwrap();
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 60);
        // Larger than everything: takes what there is in all, no more.
        let mut c = budget.reserve();
        drop(b);
        c.grow(1_000, soon()).await.unwrap();
        assert_eq!(budget.available(), 0);
    }
}
