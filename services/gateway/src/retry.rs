//! How many upstream calls one request may make, and when.
//!
//! - [`Attempts`]: a request's calls. The route's targets in order, then from the
//!   first again, up to `max_attempts`; only after an error another call may fix
//!   ([`Error::is_retryable`]). Moving to another target is immediate; calling the
//!   same target again (a route of one) waits a backoff with full jitter, or what the upstream asked
//!   (`retry-after-ms`, `retry-after`, `x-ratelimit-reset-*`) up to
//!   `retry_after_max` (past it, the error is answered at once).
//! - [`Budget`]: every call after a request's first is a retry, and all of them
//!   together stay within a share of the requests of the last ten seconds plus a
//!   small floor per second, so a full outage adds almost no upstream calls.
//!
//! Per request, `x-aiprox-max-attempts: N` lowers the maximum,
//! `x-aiprox-fallbacks: off` keeps to the first target, `x-aiprox-target: NAME`
//! to the target of that provider; the client's own timeout (`x-stainless-timeout`,
//! which the OpenAI and Anthropic SDKs send, or `x-aiprox-timeout`, in seconds)
//! bounds every call and wait, so nothing is retried for a client that left.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::routing::{Route, Target};

/// `gateway.retry` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Upstream calls per request at most, over all its targets.
    pub max_attempts: u32,
    /// Retries (calls after a request's first) at most this share of the requests
    /// of the last ten seconds…
    pub budget_ratio: f64,
    /// …plus this many per second whatever the traffic.
    pub budget_floor_per_second: u32,
    /// Backoff before calling the same target again: a random wait up to
    /// `backoff_base · 2ⁿ`, at most `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// The longest wait an upstream may ask for; a longer one is not waited.
    #[serde(with = "humantime_serde")]
    pub retry_after_max: Duration,
    /// A stream's first event must arrive within this (time to first token):
    /// until then nothing is sent to the client, and a failure goes to the next
    /// target; past it, the next target too.
    #[serde(with = "humantime_serde")]
    pub first_event_timeout: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            budget_ratio: 0.2,
            budget_floor_per_second: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            retry_after_max: Duration::from_secs(10),
            first_event_timeout: Duration::from_secs(120),
        }
    }
}

/// What a client asked of this request's routing (its headers).
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub max_attempts: Option<u32>,
    pub no_fallbacks: bool,
    /// Only the target of this provider.
    pub pin: Option<Box<str>>,
    /// When the client stops waiting.
    pub deadline: Option<tokio::time::Instant>,
}

impl Asked {
    pub fn of(headers: &HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let seconds = text("x-aiprox-timeout")
            .or_else(|| text("x-stainless-timeout"))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0);
        Self {
            max_attempts: text("x-aiprox-max-attempts").and_then(|v| v.trim().parse().ok()),
            no_fallbacks: text("x-aiprox-fallbacks")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("off")),
            pin: text("x-aiprox-target").map(|v| v.trim().into()),
            deadline: seconds
                .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.min(86_400.0))),
        }
    }
}

/// When an upstream's answer says to come back: `retry-after-ms` (OpenAI),
/// `retry-after` in seconds, or the sooner of `x-ratelimit-reset-requests` and
/// `x-ratelimit-reset-tokens` (`1s`, `6m0s`, `20ms`).
pub fn hint(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Whatever an upstream writes: `inf` or `1e30` is no duration.
    let seconds = |s: f64| Duration::try_from_secs_f64(s.max(0.0)).ok();
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return seconds(ms / 1000.0);
    }
    if let Some(s) = text("retry-after").and_then(|v| v.trim().parse::<f64>().ok()) {
        return seconds(s);
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .into_iter()
        .filter_map(|name| text(name).and_then(reset))
        .min()
}

/// `6m0s`, `1.5s`, `20ms`: a Go-style duration.
fn reset(text: &str) -> Option<Duration> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += n * match &rest[..unit] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// The retries the gateway may still make: over the last ten one-second buckets,
/// at most `budget_ratio` of the requests plus `budget_floor_per_second` per second.
#[derive(Debug)]
pub struct Budget {
    ratio: f64,
    floor: f64,
    buckets: Mutex<[Bucket; WINDOW]>,
}

const WINDOW: usize = 10;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    second: u64,
    requests: u32,
    retries: u32,
}

fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Budget {
    pub fn new(settings: &RetrySettings) -> Self {
        Self {
            ratio: settings.budget_ratio.max(0.0),
            floor: f64::from(settings.budget_floor_per_second),
            buckets: Mutex::new([Bucket::default(); WINDOW]),
        }
    }

    /// The current second's bucket, emptied when it is a new second.
    fn with_bucket<T>(&self, f: impl FnOnce(&mut [Bucket; WINDOW], usize) -> T) -> T {
        let second = now_second();
        let i = usize::try_from(second % WINDOW as u64).unwrap_or(0);
        let mut buckets = self.buckets.lock();
        if buckets[i].second != second {
            buckets[i] = Bucket {
                second,
                ..Bucket::default()
            };
        }
        f(&mut buckets, i)
    }

    /// Counts a request.
    pub fn request(&self) {
        self.with_bucket(|b, i| b[i].requests = b[i].requests.saturating_add(1));
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn take_retry(&self) -> bool {
        let second = now_second();
        self.with_bucket(|buckets, i| {
            let live = buckets
                .iter()
                .filter(|b| second.saturating_sub(b.second) < WINDOW as u64);
            let (requests, retries) = live.fold((0.0, 0.0), |(q, r), b| {
                (q + f64::from(b.requests), r + f64::from(b.retries))
            });
            if retries < self.ratio * requests + self.floor * WINDOW as f64 {
                buckets[i].retries = buckets[i].retries.saturating_add(1);
                true
            } else {
                false
            }
        })
    }
}

/// One request's upstream calls.
#[derive(Debug)]
pub struct Attempts<'a> {
    /// The route's targets, those ejected last ([`crate::ejection`]).
    targets: Vec<&'a Target>,
    /// The target of the last call.
    current: Option<&'a Target>,
    settings: &'a RetrySettings,
    budget: &'a Budget,
    made: u32,
    max: u32,
    /// Calls of the same target in a row (for the backoff's growth).
    same: u32,
    deadline: Option<tokio::time::Instant>,
}

impl<'a> Attempts<'a> {
    /// Counts the request in the budget.
    pub fn new(
        route: &'a Route,
        settings: &'a RetrySettings,
        budget: &'a Budget,
        asked: &Asked,
    ) -> Result<Self, Error> {
        budget.request();
        let targets = route.targets();
        let mut order: Vec<&Target> = match &asked.pin {
            Some(pin) => {
                let pinned: Vec<&Target> = targets
                    .iter()
                    .filter(|t| *t.provider_name == **pin)
                    .collect();
                if pinned.is_empty() {
                    return Err(Error::InvalidRequest(
                        llm::openai::InvalidRequest::InvalidValue {
                            param: "x-aiprox-target".into(),
                            message: "names no provider among this model's targets.",
                        },
                    ));
                }
                pinned
            }
            None => targets.iter().collect(),
        };
        if order.len() > 1 {
            // Admitted first, in the route's order; then the ejected, the least
            // recently failed first (a stable sort keeps the route's order; each
            // key read once, so a cool-down ending meanwhile cannot upset it).
            order.sort_by_cached_key(|t| match &t.health {
                Some(h) if !h.admits() => (1, h.last_failure_ms()),
                _ => (0, 0),
            });
            // The strategy picks the first among the admitted; the others keep
            // the route's order behind it.
            let admitted = order
                .iter()
                .take_while(|t| t.health.as_ref().is_none_or(|h| h.admits()))
                .count();
            let first = crate::balance::pick(route.strategy, &order[..admitted]);
            order[..=first].rotate_right(1);
        }
        if asked.no_fallbacks {
            order.truncate(1);
        }
        let max = asked
            .max_attempts
            .map_or(settings.max_attempts, |m| m.min(settings.max_attempts))
            .max(1);
        Ok(Self {
            targets: order,
            current: None,
            settings,
            budget,
            made: 0,
            max,
            same: 0,
            deadline: asked.deadline,
        })
    }

    /// `call` to `target`, cut off at the target's timeout or when the client's
    /// own is over (then the upstream timed out, as far as anyone waiting can
    /// tell). Its latency (of an answer, or a time-out) goes to the balancer.
    pub async fn within<T>(
        &self,
        target: &Target,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let started = tokio::time::Instant::now();
        let own = target.timeout.map(|t| started + t);
        let deadline = match (own, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let answered = match deadline {
            None => call.await,
            Some(deadline) => tokio::time::timeout_at(deadline, call)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::UpstreamTimeout {
                        provider: target.provider_name.to_string(),
                        seconds: deadline.saturating_duration_since(started).as_secs_f64(),
                    })
                }),
        };
        if let Some(h) = &target.health
            && matches!(answered, Ok(_) | Err(Error::UpstreamTimeout { .. }))
        {
            h.load().observe(started.elapsed());
        }
        answered
    }

    /// The target of the first call.
    pub fn first(&mut self) -> Option<&'a Target> {
        self.made = 1;
        self.current = self.targets.first().copied();
        self.current
    }

    /// The last call answered: its target is healthy.
    pub fn succeeded(&self) {
        if let Some(h) = self.current.and_then(|t| t.health.as_ref()) {
            h.succeeded();
        }
    }

    /// After `error` from the last call: the target of the next, once its wait is
    /// over; `None` when the error is the answer.
    pub async fn next(&mut self, error: &Error) -> Option<&'a Target> {
        if let Some(h) = self.current.and_then(|t| t.health.as_ref()) {
            h.failed(error);
        }
        if !error.is_retryable() || self.made >= self.max || self.targets.is_empty() {
            return None;
        }
        let n = self.targets.len() as u32;
        let next = self.targets[(self.made % n) as usize];
        // The same target as the call that just failed: its wait applies. Another
        // (the next one, or the first again after the last) is called at once.
        let again = n == 1;
        let wait = if again {
            let asked = error.upstream_retry_after();
            if asked.is_some_and(|a| a > self.settings.retry_after_max) {
                return None;
            }
            asked.unwrap_or_else(|| self.backoff())
        } else {
            Duration::ZERO
        };
        if self
            .deadline
            .is_some_and(|d| tokio::time::Instant::now() + wait >= d)
        {
            // The client will have stopped waiting.
            return None;
        }
        if !self.budget.take_retry() {
            return None;
        }
        self.same = if again { self.same + 1 } else { 0 };
        self.made += 1;
        self.current = Some(next);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Some(next)
    }

    /// Full jitter: a random wait up to `base · 2ⁿ`, at most `backoff_max`.
    fn backoff(&self) -> Duration {
        let ceiling = self
            .settings
            .backoff_base
            .saturating_mul(1 << self.same.min(16))
            .min(self.settings.backoff_max);
        ceiling.mul_f64(crate::balance::random_unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstreams_retry_hints_are_read_in_order_of_precision() {
        let mut h = HeaderMap::new();
        assert_eq!(hint(&h), None);
        h.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
        h.insert("x-ratelimit-reset-tokens", "1.5s".parse().unwrap());
        assert_eq!(hint(&h), Some(Duration::from_millis(1500)));
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(hint(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(hint(&h), Some(Duration::from_millis(250)));
        assert_eq!(reset("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(reset("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(reset("soon"), None);
        // Nothing an upstream writes makes it panic.
        assert_eq!(reset("99999999999999999999999h"), None);
        let mut odd = HeaderMap::new();
        for value in ["inf", "1e30", "NaN", "-5"] {
            odd.insert("retry-after", value.parse().unwrap());
            assert!(
                hint(&odd).is_none_or(|d| d <= Duration::from_secs(1)),
                "{value}"
            );
        }
    }

    #[test]
    fn the_budget_allows_its_share_of_requests_and_its_floor_then_refuses() {
        let settings = RetrySettings {
            budget_ratio: 0.1,
            budget_floor_per_second: 1,
            ..RetrySettings::default()
        };
        let budget = Budget::new(&settings);
        for _ in 0..100 {
            budget.request();
        }
        // 10 % of 100 requests, plus 1 a second over the ten-second window.
        let granted = (0..100).filter(|_| budget.take_retry()).count();
        assert!((20..=21).contains(&granted), "{granted}");
    }
}
