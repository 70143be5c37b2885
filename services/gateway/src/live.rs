//! Live configuration: the snapshot the admin API publishes (JetStream KV bucket
//! `aiprox-config`, or the in-process bus of `aiprox all`), and the task that
//! swaps each new one into the running gateway.
//!
//! A snapshot is the whole configuration (providers with sealed keys, mappings
//! with their ordered targets, the active client keys' hashes), so applying it
//! needs no history. Requests read the current [`Routes`] through an
//! `ArcSwap`: no lock on the request path, and a request that started on one
//! snapshot finishes on it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::app::AppState;
use crate::config::{Config, MappingConfig, ProviderConfig, Settings};
use crate::routing::{ClientKey, Routes, Source};

/// The configuration as published: serialized as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Alias → targets in order of preference (the first serves today; the rest
    /// are for fallbacks).
    pub mappings: BTreeMap<String, Vec<MappingConfig>>,
    /// Active client keys only: a revoked key is simply absent.
    pub keys: Vec<ClientKey>,
    /// Whether any key was ever issued, revoked ones included: `auto` stays
    /// closed once it has been, so revoking the last key does not open the gateway.
    #[serde(default)]
    pub keys_issued: bool,
}

impl ConfigSnapshot {
    /// The gateway configuration this snapshot describes, on these settings.
    pub fn config(&self, settings: &Settings) -> Config {
        Config {
            settings: settings.clone(),
            providers: self.providers.clone(),
            mappings: self
                .mappings
                .iter()
                .filter_map(|(alias, targets)| Some((alias.clone(), targets.first()?.clone())))
                .collect(),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// Builds the routing table of a published snapshot.
pub fn routes_of(
    bytes: &[u8],
    settings: &Settings,
    previous: Option<&Routes>,
    created: u64,
) -> Result<Routes, String> {
    let snapshot: ConfigSnapshot =
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable snapshot: {e}"))?;
    let config = snapshot.config(settings);
    Routes::build(&Source {
        config: &config,
        keys: &snapshot.keys,
        keys_issued: snapshot.keys_issued,
        created,
        previous,
        strict: false,
    })
    .map_err(|e| e.to_string())
}

/// Builds and swaps in a published snapshot; `false` (logged) when it is refused
/// and the current configuration stays.
pub(crate) fn apply(state: &AppState, bytes: &[u8]) -> bool {
    let previous = state.routes();
    match routes_of(bytes, state.settings(), Some(&previous), state.created()) {
        Ok(routes) => {
            state.swap_routes(routes);
            tracing::info!(bytes = bytes.len(), "configuration snapshot applied");
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "configuration snapshot refused; keeping the current one");
            false
        }
    }
}

/// Applies every snapshot the bus delivers from now on (`last`: the one already
/// applied).
pub(crate) async fn watch(bus: events::Bus, state: AppState, mut last: Option<Bytes>) {
    let mut updates = bus.watch_config();
    while let Some(bytes) = updates.recv().await {
        if last.as_ref() != Some(&bytes) && apply(&state, &bytes) {
            last = Some(bytes);
        }
    }
}
