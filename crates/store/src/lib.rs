//! aiprox's database, on Postgres (production), MySQL 8 or MariaDB 10.11, and
//! SQLite (the embedded default).
//!
//! - [`Store::insert_batch`]: one transaction per batch of log events: request
//!   metadata, bodies, media links and the per-minute and per-hour usage rollups, idempotent by
//!   request id (a replayed event changes nothing).
//! - Partitions (Postgres): daily, created ahead; retention drops whole days.
//!   MySQL and SQLite delete the rows instead (`mysql/retention.rs` says why).
//! - Migrations in `migrations/{postgres,mysql,sqlite}`, embedded and run at start.
//! - [`Store::list_logs`]: the Logs page's filters with keyset pagination.
//! - [`Store::put_response`] and its `get` and `delete`: stored Responses API
//!   conversations for the in-process bus, deleted by retention with the logs.
//! - A few read queries the tests and the admin API use.
//!
//! Modules: `postgres`, `mysql` and `sqlite` hold each database's writes and
//! the reads whose SQL is its own; `query` the Logs page and dashboard reads,
//! `config` the configuration tables, both written once where the SQL allows;
//! `responses` the stored responses.

mod config;
mod mysql;
mod postgres;
mod query;
mod responses;
mod sqlite;

pub use config::{KeyRow, MappingRow, PriceRow, ProviderRow};
pub use query::{Cursor, LogFilter, LogSummary, SeriesPoint, Split, UsageSummary};

use std::collections::BTreeMap;

use events::proto::{LogEvent, MediaRef};

/// Upper bounds (ms) of the latency histogram buckets; one more bucket counts
/// everything above the last.
pub const LATENCY_BUCKETS_MS: [u64; 13] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];
pub const HISTOGRAM_LEN: usize = LATENCY_BUCKETS_MS.len() + 1;

/// The histogram bucket of a duration in microseconds.
pub fn bucket_of(us: u64) -> usize {
    LATENCY_BUCKETS_MS
        .iter()
        .position(|ms| us <= ms * 1_000)
        .unwrap_or(LATENCY_BUCKETS_MS.len())
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported database URL (use postgres://…, mysql://…, mariadb://… or sqlite://…): {0}"
    )]
    Url(String),
}

/// The database, by kind.
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(sqlx::PgPool),
    /// MySQL 8 or MariaDB 10.11.
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// One log row, as the tests and the admin API read it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub request_id: String,
    pub received_at_us: i64,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub stream: bool,
    pub status: i32,
    pub error_kind: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    /// Input tokens written to the provider's prompt cache (part of `input_tokens`).
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    pub latency_us: i64,
    pub ttft_us: i64,
    pub upstream_latency_us: i64,
    pub client_key_id: String,
    pub source: String,
    pub error_message: String,
    /// The upstream calls that failed before the logged one, in order.
    pub failed_attempts: Vec<FailedAttempt>,
    /// The `type`s of the built-in tools the provider could not run, left out
    /// of the upstream request, in request order.
    pub omitted_tools: Vec<String>,
    pub request_body: String,
    pub response_body: String,
    /// (sha256, path) of each media part.
    pub media: Vec<(String, String)>,
}

/// One upstream call that failed before the logged one (a retry or fallback
/// followed), as stored: `request_logs.attempts` holds them as a JSON array.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedAttempt {
    pub provider: String,
    pub upstream_model: String,
    /// 0 when the upstream gave no status (unreachable, timed out).
    pub status: u32,
    pub error_kind: String,
    pub latency_us: u64,
    /// The key of the provider's pool that made it: its place, from 1; 0 when
    /// the provider has no key (and in rows from before keys were recorded).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The `attempts` column of an event: empty when none failed.
pub(crate) fn attempts_json(e: &LogEvent) -> String {
    if e.failed_attempts.is_empty() {
        return String::new();
    }
    let attempts: Vec<FailedAttempt> = e
        .failed_attempts
        .iter()
        .map(|a| FailedAttempt {
            provider: a.provider.clone(),
            upstream_model: a.upstream_model.clone(),
            status: a.status,
            error_kind: a.error_kind.clone(),
            latency_us: a.latency_us,
            key: a.key,
        })
        .collect();
    serde_json::to_string(&attempts).unwrap_or_default()
}

/// The attempts a stored `attempts` column holds (none when empty or unreadable).
pub(crate) fn attempts_of(column: &str) -> Vec<FailedAttempt> {
    if column.is_empty() {
        return Vec::new();
    }
    serde_json::from_str(column).unwrap_or_default()
}

/// The `omitted_tools` column of an event: the tools' types as a JSON array,
/// empty when none was left out.
pub(crate) fn omitted_tools_json(e: &LogEvent) -> String {
    if e.omitted_tools.is_empty() {
        return String::new();
    }
    serde_json::to_string(&e.omitted_tools).unwrap_or_default()
}

/// The tool types a stored `omitted_tools` column holds (none when empty or
/// unreadable).
pub(crate) fn omitted_tools_of(column: &str) -> Vec<String> {
    if column.is_empty() {
        return Vec::new();
    }
    serde_json::from_str(column).unwrap_or_default()
}

/// Totals over every rollup row (read by its field names where the database
/// sums them).
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct RollupTotals {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub histogram_count: i64,
}

/// One rollup row's increments, aggregated from a batch's new events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rollup {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: i64,
    pub cost_usd: f64,
    pub latency_us_sum: i64,
    pub latency_hist: [i64; HISTOGRAM_LEN],
    pub ttft_hist: [i64; HISTOGRAM_LEN],
}

/// (bucket start in Unix µs, model, provider, client key id).
pub(crate) type RollupKey = (i64, String, String, String);

/// The two widths the rollups are kept at. Every event is added to its minute and
/// to its hour: a day's summary reads 24 hourly rows per model × provider × key
/// instead of 1,440 minute rows, and the minutes are still there for short ranges
/// and for a range's partial hours at its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    Minute,
    Hour,
}

impl Grain {
    pub(crate) const ALL: [Grain; 2] = [Grain::Minute, Grain::Hour];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Grain::Minute => "usage_rollups",
            Grain::Hour => "usage_rollups_hourly",
        }
    }

    pub(crate) fn us(self) -> i64 {
        match self {
            Grain::Minute => 60_000_000,
            Grain::Hour => 3_600_000_000,
        }
    }
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn is_error(e: &LogEvent) -> bool {
    e.status >= 400 || !e.error_kind.is_empty()
}

/// Postgres text cannot hold NUL; JSON never has a raw one, messages might.
pub(crate) fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

pub(crate) fn body(b: &[u8]) -> String {
    text(&String::from_utf8_lossy(b))
}

/// The [`LogRow`] of a row that names its columns as [`LogRow`]'s fields, but
/// `id` and `t` for the request id and the time, Unix µs.
pub(crate) fn log_row<R: sqlx::Row>(
    row: &R,
    media: Vec<(String, String)>,
) -> Result<LogRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LogRow {
        request_id: row.try_get("id")?,
        received_at_us: row.try_get("t")?,
        endpoint: row.try_get("endpoint")?,
        requested_model: row.try_get("requested_model")?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        stream: row.try_get("stream")?,
        status: row.try_get("status")?,
        error_kind: row.try_get("error_kind")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        cached_tokens: row.try_get("cached_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        latency_us: row.try_get("latency_us")?,
        ttft_us: row.try_get("ttft_us")?,
        upstream_latency_us: row.try_get("upstream_latency_us")?,
        client_key_id: row.try_get("client_key_id")?,
        source: row.try_get("source")?,
        failed_attempts: attempts_of(&row.try_get::<String, _>("attempts")?),
        omitted_tools: omitted_tools_of(&row.try_get::<String, _>("omitted_tools")?),
        cache_write_tokens: row.try_get("cache_write_tokens")?,
        error_message: row.try_get("error_message")?,
        request_body: row.try_get("request_body")?,
        response_body: row.try_get("response_body")?,
        media,
    })
}

/// One media part of a new event: the event that links to it, and the file.
pub(crate) type MediaLink<'a> = (&'a LogEvent, &'a MediaRef);

/// Every media part of the new events, in event order, then part order.
pub(crate) fn media_links<'a>(fresh: &[&'a LogEvent]) -> Vec<MediaLink<'a>> {
    fresh
        .iter()
        .flat_map(|e| e.media.iter().map(move |m| (*e, m)))
        .collect()
}

/// The events' increments to their rollup rows of one grain.
pub(crate) fn rollups<'a>(
    events: impl Iterator<Item = &'a LogEvent>,
    grain: Grain,
) -> BTreeMap<RollupKey, Rollup> {
    let mut out: BTreeMap<RollupKey, Rollup> = BTreeMap::new();
    for e in events {
        let start = e.received_at_us - e.received_at_us.rem_euclid(grain.us());
        let r = out
            .entry((
                start,
                e.requested_model.clone(),
                e.provider.clone(),
                e.client_key_id.clone(),
            ))
            .or_default();
        r.requests += 1;
        r.errors += i64::from(is_error(e));
        r.input_tokens += i64_of(e.input_tokens);
        r.output_tokens += i64_of(e.output_tokens);
        r.cached_tokens += i64_of(e.cached_tokens);
        r.cost_usd += e.cost_usd;
        r.latency_us_sum += i64_of(e.latency_us);
        r.latency_hist[bucket_of(e.latency_us)] += 1;
        if e.ttft_us > 0 {
            r.ttft_hist[bucket_of(e.ttft_us)] += 1;
        }
    }
    out
}

/// [`Store::log_time_range`] where times are Unix µs integers (MySQL, SQLite).
const MICROS_RANGE: &str = "SELECT min(received_at), max(received_at) FROM request_logs";
/// [`Store::log_ids`] where ids are text (MySQL, SQLite).
const PLAIN_IDS: &str = "SELECT request_id, count(*) FROM request_logs GROUP BY 1 ORDER BY 1";

/// [`Store::log`] where times are Unix µs integers and ids text (MySQL,
/// SQLite): the same SQL on either pool.
macro_rules! micros_log {
    ($pool:expr, $request_id:expr) => {{
        let row = sqlx::query(
            "SELECT l.request_id AS id, l.received_at AS t, l.endpoint, l.requested_model,
               l.provider, l.upstream_model, l.stream, l.status, l.error_kind, l.input_tokens,
               l.output_tokens, l.cached_tokens, l.cost_usd, l.latency_us, l.ttft_us,
               l.upstream_latency_us, l.client_key_id, l.source, l.error_message, l.attempts,
               l.omitted_tools, l.cache_write_tokens, c.request_body, c.response_body
             FROM request_logs l JOIN request_contents c
               ON c.received_at = l.received_at AND c.request_id = l.request_id
             WHERE l.request_id = ?",
        )
        .bind($request_id)
        .fetch_optional($pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let media: Vec<(String, String)> = sqlx::query_as(
                    "SELECT m.sha256, r.path FROM request_media m JOIN media_resources r USING (sha256)
                     WHERE m.request_id = ? ORDER BY m.sha256",
                )
                .bind($request_id)
                .fetch_all($pool)
                .await?;
                Ok(Some(log_row(&row, media)?))
            }
        }
    }};
}

impl Store {
    /// Connects to `postgres://…`, `mysql://…` (or `mariadb://…`: the same
    /// protocol) or `sqlite://PATH` (the file is created).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(postgres::connect(url).await?));
        }
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Ok(Self::MySql(mysql::connect(url).await?));
        }
        if url.starts_with("sqlite:") {
            return Ok(Self::Sqlite(sqlite::connect(url).await?));
        }
        Err(StoreError::Url(
            url.split('@').next_back().unwrap_or_default().to_owned(),
        ))
    }

    /// Runs the migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
            Self::MySql(pool) => sqlx::migrate!("./migrations/mysql").run(pool).await?,
            Self::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
        }
        Ok(())
    }

    /// Writes a batch in one transaction; returns how many events were new.
    ///
    /// Each backend takes the same steps, each its own function taking the
    /// transaction: `insert_log_rows` (the events whose request id is new),
    /// then for those only `insert_bodies`, `insert_media` (`media_resources`,
    /// then the `request_media` links) and `add_rollups`, so a replayed event
    /// writes nothing.
    pub async fn insert_batch(&self, events: &[LogEvent]) -> Result<usize, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::insert_batch(pool, events).await,
            Self::MySql(pool) => mysql::insert_batch(pool, events).await,
            Self::Sqlite(pool) => sqlite::insert_batch(pool, events).await,
        }
    }

    /// Makes sure daily partitions exist for `days` days from the day of
    /// `from_us` (Postgres; nothing to do on MySQL and SQLite).
    pub async fn ensure_partitions(&self, from_us: i64, days: u32) -> Result<(), StoreError> {
        match self {
            Self::Postgres(pool) => postgres::ensure_partitions(pool, from_us, days).await,
            Self::MySql(_) | Self::Sqlite(_) => Ok(()),
        }
    }

    /// Drops the log data of every day before the day of `cutoff_us`, and the
    /// stored responses put before that day; returns how many log partitions
    /// (Postgres) or log rows (MySQL, SQLite) went.
    pub async fn drop_before(&self, cutoff_us: i64) -> Result<usize, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::drop_before(pool, cutoff_us).await,
            Self::MySql(pool) => mysql::drop_before(pool, cutoff_us).await,
            Self::Sqlite(pool) => sqlite::drop_before(pool, cutoff_us).await,
        }
    }

    /// The oldest and newest log times (Unix µs), `None` without logs. Index-only.
    pub async fn log_time_range(&self) -> Result<Option<(i64, i64)>, StoreError> {
        let range: (Option<i64>, Option<i64>) = match self {
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT (extract(epoch from min(received_at)) * 1000000)::int8, \
                     (extract(epoch from max(received_at)) * 1000000)::int8 FROM request_logs",
                )
                .fetch_one(pool)
                .await?
            }
            Self::MySql(pool) => sqlx::query_as(MICROS_RANGE).fetch_one(pool).await?,
            Self::Sqlite(pool) => sqlx::query_as(MICROS_RANGE).fetch_one(pool).await?,
        };
        Ok(range.0.zip(range.1))
    }

    pub async fn log_count(&self) -> Result<i64, StoreError> {
        let q = "SELECT count(*) FROM request_logs";
        Ok(match self {
            Self::Postgres(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            Self::MySql(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            Self::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
        })
    }

    /// Every request id, and how many rows each has (a duplicate would show 2).
    pub async fn log_ids(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT request_id::text, count(*) FROM request_logs GROUP BY 1 ORDER BY 1",
                )
                .fetch_all(pool)
                .await?
            }
            Self::MySql(pool) => sqlx::query_as(PLAIN_IDS).fetch_all(pool).await?,
            Self::Sqlite(pool) => sqlx::query_as(PLAIN_IDS).fetch_all(pool).await?,
        })
    }

    pub async fn log(&self, request_id: &str) -> Result<Option<LogRow>, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::log(pool, request_id).await,
            Self::MySql(pool) => micros_log!(pool, request_id),
            Self::Sqlite(pool) => micros_log!(pool, request_id),
        }
    }

    pub async fn rollup_totals(&self) -> Result<RollupTotals, StoreError> {
        match self {
            Self::Postgres(pool) => postgres::rollup_totals(pool).await,
            Self::MySql(pool) => mysql::rollup_totals(pool).await,
            Self::Sqlite(pool) => sqlite::rollup_totals(pool).await,
        }
    }

    /// A media resource's type and path under the media root.
    pub async fn media(&self, sha256: &str) -> Result<Option<(String, String)>, StoreError> {
        let q = "SELECT mime, path FROM media_resources WHERE sha256 = ";
        Ok(match self {
            Self::Postgres(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q}$1")))
                    .bind(sha256)
                    .fetch_optional(pool)
                    .await?
            }
            Self::MySql(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q}?")))
                    .bind(sha256)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!("{q}?")))
                    .bind(sha256)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }

    /// Records media files (by the logger, from the events' references).
    pub async fn media_count(&self) -> Result<i64, StoreError> {
        let q = "SELECT count(*) FROM media_resources";
        Ok(match self {
            Self::Postgres(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            Self::MySql(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
            Self::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await?,
        })
    }
}
