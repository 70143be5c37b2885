//! `cargo run --release -p logger-ingest [EVENTS]`: starts a throw-away PostgreSQL
//! (fsync on, as in production) and nats-server, then measures, in one run:
//! - baseline: the same events written straight to Postgres with
//!   `Store::insert_batch` in batches of 1,000 (no bus);
//! - logger: the events pre-published on JetStream, consumed by the real logger
//!   loop (fetch, decode, one transaction per batch, ack), timed until the last row.
//!
//! Each event carries 2 KiB of request and response bodies.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use events::proto::LogEvent;
use events::{Bus, Outgoing, subjects};
use prost::Message;
use store::Store;

fn event(i: usize, now_us: i64) -> LogEvent {
    let body = |tag: &str| Bytes::from(format!("{{\"{tag}\":\"{}\"}}", "x".repeat(1010)));
    LogEvent {
        request_id: uuid::Uuid::now_v7().hyphenated().to_string(),
        received_at_us: now_us + i64::try_from(i).unwrap_or(0),
        endpoint: "/v1/chat/completions".into(),
        requested_model: ["gpt4", "claude", "demo"][i % 3].into(),
        provider: "mock".into(),
        upstream_model: "gpt-4o".into(),
        status: 200,
        input_tokens: 24,
        output_tokens: 8,
        latency_us: 1_000 + (i as u64 % 5_000),
        request_body: body("request"),
        response_body: body("response"),
        ..LogEvent::default()
    }
}

#[allow(clippy::print_stdout, clippy::cast_precision_loss)]
fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let pg = test_services::Postgres::start_durable();
        let nats = test_services::Nats::start();
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;

        // Baseline: direct batched inserts.
        let direct = Store::connect(&pg.create_database("direct")).await?;
        direct.migrate().await?;
        direct.ensure_partitions(now_us, 2).await?;
        let events: Vec<LogEvent> = (0..n).map(|i| event(i, now_us)).collect();
        let started = Instant::now();
        for batch in events.chunks(1000) {
            direct.insert_batch(batch).await?;
        }
        let direct_secs = started.elapsed().as_secs_f64();
        assert_eq!(direct.log_count().await?, n as i64);

        // The logger: pre-publish, then consume.
        let bus = events::nats::NatsBus::connect(&nats.url()).await?;
        bus.ensure_stream().await?;
        let bus = Bus::Nats(Box::new(bus));
        for chunk in events.chunks(2000) {
            // As the gateway sends them: LogBatches of 64.
            let messages: Vec<Outgoing> = chunk
                .chunks(64)
                .map(|batch| Outgoing {
                    subject: subjects::LOG,
                    msg_id: batch[0].request_id.clone(),
                    payload: Bytes::from(
                        events::proto::LogBatch {
                            events: batch.to_vec(),
                        }
                        .encode_to_vec(),
                    ),
                    traceparent: None,
                })
                .collect();
            for r in bus.publish_all(&messages).await {
                r?;
            }
        }
        let url = pg.create_database("logger");
        let store = Store::connect(&url).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let started = Instant::now();
        let task = tokio::spawn(logger::run(logger::Settings::default(), bus, store.clone(), logger::Observed { metrics: logger::Metrics::register(&mut Default::default()), readiness: Default::default() }, shutdown.clone()));
        loop {
            if store.log_count().await.unwrap_or(0) >= n as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let logger_secs = started.elapsed().as_secs_f64();
        shutdown.cancel();
        let _ = task.await;
        assert_eq!(store.log_count().await?, n as i64);

        println!("| path | events | seconds | events/s |");
        println!("|---|---:|---:|---:|");
        println!("| baseline: Store::insert_batch direct, batches of 1,000 | {n} | {direct_secs:.2} | {:.0} |", n as f64 / direct_secs);
        println!("| logger: JetStream → fetch → decode → one transaction per batch → ack | {n} | {logger_secs:.2} | {:.0} |", n as f64 / logger_secs);
        Ok(())
    })
}
