//! Retention on MySQL: bounded deletes, not daily partitions.
//!
//! Postgres drops a day's partition; MySQL could too, but partitions do not
//! fall out naturally there:
//! - every unique key of a partitioned InnoDB table must hold the partitioning
//!   column, so `request_logs` would lose its unique key on the request id, which
//!   keeps a replayed event out even when it comes back with another time;
//! - partitions are added in increasing order only, so an event of a day before
//!   the first partition (a late replay) has nowhere to go without a catch-all
//!   partition that retention then never drops;
//! - `ALTER TABLE … ADD/DROP PARTITION` waits for a metadata lock behind every
//!   query running on the table, and every later query waits behind it: a slow
//!   Logs search could stall the logger's inserts.
//!
//! Instead the rows of the days before the cutoff go in statements of at most
//! [`BATCH`] rows each, oldest first along the clustered key (`received_at,
//! request_id`), until one deletes fewer. Each statement is a short transaction
//! of its own: the logger's inserts, at the other end of the index, never wait
//! long, and undo and replication stay small. The cost: deleting is I/O in
//! proportion to the rows (dropping a partition is not), and the tables' files
//! keep their size (InnoDB reuses the space). The log rows go first, so the
//! Logs page never lists a row whose bodies are gone; an interrupted run leaves
//! bodies and media links that the next run deletes. Stored responses put
//! before the cutoff's day go last. Rollups stay, as on the other databases.

use sqlx::MySqlPool;

use crate::StoreError;

/// Rows deleted per statement at most.
const BATCH: u32 = 5_000;

const DAY_US: i64 = 86_400_000_000;

/// Each table, its time column, and its rows' order along an index that starts
/// with that column: deterministic, so statement-based replication deletes the
/// same rows.
const TABLES: [(&str, &str, &str); 4] = [
    ("request_logs", "received_at", "received_at, request_id"),
    ("request_contents", "received_at", "received_at, request_id"),
    (
        "request_media",
        "received_at",
        "received_at, request_id, sha256",
    ),
    ("stored_responses", "created_at", "created_at, id"),
];

/// Deletes the log data of every day before the day of `cutoff_us`; returns how
/// many log rows went.
pub async fn drop_before(pool: &MySqlPool, cutoff_us: i64) -> Result<usize, StoreError> {
    drop_in_batches(pool, cutoff_us, BATCH).await
}

async fn drop_in_batches(
    pool: &MySqlPool,
    cutoff_us: i64,
    batch: u32,
) -> Result<usize, StoreError> {
    let cutoff = cutoff_us - cutoff_us.rem_euclid(DAY_US);
    let mut logs = 0;
    for (table, time, order) in TABLES {
        // Table and column names from the constants above.
        let sql = format!("DELETE FROM {table} WHERE {time} < ? ORDER BY {order} LIMIT ?");
        loop {
            let done = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(cutoff)
                .bind(batch)
                .execute(pool)
                .await?;
            if table == "request_logs" {
                logs += done.rows_affected();
            }
            if done.rows_affected() < u64::from(batch) {
                break;
            }
        }
    }
    Ok(usize::try_from(logs).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use events::proto::{LogEvent, MediaRef};

    use super::{DAY_US, drop_in_batches};
    use crate::Store;

    /// Three days of events, 10 a day, each with a media part.
    fn events(first_day: i64) -> Vec<LogEvent> {
        (0..30)
            .map(|i| LogEvent {
                request_id: format!("01900000-0000-7000-8000-{i:012}"),
                received_at_us: (first_day + i / 10) * DAY_US + i,
                media: vec![MediaRef {
                    sha256: format!("{i:064}"),
                    mime: "image/png".into(),
                    size: 1,
                }],
                ..LogEvent::default()
            })
            .collect()
    }

    async fn count(pool: &sqlx::MySqlPool, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// More rows than a batch, so the loop runs: every table loses exactly the
    /// days before the cutoff's, whatever the batch size.
    #[tokio::test]
    async fn deletes_the_days_before_the_cutoff_in_batches() {
        let db = test_services::SharedMariaDb::get();
        let store = Store::connect(&db.fresh_database("mysql_retention_batches"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let day = 20_000;
        store.insert_batch(&events(day)).await.unwrap();
        for e in events(day) {
            store
                .put_response(&format!("resp_{}", e.request_id), b"{}", e.received_at_us)
                .await
                .unwrap();
        }
        let Store::MySql(pool) = &store else {
            unreachable!("a mysql:// URL")
        };
        // A cutoff inside the third day keeps that day.
        let dropped = drop_in_batches(pool, (day + 2) * DAY_US + 7, 3)
            .await
            .unwrap();
        assert_eq!(dropped, 20);
        for table in [
            "request_logs",
            "request_contents",
            "request_media",
            "stored_responses",
        ] {
            assert_eq!(count(pool, table).await, 10, "{table}");
        }
        // Files and rollups stay.
        assert_eq!(count(pool, "media_resources").await, 30);
        assert_eq!(store.rollup_totals().await.unwrap().requests, 30);
        // An exact multiple of the batch ends too.
        assert_eq!(
            drop_in_batches(pool, (day + 3) * DAY_US, 5).await.unwrap(),
            10
        );
        assert_eq!(count(pool, "request_contents").await, 0);
        assert_eq!(count(pool, "stored_responses").await, 0);
    }
}
