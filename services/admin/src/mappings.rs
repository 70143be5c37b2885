//! Model mappings through the admin API: an alias, its targets in order of
//! preference and the strategy that picks the first, validated against the
//! stored providers.

use config_model::Strategy;
use serde::{Deserialize, Serialize};
use store::MappingRow;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind, invalid, name_ok, now_us, to_json};

/// A mapping as written.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    /// What clients send as `model`. Taken from the path on update.
    #[serde(default)]
    pub alias: String,
    /// In order of preference: the strategy picks the one that serves first,
    /// the others take over in this order when it fails.
    pub targets: Vec<Target>,
    /// `fallback` (the first target; the default), `weighted` (by the targets'
    /// weights), `least_latency` (power of two choices over a peak EWMA of
    /// latency) or `least_busy` (fewest calls in flight).
    #[serde(default)]
    #[schema(value_type = String, example = "weighted")]
    pub strategy: Strategy,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Mapping {
    pub alias: String,
    pub targets: Vec<Target>,
    #[schema(value_type = String, example = "weighted")]
    pub strategy: Strategy,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One place an alias can send a request, as the API writes it (the
/// configuration model's `Target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    /// The model name the provider knows.
    pub model: String,
    /// Its share of first calls under `weighted`, relative to the others'; 0
    /// makes it a backup, called only when another failed. Default 1.
    #[serde(default = "one")]
    pub weight: u32,
    /// How long a call to it may take (a whole answer; a stream until its first
    /// event) before the next target takes over. Default: the provider's
    /// timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn one() -> u32 {
    1
}

pub(crate) fn mapping_view(row: &MappingRow) -> Result<Mapping, ApiError> {
    let targets: Vec<Target> = serde_json::from_str(&row.targets).map_err(|e| {
        tracing::error!(alias = %row.alias, error = %e, "stored mapping unreadable");
        ApiError::new(
            Kind::Unavailable,
            "corrupt_mapping",
            "the stored mapping is unreadable",
        )
    })?;
    let strategy = Strategy::parse(&row.strategy).ok_or_else(|| {
        tracing::error!(alias = %row.alias, strategy = %row.strategy, "stored mapping strategy unknown");
        ApiError::new(
            Kind::Unavailable,
            "corrupt_mapping",
            "the stored mapping is unreadable",
        )
    })?;
    Ok(Mapping {
        alias: row.alias.clone(),
        targets,
        strategy,
        created_at_ms: row.created_at_us / 1000,
        updated_at_ms: row.updated_at_us / 1000,
    })
}

impl AdminCore {
    pub async fn list_mappings(&self) -> Result<Vec<Mapping>, ApiError> {
        self.store
            .mappings()
            .await?
            .iter()
            .map(mapping_view)
            .collect()
    }

    pub async fn get_mapping(&self, alias: &str) -> Result<Mapping, ApiError> {
        let row = self
            .store
            .mapping(alias)
            .await?
            .ok_or_else(|| mapping_not_found(alias))?;
        mapping_view(&row)
    }

    async fn mapping_row(
        &self,
        input: &MappingInput,
        created_at_us: Option<i64>,
    ) -> Result<MappingRow, ApiError> {
        if !name_ok(&input.alias) {
            return Err(invalid(
                "invalid_alias",
                "an alias is 1 to 200 characters, no spaces",
            )
            .at("alias"));
        }
        if input.targets.is_empty() {
            return Err(
                invalid("invalid_mapping", "a mapping needs at least one target").at("targets"),
            );
        }
        for (i, target) in input.targets.iter().enumerate() {
            if target.model.trim().is_empty() {
                return Err(invalid(
                    "invalid_mapping",
                    format!("targets[{i}].model must not be empty"),
                )
                .at("targets"));
            }
            if self.store.provider(&target.provider).await?.is_none() {
                return Err(invalid(
                    "unknown_provider",
                    format!(
                        "targets[{i}].provider: unknown provider '{}'",
                        target.provider
                    ),
                )
                .at("targets"));
            }
            if target.timeout_ms == Some(0) {
                return Err(invalid(
                    "invalid_mapping",
                    format!("targets[{i}].timeout_ms must be above 0 (leave it out for the provider's timeouts)"),
                )
                .at("targets"));
            }
        }
        if input.strategy == Strategy::Weighted && input.targets.iter().all(|t| t.weight == 0) {
            return Err(invalid(
                "invalid_mapping",
                "a weighted mapping needs a target of weight above 0",
            )
            .at("targets"));
        }
        let now = now_us();
        Ok(MappingRow {
            alias: input.alias.clone(),
            targets: to_json(&input.targets)?,
            strategy: input.strategy.as_str().to_owned(),
            created_at_us: created_at_us.unwrap_or(now),
            updated_at_us: now,
        })
    }

    pub async fn create_mapping(&self, input: &MappingInput) -> Result<Mapping, ApiError> {
        let row = self.mapping_row(input, None).await?;
        if !self.store.insert_mapping(&row).await? {
            return Err(ApiError::new(
                Kind::Conflict,
                "alias_exists",
                format!("alias '{}' already exists", input.alias),
            ));
        }
        self.publisher.publish().await;
        mapping_view(&row)
    }

    pub async fn update_mapping(
        &self,
        alias: &str,
        input: &MappingInput,
    ) -> Result<Mapping, ApiError> {
        if !input.alias.is_empty() && input.alias != alias {
            return Err(invalid(
                "invalid_alias",
                "an alias cannot be renamed: create the new one, delete the old",
            ));
        }
        let current = self
            .store
            .mapping(alias)
            .await?
            .ok_or_else(|| mapping_not_found(alias))?;
        let input = MappingInput {
            alias: alias.to_owned(),
            ..input.clone()
        };
        let row = self
            .mapping_row(&input, Some(current.created_at_us))
            .await?;
        if !self.store.update_mapping(&row).await? {
            return Err(mapping_not_found(alias));
        }
        self.publisher.publish().await;
        mapping_view(&row)
    }

    pub async fn delete_mapping(&self, alias: &str) -> Result<(), ApiError> {
        if !self.store.delete_mapping(alias).await? {
            return Err(mapping_not_found(alias));
        }
        self.publisher.publish().await;
        Ok(())
    }

    /// The aliases with a target on `provider`.
    pub(crate) async fn aliases_targeting(&self, provider: &str) -> Result<Vec<String>, ApiError> {
        Ok(self
            .store
            .mappings()
            .await?
            .iter()
            .filter_map(|row| mapping_view(row).ok())
            .filter(|m| m.targets.iter().any(|t| t.provider == provider))
            .map(|m| m.alias)
            .collect())
    }
}

fn mapping_not_found(alias: &str) -> ApiError {
    ApiError::new(
        Kind::NotFound,
        "mapping_not_found",
        format!("no mapping '{alias}'"),
    )
}

impl From<Target> for config_model::Target {
    fn from(t: Target) -> Self {
        Self {
            provider: t.provider,
            model: t.model,
            weight: t.weight,
            timeout_ms: t.timeout_ms,
        }
    }
}
