use std::time::Duration;

use futures_util::StreamExt;
use mock_upstream::{Behavior, Failure, fixtures};
use serde_json::{Value, json};

use crate::helpers::{fixture_chunks, json as parse, spawn_app, sse_payloads};

fn stream_request(include_usage: Option<bool>) -> Value {
    let mut r = json!({"model": "gpt4", "stream": true, "messages": [{"role": "user", "content": "capital of Mexico?"}]});
    if let Some(u) = include_usage {
        r["stream_options"] = json!({"include_usage": u});
    }
    r
}

#[tokio::test]
async fn chunks_arrive_in_order_unchanged_and_end_with_done() {
    let app = spawn_app().await;
    let response = app.post_chat(&stream_request(Some(true))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let payloads = sse_payloads(response).await;
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let got: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| parse(p))
        .collect();
    assert_eq!(got, fixture_chunks(fixtures::openai::CHAT_STREAM_BASIC));
    // The usage chunk comes last, with no choices.
    let last = got.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 22);
    assert_eq!(
        app.mock.last_request().unwrap().body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn without_include_usage_there_is_no_usage_chunk() {
    for include_usage in [None, Some(false)] {
        let app = spawn_app().await;
        let payloads = sse_payloads(app.post_chat(&stream_request(include_usage)).await).await;
        assert_eq!(payloads.last().unwrap(), "[DONE]");
        for p in &payloads[..payloads.len() - 1] {
            let chunk = parse(p);
            assert!(chunk.get("usage").is_none(), "{chunk}");
            assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
        }
        assert_eq!(
            app.mock
                .last_request()
                .unwrap()
                .body
                .get("stream_options")
                .is_some(),
            include_usage.is_some()
        );
    }
}

#[tokio::test]
async fn many_chunks_stream_through_as_they_come() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(200),
        ..Behavior::default()
    });
    let payloads = sse_payloads(app.post_chat(&stream_request(Some(true))).await).await;
    // role chunk + 200 content chunks + finish chunk + usage chunk + [DONE]
    assert_eq!(payloads.len(), 204);
    let text: String = payloads[1..201]
        .iter()
        .map(|p| {
            parse(p)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(text.starts_with("The quick brown fox"), "{text}");
}

#[tokio::test]
async fn each_chunk_leaves_the_gateway_before_the_next_is_sent() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(3),
        chunk_interval: Duration::from_millis(300),
        ..Behavior::default()
    });
    let response = app.post_chat(&stream_request(None)).await;
    let mut body = response.bytes_stream();
    // The role chunk is sent at once; the stream as a whole takes > 1 s.
    let started = std::time::Instant::now();
    let first = tokio::time::timeout(Duration::from_millis(250), body.next())
        .await
        .expect("the first chunk was held back")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("\"role\":\"assistant\""));
    while body.next().await.is_some() {}
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[tokio::test]
async fn parallel_tool_call_streams_pass_through_unchanged() {
    let app = spawn_app().await;
    let mut request = parse(include_str!(
        "../../../../fixtures/openai/chat_request_stream_parallel_tools.json"
    ));
    request["model"] = "gpt4".into();
    let payloads = sse_payloads(app.post_chat(&request).await).await;
    let got: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| parse(p))
        .collect();
    assert_eq!(
        got,
        fixture_chunks(fixtures::openai::CHAT_STREAM_PARALLEL_TOOL_CALLS)
    );
    let indexes: Vec<u64> = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["index"].as_u64())
        .collect();
    assert!(indexes.contains(&0) && indexes.contains(&1));
}

async fn stream_error_event(failure: Failure, configure_idle: bool) -> (Vec<String>, Value) {
    let app = crate::helpers::spawn_app_with(|c| {
        if configure_idle {
            c.settings.timeouts.idle = Duration::from_millis(300);
        }
    })
    .await;
    app.mock.set_behavior(Behavior {
        chunks: Some(5),
        failure: Some(failure),
        ..Behavior::default()
    });
    let response = app.post_chat(&stream_request(Some(true))).await;
    assert_eq!(response.status(), 200);
    let payloads = tokio::time::timeout(Duration::from_secs(10), sse_payloads(response))
        .await
        .expect("the stream hung");
    let last = parse(payloads.last().unwrap());
    (payloads, last)
}

#[tokio::test]
async fn a_connection_reset_mid_stream_ends_with_an_error_event() {
    let (payloads, last) =
        stream_error_event(Failure::ResetMidStream { after_chunks: 3 }, false).await;
    assert_eq!(
        payloads.len(),
        4,
        "three chunks then the error: {payloads:?}"
    );
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert!(!payloads.iter().any(|p| p == "[DONE]"));
}

#[tokio::test]
async fn a_stream_cut_before_done_ends_with_an_error_event() {
    let (payloads, last) =
        stream_error_event(Failure::TruncateMidStream { after_chunks: 2 }, false).await;
    assert_eq!(payloads.len(), 3);
    assert_eq!(last["error"]["code"], "stream_interrupted");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before its end marker")
    );
}

#[tokio::test]
async fn a_stalled_stream_ends_with_a_timeout_event_after_the_idle_timeout() {
    let (payloads, last) =
        stream_error_event(Failure::StallMidStream { after_chunks: 1 }, true).await;
    assert_eq!(payloads.len(), 2);
    assert_eq!(last["error"]["type"], "timeout_error");
    assert_eq!(last["error"]["code"], "stream_timeout");
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_closes_the_upstream_request() {
    let app = spawn_app().await;
    app.mock.set_behavior(Behavior {
        chunks: Some(1000),
        chunk_interval: Duration::from_millis(20),
        ..Behavior::default()
    });
    let response = app.post_chat(&stream_request(None)).await;
    let mut body = response.bytes_stream();
    body.next().await.unwrap().unwrap();
    body.next().await.unwrap().unwrap();
    drop(body);
    let stats = app
        .mock
        .wait_for_stats(Duration::from_secs(5), |s| s.aborted_streams == 1)
        .await;
    assert_eq!(
        stats.aborted_streams, 1,
        "the upstream never saw the disconnect"
    );
    assert_eq!(stats.completed_streams, 0);
}

#[tokio::test]
async fn the_demo_provider_streams_word_by_word_with_usage_on_request() {
    let app = spawn_app().await;
    let payloads = sse_payloads(
        app.post_chat(
            &json!({"model": "demo", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "one two three"}]}),
        )
        .await,
    )
    .await;
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| parse(p))
        .collect();
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let words: Vec<&str> = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(words, ["one ", "two ", "three"]);
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
}
