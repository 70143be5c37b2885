//! Stream assembly: the lean chunk read against parsing chunks whole, and the
//! recorded streams assembled.

use super::*;
use crate::fixtures::recorded_chunks;
use crate::usage::{is_usage_chunk, of_value};

/// The member-by-member chunk read must agree with parsing the chunk whole, on
/// every recorded chunk and on chunks built to trip it.
#[test]
fn the_fast_chunk_read_agrees_with_parsing_it_whole() {
    let mut chunks = recorded_chunks();
    assert!(chunks.len() > 30, "only {} recorded chunks", chunks.len());
    let built: [&[u8]; 12] = [
        // Usage before choices, twice, as a stream would repeat it.
        br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"choices":[]}"#,
        br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"choices":[]}"#,
        // Usage before choices, then other members.
        br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"x":1,"choices":[{"index":0,"delta":{"content":"y"}}]}"#,
        br#"{"id":"a","choices":[{"index":0,"delta":{"content":"say \"hi\"\n\u00e9 \ud83d\ude00"},"finish_reason":null}],"usage":null}"#,
        br#"{ "choices" : [ { "index" : 1 , "delta" : { "content" : null , "role" : "assistant" } } , {"index":0,"delta":{"reasoning_content":"hmm"}} ] }"#,
        br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}"#,
        br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        br#"{"choices":[{"index":0,"delta":{"content":["not","text"]}}]}"#,
        br#"{"choices":null}"#,
        br#"{"ch\u006fices":[{"index":0,"delta":{"content":"x"}}]}"#,
        br#"{"choices":[{"index":-1,"delta":{"content":"x"}}]}"#,
        br#"{"choices":[{"index":0,"delta":{"content":"unterminated}}]}"#,
    ];
    chunks.extend(built.iter().map(|c| c.to_vec()));
    for chunk in &chunks {
        let fast = read_chunk(chunk);
        let whole = serde_json::from_slice::<LeanChunk<'_>>(chunk).ok();
        let text = String::from_utf8_lossy(chunk);
        assert_eq!(fast.is_some(), whole.is_some(), "{text}");
        if let (Some(fast), Some(whole)) = (fast, whole) {
            assert_eq!(fast.choices, whole.choices, "{text}");
            assert_eq!(
                fast.usage.map(RawValue::get),
                whole.usage.map(RawValue::get),
                "{text}"
            );
        }
    }
}

#[test]
fn streams_assemble_into_whole_responses() {
    let path = |p: &str| format!("{}/../../fixtures/{p}", env!("CARGO_MANIFEST_DIR"));
    let payloads = |p: &str| -> Vec<Bytes> {
        crate::sse::Decoder::new()
            .feed(&std::fs::read(path(p)).unwrap())
            .unwrap()
            .into_iter()
            .filter(|e| e.data != "[DONE]")
            .map(|e| Bytes::from(e.data))
            .collect()
    };
    let (body, tokens) = openai(&payloads("openai/chat_stream_basic.sse"));
    let text: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        text["choices"][0]["message"]["content"],
        "The capital of Mexico is Mexico City."
    );
    let expected = Some(Tokens {
        input: 14,
        output: 8,
        cached: 0,
        cache_write: 0,
        cache_write_1h: 0,
    });
    assert_eq!(of_value(&text), expected);
    assert_eq!(tokens, expected);
    assert_eq!(text["object"], "chat.completion");
    assert_eq!(text["choices"][0]["finish_reason"], "stop");
    assert_eq!(text["choices"][0]["message"]["role"], "assistant");
    assert!(text["choices"][0]["message"].get("tool_calls").is_none());
    let (body, _) = openai(&payloads("openai/chat_stream_parallel_tool_calls.sse"));
    let tools: Value = serde_json::from_slice(&body).unwrap();
    let calls = tools["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["function"]["name"], "get_product_name");

    let message = anthropic(&payloads(
        "anthropic/messages_stream_text_then_tool_use.sse",
    ));
    assert_eq!(
        message["content"][0]["text"],
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(message["content"][1]["input"], json!({"location": "Paris"}));
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        of_value(&message),
        Some(Tokens {
            input: 377,
            output: 65,
            cached: 0,
            cache_write: 0,
            cache_write_1h: 0
        })
    );

    assert!(is_usage_chunk(
        br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
    ));
    assert!(!is_usage_chunk(
        br#"{"choices":[{"index":0}],"usage":null}"#
    ));
}

/// The `data:` payloads of a recorded stream.
fn recorded_payloads(path: &str) -> Vec<Bytes> {
    let bytes = std::fs::read(format!(
        "{}/../../fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    crate::sse::Decoder::new()
        .feed(&bytes)
        .unwrap()
        .into_iter()
        .map(|e| Bytes::from(e.data))
        .collect()
}

#[test]
fn responses_streams_assemble_into_their_terminal_response() {
    /// (stream, status, output types, first output text, (input, output) usage)
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [&'a str],
        Option<&'a str>,
        Option<(u64, u64)>,
    );
    let cases: [Case<'_>; 7] = [
        (
            "responses_stream_text.sse",
            "completed",
            &["message"],
            Some("2+2 = 4"),
            Some((20, 10)),
        ),
        (
            "responses_stream_text_2025-03.sse",
            "completed",
            &["message"],
            Some("Hi there! How can I assist you today?"),
            Some((27, 11)),
        ),
        (
            "responses_stream_background.sse",
            "completed",
            &["message"],
            Some("2 + 2 equals 4."),
            Some((15, 9)),
        ),
        (
            "responses_stream_function_call_2025-03.sse",
            "completed",
            &["function_call"],
            None,
            Some((255, 16)),
        ),
        (
            "responses_stream_reasoning_function_call.sse",
            "completed",
            &["reasoning", "function_call"],
            None,
            Some((53, 469)),
        ),
        (
            "responses_stream_reasoning_summary.sse",
            "completed",
            &["reasoning", "message"],
            None,
            Some((13, 1680)),
        ),
        (
            "responses_stream_error_mid_stream.sse",
            "failed",
            &[],
            None,
            None,
        ),
    ];
    for (name, status, types, text, usage) in cases {
        let (body, tokens) = responses(&recorded_payloads(&format!("openai-responses/{name}")));
        let whole: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(whole["object"], "response", "{name}");
        assert_eq!(whole["status"], status, "{name}");
        let kinds: Vec<&str> = whole["output"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, types, "{name}");
        if let Some(text) = text {
            assert_eq!(whole["output"][0]["content"][0]["text"], text, "{name}");
        }
        let expected = usage.map(|(input, output)| Tokens {
            input,
            output,
            cached: 0,
            cache_write: 0,
            cache_write_1h: 0,
        });
        assert_eq!(tokens, expected, "{name}");
        assert_eq!(of_value(&whole), expected, "{name}");
    }
    let (body, _) = responses(&recorded_payloads(
        "openai-responses/responses_stream_error_mid_stream.sse",
    ));
    let failed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(failed["error"]["code"], "insufficient_quota");
}

#[test]
fn a_responses_stream_cut_short_keeps_what_it_had() {
    let mut payloads =
        recorded_payloads("openai-responses/responses_stream_reasoning_function_call.sse");
    payloads.pop(); // response.completed
    let (body, tokens) = responses(&payloads);
    let whole: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(whole["status"], "in_progress");
    assert_eq!(whole["output"][1]["arguments"], "{\"result\":6666}");
    assert_eq!(whole["output"][1]["status"], "completed");
    assert_eq!(tokens, None);

    let mut payloads = recorded_payloads("openai-responses/responses_stream_error_mid_stream.sse");
    payloads.pop(); // response.failed
    let (body, _) = responses(&payloads);
    let whole: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(whole["error"]["code"], "insufficient_quota");
    assert_eq!(whole["output"], json!([]));
    assert_eq!(responses(&[]).0, b"{\"output\":[]}");
}
