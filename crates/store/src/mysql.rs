//! MySQL 8 and MariaDB 10.11 (the `mysql://` and `mariadb://` URLs): the same
//! store, written in the SQL both understand. Choices where they differ from
//! Postgres:
//!
//! - Times are Unix µs in `BIGINT`, as on SQLite: no time zone to get wrong,
//!   and the Logs page's query, one log by id and the time range are SQLite's
//!   SQL (`micros_page!` in `query`, `micros_log!` in lib.rs).
//! - Text that is filtered, grouped or keyed on is `VARCHAR(255)` (`utf8mb4_bin`:
//!   exact and case-sensitive, like Postgres text); [`clip`] cuts longer values
//!   the same way wherever they are written, so a log row and its rollups agree.
//!   Bodies are `LONGTEXT` with a case-insensitive collation, for the text search.
//! - No `RETURNING`: a batch reads which of its request ids are stored, writes
//!   the others with multi-row `INSERT IGNORE` and checks the count (`write`).
//! - Histograms are a column per bucket ([`hist_columns`]): the rollup upsert is
//!   `ON DUPLICATE KEY UPDATE` with plain additions, and the dashboards' sums run
//!   in the database, as on Postgres (`read`).
//! - Retention deletes rows in bounded batches, not daily partitions
//!   (`retention` says why: unique keys, partition order and metadata locks).
//! - The configuration's queries are Postgres' and SQLite's, their `$n`
//!   parameters made `?` by [`placeholders`], but for the few that say
//!   `ON CONFLICT` or name the reserved word `key` (`Words` in `crate::config`).

mod read;
mod retention;
mod write;

pub(crate) use read::rollup_rows;
pub use read::rollup_totals;
pub use retention::drop_before;
pub use write::insert_batch;

use std::str::FromStr;

use sqlx::MySqlPool;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};

use crate::{HISTOGRAM_LEN, StoreError};

/// The length of the `VARCHAR` columns: what [`clip`] keeps.
pub(crate) const VARCHAR: usize = 255;

/// The length of a request id (a UUID's text): `CHAR(36)`.
pub(crate) const ID: usize = 36;

pub async fn connect(url: &str) -> Result<MySqlPool, StoreError> {
    // `mariadb://` speaks the same protocol; the options ignore the scheme.
    let options = MySqlConnectOptions::from_str(url)?;
    Ok(MySqlPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect_with(options)
        .await?)
}

/// `s` cut to `n` characters: what a `VARCHAR(n)` column would keep of it (an
/// `INSERT IGNORE` cuts silently, other statements refuse the row), cut here so
/// that every table holds the same value.
pub(crate) fn clip(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(end, _)| &s[..end])
}

/// The columns of histogram `name` (`latency_hist` → `latency_hist_0` …
/// `latency_hist_13`), one per bucket of [`crate::LATENCY_BUCKETS_MS`].
pub(crate) fn hist_columns(name: &str) -> impl Iterator<Item = String> + '_ {
    (0..HISTOGRAM_LEN).map(move |i| format!("{name}_{i}"))
}

/// A query written with `$1`, `$2`… with `?` instead. MySQL binds by place, so
/// each must stand once and in order (checked in debug builds, so by the tests).
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut count = 0;
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d;
                chars.next();
            }
            count += 1;
            debug_assert_eq!(n, count, "parameters out of order in {sql}");
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{clip, placeholders};

    #[test]
    fn placeholders_become_question_marks() {
        assert_eq!(
            placeholders("UPDATE t SET a = $1, b = $2 WHERE c = $3"),
            "UPDATE t SET a = ?, b = ? WHERE c = ?"
        );
        assert_eq!(placeholders("SELECT '$' FROM t"), "SELECT '$' FROM t");
    }

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("", 3), "");
    }
}
