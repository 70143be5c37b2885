//! The configuration as the admin publishes it (JetStream KV bucket `aiprox-config`,
//! or the in-process bus of `aiprox all`) and every gateway applies: the whole of
//! it, so applying one needs no history.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client_key::ClientKey;
use crate::mapping::Mapping;
use crate::provider::ProviderConfig;

/// The configuration as published: serialized as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    /// Providers by name, sealed keys included.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Alias → its targets and strategy (a bare list of targets, as older
    /// admins published, reads as `fallback`).
    pub mappings: BTreeMap<String, Mapping>,
    /// Active client keys only: a revoked key is simply absent.
    pub keys: Vec<ClientKey>,
    /// Whether any key was ever issued, revoked ones included: `auto` stays
    /// closed once it has been, so revoking the last key does not open the gateway.
    #[serde(default)]
    pub keys_issued: bool,
    /// Prices set through the admin API (by `provider/model`, alias or model),
    /// over the gateway's `gateway.prices` and the bundled table.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, crate::prices::Price>,
}

impl ConfigSnapshot {
    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        serde_json::to_vec(self).map(Bytes::from)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::Target;
    use crate::provider::DemoConfig;

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let snapshot = ConfigSnapshot {
            providers: BTreeMap::from([(
                "d".to_owned(),
                ProviderConfig::Demo(DemoConfig::default()),
            )]),
            mappings: BTreeMap::from([(
                "a".to_owned(),
                Mapping::fallback(vec![Target::new("d", "m")]),
            )]),
            keys: vec![ClientKey {
                id: "k".into(),
                sha256: "00".repeat(32),
                limits: crate::KeyLimits {
                    requests_per_minute: Some(60),
                    models: vec!["gpt4".into()],
                    ..crate::KeyLimits::default()
                },
            }],
            keys_issued: true,
            prices: BTreeMap::from([(
                "gpt-4o".to_owned(),
                crate::prices::Price {
                    input: 2.5,
                    output: 10.0,
                    ..Default::default()
                },
            )]),
        };
        let bytes = snapshot.to_bytes().unwrap();
        assert_eq!(ConfigSnapshot::from_bytes(&bytes).unwrap(), snapshot);
    }
}
