//! Which key of a provider's pool made each upstream call of a request. A key
//! answered 429 or 401 rests and the next key takes the call at once, inside
//! one call of the routing layer ([`super::http::Upstream::send`]); this
//! records those rested calls, and the key of the last call, for the request's
//! log ([`crate::capture::Exchange`]). The record is scoped to the request's
//! task ([`scope`]); outside a scope nothing is recorded.

use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    static CALLS: RefCell<KeyCalls>;
}

/// What the request's calls used so far.
#[derive(Debug, Default)]
pub struct KeyCalls {
    /// Calls whose key rested, in order: taken over by the next key.
    pub rested: Vec<Rested>,
    /// The key of the last call: its place in the pool, from 1 (0: no key).
    pub last_key: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rested {
    pub key: u32,
    pub status: u16,
    pub latency_us: u64,
}

/// Runs a request's handling with a record of its key calls.
pub async fn scope<F: Future>(f: F) -> F::Output {
    CALLS.scope(RefCell::default(), f).await
}

/// A call made with key `i` (from 0) of the pool.
pub(super) fn used(i: Option<usize>) {
    let key = i.map_or(0, |i| u32::try_from(i + 1).unwrap_or(u32::MAX));
    let _ = CALLS.try_with(|c| c.borrow_mut().last_key = key);
}

/// The call with key `i` (from 0) answered `status` and the key rests.
pub(super) fn rested(i: usize, status: u16, latency_us: u64) {
    let _ = CALLS.try_with(|c| {
        c.borrow_mut().rested.push(Rested {
            key: u32::try_from(i + 1).unwrap_or(u32::MAX),
            status,
            latency_us,
        });
    });
}

/// Takes the rested calls so far (the last key stays).
pub fn take_rested() -> Vec<Rested> {
    CALLS
        .try_with(|c| std::mem::take(&mut c.borrow_mut().rested))
        .unwrap_or_default()
}

/// The key of the request's last call (0: none, or outside a scope).
pub fn last_key() -> u32 {
    CALLS.try_with(|c| c.borrow().last_key).unwrap_or(0)
}
