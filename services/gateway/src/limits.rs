//! Client keys' limits on the request path: the models a key may ask for, its
//! requests and tokens per minute and its budget, counted by every gateway
//! together.
//!
//! Each count is a counter on the bus: per key and calendar minute in
//! `aiprox-rate` (expiring), per key and budget period in `aiprox-spend`
//! (micro-USD, on disk, no expiry). Gateways take from a counter in leases (a
//! twentieth of the limit, at least what the request needs) by
//! compare-and-set, and admit from their lease without asking anyone; the bus
//! is asked again only when the lease is used up. As a lease counts when taken,
//! the gateways together never admit past a limit; what they hold leased and
//! unused is what they may admit less.
//!
//! Calls in flight are slots on a counter of the key's, leased the same way
//! and given back 100 ms after they became spare (past a lease; all of them
//! once the key is idle in this gateway).
//!
//! Tokens and spend are reserved before the upstream call at an upper bound
//! (the request body's bytes as input tokens, plus `max_tokens` or
//! `max_completion_tokens`, else `assumed_max_output_tokens`, at the dearest
//! of the route's targets' prices) and settled when the request's log is
//! made: what the call did not use goes back to the lease. So concurrent
//! requests cannot together spend past a budget.
//!
//! While the bus cannot be reached (a lease not answered within
//! `gateway.limits.bus_timeout`, 250 ms; then the bus is not asked again for a
//! second), `gateway.limits.when_bus_down` decides: `allow` (the default: a
//! key's requests pass, unlimited, and a warning is logged) or `refuse` (503
//! `limits_unavailable` with `Retry-After`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use config_model::{Budget, BudgetPeriod, KeyLimits};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};

use crate::capture::Exchange;
use crate::ejection::now_ms;
use crate::error::Error;
use crate::routing::Route;

/// `gateway.limits` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub when_bus_down: WhenBusDown,
    /// How long a lease may take before the bus is taken for unreachable.
    #[serde(with = "humantime_serde")]
    pub bus_timeout: Duration,
    /// The output reserved for a request that sets no `max_tokens`.
    pub assumed_max_output_tokens: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            when_bus_down: WhenBusDown::default(),
            bus_timeout: Duration::from_millis(250),
            assumed_max_output_tokens: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenBusDown {
    /// Fail open: requests pass unlimited.
    #[default]
    Allow,
    /// Fail closed: limited keys' requests are refused.
    Refuse,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    reason: &'static str,
}

/// Which shared counter: a key's, of one kind, for one window (a minute, or
/// a budget's period). Kept as parts on the request path; its bus name is made
/// only to lease.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CounterId {
    key: std::sync::Arc<str>,
    kind: &'static str,
    window: u64,
}

impl CounterId {
    /// Its name on the bus: `rpm.<key>.<minute>`, `spend.<key>.m202612`…
    fn name(&self) -> String {
        match self.kind {
            "spend.d" | "spend.m" => {
                format!("spend.{}.{}{}", self.key, &self.kind[6..], self.window)
            }
            "spend.total" => format!("spend.{}.total", self.key),
            kind => format!("{kind}.{}.{}", self.key, self.window),
        }
    }
}

/// What one counter's lease holds here.
#[derive(Debug, Default, Clone, Copy)]
struct Pool {
    /// Leased and not yet used here.
    left: u64,
    /// The shared counter when last leased (every gateway's leases).
    used: u64,
    touched_ms: u64,
}

/// What a request took from counters that settle (tokens, spend): given back,
/// less what it used, when its log is made.
#[derive(Debug, Default, Clone)]
pub struct Reservation {
    tokens: Option<(CounterId, u64)>,
    spend_micro_usd: Option<(CounterId, u64)>,
}

/// A call in flight for a key, counted until dropped (with the request's
/// exchange: when its answer or stream is over and logged).
#[derive(Debug)]
pub struct Slot {
    limits: std::sync::Arc<Limits>,
    key: std::sync::Arc<str>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limits.release_slot(&self.key);
    }
}

/// A key's calls in flight here, and the slots leased for them from the bus
/// (its `conc.<key>` counter): leased in batches of a twentieth of the limit,
/// so most calls take a slot without a round trip; spare slots beyond a
/// batch go back `SLOT_IDLE` after they became spare, all of them once the
/// key is idle here.
#[derive(Debug, Default)]
struct SlotPool {
    leased: u64,
    in_use: u64,
    batch: u64,
    /// A return of spare slots is planned.
    return_planned: bool,
}

/// How long a key's spare slots are kept before they go back to the bus.
const SLOT_IDLE: Duration = Duration::from_millis(100);

/// Which of a request's counters one check takes from.
struct Take<'a> {
    counter: CounterId,
    spend: bool,
    need: u64,
    limit: u64,
    refused: &'a (dyn Fn() -> Error + Sync),
}

/// Every limited key's leases and calls in flight in this gateway, and the
/// refusals counted.
#[derive(Debug)]
pub struct Limits {
    bus: Option<events::Bus>,
    settings: LimitSettings,
    pools: Mutex<HashMap<CounterId, Pool>>,
    slots: Mutex<HashMap<std::sync::Arc<str>, SlotPool>>,
    refused: Family<Refusal, Counter>,
    /// Until when the bus is taken for unreachable (Unix ms), after a lease
    /// failed: requests then do not each wait for it.
    down_until_ms: AtomicU64,
}

impl Limits {
    pub fn new(bus: Option<events::Bus>, settings: LimitSettings) -> Self {
        Self {
            bus,
            settings,
            pools: Mutex::default(),
            slots: Mutex::default(),
            refused: Family::default(),
            down_until_ms: AtomicU64::new(0),
        }
    }

    /// The bus the counters are shared on, if any.
    pub fn bus(&self) -> Option<&events::Bus> {
        self.bus.as_ref()
    }

    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "aiprox_gateway_limit_refusals",
            "Requests refused for their client key's limits, by reason (model_not_allowed, rate_limit_exceeded, budget_exceeded, concurrency_limit_exceeded, limits_unavailable).",
            self.refused.clone(),
        );
    }

    /// Admits the exchange's request for `route` under its key's limits, or
    /// refuses it; sets the `x-ratelimit-*` headers its answer carries and what
    /// it reserved. `body_len` and `max_output`: the request body's bytes and
    /// its `max_tokens`, if any.
    pub async fn admit(
        self: &std::sync::Arc<Self>,
        x: &mut Exchange,
        route: &Route,
        body_len: usize,
        max_output: Option<u64>,
    ) -> Result<(), Error> {
        let (Some(limits), Some(key)) = (x.limits.clone(), x.key_id.clone()) else {
            return Ok(());
        };
        let tokens = u64::try_from(body_len).unwrap_or(u64::MAX)
            + max_output.unwrap_or(self.settings.assumed_max_output_tokens);
        let checked = self
            .check(x, &limits, &key, route, tokens, max_output)
            .await;
        if let Err(e) = &checked {
            let reason = match e.code() {
                Some("model_not_allowed") => "model_not_allowed",
                Some("rate_limit_exceeded") => "rate_limit_exceeded",
                Some("budget_exceeded") => "budget_exceeded",
                Some("concurrency_limit_exceeded") => "concurrency_limit_exceeded",
                _ => "limits_unavailable",
            };
            self.refused.get_or_create(&Refusal { reason }).inc();
        }
        checked
    }

    /// Admits a request that consumes nothing (a token count) if its key may use
    /// the model it asked for.
    pub fn admit_model(&self, x: &Exchange) -> Result<(), Error> {
        match &x.limits {
            Some(limits) if !limits.allows(&x.requested_model) => {
                self.refused
                    .get_or_create(&Refusal {
                        reason: "model_not_allowed",
                    })
                    .inc();
                Err(Error::ModelNotAllowed(x.requested_model.clone()))
            }
            _ => Ok(()),
        }
    }

    async fn check(
        self: &std::sync::Arc<Self>,
        x: &mut Exchange,
        limits: &KeyLimits,
        key: &std::sync::Arc<str>,
        route: &Route,
        tokens: u64,
        max_output: Option<u64>,
    ) -> Result<(), Error> {
        if !limits.allows(&x.requested_model) {
            return Err(Error::ModelNotAllowed(x.requested_model.clone()));
        }
        let now_s = now_ms() / 1000;
        let (minute, reset) = (now_s / 60, 60 - now_s % 60);
        let minute_refusal = |what: &'static str, limit: u64| {
            move || Error::RateLimited {
                what,
                limit,
                retry_after: Duration::from_secs(reset),
            }
        };
        let mut taken: Vec<(CounterId, u64)> = Vec::new();
        let id = |kind: &'static str, window: u64| CounterId {
            key: key.clone(),
            kind,
            window,
        };
        let mut reservation = Reservation::default();
        if let Some(limit) = limits.requests_per_minute.map(u64::from) {
            let refused = minute_refusal("requests", limit);
            let take = Take {
                counter: id("rpm", minute),
                spend: false,
                need: 1,
                limit,
                refused: &refused,
            };
            let taken_now = self.take(&take, &mut taken).await;
            let remaining = taken_now.as_ref().map_or(0, |r| *r);
            set_headers(&mut x.rate_headers, "requests", limit, remaining, reset);
            taken_now?;
        }
        if let Some(limit) = limits.tokens_per_minute {
            let refused = minute_refusal("tokens", limit);
            // A request that asked for more than the limit could never pass.
            let need = tokens.min(limit);
            let take = Take {
                counter: id("tpm", minute),
                spend: false,
                need,
                limit,
                refused: &refused,
            };
            let taken_now = self.take(&take, &mut taken).await;
            let remaining = taken_now.as_ref().map_or(0, |r| *r);
            set_headers(&mut x.rate_headers, "tokens", limit, remaining, reset);
            taken_now?;
            reservation.tokens = Some((take.counter, need));
        }
        if let Some(budget) = limits.budget {
            let input = tokens - max_output.unwrap_or(self.settings.assumed_max_output_tokens);
            let need = micro_usd(self.upper_cost(x, route, input, tokens - input));
            let refused = || Error::BudgetExceeded {
                period: budget.period.as_str(),
                usd: budget.usd,
            };
            let take = Take {
                counter: spend_counter(key.clone(), budget),
                spend: true,
                need,
                limit: micro_usd(budget.usd),
                refused: &refused,
            };
            self.take(&take, &mut taken).await?;
            reservation.spend_micro_usd = Some((take.counter, need));
        }
        if let Some(limit) = limits.max_concurrent.map(u64::from) {
            match self.slot(key, limit).await {
                Ok(Some(slot)) => x.slot = Some(slot),
                refused => {
                    for (counter, n) in taken.drain(..) {
                        self.give_back(&counter, n);
                    }
                    match refused {
                        Ok(_) => return Err(Error::InFlightLimit { limit }),
                        Err(e) => {
                            tracing::warn!(error = %e, key_id = %key, "client key's calls in flight not counted: the bus is unreachable");
                            if self.settings.when_bus_down == WhenBusDown::Refuse {
                                return Err(Error::LimitsUnavailable);
                            }
                        }
                    }
                }
            }
        }
        x.reservation = Some(reservation);
        Ok(())
    }

    /// A call in flight for `key`, when fewer than `limit` are (every gateway
    /// together, through the slots each has leased).
    async fn slot(
        self: &std::sync::Arc<Self>,
        key: &std::sync::Arc<str>,
        limit: u64,
    ) -> Result<Option<Slot>, events::BusError> {
        let batch = (limit / 20).max(1);
        let take_one = |pools: &mut HashMap<std::sync::Arc<str>, SlotPool>, leased: u64| {
            let pool = pools.entry(key.clone()).or_default();
            pool.batch = batch;
            pool.leased += leased;
            (pool.in_use < pool.leased).then(|| {
                pool.in_use += 1;
                Slot {
                    limits: self.clone(),
                    key: key.clone(),
                }
            })
        };
        let Some(bus) = &self.bus else {
            // One process: its own count is every count.
            let mut pools = self.slots.lock();
            let pool = pools.entry(key.clone()).or_default();
            pool.leased = limit;
            return Ok(take_one(&mut pools, 0));
        };
        if let Some(slot) = take_one(&mut self.slots.lock(), 0) {
            return Ok(Some(slot));
        }
        let now = now_ms();
        if now < self.down_until_ms.load(Relaxed) {
            return Err(events::BusError::Unavailable("failed a moment ago".into()));
        }
        let counter = format!("conc.{key}");
        match tokio::time::timeout(self.settings.bus_timeout, bus.lease(&counter, batch, limit))
            .await
        {
            Ok(Ok(lease)) => Ok(take_one(&mut self.slots.lock(), lease.granted)),
            Ok(Err(e @ events::BusError::Refused(_))) => Err(e),
            failed => {
                self.down_until_ms.store(now + 1000, Relaxed);
                Err(match failed {
                    Ok(Err(e)) => e,
                    _ => events::BusError::Timeout,
                })
            }
        }
    }

    /// A call in flight for `key` ended. Slots spare past a batch (or all of
    /// them, when none is in use) go back to the bus `SLOT_IDLE` later, if
    /// they are still spare then: one check at a time per key, so a busy key
    /// costs no round trip per call.
    fn release_slot(self: &std::sync::Arc<Self>, key: &std::sync::Arc<str>) {
        {
            let mut pools = self.slots.lock();
            let Some(pool) = pools.get_mut(key) else {
                return;
            };
            pool.in_use = pool.in_use.saturating_sub(1);
            let spare = pool.leased - pool.in_use;
            if self.bus.is_none() || pool.return_planned || (spare <= pool.batch && pool.in_use > 0)
            {
                return;
            }
            pool.return_planned = true;
        }
        let (Some(bus), Ok(runtime)) = (self.bus.clone(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let (limits, key) = (self.clone(), key.clone());
        runtime.spawn(async move {
            tokio::time::sleep(SLOT_IDLE).await;
            let back = {
                let mut pools = limits.slots.lock();
                let Some(pool) = pools.get_mut(&key) else {
                    return;
                };
                pool.return_planned = false;
                let spare = pool.leased - pool.in_use;
                let back = if pool.in_use == 0 {
                    spare
                } else {
                    spare.saturating_sub(pool.batch)
                };
                pool.leased -= back;
                back
            };
            if back > 0 {
                give_slots_back(&bus, &format!("conc.{key}"), back).await;
            }
        });
    }

    /// Takes `take.need` of its counter (leasing when the pool here has too
    /// little): what is left of the limit; refused, what this request took
    /// from earlier counters (`taken`) goes back.
    async fn take(&self, take: &Take<'_>, taken: &mut Vec<(CounterId, u64)>) -> Result<u64, Error> {
        let taken_now = match self.lease(take).await {
            Ok(Some(remaining)) => Ok(remaining),
            Ok(None) => Err((take.refused)()),
            Err(e) => {
                tracing::warn!(error = %e, counter = %take.counter.name(), "client key limits not checked: the bus is unreachable");
                match self.settings.when_bus_down {
                    WhenBusDown::Allow => return Ok(take.limit),
                    WhenBusDown::Refuse => Err(Error::LimitsUnavailable),
                }
            }
        };
        match taken_now {
            Ok(remaining) => {
                taken.push((take.counter.clone(), take.need));
                Ok(remaining)
            }
            Err(e) => {
                for (counter, n) in taken.drain(..) {
                    self.give_back(&counter, n);
                }
                Err(e)
            }
        }
    }

    /// `Some(remaining)` once `need` is taken, `None` when the limit is reached.
    async fn lease(&self, take: &Take<'_>) -> Result<Option<u64>, events::BusError> {
        let now = now_ms();
        let from_pool = |pools: &mut HashMap<CounterId, Pool>| {
            let pool = pools.entry(take.counter.clone()).or_default();
            pool.touched_ms = now;
            (pool.left >= take.need).then(|| {
                pool.left -= take.need;
                take.limit.saturating_sub(pool.used) + pool.left
            })
        };
        if let Some(remaining) = from_pool(&mut self.pools.lock()) {
            return Ok(Some(remaining));
        }
        let Some(bus) = &self.bus else {
            return Ok(Some(take.limit));
        };
        if now < self.down_until_ms.load(Relaxed) {
            return Err(events::BusError::Unavailable("failed a moment ago".into()));
        }
        let short = take
            .need
            .saturating_sub(self.pools.lock().get(&take.counter).map_or(0, |p| p.left));
        let want = short.max(take.limit / 20).max(1);
        let name = take.counter.name();
        let leasing = async {
            if take.spend {
                bus.lease_spend(&name, want, take.limit).await
            } else {
                bus.lease(&name, want, take.limit).await
            }
        };
        let lease = match tokio::time::timeout(self.settings.bus_timeout, leasing).await {
            Ok(Ok(lease)) => lease,
            // Gateways racing for the counter past every try: the bus is up.
            Ok(Err(e @ events::BusError::Refused(_))) => return Err(e),
            failed => {
                self.down_until_ms.store(now + 1000, Relaxed);
                return Err(match failed {
                    Ok(Err(e)) => e,
                    _ => events::BusError::Timeout,
                });
            }
        };
        let mut pools = self.pools.lock();
        // Old minutes' pools are of no more use.
        pools.retain(|_, p| now.saturating_sub(p.touched_ms) < 120_000);
        let pool = pools.entry(take.counter.clone()).or_default();
        pool.left += lease.granted;
        pool.used = pool.used.max(lease.used);
        Ok(from_pool(&mut pools))
    }

    /// The upper bound of a request's cost: its tokens at the dearest price
    /// among the route's targets (a model without a price costs nothing).
    fn upper_cost(&self, x: &Exchange, route: &Route, input: u64, output: u64) -> f64 {
        route
            .targets()
            .iter()
            .filter_map(|t| {
                config_model::prices::lookup(
                    &x.prices,
                    &t.provider_name,
                    &x.requested_model,
                    &t.model,
                )
            })
            .map(|p| {
                p.cost(config_model::prices::Usage {
                    input,
                    output,
                    cached: 0,
                    cache_write: 0,
                    cache_write_1h: 0,
                })
            })
            .fold(0.0, f64::max)
    }

    /// Returns `n` of a counter to this gateway's pool (a past minute's is gone).
    fn give_back(&self, counter: &CounterId, n: u64) {
        if let Some(pool) = self.pools.lock().get_mut(counter) {
            pool.left += n;
        }
    }

    /// Settles what a request reserved once its tokens and cost are known:
    /// what it did not use goes back.
    pub fn settle(&self, reservation: Option<Reservation>, tokens: u64, cost_usd: f64) {
        let Some(r) = reservation else {
            return;
        };
        if let Some((counter, reserved)) = r.tokens {
            self.give_back(&counter, reserved.saturating_sub(tokens));
        }
        if let Some((counter, reserved)) = r.spend_micro_usd {
            self.give_back(&counter, reserved.saturating_sub(micro_usd(cost_usd)));
        }
    }
}

async fn give_slots_back(bus: &events::Bus, counter: &str, n: u64) {
    if let Err(e) = bus.release(counter, n).await {
        tracing::warn!(error = %e, %counter, "calls in flight not given back to the bus");
    }
}

/// A request body's `max_completion_tokens` or `max_tokens`.
pub fn max_output(body: &llm::raw::RawObject) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|name| body.get(*name).and_then(|v| v.get().parse::<u64>().ok()))
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped, then rounded up
pub fn micro_usd(usd: f64) -> u64 {
    (usd.max(0.0) * 1e6).ceil().min(u64::MAX as f64) as u64
}

/// The bus name of `key`'s spend counter for its budget's current period.
pub fn spend_counter_name(key: &str, budget: Budget) -> String {
    spend_counter(key.into(), budget).name()
}

/// The spend counter of `key`'s budget for the current period (UTC).
fn spend_counter(key: std::sync::Arc<str>, budget: Budget) -> CounterId {
    let days = now_ms() / 86_400_000;
    let (kind, window) = match budget.period {
        BudgetPeriod::Day => ("spend.d", days),
        BudgetPeriod::Month => {
            let (year, month) = config_model::limits::year_month(days);
            (
                "spend.m",
                u64::try_from(year).unwrap_or(0) * 100 + u64::from(month),
            )
        }
        BudgetPeriod::Total => ("spend.total", 0),
    };
    CounterId { key, kind, window }
}

/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{what}` headers.
fn set_headers(headers: &mut HeaderMap, what: &str, limit: u64, remaining: u64, reset_secs: u64) {
    use axum::http::HeaderName;
    let [limit_h, remaining_h, reset_h] = if what == "tokens" {
        [
            HeaderName::from_static("x-ratelimit-limit-tokens"),
            HeaderName::from_static("x-ratelimit-remaining-tokens"),
            HeaderName::from_static("x-ratelimit-reset-tokens"),
        ]
    } else {
        [
            HeaderName::from_static("x-ratelimit-limit-requests"),
            HeaderName::from_static("x-ratelimit-remaining-requests"),
            HeaderName::from_static("x-ratelimit-reset-requests"),
        ]
    };
    headers.insert(limit_h, limit.into());
    headers.insert(remaining_h, remaining.min(limit).into());
    if let Ok(v) = HeaderValue::try_from(format!("{reset_secs}s")) {
        headers.insert(reset_h, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_dollars_round_up() {
        assert_eq!(micro_usd(0.000_001_2), 2);
        assert_eq!(micro_usd(-1.0), 0);
    }
}
