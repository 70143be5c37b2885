//! Load balancing: which of a route's admitted targets serves a request first,
//! by the mapping's [`Strategy`]. The others follow in the route's order, so a
//! failure still falls back as configured. A target of weight 0 is a backup:
//! never first while another may be.
//!
//! Each target's [`Load`] lives in this replica, beside its health: the calls in
//! flight (a stream counts until it ends) and a peak EWMA of its latency (the
//! whole answer, or a stream's time to first event). Peak EWMA, after
//! Finagle's and Linkerd's balancers: a slower call than the average takes the
//! average at once, faster ones pull it down over `DECAY`, and an idle target's
//! average decays to nothing, so a target once slow is tried again in time.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use config_model::Strategy;

use crate::ejection::now_ms;
use crate::routing::Target;

/// How fast the latency average forgets (Finagle's default).
const DECAY: Duration = Duration::from_secs(10);

/// One target's calls in flight and latency average.
#[derive(Debug, Default)]
pub struct Load {
    in_flight: AtomicU32,
    /// Peak EWMA in microseconds, as `f64` bits.
    average_us: AtomicU64,
    /// When the average was last updated (Unix milliseconds).
    updated_ms: AtomicU64,
}

/// A call in flight, counted until dropped.
#[derive(Debug)]
pub struct Busy(std::sync::Arc<crate::ejection::Health>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.load().in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Load {
    /// Counts a call in flight until the guard is dropped.
    pub fn busy(health: &std::sync::Arc<crate::ejection::Health>) -> Busy {
        health.load().in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(health.clone())
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency average now, decayed for the time since it was updated (ms).
    pub fn average_ms(&self) -> f64 {
        self.decayed(now_ms()) / 1000.0
    }

    fn decayed(&self, now: u64) -> f64 {
        let average = f64::from_bits(self.average_us.load(Ordering::Relaxed));
        let idle = now.saturating_sub(self.updated_ms.load(Ordering::Relaxed));
        average * (-(idle as f64) / DECAY.as_millis() as f64).exp()
    }

    /// Takes a call's latency into the average (races may lose a sample; no
    /// decision needs every one).
    pub fn observe(&self, latency: Duration) {
        let now = now_ms();
        let sample = latency.as_secs_f64() * 1e6;
        let average = self.decayed(now);
        let next = if sample > average {
            sample
        } else {
            // The decay above already weighed the old average by its age; a
            // sample moves what is left a tenth of the way.
            average + (sample - average) * 0.1
        };
        self.average_us.store(next.to_bits(), Ordering::Relaxed);
        self.updated_ms.store(now, Ordering::Relaxed);
    }

    /// What a call costs here: the latency average (plus a millisecond, so
    /// targets not yet measured still differ by their calls in flight) times
    /// the calls in flight and this one.
    fn cost(&self, now: u64) -> f64 {
        (self.decayed(now) + 1000.0) * f64::from(self.in_flight() + 1)
    }
}

/// The index, among `targets` (admitted, in the route's order), of the one
/// that serves first.
pub fn pick(strategy: Strategy, targets: &[&Target]) -> usize {
    // Backups (weight 0) are never first while another may be.
    let candidates = || (0..targets.len()).filter(|&i| targets[i].weight > 0);
    let n = candidates().count();
    let nth = |k: usize| candidates().nth(k).unwrap_or(0);
    if n <= 1 || strategy == Strategy::Fallback {
        return nth(0);
    }
    let load = |i: usize| targets[i].health.as_ref().map(|h| h.load());
    match strategy {
        Strategy::Fallback => nth(0),
        Strategy::Weighted => {
            let total: u64 = candidates().map(|i| u64::from(targets[i].weight)).sum();
            let mut draw = fastrand::u64(..total);
            for i in candidates() {
                let w = u64::from(targets[i].weight);
                if draw < w {
                    return i;
                }
                draw -= w;
            }
            nth(0)
        }
        Strategy::LeastLatency => {
            // Power of two choices: two distinct candidates at random, the
            // cheaper serves.
            let a = fastrand::usize(..n);
            let b = (a + 1 + fastrand::usize(..n - 1)) % n;
            let (a, b) = (nth(a), nth(b));
            let now = now_ms();
            let cost = |i: usize| load(i).map_or(0.0, |l| l.cost(now));
            if cost(b) < cost(a) { b } else { a }
        }
        Strategy::LeastBusy => {
            let busy = |i: usize| load(i).map_or(0, Load::in_flight);
            let fewest = candidates().map(busy).min().unwrap_or(0);
            let idle = || candidates().filter(|&i| busy(i) == fewest);
            // Ties at random, so that calls one after another spread too.
            let k = fastrand::usize(..idle().count().max(1));
            idle().nth(k).unwrap_or(0)
        }
    }
}

/// A uniform number in [0, 1).
pub fn random_unit() -> f64 {
    fastrand::f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_ewma_takes_a_slow_call_at_once_and_a_fast_one_slowly() {
        let load = Load::default();
        load.observe(Duration::from_millis(200));
        assert!((load.average_ms() - 200.0).abs() < 5.0);
        load.observe(Duration::from_millis(10));
        let after = load.average_ms();
        assert!(after > 150.0 && after < 200.0, "{after}");
        load.observe(Duration::from_millis(400));
        assert!(load.average_ms() > 395.0);
    }
}
