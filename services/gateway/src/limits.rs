//! Client keys' limits on the request path: the models a key may ask for, and
//! its requests per minute, counted by every gateway together.
//!
//! A minute's count is a counter on the bus (`aiprox-rate`, one per key and
//! calendar minute) that gateways take from in leases of a twentieth of the
//! limit (at least 1), by compare-and-set: a gateway admits from its lease
//! without asking anyone, and asks the bus again only when it is used up. As a
//! lease is counted when taken, the gateways together never admit more than
//! the limit in a minute; leased and unused capacity (at most a lease per
//! gateway) is what they may admit less.
//!
//! While the bus cannot be reached (a lease not answered within
//! `gateway.limits.bus_timeout`, 250 ms; then the bus is not asked again for a
//! second), `gateway.limits.when_bus_down` decides: `allow` (the default: a
//! key's requests pass, unlimited, and a warning is logged) or `refuse` (503
//! `limits_unavailable` with `Retry-After`).

use std::collections::HashMap;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use config_model::KeyLimits;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};

use crate::capture::Exchange;
use crate::error::Error;

/// `gateway.limits` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub when_bus_down: WhenBusDown,
    /// How long a lease may take before the bus is taken for unreachable.
    #[serde(with = "humantime_serde")]
    pub bus_timeout: Duration,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            when_bus_down: WhenBusDown::default(),
            bus_timeout: Duration::from_millis(250),
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

/// One key's lease on the current minute.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    minute: u64,
    /// Leased and not yet used here.
    left: u64,
    /// The shared counter when last leased (every gateway's leases).
    used: u64,
}

/// Every limited key's leases in this gateway, and the refusals counted.
#[derive(Debug)]
pub struct Limits {
    bus: Option<events::Bus>,
    settings: LimitSettings,
    windows: Mutex<HashMap<std::sync::Arc<str>, Window>>,
    refused: Family<Refusal, Counter>,
    /// Until when the bus is taken for unreachable (Unix ms), after a lease
    /// failed: requests then do not each wait for it.
    down_until_ms: std::sync::atomic::AtomicU64,
}

impl Limits {
    pub fn new(bus: Option<events::Bus>, settings: LimitSettings) -> Self {
        Self {
            bus,
            settings,
            windows: Mutex::default(),
            refused: Family::default(),
            down_until_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "aiprox_gateway_limit_refusals",
            "Requests refused for their client key's limits, by reason (model_not_allowed, rate_limit_exceeded, limits_unavailable).",
            self.refused.clone(),
        );
    }

    /// Admits the exchange's request under its key's limits, or refuses it;
    /// sets the `x-ratelimit-*` headers its answer carries.
    pub async fn admit(&self, x: &mut Exchange) -> Result<(), Error> {
        let (Some(limits), Some(key)) = (x.limits.clone(), x.key_id.clone()) else {
            return Ok(());
        };
        let refused = self.check(x, &limits, &key).await;
        if let Err(e) = &refused
            && let Some(reason) = e.code()
        {
            let reason = match reason {
                "model_not_allowed" => "model_not_allowed",
                "rate_limit_exceeded" => "rate_limit_exceeded",
                _ => "limits_unavailable",
            };
            self.refused.get_or_create(&Refusal { reason }).inc();
        }
        refused
    }

    async fn check(
        &self,
        x: &mut Exchange,
        limits: &KeyLimits,
        key: &std::sync::Arc<str>,
    ) -> Result<(), Error> {
        if !limits.allows(&x.requested_model) {
            return Err(Error::ModelNotAllowed(x.requested_model.clone()));
        }
        let Some(limit) = limits.requests_per_minute.map(u64::from) else {
            return Ok(());
        };
        let now = crate::ejection::now_ms() / 1000;
        let (minute, reset) = (now / 60, 60 - now % 60);
        let admitted = self.take(key, limit, minute).await;
        let remaining = match admitted {
            Ok(Some(remaining)) => remaining,
            Ok(None) => {
                rate_headers(&mut x.rate_headers, limit, 0, reset);
                return Err(Error::RateLimited {
                    what: "requests",
                    limit,
                    retry_after: Duration::from_secs(reset),
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, key_id = %key, "client key limits not checked: the bus is unreachable");
                return match self.settings.when_bus_down {
                    WhenBusDown::Allow => Ok(()),
                    WhenBusDown::Refuse => Err(Error::LimitsUnavailable),
                };
            }
        };
        rate_headers(&mut x.rate_headers, limit, remaining, reset);
        Ok(())
    }

    /// One request of `minute` for `key`: `Some(remaining)` when admitted,
    /// `None` when the minute's `limit` is reached.
    async fn take(
        &self,
        key: &std::sync::Arc<str>,
        limit: u64,
        minute: u64,
    ) -> Result<Option<u64>, events::BusError> {
        let from_lease = |w: &mut Window| {
            if w.minute != minute {
                *w = Window {
                    minute,
                    ..Window::default()
                };
            }
            (w.left > 0).then(|| {
                w.left -= 1;
                limit.saturating_sub(w.used) + w.left
            })
        };
        if let Some(remaining) = from_lease(self.windows.lock().entry(key.clone()).or_default()) {
            return Ok(Some(remaining));
        }
        let Some(bus) = &self.bus else {
            return Ok(Some(limit));
        };
        use std::sync::atomic::Ordering::Relaxed;
        let now = crate::ejection::now_ms();
        if now < self.down_until_ms.load(Relaxed) {
            return Err(events::BusError::Unavailable("failed a moment ago".into()));
        }
        let chunk = (limit / 20).max(1);
        let counter = format!("rpm.{key}.{minute}");
        let lease = match tokio::time::timeout(
            self.settings.bus_timeout,
            bus.lease(&counter, chunk, limit),
        )
        .await
        {
            Ok(Ok(lease)) => lease,
            failed => {
                self.down_until_ms.store(now + 1000, Relaxed);
                return Err(match failed {
                    Ok(Err(e)) => e,
                    _ => events::BusError::Timeout,
                });
            }
        };
        if lease.granted == 0 {
            return Ok(None);
        }
        let mut windows = self.windows.lock();
        let w = windows.entry(key.clone()).or_default();
        if w.minute == minute {
            w.left += lease.granted - 1;
            w.used = w.used.max(lease.used);
        }
        Ok(Some(limit.saturating_sub(lease.used) + lease.granted - 1))
    }
}

/// OpenAI's `x-ratelimit-*-requests` headers.
fn rate_headers(headers: &mut HeaderMap, limit: u64, remaining: u64, reset_secs: u64) {
    headers.insert("x-ratelimit-limit-requests", limit.into());
    headers.insert("x-ratelimit-remaining-requests", remaining.into());
    if let Ok(v) = HeaderValue::try_from(format!("{reset_secs}s")) {
        headers.insert("x-ratelimit-reset-requests", v);
    }
}
