//! The Logs page's query: filters and keyset pagination, and the dashboards'
//! rollup reads, on each database.
//!
//! Rows come newest first, ordered by (received_at, request_id) descending; a
//! cursor is the last row's pair, and the next page holds rows strictly before
//! it. Rows inserted while a client pages (newer ones) land before its first page,
//! so no row is skipped or repeated.

use sqlx::{MySql, Postgres, QueryBuilder, Row, Sqlite};

use crate::{Grain, Store, StoreError};

/// Which rows the Logs page shows. Every field narrows; none means all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Received at or after, Unix µs.
    pub from_us: Option<i64>,
    /// Received before, Unix µs.
    pub to_us: Option<i64>,
    pub model: Option<String>,
    pub provider: Option<String>,
    /// 2, 4 or 5: the status class.
    pub status_class: Option<u16>,
    pub error_kind: Option<String>,
    pub client_key_id: Option<String>,
    pub stream: Option<bool>,
    pub min_latency_us: Option<i64>,
    /// Case-insensitive text in the request or response body.
    pub text: Option<String>,
    /// `playground`, or `""` for requests of ordinary clients.
    pub source: Option<String>,
}

/// Where a page starts: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub received_at_us: i64,
    pub request_id: String,
}

impl Cursor {
    /// An opaque token for clients.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.received_at_us, self.request_id)
    }

    pub fn decode(token: &str) -> Option<Self> {
        let (t, id) = token.split_once('_')?;
        let valid_id = id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        valid_id.then_some(Self {
            received_at_us: t.parse().ok()?,
            request_id: id.to_owned(),
        })
    }
}

/// A Logs row: metadata only.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSummary {
    pub request_id: String,
    pub received_at_us: i64,
    pub endpoint: String,
    pub requested_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub client_key_id: String,
    pub source: String,
    pub stream: bool,
    pub status: i32,
    pub error_kind: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_us: i64,
    pub ttft_us: i64,
}

/// `text` as a LIKE pattern that finds it anywhere: its `%`, `_` and `escape`
/// characters escaped with `escape`.
fn like(text: &str, escape: char) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if c == '%' || c == '_' || c == escape {
            pattern.push(escape);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// One page of logs, newest first, and the cursor of the next page.
    pub async fn list_logs(
        &self,
        filter: &LogFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<(Vec<LogSummary>, Option<Cursor>), StoreError> {
        let limit = i64::from(limit.clamp(1, 500));
        // A page's rows from a built query, on that query's pool.
        macro_rules! fetch {
            ($q:expr, $pool:expr) => {
                $q.build()
                    .fetch_all($pool)
                    .await?
                    .iter()
                    .map(summary)
                    .collect::<Result<Vec<_>, _>>()?
            };
        }
        let rows = match self {
            Self::Postgres(pool) => {
                let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
                    "SELECT l.request_id::text AS id, (extract(epoch from l.received_at) * 1000000)::int8 AS t, \
                     l.endpoint, l.requested_model, l.provider, l.upstream_model, l.client_key_id, l.source, \
                     l.stream, l.status, l.error_kind, l.input_tokens, l.output_tokens, l.cost_usd, \
                     l.latency_us, l.ttft_us FROM request_logs l WHERE true",
                );
                let at = pg_at;
                if let Some(v) = filter.from_us {
                    q.push(" AND l.received_at >= ");
                    at(&mut q, v);
                }
                if let Some(v) = filter.to_us {
                    q.push(" AND l.received_at < ");
                    at(&mut q, v);
                }
                push_common_pg(&mut q, filter);
                if let Some(c) = after {
                    q.push(" AND (l.received_at, l.request_id) < (");
                    at(&mut q, c.received_at_us);
                    q.push(", ").push_bind(c.request_id.clone()).push("::uuid)");
                }
                q.push(" ORDER BY l.received_at DESC, l.request_id DESC LIMIT ")
                    .push_bind(limit);
                fetch!(q, pool)
            }
            Self::MySql(pool) => fetch!(mysql_page(filter, after, limit), pool),
            Self::Sqlite(pool) => fetch!(sqlite_page(filter, after, limit), pool),
        };
        let next = (rows.len() as i64 == limit).then(|| {
            rows.last().map(|r| Cursor {
                received_at_us: r.received_at_us,
                request_id: r.request_id.clone(),
            })
        });
        Ok((rows, next.flatten()))
    }
}

/// A time in Unix µs as Postgres compares it with `received_at`.
fn pg_at(q: &mut QueryBuilder<Postgres>, us: i64) {
    q.push("timestamptz 'epoch' + ")
        .push_bind(us)
        .push(" * interval '1 microsecond'");
}

/// A time in Unix µs where `received_at` is one too (MySQL, SQLite).
fn micros_at<DB: sqlx::Database>(q: &mut QueryBuilder<DB>, us: i64)
where
    for<'a> i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push_bind(us);
}

/// The page's query where times are Unix µs integers and ids text (MySQL,
/// SQLite): the same SQL for each database's query builder.
macro_rules! micros_page {
    ($name:ident, $db:ty, $push_common:ident) => {
        fn $name(filter: &LogFilter, after: Option<&Cursor>, limit: i64) -> QueryBuilder<$db> {
            let mut q: QueryBuilder<$db> = QueryBuilder::new(
                "SELECT l.request_id AS id, l.received_at AS t, l.endpoint, l.requested_model, \
                 l.provider, l.upstream_model, l.client_key_id, l.source, l.stream, l.status, \
                 l.error_kind, l.input_tokens, l.output_tokens, l.cost_usd, l.latency_us, l.ttft_us \
                 FROM request_logs l WHERE 1 = 1",
            );
            if let Some(v) = filter.from_us {
                q.push(" AND l.received_at >= ").push_bind(v);
            }
            if let Some(v) = filter.to_us {
                q.push(" AND l.received_at < ").push_bind(v);
            }
            $push_common(&mut q, filter);
            if let Some(c) = after {
                q.push(" AND (l.received_at < ")
                    .push_bind(c.received_at_us)
                    .push(" OR (l.received_at = ")
                    .push_bind(c.received_at_us)
                    .push(" AND l.request_id < ")
                    .push_bind(c.request_id.clone())
                    .push("))");
            }
            q.push(" ORDER BY l.received_at DESC, l.request_id DESC LIMIT ")
                .push_bind(limit);
            q
        }
    };
}

micros_page!(sqlite_page, Sqlite, push_common_sqlite);
micros_page!(mysql_page, MySql, push_common_mysql);

/// The filters every database words alike, but for a case-insensitive LIKE
/// (`$ci_like`) and its escape character (`$escape`: MySQL's string literals
/// take a backslash as an escape of their own unless `NO_BACKSLASH_ESCAPES`, so
/// it escapes with `!`).
macro_rules! push_common {
    ($name:ident, $db:ty, $ci_like:literal, $escape:literal, $at:ident) => {
        fn $name(q: &mut QueryBuilder<$db>, f: &LogFilter) {
            if let Some(v) = &f.model {
                q.push(" AND l.requested_model = ").push_bind(v.clone());
            }
            if let Some(v) = &f.provider {
                q.push(" AND l.provider = ").push_bind(v.clone());
            }
            if let Some(class) = f.status_class {
                let low = i32::from(class) * 100;
                q.push(" AND l.status >= ").push_bind(low);
                q.push(" AND l.status < ").push_bind(low + 100);
            }
            if let Some(v) = &f.error_kind {
                q.push(" AND l.error_kind = ").push_bind(v.clone());
            }
            if let Some(v) = &f.client_key_id {
                q.push(" AND l.client_key_id = ").push_bind(v.clone());
            }
            if let Some(v) = f.stream {
                q.push(" AND l.stream = ").push_bind(v);
            }
            if let Some(v) = &f.source {
                q.push(" AND l.source = ").push_bind(v.clone());
            }
            if let Some(v) = f.min_latency_us {
                q.push(" AND l.latency_us >= ").push_bind(v);
            }
            if let Some(text) = &f.text {
                let pattern = like(text, $escape);
                let escape = format!(" ESCAPE '{}'", $escape);
                q.push(concat!(
                    " AND EXISTS (SELECT 1 FROM request_contents c WHERE c.received_at = l.received_at \
                     AND c.request_id = l.request_id AND (c.request_body ",
                    $ci_like
                ))
                .push_bind(pattern.clone())
                .push(&escape)
                .push(concat!(" OR c.response_body ", $ci_like))
                .push_bind(pattern)
                .push(&escape)
                .push(")");
                // The range again on the bodies' side, so only the range's part of
                // them (its partitions, its index range) is read, whatever join the
                // planner picks.
                if let Some(v) = f.from_us {
                    q.push(" AND c.received_at >= ");
                    $at(q, v);
                }
                if let Some(v) = f.to_us {
                    q.push(" AND c.received_at < ");
                    $at(q, v);
                }
                q.push(")");
            }
        }
    };
}

push_common!(push_common_pg, Postgres, "ILIKE ", '\\', pg_at);
push_common!(push_common_sqlite, Sqlite, "LIKE ", '\\', micros_at);
// Case-insensitive by the bodies' collation (utf8mb4_unicode_ci).
push_common!(push_common_mysql, MySql, "LIKE ", '!', micros_at);

fn summary<R: Row>(row: &R) -> Result<LogSummary, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LogSummary {
        request_id: row.try_get("id")?,
        received_at_us: row.try_get("t")?,
        endpoint: row.try_get("endpoint")?,
        requested_model: row.try_get("requested_model")?,
        provider: row.try_get("provider")?,
        upstream_model: row.try_get("upstream_model")?,
        client_key_id: row.try_get("client_key_id")?,
        source: row.try_get("source")?,
        stream: row.try_get("stream")?,
        status: row.try_get("status")?,
        error_kind: row.try_get("error_kind")?,
        input_tokens: row.try_get("input_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        cost_usd: row.try_get("cost_usd")?,
        latency_us: row.try_get("latency_us")?,
        ttft_us: row.try_get("ttft_us")?,
    })
}

/// Totals over the rollups of a time range: what the dashboard's summary shows,
/// without scanning raw logs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageSummary {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub latency_hist: [i64; crate::HISTOGRAM_LEN],
    pub ttft_hist: [i64; crate::HISTOGRAM_LEN],
}

impl UsageSummary {
    /// The `q` quantile (0..=1) of a histogram, as its bucket's upper bound in ms
    /// (the last bucket reports the last bound). None without data.
    pub fn quantile_ms(hist: &[i64; crate::HISTOGRAM_LEN], q: f64) -> Option<u64> {
        let total: i64 = hist.iter().sum();
        if total == 0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let rank = ((total as f64) * q).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (i, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let bounds = crate::LATENCY_BUCKETS_MS;
                return Some(bounds[i.min(bounds.len() - 1)]);
            }
        }
        None
    }
}

/// How a series is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Split {
    #[default]
    None,
    Model,
    Provider,
    Key,
}

/// One point of a usage time series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// Start of the bucket, Unix µs.
    pub start_us: i64,
    /// The model, provider or key of this line; empty when not split.
    pub group: String,
    pub usage: UsageSummary,
}

/// One rollup row (a minute or an hour × model × provider × key), or on
/// PostgreSQL and MySQL a sum of them.
pub(crate) struct RollupRow {
    start_us: i64,
    model: String,
    provider: String,
    key: String,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_usd: f64,
    /// Empty when left out.
    latency_hist: Vec<i64>,
    ttft_hist: Vec<i64>,
}

impl RollupRow {
    /// The row of a query whose first nine columns are the start, model,
    /// provider, key, requests, errors, input and output tokens and cost, with
    /// its histograms as each database reads them.
    pub(crate) fn of<R: Row>(
        r: &R,
        latency_hist: Vec<i64>,
        ttft_hist: Vec<i64>,
    ) -> Result<Self, sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        for<'a> f64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        Ok(Self {
            start_us: r.try_get(0)?,
            model: r.try_get(1)?,
            provider: r.try_get(2)?,
            key: r.try_get(3)?,
            requests: r.try_get(4)?,
            errors: r.try_get(5)?,
            input_tokens: r.try_get(6)?,
            output_tokens: r.try_get(7)?,
            cost_usd: r.try_get(8)?,
            latency_hist,
            ttft_hist,
        })
    }
}

impl UsageSummary {
    fn add(&mut self, r: &RollupRow) {
        self.requests += r.requests;
        self.errors += r.errors;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cost_usd += r.cost_usd;
        for (a, b) in self.latency_hist.iter_mut().zip(&r.latency_hist) {
            *a += b;
        }
        for (a, b) in self.ttft_hist.iter_mut().zip(&r.ttft_hist) {
            *a += b;
        }
    }
}

/// Which grain to read each part of `[from_us, to_us)` from. An hour is read from
/// the hourly rollups when it lies whole inside the range and inside one bucket
/// of `step_us` counted from `from_us`; every other minute from the minute
/// rollups. Neighbouring parts of the same grain are merged.
pub(crate) fn plan(from_us: i64, to_us: i64, step_us: i64) -> Vec<(Grain, i64, i64)> {
    let hour = Grain::Hour.us();
    let bucket = |t: i64| (t - from_us).div_euclid(step_us.max(1));
    let mut parts: Vec<(Grain, i64, i64)> = Vec::new();
    let mut push = |grain: Grain, from: i64, to: i64| match parts.last_mut() {
        Some((g, _, end)) if *g == grain && *end == from => *end = to,
        _ if from < to => parts.push((grain, from, to)),
        _ => {}
    };
    let mut cursor = from_us;
    let mut h = from_us + (hour - from_us.rem_euclid(hour)) % hour;
    while h + hour <= to_us {
        if bucket(h) == bucket(h + hour - 1) {
            push(Grain::Minute, cursor, h);
            push(Grain::Hour, h, h + hour);
            cursor = h + hour;
        }
        h += hour;
    }
    push(Grain::Minute, cursor, to_us);
    parts
}

/// PostgreSQL sums the rollups of a range itself, per bucket of the series and
/// per line of its split, histograms element by element: a day of a busy
/// gateway is 100,000 rollup rows, which took 0.55 s to fetch and add up here,
/// against ~60 ms summed in the database (`bench/RESULTS.md`, the web UI). The
/// parts of the range read from `grain`'s table are `parts`, OR-ed, so that each
/// is an index range (a join with an array of ranges was planned as a scan of
/// the whole table).
fn pg_rollup_sums(
    grain: Grain,
    split: Split,
    percentiles: bool,
    (from_us, step_us): (i64, i64),
    parts: &[(i64, i64)],
) -> QueryBuilder<Postgres> {
    let [model, provider, key] = split_columns(split);
    let hist = |name: &str| {
        if !percentiles {
            return "'{}'::int8[]".to_owned();
        }
        let sums: Vec<String> = (1..=crate::HISTOGRAM_LEN)
            .map(|i| format!("coalesce(sum({name}[{i}]), 0)"))
            .collect();
        format!("ARRAY[{}]::int8[]", sums.join(", "))
    };
    let mut q = QueryBuilder::new("SELECT (");
    q.push_bind(from_us)
        .push(" + floor((extract(epoch from bucket) * 1000000 - ")
        .push_bind(from_us)
        .push(") / ")
        .push_bind(step_us)
        .push(") * ")
        .push_bind(step_us)
        .push(format!(
            ")::int8, {model}, {provider}, {key},
               sum(requests)::int8, sum(errors)::int8, sum(input_tokens)::int8,
               sum(output_tokens)::int8, sum(cost_usd)::float8, {latency}, {ttft}
             FROM {table} WHERE ",
            table = grain.table(),
            latency = hist("latency_hist"),
            ttft = hist("ttft_hist"),
        ));
    for (i, (f, t)) in parts.iter().enumerate() {
        q.push(if i == 0 {
            "(bucket >= "
        } else {
            " OR (bucket >= "
        });
        pg_at(&mut q, *f);
        q.push(" AND bucket < ");
        pg_at(&mut q, *t);
        q.push(")");
    }
    q.push(" GROUP BY 1, 2, 3, 4");
    q
}

/// The model, provider and key columns of a rollup sum split by `split`: the
/// column itself for the split's, the empty string for the others.
pub(crate) fn split_columns(split: Split) -> [&'static str; 3] {
    let pick = |wanted: Split, name: &'static str| if split == wanted { name } else { "''" };
    [
        pick(Split::Model, "model"),
        pick(Split::Provider, "provider"),
        pick(Split::Key, "client_key_id"),
    ]
}

impl Store {
    /// The rollups of `[from_us, to_us)`, each part from the grain [`plan`] picks
    /// for it; on PostgreSQL already summed per `step_us` bucket and per line of
    /// `split`, and without their histograms unless `percentiles` (on MySQL
    /// likewise).
    async fn rollup_rows(
        &self,
        from_us: i64,
        to_us: i64,
        step_us: i64,
        split: Split,
        percentiles: bool,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let parts = plan(from_us, to_us, step_us);
        let mut rows = Vec::new();
        for grain in Grain::ALL {
            let mine: Vec<(i64, i64)> = parts
                .iter()
                .filter(|(g, _, _)| *g == grain)
                .map(|(_, f, t)| (*f, *t))
                .collect();
            if mine.is_empty() {
                continue;
            }
            match self {
                Self::Postgres(pool) => {
                    let origin = (from_us, step_us.max(1));
                    let mut q = pg_rollup_sums(grain, split, percentiles, origin, &mine);
                    for r in &q.build().fetch_all(pool).await? {
                        rows.push(RollupRow::of(r, r.try_get(9)?, r.try_get(10)?)?);
                    }
                }
                Self::MySql(pool) => {
                    let origin = (from_us, step_us.max(1));
                    rows.extend(
                        crate::mysql::rollup_rows(pool, grain, split, percentiles, origin, &mine)
                            .await?,
                    );
                }
                Self::Sqlite(pool) => {
                    for (from, to) in mine {
                        rows.extend(sqlite_rollup_rows(pool, grain, from, to).await?);
                    }
                }
            }
        }
        Ok(rows)
    }

    /// Sums the rollups of `[from_us, to_us)`.
    pub async fn usage_summary(
        &self,
        from_us: i64,
        to_us: i64,
    ) -> Result<UsageSummary, StoreError> {
        let mut s = UsageSummary::default();
        let whole = (to_us - from_us).max(1);
        for r in self
            .rollup_rows(from_us, to_us, whole, Split::None, true)
            .await?
        {
            s.add(&r);
        }
        Ok(s)
    }

    /// The rollups in `[from_us, to_us)` as a series of `step_us` buckets (whole
    /// minutes), one line per model, provider or key when split.
    pub async fn usage_series(
        &self,
        from_us: i64,
        to_us: i64,
        step_us: i64,
        split: Split,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        self.series(from_us, to_us, step_us, split, true).await
    }

    /// [`Self::usage_series`] without latency and TTFT percentiles (counts, tokens
    /// and cost only): on PostgreSQL and MySQL several times cheaper, the histograms being
    /// most of the sums.
    pub async fn usage_series_counts(
        &self,
        from_us: i64,
        to_us: i64,
        step_us: i64,
        split: Split,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        self.series(from_us, to_us, step_us, split, false).await
    }

    async fn series(
        &self,
        from_us: i64,
        to_us: i64,
        step_us: i64,
        split: Split,
        percentiles: bool,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let step = step_us.max(60_000_000);
        let mut points: std::collections::BTreeMap<(i64, String), UsageSummary> =
            std::collections::BTreeMap::new();
        for r in self
            .rollup_rows(from_us, to_us, step, split, percentiles)
            .await?
        {
            let start = from_us + (r.start_us - from_us).div_euclid(step) * step;
            let group = match split {
                Split::None => String::new(),
                Split::Model => r.model.clone(),
                Split::Provider => r.provider.clone(),
                Split::Key => r.key.clone(),
            };
            points.entry((start, group)).or_default().add(&r);
        }
        Ok(points
            .into_iter()
            .map(|((start_us, group), usage)| SeriesPoint {
                start_us,
                group,
                usage,
            })
            .collect())
    }
}

/// [`Store::keys_last_used`] where buckets are Unix µs integers (MySQL, SQLite).
const MICROS_LAST_USED: &str = "SELECT client_key_id, max(bucket) FROM usage_rollups
     WHERE client_key_id <> '' GROUP BY client_key_id";

impl Store {
    /// When each client key was last used, Unix µs (to the minute: read from the
    /// rollups, not the raw logs).
    pub async fn keys_last_used(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = match self {
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT client_key_id, (extract(epoch from max(bucket)) * 1000000)::int8
                     FROM usage_rollups WHERE client_key_id <> '' GROUP BY client_key_id",
                )
                .fetch_all(pool)
                .await?
            }
            Self::MySql(pool) => sqlx::query_as(MICROS_LAST_USED).fetch_all(pool).await?,
            Self::Sqlite(pool) => sqlx::query_as(MICROS_LAST_USED).fetch_all(pool).await?,
        };
        Ok(rows.into_iter().collect())
    }
    /// Each key's logged spend (USD) since `since_us`, from the rollups.
    pub async fn keys_spend_since(
        &self,
        since_us: i64,
    ) -> Result<std::collections::HashMap<String, f64>, StoreError> {
        let rows: Vec<(String, f64)> = match self {
            Self::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT client_key_id, sum(cost_usd)::float8 FROM usage_rollups
                     WHERE client_key_id <> ''
                       AND bucket >= timestamptz 'epoch' + $1 * interval '1 microsecond'
                     GROUP BY client_key_id",
                )
                .bind(since_us)
                .fetch_all(pool)
                .await?
            }
            Self::MySql(pool) => {
                // A sum of DOUBLEs is a DOUBLE.
                sqlx::query_as(
                    "SELECT client_key_id, sum(cost_usd) FROM usage_rollups
                     WHERE client_key_id <> '' AND bucket >= ? GROUP BY client_key_id",
                )
                .bind(since_us)
                .fetch_all(pool)
                .await?
            }
            Self::Sqlite(pool) => {
                sqlx::query_as(
                    "SELECT client_key_id, CAST(sum(cost_usd) AS REAL) FROM usage_rollups
                     WHERE client_key_id <> '' AND bucket >= ? GROUP BY client_key_id",
                )
                .bind(since_us)
                .fetch_all(pool)
                .await?
            }
        };
        Ok(rows.into_iter().collect())
    }
}

/// The SQLite rollup rows of `grain` whose start lies in `[from_us, to_us)`.
async fn sqlite_rollup_rows(
    pool: &sqlx::SqlitePool,
    grain: Grain,
    from_us: i64,
    to_us: i64,
) -> Result<Vec<RollupRow>, StoreError> {
    let parse = |t: String| serde_json::from_str::<Vec<i64>>(&t).unwrap_or_default();
    // The table name is one of Grain's constants.
    let sql = format!(
        "SELECT bucket, model, provider, client_key_id, requests, errors, input_tokens,
           output_tokens, cost_usd, latency_hist, ttft_hist
         FROM {} WHERE bucket >= ? AND bucket < ?",
        grain.table()
    );
    let found = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(from_us)
        .bind(to_us)
        .fetch_all(pool)
        .await?;
    found
        .iter()
        .map(|r| RollupRow::of(r, parse(r.try_get(9)?), parse(r.try_get(10)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::{Grain, plan};

    const M: i64 = 60_000_000;
    const H: i64 = 60 * M;

    #[test]
    fn a_day_from_an_odd_minute_reads_its_ends_per_minute_and_the_rest_per_hour() {
        let from = 10 * H + 17 * M;
        let to = from + 24 * H;
        assert_eq!(
            plan(from, to, 24 * H),
            vec![
                (Grain::Minute, from, 11 * H),
                (Grain::Hour, 11 * H, 34 * H),
                (Grain::Minute, 34 * H, to),
            ]
        );
    }

    #[test]
    fn buckets_shorter_than_an_hour_read_only_minutes() {
        assert_eq!(plan(0, 24 * H, 30 * M), vec![(Grain::Minute, 0, 24 * H)]);
    }

    #[test]
    fn an_hour_split_by_a_bucket_edge_is_read_per_minute() {
        // Two-hour buckets from 00:30: every bucket holds one whole hour.
        let from = 30 * M;
        assert_eq!(
            plan(from, from + 4 * H, 2 * H),
            vec![
                (Grain::Minute, from, H),
                (Grain::Hour, H, 2 * H),
                (Grain::Minute, 2 * H, 3 * H),
                (Grain::Hour, 3 * H, 4 * H),
                (Grain::Minute, 4 * H, from + 4 * H),
            ]
        );
    }

    #[test]
    fn a_range_inside_one_hour_reads_minutes() {
        assert_eq!(plan(5 * M, 50 * M, H), vec![(Grain::Minute, 5 * M, 50 * M)]);
        assert_eq!(plan(H, 2 * H, H), vec![(Grain::Hour, H, 2 * H)]);
    }
}
