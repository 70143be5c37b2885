//! The reads whose SQL is MySQL's own: the rollup totals and the dashboards'
//! rollup sums. (One log by id is SQLite's SQL: `micros_log!` in lib.rs.)

use sqlx::{MySql, MySqlPool, QueryBuilder, Row};

use super::hist_columns;
use crate::query::{RollupRow, split_columns};
use crate::{Grain, HISTOGRAM_LEN, RollupTotals, Split, StoreError};

/// `SUM` of integers is a `DECIMAL` on MySQL: cast back to `BIGINT` to decode.
fn sum(expr: &str) -> String {
    format!("CAST(COALESCE(SUM({expr}), 0) AS SIGNED)")
}

pub async fn rollup_totals(pool: &MySqlPool) -> Result<RollupTotals, StoreError> {
    let histogram = hist_columns("latency_hist").collect::<Vec<_>>().join(" + ");
    let sql = format!(
        "SELECT {} AS requests, {} AS errors, {} AS input_tokens, {} AS output_tokens,
           {} AS histogram_count FROM usage_rollups",
        sum("requests"),
        sum("errors"),
        sum("input_tokens"),
        sum("output_tokens"),
        sum(&histogram),
    );
    // Built from constant column names.
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?)
}

/// The rollups of `grain` in `parts` of a range, summed in the database per
/// bucket of `step_us` counted from `from_us` and per line of `split`, as on
/// Postgres (`crate::query` says why); without their histograms unless
/// `percentiles`. The parts are OR-ed, each an index range.
pub(crate) async fn rollup_rows(
    pool: &MySqlPool,
    grain: Grain,
    split: Split,
    percentiles: bool,
    (from_us, step_us): (i64, i64),
    parts: &[(i64, i64)],
) -> Result<Vec<RollupRow>, StoreError> {
    let [model, provider, key] = split_columns(split);
    let mut q = QueryBuilder::<MySql>::new("SELECT CAST(");
    q.push_bind(from_us)
        .push(" + ((bucket - ")
        .push_bind(from_us)
        .push(") DIV ")
        .push_bind(step_us)
        .push(") * ")
        .push_bind(step_us)
        .push(format!(
            " AS SIGNED), {model}, {provider}, {key}, {}, {}, {}, {}, SUM(cost_usd)",
            sum("requests"),
            sum("errors"),
            sum("input_tokens"),
            sum("output_tokens"),
        ));
    if percentiles {
        for column in hist_columns("latency_hist").chain(hist_columns("ttft_hist")) {
            q.push(format!(", {}", sum(&column)));
        }
    }
    q.push(format!(" FROM {} WHERE ", grain.table()));
    for (i, (from, to)) in parts.iter().enumerate() {
        q.push(if i == 0 {
            "(bucket >= "
        } else {
            " OR (bucket >= "
        })
        .push_bind(*from)
        .push(" AND bucket < ")
        .push_bind(*to)
        .push(")");
    }
    q.push(" GROUP BY 1, 2, 3, 4");
    let rows = q.build().fetch_all(pool).await?;
    let histogram = |r: &sqlx::mysql::MySqlRow, first: usize| -> Result<Vec<i64>, sqlx::Error> {
        if !percentiles {
            return Ok(Vec::new());
        }
        (first..first + HISTOGRAM_LEN)
            .map(|i| r.try_get(i))
            .collect()
    };
    rows.iter()
        .map(|r| RollupRow::of(r, histogram(r, 9)?, histogram(r, 9 + HISTOGRAM_LEN)?))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}
