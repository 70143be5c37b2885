//! A batch of log events in one transaction, in the steps every backend takes:
//! the log rows, then, for the events that were new only, their bodies, media
//! and rollups.
//!
//! MySQL has no `RETURNING`, so the insert cannot say which events were new.
//! The batch reads which of its request ids are stored (`SELECT … IN`), writes
//! the others with multi-row `INSERT IGNORE` and checks that as many rows were
//! written. Fewer means another writer stored some of them between the read and
//! the write (a redelivery racing its first delivery): the transaction is
//! rolled back and the batch written again one row at a time, each `INSERT
//! IGNORE` saying whether its row was new (SQLite's way: exact, a round trip
//! per event).
//!
//! A statement holds at most [`ROWS`] rows and, for bodies, about [`BYTES`]: it
//! must fit the server's `max_allowed_packet` (16 MiB by default on MariaDB, 64
//! MiB on MySQL), so one body larger than that cannot be written.

use std::collections::HashSet;

use events::proto::LogEvent;
use sqlx::query_builder::Separated;
use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::{ID, VARCHAR, clip, hist_columns};
use crate::{Grain, MediaLink, Rollup, RollupKey, StoreError, body, i64_of, media_links, rollups};

/// This module's transaction, passed from step to step of a batch.
type Tx<'c> = sqlx::Transaction<'c, MySql>;

/// Rows per statement at most (a statement takes 65,535 parameters; a log row
/// has 22).
const ROWS: usize = 500;

/// Body bytes per statement, about: a statement takes one more row while it
/// holds fewer.
const BYTES: usize = 4 << 20;

const INSERT_LOG_ROWS: &str = "INSERT IGNORE INTO request_logs (request_id, received_at, endpoint,
  client_key_id, requested_model, provider, upstream_model, stream, status, error_kind,
  error_message, input_tokens, output_tokens, cached_tokens, cost_usd, latency_us, ttft_us,
  upstream_latency_us, source, attempts, cache_write_tokens, omitted_tools) ";

/// The batch in one transaction; returns how many events were new.
pub async fn insert_batch(pool: &MySqlPool, events: &[LogEvent]) -> Result<usize, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let fresh = match insert_log_rows(&mut tx, events).await? {
        Some(fresh) => fresh,
        None => {
            tracing::debug!("a concurrent writer stored some of the batch: writing it row by row");
            tx.rollback().await?;
            tx = pool.begin().await?;
            insert_log_rows_one_by_one(&mut tx, events).await?
        }
    };
    if !fresh.is_empty() {
        insert_bodies(&mut tx, &fresh).await?;
        insert_media(&mut tx, &media_links(&fresh)).await?;
        add_rollups(&mut tx, &fresh).await?;
    }
    tx.commit().await?;
    Ok(fresh.len())
}

/// Writes the `request_logs` rows whose request id is not stored yet; returns
/// the events they were written for (each new id's first event, in batch
/// order), or `None` when fewer rows were written than were new when read.
async fn insert_log_rows<'a>(
    tx: &mut Tx<'_>,
    events: &'a [LogEvent],
) -> Result<Option<Vec<&'a LogEvent>>, StoreError> {
    let stored = stored_ids(tx, events).await?;
    let mut seen = HashSet::new();
    let fresh: Vec<&LogEvent> = events
        .iter()
        .filter(|e| {
            let id = clip(&e.request_id, ID);
            !stored.contains(id) && seen.insert(id)
        })
        .collect();
    let written = insert_ignore(tx, INSERT_LOG_ROWS, &fresh, |_| 0, push_log_row).await?;
    Ok((written == fresh.len() as u64).then_some(fresh))
}

/// [`insert_log_rows`] a row at a time: each statement says whether its row was
/// new, whatever other writers do meanwhile.
async fn insert_log_rows_one_by_one<'a>(
    tx: &mut Tx<'_>,
    events: &'a [LogEvent],
) -> Result<Vec<&'a LogEvent>, StoreError> {
    let mut fresh = Vec::new();
    for e in events {
        if insert_ignore(tx, INSERT_LOG_ROWS, &[e], |_| 0, push_log_row).await? == 1 {
            fresh.push(e);
        }
    }
    Ok(fresh)
}

/// The request ids of `events` that `request_logs` holds.
async fn stored_ids(tx: &mut Tx<'_>, events: &[LogEvent]) -> Result<HashSet<String>, StoreError> {
    let mut stored = HashSet::new();
    for chunk in events.chunks(ROWS) {
        let mut q =
            QueryBuilder::<MySql>::new("SELECT request_id FROM request_logs WHERE request_id IN (");
        let mut ids = q.separated(", ");
        for e in chunk {
            ids.push_bind(clip(&e.request_id, ID));
        }
        q.push(")");
        let found: Vec<String> = q.build_query_scalar().fetch_all(&mut **tx).await?;
        stored.extend(found);
    }
    Ok(stored)
}

fn push_log_row(mut row: Separated<'_, MySql, &'static str>, e: &&LogEvent) {
    row.push_bind(clip(&e.request_id, ID))
        .push_bind(e.received_at_us)
        .push_bind(clip(&e.endpoint, VARCHAR))
        .push_bind(clip(&e.client_key_id, VARCHAR))
        .push_bind(clip(&e.requested_model, VARCHAR))
        .push_bind(clip(&e.provider, VARCHAR))
        .push_bind(clip(&e.upstream_model, VARCHAR))
        .push_bind(e.stream)
        .push_bind(i32::try_from(e.status).unwrap_or(0))
        .push_bind(clip(&e.error_kind, VARCHAR))
        .push_bind(&e.error_message)
        .push_bind(i64_of(e.input_tokens))
        .push_bind(i64_of(e.output_tokens))
        .push_bind(i64_of(e.cached_tokens))
        .push_bind(e.cost_usd)
        .push_bind(i64_of(e.latency_us))
        .push_bind(i64_of(e.ttft_us))
        .push_bind(i64_of(e.upstream_latency_us))
        .push_bind(clip(&e.source, VARCHAR))
        .push_bind(crate::attempts_json(e))
        .push_bind(i64_of(e.cache_write_tokens))
        .push_bind(crate::omitted_tools_json(e));
}

/// Writes the new events' request and response bodies to `request_contents`.
async fn insert_bodies(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    insert_ignore(
        tx,
        "INSERT IGNORE INTO request_contents (request_id, received_at, request_body, response_body) ",
        fresh,
        |e| e.request_body.len() + e.response_body.len(),
        |mut row, e| {
            row.push_bind(clip(&e.request_id, ID))
                .push_bind(e.received_at_us)
                .push_bind(body(&e.request_body))
                .push_bind(body(&e.response_body));
        },
    )
    .await?;
    Ok(())
}

/// Writes the new events' media: each file to `media_resources` once per
/// content hash, then which request used which to `request_media` (no
/// statement at all when the batch has no media).
async fn insert_media(tx: &mut Tx<'_>, media: &[MediaLink<'_>]) -> Result<(), StoreError> {
    if media.is_empty() {
        return Ok(());
    }
    insert_ignore(
        tx,
        "INSERT IGNORE INTO media_resources (sha256, mime, size, path) ",
        media,
        |_| 0,
        |mut row, (_, m)| {
            row.push_bind(clip(&m.sha256, VARCHAR))
                .push_bind(clip(&m.mime, VARCHAR))
                .push_bind(i64_of(m.size))
                .push_bind(events::media_path(&m.sha256, &m.mime));
        },
    )
    .await?;
    insert_ignore(
        tx,
        "INSERT IGNORE INTO request_media (request_id, received_at, sha256) ",
        media,
        |_| 0,
        |mut row, (e, m)| {
            row.push_bind(clip(&e.request_id, ID))
                .push_bind(e.received_at_us)
                .push_bind(clip(&m.sha256, VARCHAR));
        },
    )
    .await?;
    Ok(())
}

/// Writes `rows` with `insert` and `VALUES (…), (…)`, in as few statements as
/// [`ROWS`] and [`BYTES`] (`bytes` of each row) allow; returns how many rows the
/// server wrote.
async fn insert_ignore<R>(
    tx: &mut Tx<'_>,
    insert: &str,
    rows: &[R],
    bytes: impl Fn(&R) -> usize,
    push: impl Fn(Separated<'_, MySql, &'static str>, &R),
) -> Result<u64, StoreError> {
    let mut written = 0;
    let mut rest = rows;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(statement_len(rest, &bytes));
        let mut q = QueryBuilder::<MySql>::new(insert);
        q.push_values(chunk, &push);
        written += q.build().execute(&mut **tx).await?.rows_affected();
        rest = tail;
    }
    Ok(written)
}

/// How many of `rows`, from the first, one statement takes: at least one, at
/// most [`ROWS`], and no more than fit in [`BYTES`] after the first.
fn statement_len<R>(rows: &[R], bytes: impl Fn(&R) -> usize) -> usize {
    let mut total = 0;
    for (i, r) in rows.iter().take(ROWS).enumerate() {
        total += bytes(r);
        if i > 0 && total > BYTES {
            return i;
        }
    }
    rows.len().min(ROWS)
}

/// Adds the new events to their rollup rows, per minute and per hour.
async fn add_rollups(tx: &mut Tx<'_>, fresh: &[&LogEvent]) -> Result<(), StoreError> {
    for grain in Grain::ALL {
        let sql = upsert(grain);
        for (key, r) in rollups(fresh.iter().copied(), grain) {
            add_rollup(tx, &sql, &key, &r).await?;
        }
    }
    Ok(())
}

/// The counters of a rollup row, in the order [`add_rollup`] binds them.
const COUNTERS: [&str; 7] = [
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "latency_us_sum",
];

/// The statement that adds one rollup's increments to its row of `grain`,
/// creating the row if it is new. The increments are bound twice, as the new
/// row's values and as the additions (`VALUES()` in `ON DUPLICATE KEY UPDATE`
/// is deprecated on MySQL, and MariaDB has no row alias instead).
fn upsert(grain: Grain) -> String {
    let added: Vec<String> = COUNTERS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(hist_columns("latency_hist"))
        .chain(hist_columns("ttft_hist"))
        .collect();
    let values = vec!["?"; 4 + added.len()].join(", ");
    let updates: Vec<String> = added.iter().map(|c| format!("{c} = {c} + ?")).collect();
    format!(
        "INSERT INTO {table} (bucket, model, provider, client_key_id, {columns}) VALUES ({values})
         ON DUPLICATE KEY UPDATE {updates}",
        table = grain.table(),
        columns = added.join(", "),
        updates = updates.join(", "),
    )
}

/// Runs [`upsert`]'s statement for one rollup row.
async fn add_rollup(
    tx: &mut Tx<'_>,
    sql: &str,
    key: &RollupKey,
    r: &Rollup,
) -> Result<(), StoreError> {
    let (start, model, provider, client_key) = key;
    // `sql` is built from Grain's table names and constant column names.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(start)
        .bind(clip(model, VARCHAR))
        .bind(clip(provider, VARCHAR))
        .bind(clip(client_key, VARCHAR));
    for _ in 0..2 {
        q = q
            .bind(r.requests)
            .bind(r.errors)
            .bind(r.input_tokens)
            .bind(r.output_tokens)
            .bind(r.cached_tokens)
            .bind(r.cost_usd)
            .bind(r.latency_us_sum);
        for n in r.latency_hist.iter().chain(&r.ttft_hist) {
            q = q.bind(*n);
        }
    }
    q.execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BYTES, ROWS, statement_len};

    #[test]
    fn a_statement_takes_rows_up_to_its_bounds() {
        assert_eq!(statement_len(&[0usize; 3], |_| 0), 3);
        assert_eq!(statement_len(&vec![0usize; ROWS + 7], |_| 0), ROWS);
        // Bodies: as many as fit, and a first one however large.
        assert_eq!(statement_len(&[BYTES / 2; 5], |b| *b), 2);
        assert_eq!(statement_len(&[BYTES * 3, 1], |b| *b), 1);
    }
}
