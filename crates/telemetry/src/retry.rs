//! The one retry policy of aiprox's background work (consumer fetches, batch
//! writes, configuration publishing and watching, stream set-up, spill replay):
//! exponential backoff with full jitter from a first pause up to a cap, without a
//! limit on attempts, always ending when the shutdown token is cancelled. Built on
//! `backon`.
//!
//! - [`until_ok`]: runs an attempt until it succeeds (or shutdown), logging each
//!   failure.
//! - [`Pause`]: the waits of a loop that carries on after a failure (fetch, then
//!   fetch again), reset when an attempt succeeds.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;

/// Backoff from `first`, doubling, at most `max`, with jitter, forever.
pub fn policy(first: Duration, max: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
}

/// Runs `attempt` until it succeeds, pausing by `policy` between failures (each
/// logged as a warning naming `what`); `None` when `shutdown` comes first.
pub async fn until_ok<T, E, F, Fut>(
    what: &str,
    policy: ExponentialBuilder,
    shutdown: &CancellationToken,
    attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let retrying =
        attempt
            .retry(policy)
            .sleep(tokio::time::sleep)
            .notify(|e: &E, wait: Duration| {
                tracing::warn!(error = %e, retry_in = ?wait, "{what}; retrying");
            });
    tokio::select! {
        result = retrying => result.ok(),
        () = shutdown.cancelled() => None,
    }
}

/// The pauses of a loop between failed attempts: each longer than the last, back
/// to the first after a success.
#[derive(Debug)]
pub struct Pause {
    policy: ExponentialBuilder,
    backoff: ExponentialBackoff,
}

impl Pause {
    pub fn new(policy: ExponentialBuilder) -> Self {
        Self {
            backoff: policy.build(),
            policy,
        }
    }

    /// How long to wait after this failure.
    pub fn next_delay(&mut self) -> Duration {
        self.backoff
            .next()
            .or_else(|| self.policy.build().next())
            .unwrap_or(Duration::from_secs(1))
    }

    /// Waits after a failure; `false` when `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = shutdown.cancelled() => false,
        }
    }

    /// An attempt succeeded: the next failure waits the first pause again.
    pub fn reset(&mut self) {
        self.backoff = self.policy.build();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn pauses_grow_up_to_the_cap_and_reset() {
        let mut pause = Pause::new(policy(
            Duration::from_millis(100),
            Duration::from_millis(400),
        ));
        let delays: Vec<Duration> = (0..6).map(|_| pause.next_delay()).collect();
        // Full jitter adds up to one more pause: each lies in [d, 2d].
        for (delay, base) in delays.iter().zip([100, 200, 400, 400, 400, 400]) {
            let base = Duration::from_millis(base);
            assert!(*delay >= base && *delay <= base * 2, "{delays:?}");
        }
        pause.reset();
        assert!(pause.next_delay() <= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn until_ok_retries_until_success_and_stops_on_shutdown() {
        let tries = AtomicU32::new(0);
        let shutdown = CancellationToken::new();
        let fast = policy(Duration::from_millis(1), Duration::from_millis(2));
        let got = until_ok("flaky", fast, &shutdown, || async {
            if tries.fetch_add(1, Ordering::Relaxed) < 3 {
                Err("not yet")
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!((got, tries.load(Ordering::Relaxed)), (Some(7), 4));

        shutdown.cancel();
        let never = until_ok("down", fast, &shutdown, || async { Err::<(), _>("down") }).await;
        assert_eq!(never, None);
    }
}
