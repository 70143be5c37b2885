//! Translation over the recorded vendor payloads in `fixtures/`, each result
//! compared to a reviewed JSON snapshot in `tests/snapshots/` (ids and times as the
//! recordings have them; `created` is fixed by the test).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::anthropic::{self, MessagesRequest, MessagesResponse};
use llm::openai::types::{ChatCompletion, ChatCompletionRequest};
use llm::sse::Decoder;
use llm::translate::{TranslateError, chat_to_messages, messages_to_chat};
use serde_json::{Value, json};

const CREATED: u64 = 1_767_225_600;

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sse_events(path: &str) -> Vec<llm::sse::Event> {
    let mut d = Decoder::new();
    let mut events = d.feed(fixture(path).as_bytes()).unwrap();
    events.extend(d.finish().unwrap());
    events
}

fn name(path: &str) -> String {
    path.replace(['/', '.'], "_")
}

// ---- OpenAI client, Anthropic upstream ---------------------------------------

#[test]
fn openai_requests_to_anthropic() {
    for path in [
        "openai/chat_request_basic.json",
        "openai/chat_request_tools.json",
        "openai/chat_request_tool_result.json",
        "openai/chat_request_vision.json",
        "openai/chat_request_stream_basic.json",
        "openai/chat_request_stream_tools.json",
        "openai/chat_request_stream_parallel_tools.json",
    ] {
        let req: ChatCompletionRequest = serde_json::from_str(&fixture(path)).unwrap();
        let out = chat_to_messages::request(req, "claude-haiku-4-5", 4096).unwrap();
        insta::assert_json_snapshot!(format!("to_anthropic_request__{}", name(path)), out);
    }
}

#[test]
fn anthropic_responses_to_openai() {
    for path in [
        "anthropic/messages_response_basic.json",
        "anthropic/messages_response_basic_2026.json",
        "anthropic/messages_response_tool_use.json",
        "anthropic/messages_response_after_tool_result.json",
    ] {
        let message: MessagesResponse = serde_json::from_str(&fixture(path)).unwrap();
        let out = chat_to_messages::response(message, CREATED).unwrap();
        insta::assert_json_snapshot!(format!("to_openai_response__{}", name(path)), out);
    }
}

fn anthropic_stream_to_openai(path: &str, include_usage: bool) -> Result<Vec<Value>, String> {
    let mut t = chat_to_messages::StreamTranslator::new(include_usage, CREATED);
    let mut out = Vec::new();
    for event in sse_events(path) {
        let chunks = t.event(&event.data).map_err(|e| e.to_string())?;
        out.extend(chunks.into_iter().map(|c| serde_json::to_value(c).unwrap()));
    }
    t.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

#[test]
fn anthropic_streams_to_openai_chunks() {
    for path in [
        "anthropic/messages_stream_basic.sse",
        "anthropic/messages_stream_minimal.sse",
        "anthropic/messages_stream_text_then_tool_use.sse",
        "anthropic/messages_stream_thinking.sse",
        "anthropic/messages_stream_tool_use.sse",
    ] {
        let chunks = anthropic_stream_to_openai(path, true).unwrap();
        insta::assert_json_snapshot!(format!("to_openai_chunks__{}", name(path)), chunks);
        // Without include_usage, the same chunks but the last.
        let without = anthropic_stream_to_openai(path, false).unwrap();
        assert_eq!(without, chunks[..chunks.len() - 1]);
        assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    }
}

/// What a client's accumulator makes of the chunks equals the non-streamed answer.
#[test]
fn streamed_tool_calls_accumulate_to_the_recorded_input() {
    let chunks =
        anthropic_stream_to_openai("anthropic/messages_stream_text_then_tool_use.sse", true)
            .unwrap();
    let mut text = String::new();
    let mut args = String::new();
    let mut finish = None;
    for c in &chunks {
        let Some(choice) = c["choices"].get(0) else {
            continue;
        };
        text += choice["delta"]["content"].as_str().unwrap_or("");
        if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
            assert_eq!(calls[0]["index"], 0);
            args += calls[0]["function"]["arguments"].as_str().unwrap_or("");
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].as_str();
        }
    }
    assert_eq!(text, "I'll check the current weather in Paris for you.");
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"location": "Paris"})
    );
    assert_eq!(finish, Some("tool_calls"));
}

#[test]
fn anthropic_errors_to_openai() {
    for (path, status) in [
        ("anthropic/error_auth_401.json", 401),
        ("anthropic/error_invalid_request.json", 400),
        ("anthropic/error_not_found_404.json", 404),
        ("anthropic/error_overloaded.json", 529),
        ("anthropic/error_rate_limit_429.json", 429),
    ] {
        let body = anthropic::ErrorBody::from_upstream(status, fixture(path).as_bytes());
        let (status, out) = chat_to_messages::error(status, &body);
        insta::assert_json_snapshot!(
            format!("to_openai_error__{}", name(path)),
            json!({"status": status, "body": out})
        );
    }
}

#[test]
fn an_error_event_mid_stream_becomes_an_openai_error() {
    let mut t = chat_to_messages::StreamTranslator::new(true, CREATED);
    let events = sse_events("anthropic/messages_stream_basic.sse");
    t.event(&events[0].data).unwrap();
    let error = sse_events("anthropic/messages_stream_error.sse");
    match t.event(&error[0].data) {
        Err(chat_to_messages::StreamFailure::Upstream { status, body }) => {
            assert_eq!(status, 503);
            assert_eq!(body.error.kind, "server_error");
            assert_eq!(body.error.code.as_deref(), Some("overloaded"));
            assert_eq!(body.error.message, "Overloaded");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_anthropic_streams_give_clear_errors() {
    let start = &sse_events("anthropic/messages_stream_tool_use.sse")[0].data;
    let cases: &[(&[&str], &str)] = &[
        (
            &[r#"{"type":"message_teleport","index":0}"#],
            "unreadable Anthropic stream event",
        ),
        (&["{not json"], "unreadable Anthropic stream event"),
        (
            &[r#"{"type":"content_block_stop","index":0}"#],
            "before message_start",
        ),
        (
            &[
                start,
                r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}"#,
            ],
            "never started",
        ),
        (
            &[
                start,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\": tru"}}"#,
                r#"{"type":"content_block_stop","index":0}"#,
            ],
            "not valid JSON",
        ),
        (
            &[
                start,
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            ],
            "does not belong",
        ),
    ];
    for (events, expected) in cases {
        let mut t = chat_to_messages::StreamTranslator::new(true, CREATED);
        let err = events
            .iter()
            .find_map(|e| t.event(e).err())
            .expect("an error");
        assert!(err.to_string().contains(expected), "{events:?}: {err}");
    }
    // Truncated: everything up to (not including) message_stop.
    let mut t = chat_to_messages::StreamTranslator::new(true, CREATED);
    let events = sse_events("anthropic/messages_stream_basic.sse");
    for e in &events[..events.len() - 1] {
        t.event(&e.data).unwrap();
    }
    assert_eq!(t.finish(), Err(TranslateError::Truncated));
}

#[test]
fn openai_requests_anthropic_cannot_express_are_refused() {
    let refuse = |body: Value| {
        let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
        chat_to_messages::request(req, "m", 1024)
            .unwrap_err()
            .to_string()
    };
    assert!(
        refuse(json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}))
            .contains("'n'")
    );
    assert!(
        refuse(
            json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]})
        )
        .contains("input_audio")
    );
    assert!(
        refuse(
            json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]})
        )
        .contains("image_url.url")
    );
    assert!(
        refuse(json!({"model": "m", "messages": [{"role": "system", "content": "only system"}]}))
            .contains("at least one")
    );
    assert!(refuse(json!({"model": "m", "messages": [{"role": "user", "content": "x"},
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}]}))
    .contains("not valid JSON"));
}

#[test]
fn openai_conversations_become_valid_anthropic_turns() {
    let req: ChatCompletionRequest = serde_json::from_value(json!({
        "model": "m",
        "max_tokens": 50,
        "temperature": 1.7,
        "stop": "END",
        "user": "u-1",
        "parallel_tool_calls": false,
        "seed": 3,
        "top_k": 5,
        "messages": [
            {"role": "developer", "content": "dev rules"},
            {"role": "assistant", "content": "I start"},
            {"role": "user", "content": "a"},
            {"role": "user", "content": [{"type": "text", "text": "b"}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
            {"role": "user", "content": "thanks"},
            {"role": "system", "content": "late system"}
        ]
    }))
    .unwrap();
    let out =
        serde_json::to_value(chat_to_messages::request(req, "claude", 1024).unwrap()).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude",
            "max_tokens": 50,
            "system": "dev rules\n\nlate system",
            "metadata": {"user_id": "u-1"},
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
            "top_k": 5,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "(continue)"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "I start"}]},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}},
                    {"type": "tool_use", "id": "c2", "name": "g", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": "two"},
                    {"type": "text", "text": "thanks"}]}
            ]
        })
    );
}

#[test]
fn tool_choice_forms() {
    let choice = |tool_choice: Value, parallel: Option<bool>| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": tool_choice});
        if let Some(p) = parallel {
            body["parallel_tool_calls"] = p.into();
        }
        let req: ChatCompletionRequest = serde_json::from_value(body).unwrap();
        serde_json::to_value(chat_to_messages::request(req, "m", 1).unwrap().tool_choice).unwrap()
    };
    assert_eq!(choice(json!("auto"), None), json!({"type": "auto"}));
    assert_eq!(choice(json!("none"), None), json!({"type": "none"}));
    assert_eq!(
        choice(json!("required"), Some(false)),
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(
        choice(
            json!({"type": "function", "function": {"name": "f"}}),
            Some(true)
        ),
        json!({"type": "tool", "name": "f"})
    );
}

// ---- Anthropic client, OpenAI upstream ---------------------------------------

#[test]
fn anthropic_requests_to_openai() {
    for path in [
        "anthropic/messages_request_basic.json",
        "anthropic/messages_request_image.json",
        "anthropic/messages_request_stream_minimal.json",
        "anthropic/messages_request_thinking.json",
        "anthropic/messages_request_tools.json",
        "anthropic/messages_request_tools_stream.json",
        "anthropic/messages_request_tool_result.json",
        "anthropic/messages_request_tool_result_stream.json",
    ] {
        let req: MessagesRequest = serde_json::from_str(&fixture(path)).unwrap();
        let out = messages_to_chat::request(req, "gpt-4o").unwrap();
        insta::assert_json_snapshot!(format!("to_openai_request__{}", name(path)), out);
    }
}

#[test]
fn openai_responses_to_anthropic() {
    for path in [
        "openai/chat_response_basic.json",
        "openai/chat_response_tool_calls.json",
        "openai/chat_response_after_tool_result.json",
    ] {
        let completion: ChatCompletion = serde_json::from_str(&fixture(path)).unwrap();
        let out = messages_to_chat::response(completion).unwrap();
        insta::assert_json_snapshot!(format!("to_anthropic_response__{}", name(path)), out);
    }
}

fn openai_stream_to_anthropic(path: &str) -> Vec<Value> {
    let mut t = messages_to_chat::StreamTranslator::new();
    let mut out = Vec::new();
    for event in sse_events(path) {
        if event.data == "[DONE]" {
            break;
        }
        out.extend(t.chunk(&event.data).unwrap());
    }
    out.extend(t.finish());
    out.into_iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

#[test]
fn openai_streams_to_anthropic_events() {
    for path in [
        "openai/chat_stream_basic.sse",
        "openai/chat_stream_basic_2024-09.sse",
        "openai/chat_stream_tool_calls.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
    ] {
        let events = openai_stream_to_anthropic(path);
        insta::assert_json_snapshot!(format!("to_anthropic_events__{}", name(path)), events);
        // Anthropic's sequence: message_start, (block start, deltas, block stop)*,
        // message_delta, message_stop.
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types[0], "message_start");
        assert_eq!(&types[types.len() - 2..], ["message_delta", "message_stop"]);
        let mut open = None;
        for e in &events {
            match e["type"].as_str().unwrap() {
                "content_block_start" => {
                    assert!(open.is_none());
                    open = Some(e["index"].clone());
                }
                "content_block_delta" => assert_eq!(Some(e["index"].clone()), open),
                "content_block_stop" => assert_eq!(open.take(), Some(e["index"].clone())),
                _ => assert!(open.is_none() || e["type"] == "content_block_delta"),
            }
        }
    }
}

#[test]
fn openai_errors_to_anthropic() {
    for (path, status) in [
        ("openai/error_auth_401.json", 401),
        ("openai/error_invalid_request.json", 400),
        ("openai/error_model_not_found_404.json", 404),
        ("openai/error_rate_limit_429.json", 429),
        ("openai/error_insufficient_quota_429.json", 429),
    ] {
        let body = llm::openai::ErrorBody::from_upstream(status, fixture(path).as_bytes());
        let (status, out) = messages_to_chat::error(status, &body);
        insta::assert_json_snapshot!(
            format!("to_anthropic_error__{}", name(path)),
            json!({"status": status, "body": out})
        );
    }
    let (status, body) = messages_to_chat::error(
        503,
        &llm::openai::ErrorBody::new("busy", "server_error", None, None),
    );
    assert_eq!(
        (status, body.error.kind.as_str()),
        (529, "overloaded_error")
    );
}

#[test]
fn malformed_openai_streams_and_unsupported_anthropic_requests_give_clear_errors() {
    let mut t = messages_to_chat::StreamTranslator::new();
    assert!(
        t.chunk("{nope")
            .unwrap_err()
            .to_string()
            .contains("unreadable OpenAI stream chunk")
    );

    let mut t = messages_to_chat::StreamTranslator::new();
    let chunk = |delta: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
        .to_string()
    };
    t.chunk(&chunk(json!({"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": ""}}]}))).unwrap();
    t.chunk(&chunk(json!({"tool_calls": [{"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}]}))).unwrap();
    let err = t
        .chunk(&chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("continued after"), "{err}");

    let refuse = |body: Value| {
        let req: MessagesRequest = serde_json::from_value(body).unwrap();
        messages_to_chat::request(req, "m").unwrap_err().to_string()
    };
    assert!(refuse(json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]}))
    .contains("'document'"));
    assert!(
        refuse(
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]})
        )
        .contains("server tool")
    );

    let bad_args: ChatCompletion = serde_json::from_value(json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}}]})).unwrap();
    assert!(
        messages_to_chat::response(bad_args)
            .unwrap_err()
            .to_string()
            .contains("not valid JSON")
    );
}
