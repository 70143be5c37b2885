//! The gateway's report of its targets' health (ejections, load, resting keys),
//! put on the bus every `gateway.health_report_interval` for the admin API to
//! gather across replicas ([`config_model::HealthReport`]). A report that cannot
//! be put is skipped: the next one carries the same state, newer.

use std::time::Duration;

use config_model::{HealthReport, KeyRest};

use crate::app::AppState;
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

/// Puts a report every `every` until aborted.
pub async fn publish(bus: events::Bus, state: AppState, every: Duration) {
    let gateway = gateway_id();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let bytes = match report(&state, &gateway).to_bytes() {
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
