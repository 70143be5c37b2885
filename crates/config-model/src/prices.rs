//! What a call costs: the price table shipped with aiprox (`prices.yaml`, USD
//! per million tokens, each vendor's figures with their source and the date
//! they were taken) and the arithmetic of a call's cost, cached and
//! cache-write tokens included. The gateway's `gateway.prices` overrides it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

/// USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    /// Embedding models have none.
    #[serde(default)]
    pub output: f64,
    /// Cache-hit input; unset: the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Input written to the cache (Anthropic's five-minute cache); unset: the
    /// input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Input written to Anthropic's one-hour cache; unset: twice the input
    /// price, Anthropic's rate for every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
}

/// A call's token counts as logged: `input` includes the cached and the
/// cache-write tokens (as OpenAI counts; Anthropic's three are added up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub cache_write: u64,
    /// Of `cache_write`, the tokens written to the one-hour cache.
    pub cache_write_1h: u64,
}

impl Price {
    /// The cost of `usage` at this price, in USD.
    #[allow(clippy::cast_precision_loss)] // token counts far below 2^52
    pub fn cost(&self, usage: Usage) -> f64 {
        let fresh = usage
            .input
            .saturating_sub(usage.cached)
            .saturating_sub(usage.cache_write);
        let one_hour = usage.cache_write_1h.min(usage.cache_write);
        (fresh as f64 * self.input
            + usage.cached as f64 * self.cached_input.unwrap_or(self.input)
            + (usage.cache_write - one_hour) as f64 * self.cache_write.unwrap_or(self.input)
            + one_hour as f64 * self.cache_write_1h.unwrap_or(2.0 * self.input)
            + usage.output as f64 * self.output)
            / 1e6
    }
}

/// One vendor's block of the table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Vendor {
    /// What the figures were read from.
    pub source: String,
    /// When (`YYYY-MM-DD`).
    pub taken: String,
    pub models: BTreeMap<String, Price>,
}

/// The table shipped with aiprox, by vendor.
pub static BUNDLED: LazyLock<BTreeMap<String, Vendor>> = LazyLock::new(|| {
    // Checked by a test: a table that does not read is a build that fails it.
    serde_yaml::from_str(include_str!("../prices.yaml")).unwrap_or_default()
});

/// Every bundled model's price, whichever vendor lists it.
static BY_MODEL: LazyLock<BTreeMap<&'static str, Price>> = LazyLock::new(|| {
    BUNDLED
        .values()
        .flat_map(|v| v.models.iter().map(|(m, p)| (m.as_str(), *p)))
        .collect()
});

/// The price of a call to `provider`'s `model` for a request that asked for
/// `alias`: configured (`overrides`, by `provider/model`, then the alias, then
/// the model), else bundled.
pub fn lookup(
    overrides: &BTreeMap<String, Price>,
    provider: &str,
    alias: &str,
    model: &str,
) -> Option<Price> {
    if !overrides.is_empty() {
        let keyed = format!("{provider}/{model}");
        for key in [keyed.as_str(), alias, model] {
            if let Some(p) = overrides.get(key) {
                return Some(*p);
            }
        }
    }
    bundled(model)
}

/// The bundled price of `model`: its own, else its undated name's
/// (`gpt-4o-2024-08-06` → `gpt-4o`, `claude-haiku-4-5-20251001` →
/// `claude-haiku-4-5`).
pub fn bundled(model: &str) -> Option<Price> {
    BY_MODEL
        .get(model)
        .or_else(|| BY_MODEL.get(undated(model)?))
        .copied()
}

/// `model` without a trailing `-YYYY-MM-DD` or `-YYYYMMDD`.
fn undated(model: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (rest, last) = model.rsplit_once('-')?;
    if last.len() == 8 && digits(last) {
        return Some(rest);
    }
    let (rest, day) = (rest, last);
    let (rest, month) = rest.rsplit_once('-')?;
    let (rest, year) = rest.rsplit_once('-')?;
    (year.len() == 4
        && month.len() == 2
        && day.len() == 2
        && digits(year)
        && digits(month)
        && digits(day))
    .then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_reads_with_a_source_and_date_for_every_vendor() {
        let table: BTreeMap<String, Vendor> =
            serde_yaml::from_str(include_str!("../prices.yaml")).unwrap();
        assert!(table.len() >= 3);
        for (name, vendor) in &table {
            assert!(vendor.source.contains("http"), "{name}");
            assert_eq!(vendor.taken.len(), 10, "{name}: {}", vendor.taken);
            for (model, p) in &vendor.models {
                assert!(p.input > 0.0 && p.output >= 0.0, "{model}");
            }
        }
        assert_eq!(
            BY_MODEL.len(),
            table.values().map(|v| v.models.len()).sum::<usize>()
        );
    }

    #[test]
    fn dated_names_take_their_undated_price() {
        let gpt4o = bundled("gpt-4o").unwrap();
        assert_eq!(bundled("gpt-4o-2024-08-06"), Some(gpt4o));
        assert_eq!(
            bundled("claude-haiku-4-5-20251001"),
            bundled("claude-haiku-4-5")
        );
        assert!(bundled("claude-haiku-4-5").is_some());
        assert_eq!(bundled("gpt-4o-mini"), bundled("gpt-4o-mini-2024-07-18"));
        assert_ne!(bundled("gpt-4o-mini"), Some(gpt4o));
        assert_eq!(bundled("no-such-model"), None);
        assert_eq!(undated("model-2024-13"), None);
    }

    #[test]
    fn cached_and_cache_write_tokens_cost_their_own_prices() {
        let p = Price {
            input: 3.0,
            output: 15.0,
            cached_input: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: None,
        };
        // 1,000 fresh + 2,000 cached + 500 written, 100 out.
        let usage = Usage {
            input: 3500,
            output: 100,
            cached: 2000,
            cache_write: 500,
            cache_write_1h: 0,
        };
        let expected = (1000.0 * 3.0 + 2000.0 * 0.3 + 500.0 * 3.75 + 100.0 * 15.0) / 1e6;
        assert!((p.cost(usage) - expected).abs() < 1e-12);
        // 200 of the 500 written to the one-hour cache: twice the input price,
        // or the price set for it.
        let one_hour = Usage {
            cache_write_1h: 200,
            ..usage
        };
        let expected =
            (1000.0 * 3.0 + 2000.0 * 0.3 + 300.0 * 3.75 + 200.0 * 6.0 + 100.0 * 15.0) / 1e6;
        assert!((p.cost(one_hour) - expected).abs() < 1e-12);
        let set = Price {
            cache_write_1h: Some(5.0),
            ..p
        };
        let expected =
            (1000.0 * 3.0 + 2000.0 * 0.3 + 300.0 * 3.75 + 200.0 * 5.0 + 100.0 * 15.0) / 1e6;
        assert!((set.cost(one_hour) - expected).abs() < 1e-12);
        // Without cache prices, cached input costs the input price.
        let plain = Price {
            input: 2.0,
            output: 8.0,
            ..Price::default()
        };
        assert!((plain.cost(usage) - (3500.0 * 2.0 + 100.0 * 8.0) / 1e6).abs() < 1e-12);
    }
}
