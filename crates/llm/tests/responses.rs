//! The Responses API over the recorded payloads in `fixtures/`: Responses
//! requests translated to Chat (and on to Anthropic), Chat answers and streams
//! translated to Responses, each result compared to a reviewed JSON snapshot in
//! `tests/snapshots/` (the ids aiprox gives and the times redacted), and the
//! event order of every translated stream checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use llm::anthropic::MessagesResponse;
use llm::openai::ErrorBody;
use llm::openai::types::{ChatCompletion, ChatCompletionChunk, ChatCompletionRequest};
use llm::responses::{Echo, Item, Response, ResponseMeta, ResponsesRequest, StreamEvent};
use llm::sse::Decoder;
use llm::translate::responses_to_chat::{self, Omitted};
use llm::translate::{TranslateError, chat_to_messages};
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

fn meta() -> ResponseMeta {
    ResponseMeta {
        id: "resp_test".into(),
        created_at: CREATED,
        model: "client-model".into(),
    }
}

fn parse(body: Value) -> ResponsesRequest {
    ResponsesRequest::parse(body.to_string().as_bytes()).unwrap()
}

fn recorded_request(file: &str) -> ResponsesRequest {
    let path = format!("openai-responses/{file}");
    ResponsesRequest::parse(fixture(&path).as_bytes()).unwrap()
}

/// The output items of a recorded Response.
fn recorded_output(file: &str) -> Vec<Item> {
    let response: Response =
        serde_json::from_str(&fixture(&format!("openai-responses/{file}"))).unwrap();
    response.output
}

/// The conversation a gateway would have stored before each recorded
/// continuation: the earlier requests' input and the responses' output.
fn history_for(file: &str) -> Vec<Item> {
    let first = || {
        let mut items = recorded_request("responses_request_tools.json").input;
        items.extend(recorded_output("responses_response_function_call.json"));
        items
    };
    match file {
        "responses_request_function_call_output.json" => first(),
        "responses_request_function_call_output_2.json" => {
            let mut items = first();
            items.extend(recorded_request("responses_request_function_call_output.json").input);
            items.extend(recorded_output(
                "responses_response_function_call_retry.json",
            ));
            items
        }
        _ => Vec::new(),
    }
}

fn request_fixtures() -> Vec<String> {
    let dir = format!(
        "{}/../../fixtures/openai-responses",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("responses_request_"))
        .collect();
    names.sort();
    names
}

// ---- Requests: Responses → Chat (→ Anthropic) ---------------------------------

/// Every recorded request translates; the chat request reads back as one, and
/// `chat_to_messages` takes it, so Anthropic upstreams are served by chaining.
#[test]
fn recorded_requests_translate_to_chat() {
    let files = request_fixtures();
    assert_eq!(files.len(), 16);
    for file in files {
        let req = recorded_request(&file);
        let (chat, omitted) = responses_to_chat::request(&req, history_for(&file), "gpt-x")
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(omitted, Omitted::default(), "{file}");
        let value = serde_json::to_value(&chat).unwrap();
        let read_back: ChatCompletionRequest = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(read_back, chat, "{file}");
        assert_eq!(value["stream"] == json!(true), req.stream, "{file}");
        chat_to_messages::request(chat, "claude-x", 1024).unwrap_or_else(|e| panic!("{file}: {e}"));
        insta::assert_json_snapshot!(format!("to_chat_request__{}", name(&file)), value);
    }
}

#[test]
fn continuations_rebuild_the_conversation_in_chat_order() {
    let file = "responses_request_function_call_output_2.json";
    let (chat, _) =
        responses_to_chat::request(&recorded_request(file), history_for(file), "m").unwrap();
    let messages = serde_json::to_value(&chat.messages).unwrap();
    let roles: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant", "tool"]);
    assert_eq!(
        messages[1]["tool_calls"][0],
        json!({"id": "call_P1vN20XNjvNyIm0VshHYzmSA", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"New York\"}"}})
    );
    assert_eq!(messages[4]["tool_call_id"], "call_N2BikjqNxghwNIwHl2XKfb0F");
    assert_eq!(messages[4]["content"], "Sunny, 72F");
    // Without its history, the output answers no call: refused as OpenAI does.
    let err = responses_to_chat::request(&recorded_request(file), Vec::new(), "m").unwrap_err();
    assert_eq!(
        err.to_string(),
        "input[0]: No tool call found for function call output with call_id call_N2BikjqNxghwNIwHl2XKfb0F."
    );
}

#[test]
fn requests_map_member_by_member() {
    let req = parse(json!({
        "model": "m",
        "instructions": "Be brief.",
        "stream": true,
        "store": false,
        "metadata": {"k": "v"},
        "include": ["reasoning.encrypted_content"],
        "max_output_tokens": 300,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-1",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "P", "description": "a P",
            "schema": {"type": "object"}, "strict": true}, "verbosity": "low"},
        "tool_choice": {"type": "function", "name": "f"},
        "tools": [
            {"type": "web_search"},
            {"type": "function", "name": "f", "description": "does f", "parameters": {"type": "object"}, "strict": true},
            {"type": "namespace", "name": "web", "description": "Tools in the web namespace.", "tools": [
                {"type": "function", "name": "run", "description": "", "strict": false, "parameters": {"type": "object"}}]}
        ],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev rules"}]},
            {"role": "user", "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,AAAA"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}], "encrypted_content": "gAAA"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "f", "arguments": "{\"a\":2}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "one"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "t"}, {"type": "input_text", "text": "wo"}]},
            {"role": "system", "content": "late system"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
            {"role": "user", "content": "thanks"}
        ]
    }));
    let (chat, omitted) = responses_to_chat::request(&req, Vec::new(), "gpt-x").unwrap();
    assert_eq!(omitted.tools, ["web_search", "namespace"]);
    assert_eq!(
        serde_json::to_value(&chat).unwrap(),
        json!({
            "model": "gpt-x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "system", "content": "dev rules"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}]},
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":2}"}}]},
                {"role": "tool", "content": "one", "tool_call_id": "call_1"},
                {"role": "tool", "content": "two", "tool_call_id": "call_2"},
                {"role": "system", "content": "late system"},
                {"role": "assistant", "refusal": "No."},
                {"role": "user", "content": "thanks"}
            ],
            "max_completion_tokens": 300,
            "temperature": 0.5,
            "top_p": 0.9,
            "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "f", "description": "does f",
                "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "stream": true,
            "stream_options": {"include_usage": true},
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "P", "description": "a P", "schema": {"type": "object"}, "strict": true}},
            "reasoning_effort": "low"
        })
    );
}

/// Codex sends `web_search` (and `namespace` tools) on every request: left out,
/// with `tool_choice` and `parallel_tool_calls`, which Chat refuses without
/// tools.
#[test]
fn built_in_tools_are_left_out_and_named() {
    let req = parse(json!({"model": "m", "input": "hi", "tool_choice": "auto",
        "parallel_tool_calls": true, "tools": [{"type": "web_search"}, {"type": "local_shell"}]}));
    let (chat, omitted) = responses_to_chat::request(&req, Vec::new(), "m").unwrap();
    assert_eq!(omitted.tools, ["web_search", "local_shell"]);
    assert_eq!(
        (chat.tools, chat.tool_choice, chat.parallel_tool_calls),
        (None, None, None)
    );
    let req =
        parse(json!({"model": "m", "input": "hi", "text": {"format": {"type": "json_object"}}}));
    let (chat, _) = responses_to_chat::request(&req, Vec::new(), "m").unwrap();
    assert_eq!(
        chat.extra["response_format"],
        json!({"type": "json_object"})
    );
}

#[test]
fn requests_a_chat_upstream_cannot_serve_are_refused_clearly() {
    let refuse = |body: Value| match responses_to_chat::request(&parse(body), Vec::new(), "m") {
        Err(TranslateError::Unsupported(message)) => message,
        other => panic!("{other:?}"),
    };
    let cases = [
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search"}}),
            "tool_choice of type 'web_search' is not supported",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function", "name": "f"}],
                "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "f"}]}}),
            "tool_choice of type 'allowed_tools'",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "file_search"}], "tool_choice": "required"}),
            "built-in tools left out: file_search",
        ),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "input[0]: items of type 'item_reference' are not supported",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "x"}, {"type": "input_file", "file_url": "https://x/a.pdf"}]}]}),
            "input[0].content[1]: an input_file by file_url",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}),
            "input[0].content[0]: an input_image needs an image_url",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            "content part type 'input_audio'",
        ),
        (
            json!({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]}),
            "input[0].content[0]: a 'input_image' part is not supported here",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}),
            "text.format.name is required",
        ),
        (
            json!({"model": "m", "instructions": "only this"}),
            "at least one message",
        ),
    ];
    for (body, expected) in cases {
        let message = refuse(body.clone());
        assert!(message.contains(expected), "{body}: {message}");
    }
    // History items are named as such.
    let req = parse(json!({"model": "m", "input": "x"}));
    let history = vec![Item::from_value(json!({"type": "web_search_call", "id": "ws_1"})).unwrap()];
    let err = responses_to_chat::request(&req, history, "m").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("history[0]: items of type 'web_search_call'"),
        "{err}"
    );
}

// ---- Responses: Chat → Responses ------------------------------------------------

/// The echo of a plain request, as the recorded responses carry it.
fn echo() -> Echo {
    parse(json!({"model": "m", "input": "x"})).echo()
}

#[test]
fn chat_completions_translate_to_responses() {
    for path in [
        "openai/chat_response_basic.json",
        "openai/chat_response_tool_calls.json",
        "openai/chat_response_after_tool_result.json",
    ] {
        let completion: ChatCompletion = serde_json::from_str(&fixture(path)).unwrap();
        let response = responses_to_chat::response(completion, &meta(), echo()).unwrap();
        // It reads back as a Response.
        let value = serde_json::to_value(&response).unwrap();
        assert_eq!(
            serde_json::from_value::<Response>(value.clone()).unwrap(),
            response
        );
        insta::assert_json_snapshot!(format!("to_responses_response__{}", name(path)), value, {
            ".id" => "[id]",
            ".created_at" => "[created_at]",
            ".output[].id" => "[item_id]",
        });
    }
}

#[test]
fn completions_become_items_with_ids_from_the_response_id() {
    let completion: ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "deepseek-reasoner",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
            "reasoning_content": "Think.", "content": "Partial", "refusal": null,
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 7}}
    }))
    .unwrap();
    let response = responses_to_chat::response(completion, &meta(), echo()).unwrap();
    let value = serde_json::to_value(&response).unwrap();
    assert_eq!(value["id"], "resp_test");
    assert_eq!(value["model"], "deepseek-reasoner");
    assert_eq!(value["status"], "incomplete");
    assert_eq!(
        value["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(
        value["output"],
        json!([
            {"type": "reasoning", "id": "rs_test_0", "summary": [{"type": "summary_text", "text": "Think."}]},
            {"type": "message", "id": "msg_test_1", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Partial", "annotations": []}]},
            {"type": "function_call", "id": "fc_test_2", "call_id": "call_9", "name": "f",
             "arguments": "{}", "status": "incomplete"}
        ])
    );
    assert_eq!(
        value["usage"],
        json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 20, "output_tokens_details": {"reasoning_tokens": 7}, "total_tokens": 30})
    );
    let refused: ChatCompletion = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "",
        "choices": [{"index": 0, "finish_reason": "content_filter",
            "message": {"role": "assistant", "content": null, "refusal": "I can't."}}]
    }))
    .unwrap();
    let response = responses_to_chat::response(refused, &meta(), echo()).unwrap();
    let value = serde_json::to_value(&response).unwrap();
    assert_eq!(value["model"], "client-model");
    assert_eq!(
        value["incomplete_details"],
        json!({"reason": "content_filter"})
    );
    assert_eq!(
        value["output"][0]["content"],
        json!([{"type": "refusal", "refusal": "I can't."}])
    );
    assert_eq!(value["usage"], Value::Null);
    let empty: ChatCompletion = serde_json::from_value(
        json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": []}),
    )
    .unwrap();
    assert!(matches!(
        responses_to_chat::response(empty, &meta(), echo()),
        Err(TranslateError::Upstream(_))
    ));
}

// ---- Streams: Chat chunks → Responses events -----------------------------------

fn chat_chunks(path: &str) -> Vec<ChatCompletionChunk> {
    sse_events(path)
        .into_iter()
        .take_while(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

fn translate_stream(chunks: Vec<ChatCompletionChunk>) -> Vec<StreamEvent> {
    let mut t = responses_to_chat::StreamTranslator::new(meta(), echo());
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(t.chunk(chunk).unwrap());
    }
    events.extend(t.finish());
    assert!(t.finish().is_empty(), "finish twice sends nothing");
    assert_eq!(
        serde_json::to_value(t.response()).unwrap(),
        serde_json::to_value(events.last().unwrap()).unwrap()["response"],
        "the translator's response is the terminal event's"
    );
    events
}

/// Checks a Responses event sequence as a client reads it: numbered 0, 1, 2…;
/// `created`, `in_progress` first and one terminal event last; items added in
/// output order and never overlapping; parts and summaries opened before their
/// deltas and closed before their item; every delta naming the open item; the
/// `.done` texts equal to the deltas joined; and the terminal response's output
/// equal to the items as `output_item.done` gave them. Returns the event types.
fn check_stream(events: &[Value]) -> Vec<String> {
    let types: Vec<String> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i, "event {i}");
    }
    assert_eq!(types[0], "response.created");
    assert_eq!(types[1], "response.in_progress");
    for e in &events[..2] {
        assert_eq!(e["response"]["status"], "in_progress");
        assert_eq!(e["response"]["output"], json!([]));
        assert_eq!(e["response"]["usage"], Value::Null);
    }
    let terminal = [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ];
    assert!(
        terminal.contains(&types.last().unwrap().as_str()),
        "{types:?}"
    );
    assert!(
        types[..types.len() - 1]
            .iter()
            .all(|t| !terminal.contains(&t.as_str()))
    );

    // (output_index, item_id) of the open item; the open part; texts so far.
    let mut open: Option<(u64, String)> = None;
    let mut part: Option<u64> = None;
    let mut texts: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut done_items = Vec::new();
    for e in &events[2..events.len() - 1] {
        let kind = e["type"].as_str().unwrap();
        let here = || {
            (
                e["output_index"].as_u64().unwrap(),
                e["item_id"].as_str().unwrap().to_owned(),
            )
        };
        match kind {
            "response.output_item.added" => {
                assert!(open.is_none(), "item added while another is open");
                let index = e["output_index"].as_u64().unwrap();
                assert_eq!(index, done_items.len() as u64, "items in output order");
                open = Some((index, e["item"]["id"].as_str().unwrap().to_owned()));
            }
            "response.output_item.done" => {
                assert!(part.is_none(), "item done with a part open");
                let (index, id) = open.take().expect("done without added");
                assert_eq!(e["output_index"], index);
                assert_eq!(e["item"]["id"], id);
                done_items.push(e["item"].clone());
            }
            "response.content_part.added" | "response.reasoning_summary_part.added" => {
                assert_eq!(Some(here()), open);
                assert!(part.is_none());
                let index = e["content_index"].as_u64().or(e["summary_index"].as_u64());
                part = index;
            }
            "response.content_part.done" | "response.reasoning_summary_part.done" => {
                assert_eq!(Some(here()), open);
                let index = e["content_index"].as_u64().or(e["summary_index"].as_u64());
                assert_eq!(part.take(), index);
            }
            "response.output_text.delta"
            | "response.refusal.delta"
            | "response.reasoning_summary_text.delta" => {
                assert_eq!(Some(here()), open);
                let index = e["content_index"].as_u64().or(e["summary_index"].as_u64());
                assert_eq!(part, index, "delta outside its part");
                let key = (here().0, index.unwrap());
                texts
                    .entry(key)
                    .or_default()
                    .push_str(e["delta"].as_str().unwrap());
            }
            "response.output_text.done"
            | "response.refusal.done"
            | "response.reasoning_summary_text.done" => {
                assert_eq!(Some(here()), open);
                let index = e["content_index"].as_u64().or(e["summary_index"].as_u64());
                assert_eq!(part, index);
                let text = e["text"].as_str().or(e["refusal"].as_str()).unwrap();
                let key = (here().0, index.unwrap());
                assert_eq!(texts.get(&key).map_or("", String::as_str), text);
            }
            "response.function_call_arguments.delta" => {
                assert_eq!(Some(here()), open);
                let key = (here().0, u64::MAX);
                texts
                    .entry(key)
                    .or_default()
                    .push_str(e["delta"].as_str().unwrap());
            }
            "response.function_call_arguments.done" => {
                assert_eq!(Some(here()), open);
                let key = (here().0, u64::MAX);
                assert_eq!(texts.get(&key).map_or("", String::as_str), e["arguments"]);
            }
            "error" => assert_eq!(types.last().unwrap(), "response.failed"),
            other => panic!("unexpected {other}"),
        }
    }
    let last = events.last().unwrap();
    if last["type"] != "response.failed" {
        assert!(open.is_none(), "an item left open");
        assert_eq!(last["response"]["output"], Value::Array(done_items));
    }
    types
}

#[test]
fn chat_streams_translate_to_responses_events() {
    for path in [
        "openai/chat_stream_basic.sse",
        "openai/chat_stream_basic_2024-09.sse",
        "openai/chat_stream_tool_calls.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
    ] {
        let chunks = chat_chunks(path);
        let events: Vec<Value> = translate_stream(chunks.clone())
            .iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect();
        check_stream(&events);
        // The streamed response is the one the whole completion translates to.
        let payloads: Vec<bytes::Bytes> = sse_events(path)
            .into_iter()
            .take_while(|e| e.data != "[DONE]")
            .map(|e| bytes::Bytes::from(e.data))
            .collect();
        let (whole, _) = llm::assemble::openai(&payloads);
        let completion: ChatCompletion = serde_json::from_slice(&whole).unwrap();
        let response = responses_to_chat::response(completion, &meta(), echo()).unwrap();
        assert_eq!(
            events.last().unwrap()["response"],
            serde_json::to_value(&response).unwrap(),
            "{path}"
        );
        insta::assert_json_snapshot!(format!("to_responses_events__{}", name(path)), events, {
            "[].response.id" => "[id]",
            "[].response.created_at" => "[created_at]",
            "[].response.output[].id" => "[item_id]",
            "[].item.id" => "[item_id]",
            "[].item_id" => "[item_id]",
        });
    }
}

#[test]
fn the_event_sequence_of_a_text_and_of_parallel_calls() {
    let events = translate_stream(chat_chunks("openai/chat_stream_basic.sse"));
    let types: Vec<&str> = events.iter().map(StreamEvent::name).collect();
    let mut expected = vec![
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ];
    let deltas = types.len() - 8;
    expected.extend(std::iter::repeat_n("response.output_text.delta", deltas));
    expected.extend([
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]);
    assert_eq!(types, expected);
    let last = serde_json::to_value(events.last().unwrap()).unwrap();
    assert_eq!(
        last["response"]["usage"],
        json!({"input_tokens": 14, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 8, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 22})
    );
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"],
        "The capital of Mexico is Mexico City."
    );

    let events = translate_stream(chat_chunks("openai/chat_stream_parallel_tool_calls.sse"));
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let added: Vec<(u64, &str, &str)> = values
        .iter()
        .filter(|e| e["type"] == "response.output_item.added")
        .map(|e| {
            (
                e["output_index"].as_u64().unwrap(),
                e["item"]["id"].as_str().unwrap(),
                e["item"]["call_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        added,
        [
            (0, "fc_test_0", "call_3rqTYrA6H21AYUaRGP4F66oq"),
            (1, "fc_test_1", "call_Xw9XMKBJU48kAAd78WgIswDx")
        ]
    );
    let first_done = values
        .iter()
        .position(|e| e["type"] == "response.output_item.done")
        .unwrap();
    let second_added = values
        .iter()
        .rposition(|e| e["type"] == "response.output_item.added")
        .unwrap();
    assert!(
        first_done < second_added,
        "the first call is done before the second begins"
    );
}

fn chunk(delta: Value, finish: Option<&str>) -> ChatCompletionChunk {
    serde_json::from_value(
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1,
        "model": "up-model", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
    )
    .unwrap()
}

#[test]
fn reasoning_refusals_and_cut_answers_stream_as_their_own_items_and_parts() {
    let chunks = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "Let me "}), None),
        chunk(json!({"reasoning_content": "think."}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({"refusal": "But no."}), None),
        chunk(json!({}), Some("length")),
    ];
    let events = translate_stream(chunks);
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let types = check_stream(&values);
    assert_eq!(
        types[2..],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.content_part.added",
            "response.refusal.delta",
            "response.refusal.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.incomplete",
        ]
    );
    let response = &values.last().unwrap()["response"];
    assert_eq!(response["status"], "incomplete");
    assert_eq!(response["model"], "up-model");
    assert_eq!(
        response["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(
        response["output"],
        json!([
            {"type": "reasoning", "id": "rs_test_0", "summary": [{"type": "summary_text", "text": "Let me think."}]},
            {"type": "message", "id": "msg_test_1", "status": "incomplete", "role": "assistant", "content": [
                {"type": "output_text", "text": "Hello", "annotations": []},
                {"type": "refusal", "refusal": "But no."}]}
        ])
    );

    // Nothing at all still makes one (empty) message.
    let events = translate_stream(vec![chunk(json!({"content": ""}), Some("stop"))]);
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    check_stream(&values);
    assert_eq!(
        values.last().unwrap()["response"]["output"][0]["content"],
        json!([{"type": "output_text", "text": "", "annotations": []}])
    );
}

#[test]
fn a_failure_mid_stream_sends_error_then_response_failed() {
    let mut t = responses_to_chat::StreamTranslator::new(meta(), echo());
    let mut events = Vec::new();
    events.extend(t.chunk(chunk(json!({"content": "Par"}), None)).unwrap());
    events.extend(t.fail("upstream_timeout", "The upstream stopped answering."));
    assert!(t.fail("x", "y").is_empty() && t.finish().is_empty());
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let types = check_stream(&values[..values.len()]);
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "error",
            "response.failed"
        ]
        .map(String::from)
    );
    assert_eq!(
        values[5],
        json!({"type": "error", "code": "upstream_timeout", "message": "The upstream stopped answering.",
            "param": null, "error": {"type": "upstream_timeout", "code": "upstream_timeout",
            "message": "The upstream stopped answering.", "param": null}, "sequence_number": 5})
    );
    let failed = &values[6]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "upstream_timeout", "message": "The upstream stopped answering."})
    );
    assert_eq!(failed["output"][0]["status"], "incomplete");
    assert_eq!(failed["output"][0]["content"][0]["text"], "Par");
    // A frame names its event by its type.
    let frame = events[5].frame();
    assert!(frame.starts_with(b"event: error\ndata: {\"type\":\"error\""));
}

#[test]
fn a_tool_call_resumed_after_another_item_is_a_broken_stream() {
    let mut t = responses_to_chat::StreamTranslator::new(meta(), echo());
    let call = |index: u32, id: Option<&str>, args: &str| {
        chunk(
            json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                "function": {"name": "f", "arguments": args}}]}),
            None,
        )
    };
    let mut events = t.chunk(call(0, Some("call_a"), "{")).unwrap();
    events.extend(t.chunk(call(1, Some("call_b"), "{}")).unwrap());
    let err = t.chunk(call(0, None, "}")).unwrap_err();
    assert!(err.to_string().contains("tool call 0 continued"), "{err}");
    events.extend(t.fail("upstream_protocol_error", &err.to_string()));
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(check_stream(&values).last().unwrap(), "response.failed");

    // Events a refused chunk made before its fault are not lost: they lead the
    // failure's, numbered in turn.
    let mut t = responses_to_chat::StreamTranslator::new(meta(), echo());
    let both = chunk(
        json!({"tool_calls": [
            {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            {"index": 0, "function": {"arguments": " "}}]}),
        None,
    );
    assert!(t.chunk(both).is_err());
    let events = t.fail("upstream_protocol_error", "broken");
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let types = check_stream(&values);
    assert_eq!(types[2], "response.output_item.added");
    assert_eq!(
        values.last().unwrap()["response"]["output"][1]["status"],
        "incomplete"
    );
    assert!(
        t.chunk(chunk(json!({"content": "late"}), None))
            .unwrap()
            .is_empty()
    );
}

// ---- Anthropic upstreams: Responses → Chat → Anthropic, and back ------------------

#[test]
fn an_anthropic_answer_reaches_a_responses_client_through_chat() {
    let req = recorded_request("responses_request_tools.json");
    let (chat, _) = responses_to_chat::request(&req, Vec::new(), "claude-haiku-4-5").unwrap();
    let messages_request = chat_to_messages::request(chat, "claude-haiku-4-5", 1024).unwrap();
    let sent = serde_json::to_value(&messages_request).unwrap();
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
    assert_eq!(
        sent["messages"][0]["content"][0]["text"],
        "What's the weather in New York?"
    );

    let message: MessagesResponse =
        serde_json::from_str(&fixture("anthropic/messages_response_tool_use.json")).unwrap();
    let completion = chat_to_messages::response(message, CREATED).unwrap();
    let response = responses_to_chat::response(completion, &meta(), req.echo()).unwrap();
    let value = serde_json::to_value(&response).unwrap();
    assert_eq!(value["model"], "claude-haiku-4-5-20251001");
    assert_eq!(value["status"], "completed");
    assert_eq!(
        value["output"],
        json!([{"type": "function_call", "id": "fc_test_0", "call_id": "toolu_011bpynHqFZ9P4u5rSaXsTJQ",
            "name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\",\"units\":\"f\"}",
            "status": "completed"}])
    );
    assert_eq!(value["usage"]["input_tokens"], 656);
    assert_eq!(value["usage"]["output_tokens"], 74);
    assert_eq!(value["tools"][0]["name"], "get_weather");
    insta::assert_json_snapshot!("anthropic_to_responses_response__messages_response_tool_use", value, {
        ".id" => "[id]",
        ".created_at" => "[created_at]",
        ".output[].id" => "[item_id]",
    });
}

#[test]
fn an_anthropic_stream_reaches_a_responses_client_through_chat() {
    let mut chat = chat_to_messages::StreamTranslator::new(true, CREATED);
    let mut responses = responses_to_chat::StreamTranslator::new(meta(), echo());
    let mut events = Vec::new();
    for event in sse_events("anthropic/messages_stream_thinking.sse") {
        for chunk in chat.event(&event.data).unwrap() {
            events.extend(responses.chunk(chunk).unwrap());
        }
    }
    chat.finish().unwrap();
    events.extend(responses.finish());
    let values: Vec<Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    check_stream(&values);
    let response = &values.last().unwrap()["response"];
    let kinds: Vec<&str> = response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["reasoning", "message"]);
    assert!(
        !response["output"][0]["summary"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert!(response["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        values
            .iter()
            .filter(|e| e["type"] == "response.completed")
            .count(),
        1
    );
}

// ---- Errors -------------------------------------------------------------------------

#[test]
fn errors_keep_the_chat_shape_but_an_unknown_model_is_a_400() {
    let recorded: ErrorBody =
        serde_json::from_str(&fixture("openai-responses/error_model_not_found_400.json")).unwrap();
    let chat = ErrorBody::from_upstream(
        404,
        fixture("openai/error_model_not_found_404.json").as_bytes(),
    );
    let (status, body) = responses_to_chat::error(404, &chat);
    assert_eq!(status, 400);
    assert_eq!(
        (&body.error.kind, &body.error.param, &body.error.code),
        (
            &recorded.error.kind,
            &recorded.error.param,
            &recorded.error.code
        )
    );
    for (path, status) in [
        ("openai/error_rate_limit_429.json", 429),
        ("openai/error_auth_401.json", 401),
        ("openai/error_insufficient_quota_429.json", 429),
    ] {
        let chat = ErrorBody::from_upstream(status, fixture(path).as_bytes());
        assert_eq!(
            responses_to_chat::error(status, &chat),
            (status, chat),
            "{path}"
        );
    }
    // Through Anthropic: its 404 for a model is the same 400.
    let anthropic = llm::anthropic::ErrorBody::from_upstream(
        404,
        fixture("anthropic/error_not_found_404.json").as_bytes(),
    );
    let (status, chat) = chat_to_messages::error(404, &anthropic);
    let (status, body) = responses_to_chat::error(status, &chat);
    assert_eq!((status, body.error.param.as_deref()), (400, Some("model")));
}
