//! The gateway's report of its targets' health (ejections, load, resting keys),
//! put on the bus every `gateway.health_report_interval` for the admin API to
//! gather across replicas ([`config_model::HealthReport`]). A report that cannot
//! be put is skipped: the next one carries the same state, newer. The resting
//! keys are in `/metrics` too: `aiprox_gateway_provider_keys_resting{provider}`,
//! read at each scrape ([`RestingKeys`]).

use std::time::Duration;

use config_model::{HealthReport, KeyRest};

use crate::app::{AppState, WeakAppState};
use crate::ejection::now_ms;

/// This replica's name in the reports: its host name (a pod's name under
/// Kubernetes) and a random suffix, so two processes on one host differ.
pub fn gateway_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "gateway".to_owned());
    // KV keys take letters, digits and `-_=.` only.
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_=.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{:08x}", getrandom::u32().unwrap_or(0))
}

/// What this gateway knows now.
pub fn report(state: &AppState, gateway: &str) -> HealthReport {
    let routing = state.routing();
    let mut resting_keys: Vec<KeyRest> = routing
        .providers()
        .flat_map(|(name, provider)| {
            provider
                .resting_keys()
                .into_iter()
                .map(|(key, until_ms)| KeyRest {
                    provider: name.to_owned(),
                    key,
                    until_ms,
                })
        })
        .collect();
    resting_keys.sort_by(|a, b| (&a.provider, a.key).cmp(&(&b.provider, b.key)));
    HealthReport {
        gateway: gateway.to_owned(),
        at_ms: now_ms(),
        targets: state.ejections().report(),
        resting_keys,
    }
}

/// Puts a report every `every` until aborted, or the gateway is gone (the
/// task does not keep its state, and so its log queue, alive).
pub async fn publish(bus: events::Bus, state: WeakAppState, every: Duration) {
    let gateway = gateway_id();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Held only to read it, never across the put.
        let Some(made) = state.upgrade().map(|s| report(&s, &gateway)) else {
            return;
        };
        let bytes = match made.to_bytes() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "health report not encoded");
                continue;
            }
        };
        match tokio::time::timeout(every, bus.put_health(&gateway, bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "health report not put"),
            Err(_) => tracing::debug!("health report timed out"),
        }
    }
}

/// `aiprox_gateway_provider_keys_resting{provider}`: the keys of each provider's
/// pool resting now (after a 429 or 401), counted at each scrape.
#[derive(Debug)]
pub struct RestingKeys(pub WeakAppState);

impl prometheus_client::collector::Collector for RestingKeys {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let Some(state) = self.0.upgrade() else {
            return Ok(());
        };
        let routing = state.routing();
        let mut metric = encoder.encode_descriptor(
            "aiprox_gateway_provider_keys_resting",
            "Keys of a provider's pool resting after a 429 or 401 (the next key takes their calls).",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, provider) in routing.providers() {
            let resting = i64::try_from(provider.resting_keys().len()).unwrap_or(i64::MAX);
            let labels = [("provider", name)];
            prometheus_client::metrics::gauge::ConstGauge::new(resting)
                .encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
