//! What each gateway reports of its upstreams' health (outlier ejection, load,
//! resting keys: state that lives in each replica), every few seconds, on the
//! bus (JetStream KV bucket `aiprox-health`, a key per gateway, entries expiring
//! when a gateway stops reporting) for the admin to gather.

use serde::{Deserialize, Serialize};

/// One gateway's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The reporting gateway (its host name and a random suffix).
    pub gateway: String,
    /// When it was made (Unix milliseconds).
    pub at_ms: u64,
    /// Every target this gateway has called or routes to.
    pub targets: Vec<TargetHealth>,
    /// Keys of a pool resting after a 429 or 401.
    #[serde(default)]
    pub resting_keys: Vec<KeyRest>,
}

/// A target (provider and model) as one gateway sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetHealth {
    pub provider: String,
    pub model: String,
    /// While ejected: when its cool-down ends (Unix milliseconds).
    pub ejected_until_ms: Option<u64>,
    /// Failures in a row since its last success.
    pub failures_in_a_row: u32,
    pub in_flight: u32,
    /// The peak EWMA of its latency (time to first event for streams), ms.
    pub latency_ms: f64,
}

/// A key of a provider's pool, resting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRest {
    pub provider: String,
    /// Its place in the pool, from 1 (the order the keys were given in).
    pub key: u32,
    pub until_ms: u64,
}

impl HealthReport {
    pub fn to_bytes(&self) -> Result<bytes::Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(bytes::Bytes::from)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
