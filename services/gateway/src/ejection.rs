//! Outlier ejection, per target and per gateway replica: a target that failed
//! `consecutive_failures` times in a row, or `error_ratio` of at least
//! `min_calls` calls within a `window` (failures another target may not have,
//! [`crate::error::Error::is_retryable`]), is left out of its routes for a
//! cool-down that doubles on each ejection in a row (up to `cooldown_max`); an
//! upstream asking to wait (a 429's `Retry-After`) ejects it for that long. Once
//! the cool-down is over, the next request probes it: a success puts it back, a
//! failure ejects it again, longer (requests arriving together may probe it at
//! once). A route's ejected targets are called only after its others, the least
//! recently failed first, so a route whose targets are all out is still served.
//!
//! `aiprox_gateway_target_ejected{provider,model}` is 1 from a target's ejection
//! until a call to it succeeds again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `gateway.ejection` in the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EjectionSettings {
    /// Failures in a row that eject a target; 0 never ejects.
    pub consecutive_failures: u32,
    /// The first cool-down; each ejection in a row doubles it.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub cooldown_max: Duration,
    /// The share of failed calls within `window` that ejects a target, once it
    /// had `min_calls` there; 0 never ejects by ratio.
    pub error_ratio: f64,
    pub min_calls: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for EjectionSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            cooldown: Duration::from_secs(10),
            cooldown_max: Duration::from_secs(300),
            error_ratio: 0.5,
            min_calls: 20,
            window: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabels {
    provider: String,
    model: String,
}

/// Every target's health, kept across configuration snapshots (by provider and
/// model), and the gauge that shows it.
#[derive(Debug, Default)]
pub struct Ejections {
    settings: EjectionSettings,
    ejected: Family<TargetLabels, Gauge>,
    targets: Mutex<HashMap<(String, String), Arc<Health>>>,
}

impl Ejections {
    pub fn new(settings: EjectionSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aiprox_gateway_target_ejected",
            "1 while a target is ejected from its routes for failing (outlier ejection).",
            self.ejected.clone(),
        );
    }

    /// The health of the target `provider`/`model`, the same for every route
    /// and snapshot that has it.
    pub fn of(self: &Arc<Self>, provider: &str, model: &str) -> Arc<Health> {
        let key = (provider.to_owned(), model.to_owned());
        self.targets
            .lock()
            .entry(key)
            .or_insert_with(|| {
                let gauge = self
                    .ejected
                    .get_or_create(&TargetLabels {
                        provider: provider.to_owned(),
                        model: model.to_owned(),
                    })
                    .clone();
                Arc::new(Health {
                    owner: Arc::downgrade(self),
                    gauge,
                    failures: AtomicU32::new(0),
                    ejections: AtomicU32::new(0),
                    ejected_until_ms: AtomicU64::new(0),
                    last_failure_ms: AtomicU64::new(0),
                    window_start_ms: AtomicU64::new(0),
                    window_calls: AtomicU32::new(0),
                    window_failures: AtomicU32::new(0),
                    load: crate::balance::Load::default(),
                })
            })
            .clone()
    }
}

impl Ejections {
    /// Every target's health now, for the gateway's health report.
    pub fn report(&self) -> Vec<config_model::TargetHealth> {
        let now = now_ms();
        let mut report: Vec<config_model::TargetHealth> = self
            .targets
            .lock()
            .iter()
            .map(|((provider, model), h)| {
                let until = h.ejected_until_ms.load(Ordering::Relaxed);
                config_model::TargetHealth {
                    provider: provider.clone(),
                    model: model.clone(),
                    ejected_until_ms: (until > now).then_some(until),
                    failures_in_a_row: h.failures.load(Ordering::Relaxed),
                    in_flight: h.load.in_flight(),
                    latency_ms: h.load.average_ms(),
                }
            })
            .collect();
        report.sort_by(|a, b| (&a.provider, &a.model).cmp(&(&b.provider, &b.model)));
        report
    }
}

/// Unix milliseconds: when health and key rests are measured from.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One target's health: lock-free, read by every request of its routes.
#[derive(Debug)]
pub struct Health {
    owner: std::sync::Weak<Ejections>,
    gauge: Gauge,
    failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until_ms: AtomicU64,
    last_failure_ms: AtomicU64,
    /// The calls and failures of the current window (approximate under races:
    /// a window's counts may lose a call at its turn, which no decision needs).
    window_start_ms: AtomicU64,
    window_calls: AtomicU32,
    window_failures: AtomicU32,
    /// Its calls in flight and latency, for the balancer ([`crate::balance`]).
    load: crate::balance::Load,
}

impl Health {
    pub fn load(&self) -> &crate::balance::Load {
        &self.load
    }

    /// Whether a request may call it now: not ejected, or its cool-down over.
    pub fn admits(&self) -> bool {
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        until == 0 || now_ms() >= until
    }

    /// When it last failed (for the order of a route whose targets are all out).
    pub fn last_failure_ms(&self) -> u64 {
        self.last_failure_ms.load(Ordering::Relaxed)
    }

    /// Counts a call in the window (a new one once `window` is over); returns
    /// the window's calls and failures with this one.
    fn count(&self, failed: bool, window: Duration) -> (u32, u32) {
        let now = now_ms();
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now.saturating_sub(start) > ms(window) {
            self.window_start_ms.store(now, Ordering::Relaxed);
            self.window_calls.store(0, Ordering::Relaxed);
            self.window_failures.store(0, Ordering::Relaxed);
        }
        let calls = self.window_calls.fetch_add(1, Ordering::Relaxed) + 1;
        let failures = self
            .window_failures
            .fetch_add(u32::from(failed), Ordering::Relaxed)
            + u32::from(failed);
        (calls, failures)
    }

    pub fn succeeded(&self) {
        if let Some(owner) = self.owner.upgrade() {
            self.count(false, owner.settings.window);
        }
        self.failures.store(0, Ordering::Relaxed);
        if self.ejected_until_ms.swap(0, Ordering::Relaxed) != 0 {
            self.ejections.store(0, Ordering::Relaxed);
            self.gauge.set(0);
        }
    }

    /// Counts a failure another target may not have had; ejects when it is one too
    /// many, or when the upstream asked to wait (a 429's `Retry-After`).
    pub fn failed(&self, error: &Error) {
        if !error.is_retryable() {
            return;
        }
        let Some(settings) = self.owner.upgrade().map(|o| o.settings.clone()) else {
            return;
        };
        let now = now_ms();
        self.last_failure_ms.store(now, Ordering::Relaxed);
        let until = self.ejected_until_ms.load(Ordering::Relaxed);
        if until != 0 && now < until {
            // Still out (a call made as a last resort, or begun before): its
            // cool-down stands as it is.
            return;
        }
        // Ejected before, its cool-down over: this call was the probe.
        let probe_failed = until != 0;
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let (calls, failed) = self.count(true, settings.window);
        let asked = error.upstream_retry_after();
        let by_ratio = settings.error_ratio > 0.0
            && calls >= settings.min_calls.max(1)
            && f64::from(failed) >= settings.error_ratio * f64::from(calls);
        let tripped = probe_failed
            || by_ratio
            || (settings.consecutive_failures > 0 && failures >= settings.consecutive_failures);
        let cooldown = if tripped {
            let n = self.ejections.fetch_add(1, Ordering::Relaxed);
            Some(
                settings
                    .cooldown
                    .saturating_mul(1 << n.min(16))
                    .min(settings.cooldown_max),
            )
        } else {
            None
        };
        let Some(out) = asked.max(cooldown) else {
            return;
        };
        self.failures.store(0, Ordering::Relaxed);
        // A fresh window once it is back.
        self.window_start_ms.store(0, Ordering::Relaxed);
        self.ejected_until_ms
            .store(now.saturating_add(ms(out)).max(1), Ordering::Relaxed);
        self.gauge.set(1);
        tracing::warn!(cooldown = ?out, "target ejected after failing");
    }
}
