//! What a client key may do: requests and tokens per minute, calls in flight,
//! the models it may ask for, until when it works. Set through the admin API,
//! published with the key, enforced by every gateway (the per-minute counts
//! shared by all of them).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyLimits {
    /// Requests a minute (a calendar minute, shared by every gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Input and output tokens a minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Requests in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// The models it may ask for (aliases, or `provider/model`); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// When it stops working (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<i64>,
    /// What it may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// Spend a key may incur (at the logged cost) per period; a request whose
/// upper-bound cost does not fit what is left is refused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub usd: f64,
    #[serde(default)]
    pub period: BudgetPeriod,
}

/// A budget's period: a calendar day or month (UTC), or all time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Day,
    #[default]
    Month,
    Total,
}

impl BudgetPeriod {
    /// When the period holding `now_ms` began (Unix ms, UTC).
    pub fn start_ms(self, now_ms: u64) -> u64 {
        let days = now_ms / DAY_MS;
        match self {
            Self::Day => days * DAY_MS,
            Self::Month => {
                let (year, month) = year_month(days);
                u64::try_from(days_from_civil(year, month)).unwrap_or(0) * DAY_MS
            }
            Self::Total => 0,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "daily",
            Self::Month => "monthly",
            Self::Total => "total",
        }
    }
}

impl KeyLimits {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The stored form: JSON, or empty for none.
    pub fn to_column(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form (empty or unreadable: none).
    pub fn from_column(column: &str) -> Self {
        if column.is_empty() {
            return Self::default();
        }
        serde_json::from_str(column).unwrap_or_default()
    }

    /// Whether `model` (as the client wrote it) is allowed.
    pub fn allows(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model)
    }
}

const DAY_MS: u64 = 86_400_000;

/// The calendar year and month of a day since 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn year_month(days: u64) -> (i64, u32) {
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1))
}

/// The day since 1970-01-01 of the first of `month` in `year` (Hinnant's
/// days-from-civil).
fn days_from_civil(year: i64, month: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_the_calendar() {
        // 2026-12-01 is day 20,788; 2024-02-29 day 19,782.
        assert_eq!(year_month(20_788), (2026, 12));
        assert_eq!(year_month(19_782), (2024, 2));
        assert_eq!(year_month(0), (1970, 1));
        let noon_dec_15 = (20_788 + 14) * DAY_MS + DAY_MS / 2;
        assert_eq!(BudgetPeriod::Month.start_ms(noon_dec_15), 20_788 * DAY_MS);
        assert_eq!(
            BudgetPeriod::Day.start_ms(noon_dec_15),
            (20_788 + 14) * DAY_MS
        );
        assert_eq!(BudgetPeriod::Total.start_ms(noon_dec_15), 0);
        assert_eq!(days_from_civil(2024, 2), 19_754);
    }
}
