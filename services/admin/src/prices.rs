//! Prices through the admin API: the table shipped with aiprox (read-only, with
//! each vendor's source and date) and the prices set here, by `provider/model`,
//! alias or model, which every gateway applies over `gateway.prices` and the
//! table (published with the configuration).

use std::collections::BTreeMap;

use config_model::prices::{BUNDLED, Price, Vendor};
use serde::Serialize;
use store::PriceRow;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind, invalid, now_us, to_json};

/// A price set through the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PriceOverride {
    /// `provider/model`, an alias, or a model name.
    pub key: String,
    pub price: Price,
    pub updated_at_ms: i64,
}

/// Every price aiprox knows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Prices {
    /// Set through the admin API; they win over the others.
    pub overrides: Vec<PriceOverride>,
    /// Shipped with aiprox, by vendor.
    pub bundled: BTreeMap<String, Vendor>,
}

pub(crate) fn price_of(row: &PriceRow) -> Option<Price> {
    serde_json::from_str(&row.spec)
        .inspect_err(|e| tracing::error!(key = %row.key, error = %e, "stored price unreadable"))
        .ok()
}

impl AdminCore {
    pub async fn list_prices(&self) -> Result<Prices, ApiError> {
        let overrides = self
            .store
            .prices()
            .await?
            .iter()
            .filter_map(|row| {
                Some(PriceOverride {
                    key: row.key.clone(),
                    price: price_of(row)?,
                    updated_at_ms: row.updated_at_us / 1000,
                })
            })
            .collect();
        Ok(Prices {
            overrides,
            bundled: BUNDLED.clone(),
        })
    }

    /// Sets the price of `key`; published to the gateways at once.
    pub async fn set_price(&self, key: &str, price: &Price) -> Result<PriceOverride, ApiError> {
        let key = key.trim();
        if key.is_empty() || key.len() > 300 || key.chars().any(char::is_whitespace) {
            return Err(invalid(
                "invalid_key",
                "a price's key is a model, an alias or provider/model",
            )
            .at("key"));
        }
        let fields = [
            Some(price.input),
            Some(price.output),
            price.cached_input,
            price.cache_write,
            price.cache_write_1h,
        ];
        if fields.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(invalid(
                "invalid_price",
                "prices are USD per million tokens, 0 or more",
            ));
        }
        let row = PriceRow {
            key: key.to_owned(),
            spec: to_json(price)?,
            updated_at_us: now_us(),
        };
        self.store.put_price(&row).await?;
        self.publisher.publish().await;
        Ok(PriceOverride {
            key: row.key,
            price: *price,
            updated_at_ms: row.updated_at_us / 1000,
        })
    }

    pub async fn delete_price(&self, key: &str) -> Result<(), ApiError> {
        if !self.store.delete_price(key).await? {
            return Err(ApiError::new(
                Kind::NotFound,
                "price_not_found",
                format!("no price set for '{key}'"),
            ));
        }
        self.publisher.publish().await;
        Ok(())
    }
}
