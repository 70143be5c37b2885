//! Faults under load, each on a stack of its own: NATS killed for 20 s, the
//! logger killed mid-batch (SIGKILL) and restarted, PostgreSQL stopped at once
//! and restarted, the gateway sent SIGTERM with streams open, the media writer
//! killed mid-write. N answered requests are N rows, none twice, and no partial
//! media file is ever under its final name.
//!
//! Every process is stopped through the handle that started it: an `aiprox`
//! [`Proc`](crate::harness::Proc), the stack's `Nats` (its child) or `Postgres`
//! (`pg_ctl` on its own data directory), never by a name or command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use mock_upstream::Behavior;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::harness::{Stack, files_under, plain};

/// Sends one request every `every` until `stop`; counts the 200s. The load has
/// its own client and the gateway's URL, not the stack: the test keeps the stack,
/// and with it the handles of the servers it stops and starts again.
fn steady_load(
    stack: &Stack,
    every: Duration,
) -> (
    Arc<AtomicUsize>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let answered = Arc::new(AtomicUsize::new(0));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let (client, url, a) = (
        stack.client.clone(),
        stack.url("/v1/chat/completions"),
        answered.clone(),
    );
    let task = tokio::spawn(async move {
        let mut i = 0;
        loop {
            if stopped.try_recv().is_ok() {
                break;
            }
            let r = client.post(&url).json(&plain(i)).send().await.unwrap();
            if r.status() == 200 {
                a.fetch_add(1, Ordering::SeqCst);
            }
            i += 1;
            tokio::time::sleep(every).await;
        }
    });
    (answered, stop, task)
}

#[tokio::test]
async fn nats_down_for_20s_under_load_loses_nothing() {
    let mut stack = Stack::start().await;
    let _logger = stack.spawn("logger", &[]);
    let _gateway = stack.gateway().await;
    let (answered, stop, load) = steady_load(&stack, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The test's own nats-server, through its handle: killed (SIGKILL, waited
    // for), then started again on the same port and store directory.
    stack.nats.stop();
    tokio::time::sleep(Duration::from_secs(20)).await;
    stack.nats.start_again();

    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(());
    load.await.unwrap();
    let n = answered.load(Ordering::SeqCst);
    assert!(
        n > 200,
        "the gateway kept answering while NATS was down: {n}"
    );
    let rows = stack.wait_rows(n as i64, Duration::from_secs(60)).await;
    assert_eq!(rows, n as i64, "gateway log:\n{}", stack.log("gateway"));
    stack.assert_no_duplicates().await;
    let metrics = stack
        .client
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("aiprox_events_dropped_total 0"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("aiprox_events_spilled_total 0\n"),
        "nothing was spilled: {metrics}"
    );
}

#[tokio::test]
async fn logger_killed_mid_batch_and_restarted_loses_and_duplicates_nothing() {
    let stack = Stack::start().await;
    let small_batches = [("AIPROX_LOGGER__BATCH_MAX", "7")];
    let logger = stack.spawn("logger", &small_batches);
    let _gateway = stack.gateway().await;
    let (answered, stop, load) = steady_load(&stack, Duration::from_millis(5));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    logger.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _logger = stack.spawn("logger", &small_batches);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let _ = stop.send(());
    load.await.unwrap();
    let n = answered.load(Ordering::SeqCst) as i64;
    assert!(n > 100);
    assert_eq!(
        stack.wait_rows(n, Duration::from_secs(60)).await,
        n,
        "{}",
        stack.log("logger")
    );
    stack.assert_no_duplicates().await;
    let totals = stack.store().await.rollup_totals().await.unwrap();
    assert_eq!(totals.requests, n, "rollups counted a replayed event twice");
}

#[tokio::test]
async fn postgres_restarted_under_load_loses_nothing() {
    let stack = Stack::start().await;
    let _logger = stack.spawn("logger", &[]);
    let _gateway = stack.gateway().await;
    let (answered, stop, load) = steady_load(&stack, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(1)).await;
    stack.pg().stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    stack.pg().start_again();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop.send(());
    load.await.unwrap();
    let n = answered.load(Ordering::SeqCst) as i64;
    assert_eq!(
        stack.wait_rows(n, Duration::from_secs(60)).await,
        n,
        "{}",
        stack.log("logger")
    );
    stack.assert_no_duplicates().await;
}

#[tokio::test]
async fn gateway_sigterm_lets_streams_finish_and_flushes_their_events() {
    let stack = Stack::start().await;
    stack.mock.set_behavior(Behavior {
        chunks: Some(10),
        chunk_interval: Duration::from_millis(150),
        no_record: true,
        ..Behavior::default()
    });
    let _logger = stack.spawn("logger", &[]);
    let gateway = stack.gateway().await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        let r = stack
            .chat(&json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "x"}]}))
            .await;
        assert_eq!(r.status(), 200);
        streams.push(tokio::spawn(async move {
            let mut body = r.bytes_stream();
            let mut text = Vec::new();
            while let Some(chunk) = body.next().await {
                text.extend_from_slice(&chunk.unwrap());
            }
            String::from_utf8(text).unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = gateway.pid();
    let waiter = tokio::task::spawn_blocking(move || gateway.terminate());
    for s in streams {
        let text = s.await.unwrap();
        assert!(
            text.ends_with("data: [DONE]\n\n"),
            "a stream was cut: {text}"
        );
        assert_eq!(
            text.matches("data: ").count(),
            13,
            "role + 10 + finish + [DONE]"
        );
    }
    let status = waiter.await.unwrap();
    assert!(
        status.success(),
        "gateway {pid} exit: {status:?}\n{}",
        stack.log("gateway")
    );
    assert_eq!(stack.wait_rows(5, Duration::from_secs(30)).await, 5);
    let ids = stack.store().await.log_ids().await.unwrap();
    for (id, _) in ids {
        let row = stack.store().await.log(&id).await.unwrap().unwrap();
        assert!(row.stream && row.error_kind.is_empty(), "{row:?}");
    }
}

#[tokio::test]
async fn media_killed_mid_write_leaves_no_partial_file() {
    let stack = Stack::start().await;
    let media = stack.spawn("media", &[]);
    let _logger = stack.spawn("logger", &[]);
    let _gateway = stack.gateway().await;
    let mut expected = Vec::new();
    for k in 0..12u8 {
        let image: Vec<u8> = (0..3 * 1024 * 1024)
            .map(|i: usize| (i as u8) ^ k.wrapping_mul(37))
            .collect();
        expected.push(hex::encode(Sha256::digest(&image)));
        let url = format!(
            "data:image/png;base64,{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &image)
        );
        let r = stack
            .chat(
                &json!({"model": "gpt4", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]}),
            )
            .await;
        assert_eq!(r.status(), 200);
        if k == 4 {
            media.kill_now();
        }
    }
    // Whatever is under a final name now is whole.
    for path in files_under(&stack.media_root()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            format!("{}.png", hex::encode(Sha256::digest(&bytes))),
            name,
            "partial file {name}"
        );
    }
    let _media = stack.spawn("media", &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let files: Vec<_> = files_under(&stack.media_root());
        let done = expected.iter().all(|sha| {
            files
                .iter()
                .any(|p| p.ends_with(format!("{}/{sha}.png", &sha[..2])))
        });
        if done && !files.iter().any(|p| p.to_string_lossy().contains(".tmp-")) {
            for path in &files {
                let bytes = std::fs::read(path).unwrap();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert_eq!(format!("{}.png", hex::encode(Sha256::digest(&bytes))), name);
            }
            assert_eq!(files.len(), expected.len());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "media not all written: {files:?}\n{}",
            stack.log("media")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
