//! Live configuration: the snapshot the admin API publishes (JetStream KV bucket
//! `aiprox-config`, or the in-process bus of `aiprox all`), and the task that
//! swaps each new one into the running gateway.
//!
//! A snapshot is the whole configuration (providers with sealed keys, mappings
//! with their ordered targets, the active client keys' hashes), so applying it
//! needs no history. Requests read the current [`RoutingTable`] through an
//! `ArcSwap`: no lock on the request path, and a request that started on one
//! snapshot finishes on it.

use bytes::Bytes;
use config_model::ConfigSnapshot;

use crate::app::AppState;
use crate::config::{Config, Settings};
use crate::routing::{RoutingTable, Source};

/// The gateway configuration a snapshot describes, on these settings.
fn config_of(snapshot: ConfigSnapshot, settings: &Settings) -> Config {
    Config {
        settings: settings.clone(),
        providers: snapshot.providers,
        mappings: snapshot.mappings,
    }
}

/// Builds the routing table of a published snapshot.
pub fn routes_of(
    bytes: &[u8],
    settings: &Settings,
    previous: Option<&RoutingTable>,
    created: u64,
    ejections: &std::sync::Arc<crate::ejection::Ejections>,
) -> Result<RoutingTable, String> {
    let snapshot =
        ConfigSnapshot::from_bytes(bytes).map_err(|e| format!("unreadable snapshot: {e}"))?;
    let keys = snapshot.keys.clone();
    let keys_issued = snapshot.keys_issued;
    let prices = snapshot.prices.clone();
    let config = config_of(snapshot, settings);
    RoutingTable::build(&Source {
        config: &config,
        keys: &keys,
        keys_issued,
        created,
        previous,
        strict: false,
        ejections,
        prices: &prices,
    })
    .map_err(|e| e.to_string())
}

/// Builds and swaps in a published snapshot; `false` (logged) when it is refused
/// and the current configuration stays.
pub(crate) fn apply(state: &AppState, bytes: &[u8]) -> bool {
    let previous = state.routing();
    match routes_of(
        bytes,
        state.settings(),
        Some(&previous),
        state.created(),
        state.ejections(),
    ) {
        Ok(routes) => {
            state.swap_routing(routes);
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
