//! Client API keys through the admin API: created with a random secret shown once,
//! stored as its SHA-256, listed without it, revoked.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use config_model::{KeyLimits, key_hash};
use serde::{Deserialize, Serialize};
use store::KeyRow;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind, invalid, now_us};

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// Who or what the key is for.
    pub name: String,
    /// What it may do; none by default.
    #[serde(default)]
    pub limits: KeyLimits,
}

/// A client API key as listed: never the key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
    /// The last minute a request came with it (from the usage rollups); absent
    /// when never used.
    pub last_used_at_ms: Option<i64>,
    pub limits: KeyLimits,
    /// With a budget: the logged spend (USD) of its current period.
    pub spend_usd: Option<f64>,
}

/// A new key: the only time the key itself is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: Key,
    /// Give it to the client; only its SHA-256 is stored.
    pub secret: String,
}

fn key_view(row: &KeyRow) -> Key {
    Key {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        created_at_ms: row.created_at_us / 1000,
        revoked_at_ms: row.revoked_at_us.map(|us| us / 1000),
        last_used_at_ms: None,
        limits: KeyLimits::from_column(&row.limits),
        spend_usd: None,
    }
}

fn random(n: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        ApiError::new(Kind::Unavailable, "no_randomness", "cannot generate a key")
    })?;
    Ok(bytes)
}

impl AdminCore {
    pub async fn create_key(&self, input: &KeyInput) -> Result<CreatedKey, ApiError> {
        let name = input.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(invalid(
                "invalid_name",
                "a key's name is 1 to 200 characters",
            ));
        }
        check_limits(&input.limits)?;
        let secret = format!("sk-aiprox-{}", URL_SAFE_NO_PAD.encode(random(32)?));
        let id = format!("key_{}", hex::encode(random(8)?));
        let row = KeyRow {
            id,
            name: name.to_owned(),
            hash: hex::encode(key_hash(&secret)),
            prefix: secret.chars().take(14).collect(),
            created_at_us: now_us(),
            revoked_at_us: None,
            limits: input.limits.to_column(),
        };
        self.store.insert_key(&row).await?;
        self.publisher.publish().await;
        Ok(CreatedKey {
            key: key_view(&row),
            secret,
        })
    }

    pub async fn list_keys(&self) -> Result<Vec<Key>, ApiError> {
        let used = self.store.keys_last_used().await?;
        let mut keys: Vec<Key> = self
            .store
            .keys()
            .await?
            .iter()
            .map(|row| Key {
                last_used_at_ms: used.get(&row.id).map(|us| us / 1000),
                ..key_view(row)
            })
            .collect();
        // Each budget's period spend, one query per period start.
        let now_ms = u64::try_from(now_us() / 1000).unwrap_or(0);
        let mut spent_since = std::collections::HashMap::new();
        for key in &mut keys {
            let Some(budget) = key.limits.budget else {
                continue;
            };
            let since_us = i64::try_from(budget.period.start_ms(now_ms) * 1000).unwrap_or(0);
            if let std::collections::hash_map::Entry::Vacant(e) = spent_since.entry(since_us) {
                e.insert(self.store.keys_spend_since(since_us).await?);
            }
            key.spend_usd = spent_since
                .get(&since_us)
                .map(|spent| spent.get(&key.id).copied().unwrap_or(0.0));
        }
        Ok(keys)
    }

    /// Replaces a key's limits; published to the gateways at once.
    pub async fn set_key_limits(&self, id: &str, limits: &KeyLimits) -> Result<Key, ApiError> {
        check_limits(limits)?;
        let row = self
            .store
            .set_key_limits(id, &limits.to_column())
            .await?
            .ok_or_else(|| key_not_found(id))?;
        self.publisher.publish().await;
        Ok(key_view(&row))
    }

    pub async fn revoke_key(&self, id: &str) -> Result<Key, ApiError> {
        let row = self
            .store
            .revoke_key(id, now_us())
            .await?
            .ok_or_else(|| key_not_found(id))?;
        self.publisher.publish().await;
        Ok(key_view(&row))
    }
}

fn key_not_found(id: &str) -> ApiError {
    ApiError::new(Kind::NotFound, "key_not_found", format!("no key {id}"))
}

/// Limits of 0 would refuse everything: leave a limit out for none.
fn check_limits(limits: &KeyLimits) -> Result<(), ApiError> {
    let zero = |name: &'static str| {
        invalid(
            "invalid_limits",
            format!("limits.{name} must be above 0 (leave it out for no limit)"),
        )
        .at("limits")
    };
    if limits.requests_per_minute == Some(0) {
        return Err(zero("requests_per_minute"));
    }
    if limits.tokens_per_minute == Some(0) {
        return Err(zero("tokens_per_minute"));
    }
    if limits.max_concurrent == Some(0) {
        return Err(zero("max_concurrent"));
    }
    if limits.models.iter().any(|m| m.trim().is_empty()) {
        return Err(invalid("invalid_limits", "limits.models: a model name is empty").at("limits"));
    }
    Ok(())
}
