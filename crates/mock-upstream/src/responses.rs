//! OpenAI's `/v1/responses` and the legacy `/v1/completions`, answered like the
//! vendor. Responses come from the recordings (`fixtures/openai-responses/`):
//! a function call when function tools are offered and the last input item is
//! not a call's output, the answer after it when it is, structured output for a
//! JSON schema, plain text otherwise; streams as `event:` + `data:` frames with
//! no `[DONE]`. The recorded response's `id` is made unique per request (the
//! gateway keys stored conversations by it) and its `model` is the one asked.
//! No recording of legacy completions exists: they are built here in the
//! documented `text_completion` shape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::fixtures::responses as fx;
use crate::openai::{json_response, parse_stream, pre_answer_with, sse_frames, sse_response};
use crate::server::Shared;

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/responses", post(responses))
        .route("/v1/completions", post(completions))
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

static TEXT: LazyLock<Value> = LazyLock::new(|| parse(fx::RESPONSE_BASIC));
static CALL: LazyLock<Value> = LazyLock::new(|| parse(fx::RESPONSE_FUNCTION_CALL));
static AFTER_CALL: LazyLock<Value> =
    LazyLock::new(|| parse(fx::RESPONSE_AFTER_FUNCTION_CALL_OUTPUT));
static SCHEMA: LazyLock<Value> = LazyLock::new(|| parse(fx::RESPONSE_JSON_SCHEMA));
static STREAM_TEXT: LazyLock<Vec<Value>> = LazyLock::new(|| parse_stream(fx::STREAM_TEXT));
static STREAM_CALL: LazyLock<Vec<Value>> =
    LazyLock::new(|| parse_stream(fx::STREAM_REASONING_FUNCTION_CALL));

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

enum Answer {
    Text,
    Call,
    AfterCall,
    Schema,
}

fn answer_for(req: &Value) -> Answer {
    let last_kind = req["input"]
        .as_array()
        .and_then(|items| items.last())
        .and_then(|item| item["type"].as_str());
    if last_kind == Some("function_call_output") {
        return Answer::AfterCall;
    }
    let functions = req["tools"]
        .as_array()
        .is_some_and(|tools| tools.iter().any(|t| t["type"] == "function"));
    if functions {
        Answer::Call
    } else if req["text"]["format"]["type"] == "json_schema" {
        Answer::Schema
    } else {
        Answer::Text
    }
}

/// The recorded response, with a fresh id and the model asked for.
fn fresh(mut response: Value, id: &str, model: &Value) -> Value {
    response["id"] = id.into();
    if model.is_string() {
        response["model"] = model.clone();
    }
    response
}

async fn responses(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (behavior, req) = match pre_answer_with(&shared, req, crate::openai::error_response).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = format!("resp_mock{:08}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let answer = answer_for(&req);
    if req["stream"].as_bool() != Some(true) {
        let recorded = match answer {
            Answer::Text => &*TEXT,
            Answer::Call => &*CALL,
            Answer::AfterCall => &*AFTER_CALL,
            Answer::Schema => &*SCHEMA,
        };
        return json_response(&fresh(recorded.clone(), &id, &req["model"]));
    }
    let recorded = match answer {
        Answer::Call => &*STREAM_CALL,
        _ => &*STREAM_TEXT,
    };
    let frames: Vec<Bytes> = recorded
        .iter()
        .map(|event| {
            let mut event = event.clone();
            if event["response"].is_object() {
                event["response"] = fresh(event["response"].clone(), &id, &req["model"]);
            }
            let name = event["type"].as_str().unwrap_or_default().to_owned();
            Bytes::from(format!("event: {name}\ndata: {event}\n\n"))
        })
        .collect();
    let error = Bytes::from_static(
        b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":3,\"error\":{\"type\":\"server_error\",\"code\":\"server_error\",\"message\":\"The server had an error while processing your request.\",\"param\":null}}\n\n",
    );
    sse_frames(shared, behavior, frames, error)
}

/// `POST /v1/completions`: the prompt's answer is the mock's words.
async fn completions(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (behavior, req) = match pre_answer_with(&shared, req, crate::openai::error_response).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let model = req["model"].as_str().unwrap_or("gpt-3.5-turbo-instruct");
    let words = ["This", " is", " a", " test", "."];
    let usage = json!({"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10});
    let head = |choices: Value| {
        json!({"id": "cmpl-mock1", "object": "text_completion", "created": 1_700_000_000,
               "model": model, "choices": choices})
    };
    if req["stream"].as_bool() != Some(true) {
        let mut body = head(
            json!([{"text": words.concat(), "index": 0, "logprobs": null,
                                     "finish_reason": "stop"}]),
        );
        body["usage"] = usage;
        return json_response(&body);
    }
    let n = behavior.chunks.unwrap_or(words.len());
    let mut chunks: Vec<String> = (0..n)
        .map(|i| {
            let finish = if i + 1 == n {
                json!("stop")
            } else {
                Value::Null
            };
            head(
                json!([{"text": words[i % words.len()], "index": 0, "logprobs": null,
                         "finish_reason": finish}]),
            )
            .to_string()
        })
        .collect();
    if req["stream_options"]["include_usage"].as_bool() == Some(true) {
        let mut last = head(json!([]));
        last["usage"] = usage;
        chunks.push(last.to_string());
    }
    chunks.push("[DONE]".to_owned());
    sse_response(shared, behavior, chunks)
}
