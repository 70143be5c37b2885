//! What the gateways receive: the whole configuration read from the database as
//! one [`ConfigSnapshot`], published after every change, one at a time and in
//! order; and the YAML seed written into an empty database at the first start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use config_model::{ClientKey, ConfigSnapshot, Mapping, ProviderConfig, Target};
use events::Bus;
use store::{MappingRow, ProviderRow, Store};
use telemetry::retry;
use tokio_util::sync::CancellationToken;

use crate::core::{ApiError, Kind, now_us, to_json};

fn to_json_bytes(snapshot: &ConfigSnapshot) -> Result<bytes::Bytes, ApiError> {
    snapshot.to_bytes().map_err(|e| {
        tracing::error!(error = %e, "configuration snapshot not serialisable");
        ApiError::new(Kind::Unavailable, "snapshot_failed", e.to_string())
    })
}
use crate::mappings::mapping_view;
use crate::providers::stored_config;

/// The whole configuration as gateways receive it: providers with their sealed
/// keys, mappings, active keys' hashes.
pub async fn snapshot(store: &Store) -> Result<ConfigSnapshot, ApiError> {
    let mut snapshot = ConfigSnapshot::default();
    for row in store.providers().await? {
        let Ok(mut config) = stored_config(&row) else {
            continue; // logged; the other providers still go out
        };
        if let Some(sealed) = config.api_key_sealed_mut() {
            sealed.clone_from(&row.api_key_sealed);
        }
        snapshot.providers.insert(row.name, config);
    }
    for row in store.mappings().await? {
        let mapping = mapping_view(&row)?;
        snapshot.mappings.insert(
            mapping.alias,
            Mapping {
                strategy: mapping.strategy,
                targets: mapping.targets.into_iter().map(Target::from).collect(),
            },
        );
    }
    snapshot.prices = store
        .prices()
        .await?
        .iter()
        .filter_map(|row| Some((row.key.clone(), crate::prices::price_of(row)?)))
        .collect();
    let keys = store.keys().await?;
    snapshot.keys_issued = !keys.is_empty();
    snapshot.keys = keys
        .into_iter()
        .filter(|k| k.revoked_at_us.is_none())
        .map(|k| ClientKey {
            limits: config_model::KeyLimits::from_column(&k.limits),
            id: k.id,
            sha256: k.hash,
        })
        .collect();
    Ok(snapshot)
}

/// Writes the YAML's providers and mappings into an empty database (first start
/// only: later starts keep what the admin API changed). `true` when it seeded.
pub async fn seed(
    store: &Store,
    providers: &BTreeMap<String, ProviderConfig>,
    mappings: &BTreeMap<String, Mapping>,
) -> Result<bool, ApiError> {
    let now = now_us();
    let mut provider_rows = Vec::new();
    for (name, config) in providers {
        provider_rows.push(ProviderRow {
            name: name.clone(),
            spec: to_json(config)?,
            api_key_sealed: None,
            api_key_mask: None,
            created_at_us: now,
            updated_at_us: now,
        });
    }
    let mut mapping_rows = Vec::new();
    for (alias, mapping) in mappings {
        mapping_rows.push(MappingRow {
            alias: alias.clone(),
            targets: to_json(&mapping.targets)?,
            strategy: mapping.strategy.as_str().to_owned(),
            created_at_us: now,
            updated_at_us: now,
        });
    }
    Ok(store
        .seed_config(&provider_rows, &mapping_rows, now)
        .await?)
}

/// Publishes snapshots to the bus, one at a time and in order; a snapshot that
/// could not be published is retried in the background until one is.
#[derive(Debug, Clone)]
pub struct Publisher {
    bus: Option<Bus>,
    store: Store,
    lock: Arc<tokio::sync::Mutex<()>>,
    retry: Arc<tokio::sync::Notify>,
}

impl Publisher {
    /// The bus it publishes on (none: a store alone, nothing to publish to).
    pub fn bus(&self) -> Option<&Bus> {
        self.bus.as_ref()
    }

    /// The retry task ends with `shutdown`.
    pub fn new(store: Store, bus: Option<Bus>, shutdown: CancellationToken) -> Self {
        let publisher = Self {
            bus,
            store,
            lock: Arc::default(),
            retry: Arc::default(),
        };
        if publisher.bus.is_some() {
            tokio::spawn(publisher.clone().retry_until(shutdown));
        }
        publisher
    }

    /// Publishes again, after each failure, until one publish succeeds.
    async fn retry_until(self, shutdown: CancellationToken) {
        let policy = retry::policy(Duration::from_secs(1), Duration::from_secs(10));
        loop {
            tokio::select! {
                () = self.retry.notified() => {}
                () = shutdown.cancelled() => return,
            }
            let published =
                retry::until_ok("configuration not published", policy, &shutdown, || {
                    self.publish_now()
                });
            if published.await.is_none() {
                return;
            }
        }
    }

    /// Publishes the current configuration; on failure leaves it to the retry
    /// loop (the change itself is saved).
    pub async fn publish(&self) {
        if let Err(e) = self.publish_now().await {
            tracing::warn!(error = %e.message, "configuration not published yet; retrying in the background");
            self.retry.notify_one();
        }
    }

    pub async fn publish_now(&self) -> Result<(), ApiError> {
        let Some(bus) = &self.bus else { return Ok(()) };
        let _one_at_a_time = self.lock.lock().await;
        let snapshot = snapshot(&self.store).await?;
        let bytes = to_json_bytes(&snapshot)?;
        let put = tokio::time::timeout(Duration::from_secs(3), bus.put_config(bytes));
        match put.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::new(
                Kind::Unavailable,
                "bus_unavailable",
                e.to_string(),
            )),
            Err(_) => Err(ApiError::new(
                Kind::Unavailable,
                "bus_unavailable",
                "timed out",
            )),
        }
    }
}
