//! SQLite, the embedded default: one writer, so row-by-row inside one transaction.

use std::str::FromStr;

use events::proto::LogEvent;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{
    Grain, HISTOGRAM_LEN, MediaLink, Rollup, RollupKey, RollupTotals, StoreError, body, i64_of,
    media_links, rollups,
};

pub async fn connect(url: &str) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(std::time::Duration::from_secs(5));
    Ok(SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?)
}

fn add(a: &mut [i64; HISTOGRAM_LEN], text: &str) {
    if let Ok(existing) = serde_json::from_str::<Vec<i64>>(text) {
        for (x, y) in a.iter_mut().zip(existing) {
            *x += y;
        }
    }
}

/// This module's transaction, passed from step to step of a batch.
type Tx<'c> = sqlx::Transaction<'c, sqlx::Sqlite>;

/// The batch in one transaction, in the steps every backend takes: the log rows,
/// then, for the events that were new only, their bodies, media and rollups.
pub async fn insert_batch(pool: &SqlitePool, events: &[LogEvent]) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    let fresh = insert_log_rows(&mut tx, events).await?;
    insert_bodies(&mut tx, &fresh).await?;
    insert_media(&mut tx, &media_links(&fresh)).await?;
    add_rollups(&mut tx, &fresh).await?;
    tx.commit().await?;
    Ok(fresh.len())
}

/// Writes the `request_logs` rows whose request id is not there yet; returns the
/// events they were written for (the batch's new events, in batch order).
async fn insert_log_rows<'a>(
    tx: &mut Tx<'_>,
    events: &'a [LogEvent],
) -> Result<Vec<&'a LogEvent>, StoreError> {
    let mut fresh = Vec::new();
    for e in events {
        if insert_log_row(tx, e).await? {
            fresh.push(e);
        }
    }
    Ok(fresh)
}

/// Writes one event's `request_logs` row; false when its request id was there.
async fn insert_log_row(tx: &mut Tx<'_>, e: &LogEvent) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT OR IGNORE INTO request_logs (request_id, received_at, endpoint, client_key_id,
           requested_model, provider, upstream_model, stream, status, error_kind, error_message,
           input_tokens, output_tokens, cached_tokens, cost_usd, latency_us, ttft_us, upstream_latency_us,
           source, attempts, cache_write_tokens, omitted_tools)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&e.request_id)
    .bind(e.received_at_us)
    .bind(&e.endpoint)
    .bind(&e.client_key_id)
    .bind(&e.requested_model)
    .bind(&e.provider)
    .bind(&e.upstream_model)
    .bind(e.stream)
    .bind(e.status)
    .bind(&e.error_kind)
    .bind(&e.error_message)
    .bind(i64_of(e.input_tokens))
    .bind(i64_of(e.output_tokens))
    .bind(i64_of(e.cached_tokens))
    .bind(e.cost_usd)
    .bind(i64_of(e.latency_us))
    .bind(i64_of(e.ttft_us))
    .bind(i64_of(e.upstream_latency_us))
    .bind(&e.source)
    .bind(crate::attempts_json(e))
    .bind(i64_of(e.cache_write_tokens))
    .bind(crate::omitted_tools_json(e))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() != 0)
}

/// Writes the new events' request and response bodies to `request_contents`.
async fn insert_bodies(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    for e in fresh {
        sqlx::query("INSERT OR IGNORE INTO request_contents VALUES (?, ?, ?, ?)")
            .bind(&e.request_id)
            .bind(e.received_at_us)
            .bind(body(&e.request_body))
            .bind(body(&e.response_body))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Writes the new events' media: the resources, then the links to them.
async fn insert_media(tx: &mut Tx<'_>, media: &[MediaLink<'_>]) -> Result<(), StoreError> {
    insert_media_resources(tx, media).await?;
    insert_media_links(tx, media).await
}

/// Writes each media file to `media_resources`, once per content hash.
async fn insert_media_resources(
    tx: &mut Tx<'_>,
    media: &[MediaLink<'_>],
) -> Result<(), StoreError> {
    for (_, m) in media {
        sqlx::query(
            "INSERT OR IGNORE INTO media_resources (sha256, mime, size, path) VALUES (?, ?, ?, ?)",
        )
        .bind(&m.sha256)
        .bind(&m.mime)
        .bind(i64_of(m.size))
        .bind(events::media_path(&m.sha256, &m.mime))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Writes which request used which media file to `request_media`.
async fn insert_media_links(tx: &mut Tx<'_>, media: &[MediaLink<'_>]) -> Result<(), StoreError> {
    for (e, m) in media {
        sqlx::query("INSERT OR IGNORE INTO request_media VALUES (?, ?, ?)")
            .bind(&e.request_id)
            .bind(e.received_at_us)
            .bind(&m.sha256)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Adds the new events to their rollup rows, per minute and per hour.
async fn add_rollups(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    for grain in Grain::ALL {
        for (key, mut r) in rollups(fresh.iter().copied(), grain) {
            add_stored_rollup(tx, grain, &key, &mut r).await?;
            replace_rollup(tx, grain, &key, &r).await?;
        }
    }
    Ok(())
}

/// Adds what the rollup row already holds, if there is one, to `r`.
async fn add_stored_rollup(
    tx: &mut Tx<'_>,
    grain: Grain,
    key: &RollupKey,
    r: &mut Rollup,
) -> Result<(), StoreError> {
    let (start, model, provider, client_key) = key;
    // The table name is one of Grain's constants.
    let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT requests, errors, input_tokens, output_tokens, cached_tokens, cost_usd,
           latency_us_sum, latency_hist, ttft_hist
         FROM {} WHERE bucket = ? AND model = ? AND provider = ? AND client_key_id = ?",
        grain.table()
    )))
    .bind(start)
    .bind(model)
    .bind(provider)
    .bind(client_key)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = stored else {
        return Ok(());
    };
    r.requests += row.try_get::<i64, _>(0)?;
    r.errors += row.try_get::<i64, _>(1)?;
    r.input_tokens += row.try_get::<i64, _>(2)?;
    r.output_tokens += row.try_get::<i64, _>(3)?;
    r.cached_tokens += row.try_get::<i64, _>(4)?;
    r.cost_usd += row.try_get::<f64, _>(5)?;
    r.latency_us_sum += row.try_get::<i64, _>(6)?;
    add(&mut r.latency_hist, &row.try_get::<String, _>(7)?);
    add(&mut r.ttft_hist, &row.try_get::<String, _>(8)?);
    Ok(())
}

/// Writes the rollup row with the totals in `r`, over any row there was.
async fn replace_rollup(
    tx: &mut Tx<'_>,
    grain: Grain,
    key: &RollupKey,
    r: &Rollup,
) -> Result<(), StoreError> {
    let (start, model, provider, client_key) = key;
    // The table name is one of Grain's constants.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT OR REPLACE INTO {} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        grain.table()
    )))
    .bind(start)
    .bind(model)
    .bind(provider)
    .bind(client_key)
    .bind(r.requests)
    .bind(r.errors)
    .bind(r.input_tokens)
    .bind(r.output_tokens)
    .bind(r.cached_tokens)
    .bind(r.cost_usd)
    .bind(r.latency_us_sum)
    .bind(serde_json::to_string(&r.latency_hist.to_vec()).unwrap_or_default())
    .bind(serde_json::to_string(&r.ttft_hist.to_vec()).unwrap_or_default())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn drop_before(pool: &SqlitePool, cutoff_us: i64) -> Result<usize, StoreError> {
    let day = 86_400_000_000_i64;
    let cutoff = cutoff_us - cutoff_us.rem_euclid(day);
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM request_logs WHERE received_at < ?")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    for table in ["request_contents", "request_media"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE received_at < ?"
        )))
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM stored_responses WHERE created_at < ?")
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
}

pub async fn rollup_totals(pool: &SqlitePool) -> Result<RollupTotals, StoreError> {
    let rows = sqlx::query(
        "SELECT requests, errors, input_tokens, output_tokens, latency_hist FROM usage_rollups",
    )
    .fetch_all(pool)
    .await?;
    let mut t = RollupTotals::default();
    for row in rows {
        t.requests += row.try_get::<i64, _>(0)?;
        t.errors += row.try_get::<i64, _>(1)?;
        t.input_tokens += row.try_get::<i64, _>(2)?;
        t.output_tokens += row.try_get::<i64, _>(3)?;
        let hist: String = row.try_get(4)?;
        t.histogram_count += serde_json::from_str::<Vec<i64>>(&hist)
            .unwrap_or_default()
            .iter()
            .sum::<i64>();
    }
    Ok(t)
}
