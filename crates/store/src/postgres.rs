//! Postgres: bulk inserts with UNNEST, one transaction per batch.

use std::collections::HashSet;

use events::proto::LogEvent;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::{
    Grain, LogRow, MediaLink, Rollup, RollupKey, RollupTotals, StoreError, body, i64_of,
    media_links, rollups, text,
};

pub async fn connect(url: &str) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await?)
}

const DAY_US: i64 = 86_400_000_000;

fn day_name(day_start_us: i64) -> String {
    // Days since the epoch: a name that sorts and parses without a date library.
    format!("d{}", day_start_us / DAY_US)
}

pub async fn ensure_partitions(pool: &PgPool, from_us: i64, days: u32) -> Result<(), StoreError> {
    let first = from_us - from_us.rem_euclid(DAY_US);
    for i in 0..i64::from(days) {
        let start = first + i * DAY_US;
        let end = start + DAY_US;
        for table in ["request_logs", "request_contents"] {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {table}_{name} PARTITION OF {table} \
                 FOR VALUES FROM (timestamptz 'epoch' + {start} * interval '1 microsecond') \
                 TO (timestamptz 'epoch' + {end} * interval '1 microsecond')",
                name = day_name(start)
            );
            // Table names built from constants and a day number.
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
        }
    }
    Ok(())
}

pub async fn drop_before(pool: &PgPool, cutoff_us: i64) -> Result<usize, StoreError> {
    let cutoff_day = cutoff_us.div_euclid(DAY_US);
    let partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('request_logs', 'request_contents')",
    )
    .fetch_all(pool)
    .await?;
    let mut dropped = 0;
    for name in partitions {
        let Some(day) = name
            .rsplit_once("_d")
            .and_then(|(_, d)| d.parse::<i64>().ok())
        else {
            continue;
        };
        if day < cutoff_day {
            // `name` is a partition name read from the catalogue, matched above.
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
                .execute(pool)
                .await?;
            dropped += 1;
        }
    }
    sqlx::query("DELETE FROM request_media WHERE received_at < timestamptz 'epoch' + $1 * interval '1 microsecond'")
        .bind(cutoff_day * DAY_US)
        .execute(pool)
        .await?;
    // Stored responses are one plain table (read by id, not by day), deleted
    // along their `created_at` index.
    sqlx::query("DELETE FROM stored_responses WHERE created_at < $1")
        .bind(cutoff_day * DAY_US)
        .execute(pool)
        .await?;
    Ok(dropped)
}

/// This module's transaction, passed from step to step of a batch.
type Tx<'c> = sqlx::Transaction<'c, sqlx::Postgres>;

/// One column of an UNNEST insert: a field of every row.
fn column<R, T>(rows: &[R], field: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(field).collect()
}

/// The batch in one transaction, in the steps every backend takes: the log rows,
/// then, for the events that were new only, their bodies, media and rollups.
pub async fn insert_batch(pool: &PgPool, events: &[LogEvent]) -> Result<usize, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let fresh = insert_log_rows(&mut tx, events).await?;
    if !fresh.is_empty() {
        insert_bodies(&mut tx, &fresh).await?;
        insert_media(&mut tx, &media_links(&fresh)).await?;
        add_rollups(&mut tx, &fresh).await?;
    }
    tx.commit().await?;
    Ok(fresh.len())
}

/// Writes the `request_logs` rows whose request id is not there yet; returns the
/// events they were written for (the batch's new events, in batch order).
async fn insert_log_rows<'a>(
    tx: &mut Tx<'_>,
    events: &'a [LogEvent],
) -> Result<Vec<&'a LogEvent>, StoreError> {
    let inserted: Vec<String> = sqlx::query_scalar(
        "WITH ins AS (
           INSERT INTO request_logs (request_id, received_at, endpoint, client_key_id, requested_model,
             provider, upstream_model, stream, status, error_kind, error_message, input_tokens,
             output_tokens, cached_tokens, cost_usd, latency_us, ttft_us, upstream_latency_us, source,
             attempts, cache_write_tokens, omitted_tools)
           SELECT id::uuid, timestamptz 'epoch' + t * interval '1 microsecond', e, k, rm, p, um, s, st,
             ek, em, it, ot, ct, c, l, tt, ul, so, at, cw, om
           FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::text[], $8::bool[], $9::int4[], $10::text[], $11::text[], $12::int8[], $13::int8[],
             $14::int8[], $15::float8[], $16::int8[], $17::int8[], $18::int8[], $19::text[], $20::text[],
             $21::int8[], $22::text[])
             AS u(id, t, e, k, rm, p, um, s, st, ek, em, it, ot, ct, c, l, tt, ul, so, at, cw, om)
           ON CONFLICT DO NOTHING
           RETURNING request_id::text)
         SELECT request_id FROM ins",
    )
    .bind(column(events, |e| e.request_id.clone()))
    .bind(column(events, |e| e.received_at_us))
    .bind(column(events, |e| text(&e.endpoint)))
    .bind(column(events, |e| text(&e.client_key_id)))
    .bind(column(events, |e| text(&e.requested_model)))
    .bind(column(events, |e| text(&e.provider)))
    .bind(column(events, |e| text(&e.upstream_model)))
    .bind(column(events, |e| e.stream))
    .bind(column(events, |e| i32::try_from(e.status).unwrap_or(0)))
    .bind(column(events, |e| text(&e.error_kind)))
    .bind(column(events, |e| text(&e.error_message)))
    .bind(column(events, |e| i64_of(e.input_tokens)))
    .bind(column(events, |e| i64_of(e.output_tokens)))
    .bind(column(events, |e| i64_of(e.cached_tokens)))
    .bind(column(events, |e| e.cost_usd))
    .bind(column(events, |e| i64_of(e.latency_us)))
    .bind(column(events, |e| i64_of(e.ttft_us)))
    .bind(column(events, |e| i64_of(e.upstream_latency_us)))
    .bind(column(events, |e| text(&e.source)))
    .bind(column(events, crate::attempts_json))
    .bind(column(events, |e| i64_of(e.cache_write_tokens)))
    .bind(column(events, |e| text(&crate::omitted_tools_json(e))))
    .fetch_all(&mut **tx)
    .await?;
    let new: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    Ok(events
        .iter()
        .filter(|e| new.contains(e.request_id.as_str()))
        .collect())
}

/// Writes the new events' request and response bodies to `request_contents`.
async fn insert_bodies(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_contents (request_id, received_at, request_body, response_body)
         SELECT id::uuid, timestamptz 'epoch' + t * interval '1 microsecond', rq, rs
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[]) AS u(id, t, rq, rs)
         ON CONFLICT DO NOTHING",
    )
    .bind(column(fresh, |e| e.request_id.clone()))
    .bind(column(fresh, |e| e.received_at_us))
    .bind(column(fresh, |e| body(&e.request_body)))
    .bind(column(fresh, |e| body(&e.response_body)))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes the new events' media: the resources, then the links to them (no
/// statement at all when the batch has no media).
async fn insert_media(tx: &mut Tx<'_>, media: &[MediaLink<'_>]) -> Result<(), StoreError> {
    if media.is_empty() {
        return Ok(());
    }
    insert_media_resources(tx, media).await?;
    insert_media_links(tx, media).await
}

/// Writes each media file to `media_resources`, once per content hash.
async fn insert_media_resources(
    tx: &mut Tx<'_>,
    media: &[MediaLink<'_>],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO media_resources (sha256, mime, size, path)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(column(media, |(_, m)| m.sha256.clone()))
    .bind(column(media, |(_, m)| m.mime.clone()))
    .bind(column(media, |(_, m)| i64_of(m.size)))
    .bind(column(media, |(_, m)| {
        events::media_path(&m.sha256, &m.mime)
    }))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes which request used which media file to `request_media`.
async fn insert_media_links(tx: &mut Tx<'_>, media: &[MediaLink<'_>]) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO request_media (request_id, received_at, sha256)
         SELECT id::uuid, timestamptz 'epoch' + t * interval '1 microsecond', sha
         FROM UNNEST($1::text[], $2::int8[], $3::text[]) AS u(id, t, sha)
         ON CONFLICT DO NOTHING",
    )
    .bind(column(media, |(e, _)| e.request_id.clone()))
    .bind(column(media, |(e, _)| e.received_at_us))
    .bind(column(media, |(_, m)| m.sha256.clone()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds the new events to their rollup rows, per minute and per hour.
async fn add_rollups(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    for grain in Grain::ALL {
        for (key, r) in rollups(fresh.iter().copied(), grain) {
            add_rollup(tx, grain, &key, &r).await?;
        }
    }
    Ok(())
}

/// Adds one rollup's increments to its row, creating the row if it is new.
async fn add_rollup(
    tx: &mut Tx<'_>,
    grain: Grain,
    key: &RollupKey,
    r: &Rollup,
) -> Result<(), StoreError> {
    let (start, model, provider, client_key) = key;
    // The table name is one of Grain's constants.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} AS u (bucket, model, provider, client_key_id, requests, errors,
           input_tokens, output_tokens, cached_tokens, cost_usd, latency_us_sum, latency_hist, ttft_hist)
         VALUES (timestamptz 'epoch' + $1 * interval '1 microsecond', $2, $3, $4, $5, $6, $7, $8, $9,
           $10, $11, $12, $13)
         ON CONFLICT (bucket, model, provider, client_key_id) DO UPDATE SET
           requests = u.requests + EXCLUDED.requests,
           errors = u.errors + EXCLUDED.errors,
           input_tokens = u.input_tokens + EXCLUDED.input_tokens,
           output_tokens = u.output_tokens + EXCLUDED.output_tokens,
           cached_tokens = u.cached_tokens + EXCLUDED.cached_tokens,
           cost_usd = u.cost_usd + EXCLUDED.cost_usd,
           latency_us_sum = u.latency_us_sum + EXCLUDED.latency_us_sum,
           latency_hist = ARRAY(SELECT a + b FROM unnest(u.latency_hist, EXCLUDED.latency_hist) AS t(a, b)),
           ttft_hist = ARRAY(SELECT a + b FROM unnest(u.ttft_hist, EXCLUDED.ttft_hist) AS t(a, b))",
        table = grain.table()
    )))
    .bind(*start)
    .bind(text(model))
    .bind(text(provider))
    .bind(text(client_key))
    .bind(r.requests)
    .bind(r.errors)
    .bind(r.input_tokens)
    .bind(r.output_tokens)
    .bind(r.cached_tokens)
    .bind(r.cost_usd)
    .bind(r.latency_us_sum)
    .bind(r.latency_hist.to_vec())
    .bind(r.ttft_hist.to_vec())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn log(pool: &PgPool, request_id: &str) -> Result<Option<LogRow>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT l.request_id::text AS id,
           (extract(epoch from l.received_at) * 1000000)::int8 AS t,
           l.endpoint, l.requested_model, l.provider, l.upstream_model, l.stream, l.status,
           l.error_kind, l.input_tokens, l.output_tokens, l.cached_tokens, l.cost_usd, l.latency_us,
           l.ttft_us, l.upstream_latency_us, l.client_key_id, l.source, l.error_message,
           l.attempts, l.omitted_tools, l.cache_write_tokens, c.request_body, c.response_body
         FROM request_logs l JOIN request_contents c
           ON c.request_id = l.request_id AND c.received_at = l.received_at
         WHERE l.request_id = $1::uuid",
    )
    .bind(request_id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let media: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.sha256, r.path FROM request_media m JOIN media_resources r USING (sha256)
         WHERE m.request_id = $1::uuid ORDER BY m.sha256",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    Ok(Some(crate::log_row(&row, media)?))
}

pub async fn rollup_totals(pool: &PgPool) -> Result<RollupTotals, StoreError> {
    Ok(sqlx::query_as(
        "SELECT coalesce(sum(requests), 0)::int8 AS requests, coalesce(sum(errors), 0)::int8 AS errors,
           coalesce(sum(input_tokens), 0)::int8 AS input_tokens,
           coalesce(sum(output_tokens), 0)::int8 AS output_tokens,
           coalesce(sum((SELECT sum(x) FROM unnest(latency_hist) x)), 0)::int8 AS histogram_count
         FROM usage_rollups",
    )
    .fetch_one(pool)
    .await?)
}
