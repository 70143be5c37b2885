//! Anthropic's `/v1/messages` and `/v1/messages/count_tokens`, checked and
//! answered the way Anthropic does.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::behavior::Behavior;
use crate::fixtures::anthropic as fx;
use crate::openai::{pre_answer_with, sse_frames};
use crate::server::Shared;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
}

/// Anthropic's error body for a status: the recorded one where there is one.
pub fn error_response(status: u16, body: Option<&str>) -> Response {
    let recorded = match status {
        400 => Some(fx::ERROR_INVALID_REQUEST),
        401 => Some(fx::ERROR_AUTH_401),
        404 => Some(fx::ERROR_NOT_FOUND_404),
        429 => Some(fx::ERROR_RATE_LIMIT_429),
        529 => Some(fx::ERROR_OVERLOADED),
        _ => None,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body
        .or(recorded)
        .map_or_else(
            || json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}).to_string(),
            str::to_owned,
        );
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn invalid(shared: &Shared, message: &str) -> Response {
    shared.invalid_request(message);
    let body =
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}});
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The checks Anthropic makes that translators get wrong, in Anthropic's order:
/// the first that fails gives the message.
pub fn validate(req: &Value) -> Result<(), String> {
    check_model(req)?;
    check_max_tokens(req)?;
    check_temperature(req)?;
    check_system(req)?;
    check_messages(req)?;
    check_tools(req)
}

fn check_model(req: &Value) -> Result<(), String> {
    if req["model"].as_str().is_none_or(str::is_empty) {
        return Err("model: Field required".into());
    }
    Ok(())
}

fn check_max_tokens(req: &Value) -> Result<(), String> {
    if req["max_tokens"].as_u64().is_none_or(|m| m < 1) {
        return Err("max_tokens: Field required".into());
    }
    Ok(())
}

fn check_temperature(req: &Value) -> Result<(), String> {
    if let Some(t) = req.get("temperature").and_then(Value::as_f64)
        && !(0.0..=1.0).contains(&t)
    {
        return Err("temperature: Input should be less than or equal to 1".into());
    }
    Ok(())
}

/// `system`: absent, a string, or a list of text blocks.
fn check_system(req: &Value) -> Result<(), String> {
    match &req["system"] {
        Value::Null | Value::String(_) => Ok(()),
        Value::Array(blocks) if blocks.iter().all(|b| b["type"] == "text") => Ok(()),
        _ => Err("system: Input should be a valid string or a list of text blocks".into()),
    }
}

/// The conversation, message by message: roles, content blocks, and every
/// assistant `tool_use` answered by a `tool_result` in the next user message.
fn check_messages(req: &Value) -> Result<(), String> {
    let Some(messages) = req["messages"].as_array().filter(|m| !m.is_empty()) else {
        return Err("messages: at least one message is required".into());
    };
    // The tool_use ids of the assistant message just before, still unanswered.
    let mut previous_tool_uses: Vec<String> = Vec::new();
    for i in 0..messages.len() {
        check_message(messages, i, &mut previous_tool_uses)?;
    }
    Ok(())
}

/// Message `i`; updates `previous_tool_uses` for the message after it.
fn check_message(
    messages: &[Value],
    i: usize,
    previous_tool_uses: &mut Vec<String>,
) -> Result<(), String> {
    let role = check_role(messages, i)?;
    let blocks = content_blocks(&messages[i], i)?;
    let mut scan = BlockScan::default();
    for (j, block) in blocks.iter().enumerate() {
        check_block(block, (i, j), role, previous_tool_uses, &mut scan)?;
    }
    if role == "user" {
        if let Some(missing) = previous_tool_uses
            .iter()
            .find(|t| !scan.answered.contains(t))
        {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}"
            ));
        }
        previous_tool_uses.clear();
    } else {
        *previous_tool_uses = scan.tool_uses;
    }
    Ok(())
}

/// Message `i`'s role: user or assistant, user first, then alternating.
fn check_role(messages: &[Value], i: usize) -> Result<&str, String> {
    let message = &messages[i];
    let role = message["role"].as_str().unwrap_or("");
    if role != "user" && role != "assistant" {
        return Err(format!(
            "messages.{i}.role: Input should be 'user' or 'assistant'"
        ));
    }
    if i == 0 && role != "user" {
        return Err("messages: first message must use the \"user\" role".into());
    }
    if i > 0 && messages[i - 1]["role"] == message["role"] {
        return Err("messages: roles must alternate between \"user\" and \"assistant\"".into());
    }
    Ok(role)
}

/// The message's content as blocks: a string is one text block.
fn content_blocks(message: &Value, i: usize) -> Result<Vec<Value>, String> {
    match &message["content"] {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(blocks) if !blocks.is_empty() => Ok(blocks.clone()),
        _ => Err(format!(
            "messages.{i}.content: Input should be a string or a non-empty list"
        )),
    }
}

/// What one message's blocks held so far.
#[derive(Default)]
struct BlockScan {
    /// A block other than `tool_result` came already.
    seen_other: bool,
    /// The `tool_use_id`s of its `tool_result` blocks.
    answered: Vec<String>,
    /// The ids of its `tool_use` blocks.
    tool_uses: Vec<String>,
}

/// Block `j` of message `i` (`at` = (i, j)), by its type.
fn check_block(
    block: &Value,
    at: (usize, usize),
    role: &str,
    previous_tool_uses: &[String],
    scan: &mut BlockScan,
) -> Result<(), String> {
    let (i, j) = at;
    match block["type"].as_str().unwrap_or("") {
        "text" => {
            if !block["text"].is_string() {
                return Err(format!("messages.{i}.content.{j}.text: Field required"));
            }
            scan.seen_other = true;
        }
        "image" => {
            if !image_source_ok(&block["source"]) || role != "user" {
                return Err(format!(
                    "messages.{i}.content.{j}.image.source: invalid image source"
                ));
            }
            scan.seen_other = true;
        }
        "tool_use" => {
            scan.tool_uses.push(check_tool_use(block, at, role)?);
            scan.seen_other = true;
        }
        "tool_result" => {
            let id = check_tool_result(block, at, role, scan.seen_other, previous_tool_uses)?;
            scan.answered.push(id);
        }
        "thinking" | "redacted_thinking" | "document" => scan.seen_other = true,
        other => {
            return Err(format!(
                "messages.{i}.content.{j}.type: unknown block type '{other}'"
            ));
        }
    }
    Ok(())
}

/// An image source: base64 of a type Anthropic takes, or an http(s) URL.
fn image_source_ok(source: &Value) -> bool {
    match source["type"].as_str() {
        Some("base64") => {
            matches!(
                source["media_type"].as_str(),
                Some("image/jpeg" | "image/png" | "image/gif" | "image/webp")
            ) && source["data"].as_str().is_some_and(|d| !d.is_empty())
        }
        Some("url") => source["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http")),
        _ => false,
    }
}

/// A `tool_use` block: in an assistant message, with an id and an object input;
/// returns its id.
fn check_tool_use(block: &Value, (i, j): (usize, usize), role: &str) -> Result<String, String> {
    if role != "assistant" || !block["id"].is_string() || !block["input"].is_object() {
        return Err(format!("messages.{i}.content.{j}: invalid tool_use block"));
    }
    Ok(block["id"].as_str().unwrap_or("").to_owned())
}

/// A `tool_result` block: in a user message, before any other block, answering
/// a `tool_use` of the message before; returns the id it answers.
fn check_tool_result(
    block: &Value,
    (i, j): (usize, usize),
    role: &str,
    seen_other: bool,
    previous_tool_uses: &[String],
) -> Result<String, String> {
    if role != "user" {
        return Err(format!(
            "messages.{i}.content.{j}: tool_result blocks belong in user messages"
        ));
    }
    if seen_other {
        return Err(format!(
            "messages.{i}.content.{j}: tool_result blocks must come before any other content in a user message"
        ));
    }
    let id = block["tool_use_id"].as_str().unwrap_or("");
    if !previous_tool_uses.iter().any(|t| t == id) {
        return Err(format!(
            "messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
        ));
    }
    Ok(id.to_owned())
}

/// Each tool: a name, and for a custom tool an input schema.
fn check_tools(req: &Value) -> Result<(), String> {
    if let Some(tools) = req["tools"].as_array() {
        for (k, tool) in tools.iter().enumerate() {
            let custom = tool.get("type").is_none_or(|t| t == "custom");
            if !tool["name"].is_string() || (custom && !tool["input_schema"].is_object()) {
                return Err(format!("tools.{k}: name and input_schema are required"));
            }
        }
    }
    Ok(())
}

enum Answer {
    Text,
    ToolUse,
    AfterToolResult,
    Thinking,
}

fn answer_for(req: &Value) -> Answer {
    let last = req["messages"].as_array().and_then(|m| m.last());
    let has_tool_result = last
        .and_then(|m| m["content"].as_array())
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    if has_tool_result {
        return Answer::AfterToolResult;
    }
    let tools = req["tools"].as_array().is_some_and(|t| !t.is_empty());
    if tools && req["tool_choice"]["type"] != "none" {
        return Answer::ToolUse;
    }
    if req["thinking"]["type"] == "enabled" {
        return Answer::Thinking;
    }
    Answer::Text
}

async fn messages(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let (behavior, req) = match pre_answer_with(&shared, req, error_response).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if !headers.contains_key("x-api-key") {
        return error_response(401, None);
    }
    if !headers.contains_key("anthropic-version") {
        return invalid(&shared, "anthropic-version: header is required");
    }
    if let Err(message) = validate(&req) {
        return invalid(&shared, &message);
    }
    let answer = answer_for(&req);
    if req["stream"].as_bool() != Some(true) {
        let recorded = behavior
            .fixture
            .as_deref()
            .and_then(fx::by_name)
            .unwrap_or(match answer {
                Answer::Text | Answer::Thinking => fx::RESPONSE_BASIC,
                Answer::ToolUse => fx::RESPONSE_TOOL_USE,
                Answer::AfterToolResult => fx::RESPONSE_AFTER_TOOL_RESULT,
            });
        let mut body: Value = serde_json::from_str(recorded).unwrap_or(Value::Null);
        if let Some(obj) = body.as_object_mut() {
            for (k, v) in &behavior.extra_fields {
                obj.insert(k.clone(), v.clone());
            }
        }
        return (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body.to_string(),
        )
            .into_response();
    }
    let recorded = behavior
        .fixture
        .as_deref()
        .and_then(fx::by_name)
        .unwrap_or(match answer {
            Answer::Text => fx::STREAM_MINIMAL,
            Answer::ToolUse => fx::STREAM_TOOL_USE,
            Answer::AfterToolResult => fx::STREAM_BASIC,
            Answer::Thinking => fx::STREAM_THINKING,
        });
    let frames = stream_frames(recorded, &behavior, matches!(answer, Answer::Text));
    let error = frames_of(fx::STREAM_ERROR)
        .into_iter()
        .next()
        .unwrap_or_default();
    sse_frames(shared, behavior, frames, error)
}

/// The recorded events as frames, data byte for byte (padding included).
fn frames_of(sse: &str) -> Vec<Bytes> {
    let mut decoder = llm::sse::Decoder::new();
    let mut events = decoder.feed(sse.as_bytes()).unwrap_or_default();
    if let Ok(Some(e)) = decoder.finish() {
        events.push(e);
    }
    events
        .into_iter()
        .map(|e| llm::sse::event_frame(e.event.as_deref().unwrap_or("message"), e.data.as_bytes()))
        .collect()
}

const WORDS: &[&str] = &["One", " plus", " one", " is", " two", "."];

/// The recorded stream; for a text answer with `chunks` set, that many text deltas
/// between the recorded block start and block stop.
fn stream_frames(recorded: &str, behavior: &Behavior, text: bool) -> Vec<Bytes> {
    let frames = frames_of(recorded);
    let Some(n) = behavior.chunks.filter(|_| text) else {
        return frames;
    };
    let mut out = Vec::new();
    for frame in frames {
        let is_delta = frame.starts_with(b"event: content_block_delta\n");
        if is_delta {
            continue;
        }
        let is_stop = frame.starts_with(b"event: content_block_stop\n");
        if is_stop {
            for i in 0..n {
                let data = json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": WORDS[i % WORDS.len()]}});
                out.push(llm::sse::event_frame(
                    "content_block_delta",
                    data.to_string().as_bytes(),
                ));
            }
        }
        out.push(frame);
    }
    out
}

/// `POST /v1/messages/count_tokens`: the recorded count (the one for a request
/// with tools when tools are sent), after Anthropic's checks of a Messages body
/// but `max_tokens`, which a count does not take.
async fn count_tokens(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let (_, req) = match pre_answer_with(&shared, req, error_response).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if !headers.contains_key("x-api-key") {
        return error_response(401, None);
    }
    if !headers.contains_key("anthropic-version") {
        return invalid(&shared, "anthropic-version: header is required");
    }
    if let Err(message) = check_model(&req)
        .and_then(|()| check_system(&req))
        .and_then(|()| check_messages(&req))
        .and_then(|()| check_tools(&req))
    {
        return invalid(&shared, &message);
    }
    let recorded = if req["tools"].as_array().is_some_and(|t| !t.is_empty()) {
        fx::COUNT_TOKENS_RESPONSE_TOOLS
    } else {
        fx::COUNT_TOKENS_RESPONSE
    };
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        recorded.to_owned(),
    )
        .into_response()
}
