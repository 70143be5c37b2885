//! `cargo run --release -p admin-logs [ROWS]`: fills a throw-away PostgreSQL with
//! ROWS (default 10,000,000) request logs over ten days (8 models, 4 providers, 50
//! client keys, 5 % 429s, 1 % 500s, half streamed, bodies in `request_contents`),
//! then times the Logs page's first page (50 rows, newest first) for each filter:
//! - through the store (`Store::list_logs`, the SQL alone), and
//! - through the admin HTTP API (`GET /api/v1/logs`, auth, JSON and all),
//!
//! so the API's own cost shows against the query's. Each query runs once to warm
//! the cache, then 15 times; the table gives the median, p95 and max. Then the
//! same rows in a throw-away MariaDB (the store's MySQL backend, `mariadb`), the
//! same table, and the two side by side.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use store::{LogFilter, Store};

mod mariadb;

const DAY_US: i64 = 86_400_000_000;
const TOKEN: &str = "bench-admin-token";
const RUNS: usize = 15;

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p95 = samples[(samples.len() * 95 / 100).min(samples.len() - 1)];
    (
        ms(samples[samples.len() / 2]),
        ms(p95),
        ms(samples[samples.len() - 1]),
    )
}

async fn fill(pool: &sqlx::PgPool, rows: i64, first_day_us: i64) -> anyhow::Result<()> {
    let per_day = rows / 10;
    let step_us = DAY_US / per_day.max(1);
    for day in 0..10 {
        let start_us = first_day_us + day * DAY_US;
        let started = Instant::now();
        sqlx::query(
            "INSERT INTO request_logs (request_id, received_at, endpoint, client_key_id, requested_model, \
             provider, upstream_model, stream, status, error_kind, error_message, input_tokens, output_tokens, \
             cached_tokens, cost_usd, latency_us, ttft_us, upstream_latency_us) \
             SELECT gen_random_uuid(), timestamptz 'epoch' + ($1 + i * $2) * interval '1 microsecond', \
             '/v1/chat/completions', 'key_' || lpad((i % 50)::text, 2, '0'), \
             (ARRAY['gpt4','gpt-4o-mini','claude','claude-haiku','llama3','deepseek','mistral','demo'])[1 + (i * 7) % 8], \
             (ARRAY['openai','anthropic','ollama','deepseek'])[1 + i % 4], 'upstream-model', i % 2 = 0, \
             CASE WHEN i % 100 = 0 THEN 500 WHEN i % 20 = 1 THEN 429 ELSE 200 END, \
             CASE WHEN i % 100 = 0 THEN 'upstream_error' WHEN i % 20 = 1 THEN 'rate_limited' ELSE '' END, \
             '', 100 + i % 900, 10 + i % 300, 0, 0.001, 100000 + (i * 7919) % 5000000, \
             50000 + (i * 31) % 400000, 90000 + (i * 7919) % 5000000 \
             FROM generate_series(0, $3 - 1) AS i",
        )
        .bind(start_us)
        .bind(step_us)
        .bind(per_day)
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO request_contents (request_id, received_at, request_body, response_body) \
             SELECT request_id, received_at, \
             '{\"model\":\"' || requested_model || '\",\"messages\":[{\"role\":\"user\",\"content\":\"question ' || md5(request_id::text) || '\"}]}', \
             '{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"an answer\"}}]}' \
             FROM request_logs WHERE received_at >= timestamptz 'epoch' + $1 * interval '1 microsecond' \
             AND received_at < timestamptz 'epoch' + $2 * interval '1 microsecond'",
        )
        .bind(start_us)
        .bind(start_us + DAY_US)
        .execute(pool)
        .await?;
        eprintln!(
            "day {day}: {per_day} rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(())
}

/// The database once filled, as the table's heading describes it.
struct Filled {
    count: i64,
    size: String,
    fill_secs: f64,
    /// A rare needle: part of one row's body.
    needle: String,
}

/// One filter's timings, ms: median, p95, max.
struct Timed {
    name: &'static str,
    store_ms: (f64, f64, f64),
    http_ms: (f64, f64, f64),
}

/// The rare text through the API, page after page.
struct RareText {
    found: bool,
    pages: usize,
    ms: f64,
}

/// One database's run.
struct Measured {
    database: &'static str,
    cases: Vec<Timed>,
    rare: RareText,
}

/// One row of the table: its name, the filter through the store, the same
/// filter as the API's query string.
type Case = (&'static str, LogFilter, String);

fn main() -> anyhow::Result<()> {
    let rows: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let serve = std::env::args().any(|a| a == "--serve");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if serve {
        runtime.block_on(serve_filled(rows))
    } else {
        runtime.block_on(run(rows))
    }
}

/// `admin-logs ROWS --serve`: the same database, its usage rollups filled from
/// the rows as the logger writes them (per minute and per hour × model ×
/// provider × key), and the admin with the web UI on a free port, until killed; prints
/// `serving <base URL> <token>` (for `bench/ui`).
#[allow(clippy::print_stdout)]
async fn serve_filled(rows: i64) -> anyhow::Result<()> {
    let pg = test_services::Postgres::start();
    let url = pg.create_database("logs");
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let now_us = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?;
    let first_day_us = now_us - now_us.rem_euclid(DAY_US) - 9 * DAY_US;
    store.ensure_partitions(first_day_us, 11).await?;
    let pool = sqlx::PgPool::connect(&url).await?;
    fill(&pool, rows, first_day_us).await?;
    // The histograms put each row in the bucket of its latency band (bucket 7 of
    // 14, roughly a second): enough for the percentiles to draw. The minutes and
    // the hours, as the logger keeps both.
    for (table, unit) in [
        ("usage_rollups", "minute"),
        ("usage_rollups_hourly", "hour"),
    ] {
        // Both names are the constants above.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} SELECT date_trunc('{unit}', received_at), requested_model, provider, \
             client_key_id, count(*), count(*) FILTER (WHERE status >= 400), sum(input_tokens), \
             sum(output_tokens), 0, sum(cost_usd), sum(latency_us), \
             array_fill(0::int8, ARRAY[7]) || count(*) || array_fill(0::int8, ARRAY[6]), \
             array_fill(0::int8, ARRAY[5]) || count(*) || array_fill(0::int8, ARRAY[8]) \
             FROM request_logs GROUP BY 1, 2, 3, 4"
        )))
        .execute(&pool)
        .await?;
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    let rollups: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_rollups")
        .fetch_one(&pool)
        .await?;
    let base = serve_admin(&store).await?;
    eprintln!("{rows} rows, {rollups} rollup rows");
    println!("serving {base} {TOKEN}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// The whole benchmark: PostgreSQL, then (that server stopped) MariaDB with the
/// same rows, each printed as it is measured, then the two side by side.
#[allow(clippy::print_stdout)]
async fn run(rows: i64) -> anyhow::Result<()> {
    let now_us = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())?;
    let first_day_us = now_us - now_us.rem_euclid(DAY_US) - 9 * DAY_US;
    let postgres = {
        let pg = test_services::Postgres::start();
        let url = pg.create_database("logs");
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        store.ensure_partitions(first_day_us, 11).await?;
        let pool = sqlx::PgPool::connect(&url).await?;
        let filled = fill_and_measure(&pool, rows, first_day_us).await?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&pool)
            .await?;
        print_heading(
            &format!("PostgreSQL {version}"),
            "over ten daily partitions",
            &filled,
        );
        measure("PostgreSQL", &store, &filled, now_us).await?
    };
    let mariadb = {
        let (_server, url) = mariadb::start().await?;
        let store = Store::connect(&url).await?;
        store.migrate().await?;
        let pool = sqlx::MySqlPool::connect(&url).await?;
        let filled = mariadb::fill_and_measure(&pool, rows, first_day_us).await?;
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&pool)
            .await?;
        println!();
        print_heading(
            &format!("MariaDB {version}"),
            "in one table clustered by time",
            &filled,
        );
        measure("MariaDB", &store, &filled, now_us).await?
    };
    print_side_by_side(&postgres, &mariadb);
    Ok(())
}

/// Times every filter, then the rare text, on a filled database: through its
/// store and through an admin API serving it.
async fn measure(
    database: &'static str,
    store: &Store,
    filled: &Filled,
    now_us: i64,
) -> anyhow::Result<Measured> {
    let base = serve_admin(store).await?;
    let client = reqwest::Client::new();
    let mut cases = Vec::new();
    for case in cases_for(now_us, &filled.needle) {
        cases.push(time_case(store, &client, &base, case).await?);
    }
    let rare = time_rare_text(&client, &base, &filled.needle).await?;
    Ok(Measured {
        database,
        cases,
        rare,
    })
}

/// Fills the database, timed, then reads its row count, size and a needle.
async fn fill_and_measure(
    pool: &sqlx::PgPool,
    rows: i64,
    first_day_us: i64,
) -> anyhow::Result<Filled> {
    let filled = Instant::now();
    fill(pool, rows, first_day_us).await?;
    let fill_secs = filled.elapsed().as_secs_f64();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM request_logs")
        .fetch_one(pool)
        .await?;
    let size: String = sqlx::query_scalar(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid",
    )
    .fetch_one(pool)
    .await?;
    let needle: String = sqlx::query_scalar(
        "SELECT substr(md5(request_id::text), 1, 12) FROM request_logs ORDER BY received_at LIMIT 1 OFFSET $1",
    )
    .bind(rows / 2)
    .fetch_one(pool)
    .await?;
    Ok(Filled {
        count,
        size,
        fill_secs,
        needle,
    })
}

/// Serves the admin API on a free local port; returns its base URL.
async fn serve_admin(store: &Store) -> anyhow::Result<String> {
    let core = admin::core::AdminCore {
        store: store.clone(),
        media_root: std::env::temp_dir(),
        // A token never cancelled (a `CancellationToken`, by inference: this
        // crate does not depend on tokio-util): no bus, so nothing to retry.
        publisher: admin::publisher::Publisher::new(store.clone(), None, Default::default()),
        secret: None,
    };
    let app = admin::router(
        core,
        SecretString::from(TOKEN),
        admin::RouterOptions::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

/// The filters timed, one a row.
fn cases_for(now_us: i64, needle: &str) -> Vec<Case> {
    let mut cases = column_cases();
    cases.extend(mixed_cases(now_us, needle));
    cases
}

/// No filter, then one column each.
fn column_cases() -> Vec<Case> {
    vec![
        ("none (newest 50)", LogFilter::default(), String::new()),
        (
            "model = claude",
            LogFilter {
                model: Some("claude".into()),
                ..LogFilter::default()
            },
            "model=claude".into(),
        ),
        (
            "provider = ollama",
            LogFilter {
                provider: Some("ollama".into()),
                ..LogFilter::default()
            },
            "provider=ollama".into(),
        ),
        (
            "client key (1 of 50)",
            LogFilter {
                client_key_id: Some("key_07".into()),
                ..LogFilter::default()
            },
            "key=key_07".into(),
        ),
        (
            "status 5xx (1 %)",
            LogFilter {
                status_class: Some(5),
                ..LogFilter::default()
            },
            "status=5".into(),
        ),
        (
            "status 4xx (5 %)",
            LogFilter {
                status_class: Some(4),
                ..LogFilter::default()
            },
            "status=4".into(),
        ),
        (
            "error kind",
            LogFilter {
                error_kind: Some("upstream_error".into()),
                ..LogFilter::default()
            },
            "error_kind=upstream_error".into(),
        ),
    ]
}

/// Combinations, ranges (latency, time) and text search.
fn mixed_cases(now_us: i64, needle: &str) -> Vec<Case> {
    let last_hour = (now_us - 3_600_000_000) / 1000;
    let yesterday_ms = (now_us - DAY_US) / 1000;
    vec![
        (
            "streamed + model",
            LogFilter {
                stream: Some(true),
                model: Some("gpt4".into()),
                ..LogFilter::default()
            },
            "stream=true&model=gpt4".into(),
        ),
        (
            "latency ≥ 4.9 s (2 %)",
            LogFilter {
                min_latency_us: Some(4_900_000),
                ..LogFilter::default()
            },
            "min_latency_ms=4900".into(),
        ),
        (
            "last hour + key + 4xx",
            LogFilter {
                from_us: Some(last_hour * 1000),
                client_key_id: Some("key_21".into()),
                status_class: Some(4),
                ..LogFilter::default()
            },
            format!("from={last_hour}&key=key_21&status=4"),
        ),
        (
            "a day ago, model (time range)",
            LogFilter {
                to_us: Some(yesterday_ms * 1000),
                model: Some("mistral".into()),
                ..LogFilter::default()
            },
            format!("to={yesterday_ms}&model=mistral"),
        ),
        (
            "text, common word",
            LogFilter {
                text: Some("question".into()),
                ..LogFilter::default()
            },
            "q=question".into(),
        ),
        (
            "text, one row's id (rare)",
            LogFilter {
                text: Some(needle.to_owned()),
                ..LogFilter::default()
            },
            format!("q={needle}"),
        ),
    ]
}

#[allow(clippy::print_stdout)]
fn print_heading(database: &str, layout: &str, filled: &Filled) {
    let Filled {
        count,
        size,
        fill_secs,
        ..
    } = filled;
    println!(
        "{database}: {count} rows in `request_logs` {layout}, bodies in `request_contents`; {size} on disk, filled in {fill_secs:.0} s."
    );
    println!();
    println!(
        "| filter | store rows | store median ms | store p95 ms | HTTP rows | HTTP median ms | HTTP p95 ms | HTTP max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
}

/// Times one filter through the store and through the API; prints its row.
#[allow(clippy::print_stdout)]
async fn time_case(
    store: &Store,
    client: &reqwest::Client,
    base: &str,
    (name, filter, query): Case,
) -> anyhow::Result<Timed> {
    let (store_rows, direct) = time_store(store, &filter).await?;
    // Text search is time-boxed in the API: a page may hold fewer rows.
    let expected = filter.text.is_none().then_some(store_rows);
    let (http_rows, http) = time_http(
        client,
        &format!("{base}/api/v1/logs?limit=50&{query}"),
        name,
        expected,
    )
    .await?;
    let timed = Timed {
        name,
        store_ms: stats(direct),
        http_ms: stats(http),
    };
    let (d50, d95, _) = timed.store_ms;
    let (h50, h95, hmax) = timed.http_ms;
    println!(
        "| {name} | {store_rows} | {d50:.1} | {d95:.1} | {http_rows} | {h50:.1} | {h95:.1} | {hmax:.1} |"
    );
    Ok(timed)
}

/// The medians (and the API's p95) of both databases, filter by filter, and the
/// rare text's search through the API.
#[allow(clippy::print_stdout)]
fn print_side_by_side(a: &Measured, b: &Measured) {
    let (x, y) = (a.database, b.database);
    println!();
    println!("Side by side, the same rows and filters:");
    println!();
    println!(
        "| filter | {x} store median ms | {y} store median ms | {x} HTTP median ms | {y} HTTP median ms | {x} HTTP p95 ms | {y} HTTP p95 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (p, q) in a.cases.iter().zip(&b.cases) {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p.name, p.store_ms.0, q.store_ms.0, p.http_ms.0, q.http_ms.0, p.http_ms.1, q.http_ms.1
        );
    }
    println!();
    for m in [a, b] {
        println!(
            "Text found in one row only, {}: found = {} after {} pages, {:.0} ms in all.",
            m.database, m.rare.found, m.rare.pages, m.rare.ms
        );
    }
}

/// The first page through the store, once to warm up then `RUNS` times: the
/// rows it held and the timings.
async fn time_store(store: &Store, filter: &LogFilter) -> anyhow::Result<(usize, Vec<Duration>)> {
    let mut direct = Vec::new();
    let mut found = 0;
    for run in 0..=RUNS {
        let t = Instant::now();
        let (page, _) = store.list_logs(filter, None, 50).await?;
        if run > 0 {
            direct.push(t.elapsed());
        }
        found = page.len();
    }
    Ok((found, direct))
}

/// The first page through the API, once to warm up then `RUNS` times: the rows
/// it held and the timings; each page must hold `expected` rows, if given.
async fn time_http(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    expected: Option<usize>,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let mut http = Vec::new();
    let mut http_found = 0;
    for run in 0..=RUNS {
        let t = Instant::now();
        let resp = client.get(url).bearer_auth(TOKEN).send().await?;
        anyhow::ensure!(resp.status() == 200, "{name}: {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        if run > 0 {
            http.push(t.elapsed());
        }
        http_found = body["data"].as_array().map_or(0, Vec::len);
        anyhow::ensure!(
            expected.is_none_or(|n| n == http_found),
            "{name}: HTTP and store disagree"
        );
    }
    Ok((http_found, http))
}

/// The rare text through the API, page after page until it is found; prints
/// how many pages and how long that took.
#[allow(clippy::print_stdout)]
async fn time_rare_text(
    client: &reqwest::Client,
    base: &str,
    needle: &str,
) -> anyhow::Result<RareText> {
    let started = Instant::now();
    let (mut pages, mut cursor, mut found) = (0, String::new(), false);
    while !found && pages < 10_000 {
        let page: serde_json::Value = client
            .get(format!(
                "{base}/api/v1/logs?limit=50&q={needle}&cursor={cursor}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await?
            .json()
            .await?;
        pages += 1;
        found = page["data"].as_array().is_some_and(|d| !d.is_empty());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    println!();
    println!(
        "Text found in one row only, through the API: found = {found} after {pages} pages, {ms:.0} ms in all (each page answers within the search budget)."
    );
    Ok(RareText { found, pages, ms })
}
