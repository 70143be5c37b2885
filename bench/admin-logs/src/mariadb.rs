//! The same database on MariaDB (the store's MySQL backend): a throw-away
//! `mariadbd` of `test_services` (`mariadb-install-db` + `mariadbd` on a free
//! loopback port in a temporary directory), sized for the data, filled with the
//! same rows as the PostgreSQL one.

use std::time::Instant;

use sqlx::MySqlPool;

use crate::{DAY_US, Filled};

/// Rows per `INSERT … SELECT`: a day of 10 million rows is ten statements, each
/// a bounded transaction.
const CHUNK: i64 = 100_000;

/// The test server's InnoDB is made for tests (a 64 MiB buffer pool, an 8 MiB
/// redo log). InnoDB reads its files with `O_DIRECT`, so its buffer pool is its
/// only cache (PostgreSQL has the kernel's page cache as well): sized here as a
/// deployment would be, 2 GiB, which holds the million rows of `bench/RESULTS.md`
/// (both settings are dynamic on MariaDB 10.11). No flush per commit and no
/// doublewrite stay, like PostgreSQL's fsync off: the queries measured only read.
const SETTINGS: &[&str] = &[
    "SET GLOBAL innodb_buffer_pool_size = 2147483648",
    "SET GLOBAL innodb_log_file_size = 1073741824",
];

/// A throw-away MariaDB with an empty database: the server (stopped on drop) and
/// the database's URL.
pub async fn start() -> anyhow::Result<(test_services::MariaDb, String)> {
    let server = test_services::MariaDb::start();
    let url = server.create_database("logs");
    let pool = MySqlPool::connect(&url).await?;
    for setting in SETTINGS {
        sqlx::query(sqlx::AssertSqlSafe(*setting))
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    Ok((server, url))
}

/// Fills the database with `rows` logs over ten days from `first_day_us`, the
/// same values as `crate::fill` writes in PostgreSQL, timed; then reads its row
/// count, size and a needle.
pub async fn fill_and_measure(
    pool: &MySqlPool,
    rows: i64,
    first_day_us: i64,
) -> anyhow::Result<Filled> {
    let filled = Instant::now();
    fill(pool, rows, first_day_us).await?;
    let fill_secs = filled.elapsed().as_secs_f64();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM request_logs")
        .fetch_one(pool)
        .await?;
    let bytes: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(data_length + index_length) AS SIGNED) FROM information_schema.TABLES \
         WHERE table_schema = DATABASE() AND table_name IN ('request_logs', 'request_contents')",
    )
    .fetch_one(pool)
    .await?;
    let needle: String = sqlx::query_scalar(
        "SELECT SUBSTR(MD5(request_id), 1, 12) FROM request_logs ORDER BY received_at LIMIT 1 OFFSET ?",
    )
    .bind(rows / 2)
    .fetch_one(pool)
    .await?;
    Ok(Filled {
        count,
        size: pretty(bytes),
        fill_secs,
        needle,
    })
}

/// Rows from the Sequence engine (`seq_A_to_B`, one row per integer), which
/// MariaDB builds in: MySQL has no `generate_series`.
async fn fill(pool: &MySqlPool, rows: i64, first_day_us: i64) -> anyhow::Result<()> {
    let per_day = rows / 10;
    let step_us = DAY_US / per_day.max(1);
    for day in 0..10 {
        let start_us = first_day_us + day * DAY_US;
        let started = Instant::now();
        let mut first = 0;
        while first < per_day {
            let last = (first + CHUNK).min(per_day) - 1;
            // The table's name is made of two integers.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO request_logs (request_id, received_at, endpoint, client_key_id, requested_model, \
                 provider, upstream_model, stream, status, error_kind, error_message, input_tokens, output_tokens, \
                 cached_tokens, cost_usd, latency_us, ttft_us, upstream_latency_us) \
                 SELECT UUID(), ? + seq * ?, '/v1/chat/completions', CONCAT('key_', LPAD(seq % 50, 2, '0')), \
                 ELT(1 + (seq * 7) % 8, 'gpt4', 'gpt-4o-mini', 'claude', 'claude-haiku', 'llama3', 'deepseek', 'mistral', 'demo'), \
                 ELT(1 + seq % 4, 'openai', 'anthropic', 'ollama', 'deepseek'), 'upstream-model', seq % 2 = 0, \
                 CASE WHEN seq % 100 = 0 THEN 500 WHEN seq % 20 = 1 THEN 429 ELSE 200 END, \
                 CASE WHEN seq % 100 = 0 THEN 'upstream_error' WHEN seq % 20 = 1 THEN 'rate_limited' ELSE '' END, \
                 '', 100 + seq % 900, 10 + seq % 300, 0, 0.001, 100000 + (seq * 7919) % 5000000, \
                 50000 + (seq * 31) % 400000, 90000 + (seq * 7919) % 5000000 \
                 FROM seq_{first}_to_{last}"
            )))
            .bind(start_us)
            .bind(step_us)
            .execute(pool)
            .await?;
            sqlx::query(
                "INSERT INTO request_contents (request_id, received_at, request_body, response_body) \
                 SELECT request_id, received_at, \
                 CONCAT('{\"model\":\"', requested_model, '\",\"messages\":[{\"role\":\"user\",\"content\":\"question ', MD5(request_id), '\"}]}'), \
                 '{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"an answer\"}}]}' \
                 FROM request_logs WHERE received_at >= ? AND received_at < ?",
            )
            .bind(start_us + first * step_us)
            .bind(start_us + (last + 1) * step_us)
            .execute(pool)
            .await?;
            first = last + 1;
        }
        eprintln!(
            "MariaDB day {day}: {per_day} rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query("ANALYZE TABLE request_logs, request_contents")
        .fetch_all(pool)
        .await?;
    Ok(())
}

/// Bytes as `pg_size_pretty` words them (a unit while under 10,240 of it).
fn pretty(bytes: i64) -> String {
    let mut value = bytes;
    for unit in ["bytes", "kB", "MB", "GB"] {
        if value < 10 * 1024 {
            return format!("{value} {unit}");
        }
        value = (value + 512) / 1024;
    }
    format!("{value} TB")
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn sizes_read_like_postgres() {
        assert_eq!(pretty(8000), "8000 bytes");
        assert_eq!(pretty(20 * 1024 * 1024), "20 MB");
        assert_eq!(pretty(11 * 1024 * 1024 * 1024), "11 GB");
    }
}
