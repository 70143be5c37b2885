//! Provider health across the gateways: each replica reports its targets'
//! ejections, load and resting keys on the bus ([`config_model::HealthReport`]);
//! this gathers the reports of the gateways heard from in the last 30 s into
//! one view per target and per resting key.

use std::collections::BTreeMap;

use config_model::HealthReport;
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind};

/// Every target's health as the gateways see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ProviderHealth {
    /// Gateways that reported in the last 30 s.
    pub gateways: u32,
    pub targets: Vec<TargetState>,
    pub resting_keys: Vec<KeyState>,
}

/// One target (provider and model) over the gateways that reported it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct TargetState {
    pub provider: String,
    pub model: String,
    /// `healthy`, `ejected` (by every gateway reporting it) or
    /// `partly_ejected`.
    pub status: String,
    pub reported_by: u32,
    pub ejected_on: u32,
    /// The latest end of a cool-down (Unix milliseconds), while ejected.
    pub ejected_until_ms: Option<u64>,
    /// The most failures in a row on one gateway.
    pub failures_in_a_row: u32,
    /// Calls in flight, all gateways together.
    pub in_flight: u32,
    /// The mean of the gateways' latency averages (peak EWMA; time to first
    /// event for streams), over those that measured it.
    pub latency_ms: Option<f64>,
}

/// A provider's key resting (a 429 or 401) on some gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct KeyState {
    pub provider: String,
    /// Its place in the pool, from 1.
    pub key: u32,
    /// Its last characters (`…abcd`), when stored through the admin API.
    pub masked: Option<String>,
    pub resting_on: u32,
    pub until_ms: u64,
}

/// The reports gathered into one view (`masks`: each provider's key masks in
/// pool order).
pub fn gather(reports: &[HealthReport], masks: &BTreeMap<String, Vec<String>>) -> ProviderHealth {
    let mut targets: BTreeMap<(String, String), (TargetState, f64, u32)> = BTreeMap::new();
    let mut keys: BTreeMap<(String, u32), KeyState> = BTreeMap::new();
    for report in reports {
        for t in &report.targets {
            let (state, latency_sum, measured) = targets
                .entry((t.provider.clone(), t.model.clone()))
                .or_insert_with(|| {
                    (
                        TargetState {
                            provider: t.provider.clone(),
                            model: t.model.clone(),
                            ..TargetState::default()
                        },
                        0.0,
                        0,
                    )
                });
            state.reported_by += 1;
            if let Some(until) = t.ejected_until_ms {
                state.ejected_on += 1;
                state.ejected_until_ms = state.ejected_until_ms.max(Some(until));
            }
            state.failures_in_a_row = state.failures_in_a_row.max(t.failures_in_a_row);
            state.in_flight = state.in_flight.saturating_add(t.in_flight);
            if t.latency_ms > 0.0 {
                *latency_sum += t.latency_ms;
                *measured += 1;
            }
        }
        for k in &report.resting_keys {
            let state = keys
                .entry((k.provider.clone(), k.key))
                .or_insert_with(|| KeyState {
                    provider: k.provider.clone(),
                    key: k.key,
                    masked: masks
                        .get(&k.provider)
                        .and_then(|m| m.get(k.key.saturating_sub(1) as usize))
                        .cloned(),
                    ..KeyState::default()
                });
            state.resting_on += 1;
            state.until_ms = state.until_ms.max(k.until_ms);
        }
    }
    ProviderHealth {
        gateways: u32::try_from(reports.len()).unwrap_or(u32::MAX),
        targets: targets
            .into_values()
            .map(|(mut state, latency_sum, measured)| {
                state.status = match state.ejected_on {
                    0 => "healthy",
                    n if n == state.reported_by => "ejected",
                    _ => "partly_ejected",
                }
                .to_owned();
                state.latency_ms = (measured > 0).then(|| latency_sum / f64::from(measured));
                state
            })
            .collect(),
        resting_keys: keys.into_values().collect(),
    }
}

impl AdminCore {
    pub async fn provider_health(&self) -> Result<ProviderHealth, ApiError> {
        let Some(bus) = self.publisher.bus() else {
            return Ok(ProviderHealth::default());
        };
        let reports: Vec<HealthReport> = bus
            .health_reports()
            .await
            .map_err(|e| ApiError::new(Kind::Unavailable, "bus_unavailable", e.to_string()))?
            .iter()
            .filter_map(|bytes| match HealthReport::from_bytes(bytes) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable health report left out");
                    None
                }
            })
            .collect();
        let masks = self
            .store
            .providers()
            .await?
            .into_iter()
            .filter_map(|row| {
                let masks = row.api_key_mask?;
                Some((row.name, masks.split(", ").map(str::to_owned).collect()))
            })
            .collect();
        Ok(gather(&reports, &masks))
    }
}

#[cfg(test)]
mod tests {
    use config_model::{KeyRest, TargetHealth};

    use super::*;

    fn target(ejected: Option<u64>, in_flight: u32, latency_ms: f64) -> TargetHealth {
        TargetHealth {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            ejected_until_ms: ejected,
            failures_in_a_row: u32::from(ejected.is_some()) * 5,
            in_flight,
            latency_ms,
        }
    }

    #[test]
    fn reports_of_two_gateways_are_one_view_per_target_and_key() {
        let reports = [
            HealthReport {
                gateway: "a".into(),
                at_ms: 1,
                targets: vec![target(Some(900), 1, 100.0)],
                resting_keys: vec![KeyRest {
                    provider: "openai".into(),
                    key: 2,
                    until_ms: 700,
                }],
            },
            HealthReport {
                gateway: "b".into(),
                at_ms: 1,
                targets: vec![target(None, 2, 0.0)],
                resting_keys: vec![],
            },
        ];
        let masks = BTreeMap::from([("openai".to_owned(), vec!["…aaaa".into(), "…bbbb".into()])]);
        let view = gather(&reports, &masks);
        assert_eq!(view.gateways, 2);
        let t = &view.targets[0];
        assert_eq!(
            (
                t.status.as_str(),
                t.reported_by,
                t.ejected_on,
                t.ejected_until_ms
            ),
            ("partly_ejected", 2, 1, Some(900))
        );
        assert_eq!(
            (t.in_flight, t.latency_ms, t.failures_in_a_row),
            (3, Some(100.0), 5)
        );
        assert_eq!(view.resting_keys[0].masked.as_deref(), Some("…bbbb"));
    }
}
