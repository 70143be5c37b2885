//! OpenAI's routes, answered from the recordings the way OpenAI answers.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::behavior::{Behavior, Failure};
use crate::fixtures::openai as fx;
use crate::server::{Shared, read_body};

pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
}

/// A recorded stream's events as parsed objects, `[DONE]` left out (OpenAI's
/// chat chunks, or the Responses API's events).
pub(crate) fn parse_stream(sse: &str) -> Vec<Value> {
    let mut decoder = llm::sse::Decoder::new();
    let mut events = decoder.feed(sse.as_bytes()).unwrap_or_default();
    if let Ok(Some(last)) = decoder.finish() {
        events.push(last);
    }
    events
        .into_iter()
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| serde_json::from_str(&e.data).ok())
        .collect()
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

static STREAM_BASIC: LazyLock<Vec<Value>> = LazyLock::new(|| parse_stream(fx::CHAT_STREAM_BASIC));
static STREAM_TOOL: LazyLock<Vec<Value>> =
    LazyLock::new(|| parse_stream(fx::CHAT_STREAM_TOOL_CALLS));
static STREAM_PARALLEL: LazyLock<Vec<Value>> =
    LazyLock::new(|| parse_stream(fx::CHAT_STREAM_PARALLEL_TOOL_CALLS));
static RESPONSE_BASIC: LazyLock<Value> = LazyLock::new(|| parse_json(fx::CHAT_RESPONSE_BASIC));
static RESPONSE_TOOL: LazyLock<Value> = LazyLock::new(|| parse_json(fx::CHAT_RESPONSE_TOOL_CALLS));
static RESPONSE_AFTER_TOOL: LazyLock<Value> =
    LazyLock::new(|| parse_json(fx::CHAT_RESPONSE_AFTER_TOOL_RESULT));

const WORDS: &[&str] = &[
    "The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".",
];

/// What kind of answer a request gets, the way the vendor would decide.
enum Answer {
    Text,
    ToolCall,
    ParallelToolCalls,
    AfterToolResult,
}

fn answer_for(req: &Value) -> Answer {
    let last_role = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["role"].as_str());
    if last_role == Some("tool") {
        return Answer::AfterToolResult;
    }
    match req["tools"].as_array().map(Vec::len) {
        Some(0) | None => Answer::Text,
        Some(1) => Answer::ToolCall,
        Some(_) => Answer::ParallelToolCalls,
    }
}

fn merge(target: &mut Value, extra: &Map<String, Value>) {
    if let Some(obj) = target.as_object_mut() {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
}

async fn pre_answer(shared: &Shared, req: Request) -> Result<(Behavior, Value), Response> {
    pre_answer_with(shared, req, error_response).await
}

/// Records the request, applies latency and status/stall failures (answering
/// with `error` for statuses), and parses the JSON body.
pub(crate) async fn pre_answer_with(
    shared: &Shared,
    req: Request,
    error: fn(u16, Option<&str>) -> Response,
) -> Result<(Behavior, Value), Response> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(body).await;
    shared.record(&parts.method, &parts.uri, &parts.headers, &bytes);
    let behavior = shared.behavior();
    if !behavior.latency.is_zero() {
        tokio::time::sleep(behavior.latency).await;
    }
    match &behavior.failure {
        Some(Failure::Status { status, body }) => {
            return Err(error(*status, body.as_deref()));
        }
        Some(Failure::RateLimited { retry_after_ms }) => {
            let mut response = error(429, None);
            let headers = response.headers_mut();
            for (name, value) in [
                ("retry-after-ms", retry_after_ms.to_string()),
                ("retry-after", retry_after_ms.div_ceil(1000).to_string()),
            ] {
                if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
            return Err(response);
        }
        Some(Failure::Stall) => std::future::pending::<()>().await,
        _ => {}
    }
    let Ok(json) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(error(400, None));
    };
    Ok((behavior, json))
}

/// The recorded error for a status where there is one.
pub fn error_response(status: u16, body: Option<&str>) -> Response {
    let recorded = match status {
        400 => Some(fx::ERROR_INVALID_REQUEST),
        401 => Some(fx::ERROR_AUTH_401),
        404 => Some(fx::ERROR_MODEL_NOT_FOUND_404),
        429 => Some(fx::ERROR_RATE_LIMIT_429),
        _ => None,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match (body, recorded) {
        (Some(body), _) => (status, body.to_owned()).into_response(),
        (None, Some(json)) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json.to_owned(),
        )
            .into_response(),
        (None, None) => (status, "upstream exploded\n").into_response(),
    }
}

async fn chat_completions(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (behavior, req) = match pre_answer(&shared, req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let answer = answer_for(&req);
    if req["stream"].as_bool() != Some(true) {
        let mut body = match answer {
            Answer::Text => RESPONSE_BASIC.clone(),
            Answer::ToolCall | Answer::ParallelToolCalls => RESPONSE_TOOL.clone(),
            Answer::AfterToolResult => RESPONSE_AFTER_TOOL.clone(),
        };
        merge(&mut body, &behavior.extra_fields);
        return json_response(&body);
    }
    let include_usage = req["stream_options"]["include_usage"].as_bool() == Some(true);
    let chunks = stream_chunks(&answer, &behavior, include_usage);
    sse_response(shared, behavior, chunks)
}

pub(crate) fn json_response(body: &Value) -> Response {
    let text = serde_json::to_string_pretty(body).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

/// The chunks of a stream, each a `data:` payload, ending with `[DONE]`.
fn stream_chunks(answer: &Answer, behavior: &Behavior, include_usage: bool) -> Vec<String> {
    let recorded: &[Value] = match answer {
        Answer::Text | Answer::AfterToolResult => &STREAM_BASIC,
        Answer::ToolCall => &STREAM_TOOL,
        Answer::ParallelToolCalls => &STREAM_PARALLEL,
    };
    let is_usage = |c: &Value| c["choices"].as_array().is_some_and(Vec::is_empty);
    let mut chunks: Vec<Value> = match (answer, behavior.chunks) {
        (Answer::Text | Answer::AfterToolResult, Some(n)) => {
            // Role chunk, n content chunks shaped like the recorded ones, then the
            // recorded finish chunk and usage chunk.
            let mut out = vec![recorded[0].clone()];
            let template = &recorded[1];
            for i in 0..n {
                let mut c = template.clone();
                c["choices"][0]["delta"]["content"] = WORDS[i % WORDS.len()].into();
                out.push(c);
            }
            out.extend(
                recorded
                    .iter()
                    .filter(|c| !c["choices"][0]["finish_reason"].is_null() || is_usage(c))
                    .cloned(),
            );
            out
        }
        _ => recorded.to_vec(),
    };
    if !include_usage {
        chunks.retain(|c| !is_usage(c));
        for c in &mut chunks {
            if let Some(o) = c.as_object_mut() {
                o.remove("usage");
            }
        }
    }
    let mut out: Vec<String> = chunks
        .iter_mut()
        .map(|c| {
            merge(c, &behavior.extra_fields);
            c.to_string()
        })
        .collect();
    out.push("[DONE]".to_owned());
    out
}

/// Streams `chunks` as OpenAI does, honouring the pace and mid-stream failures.
pub(crate) fn sse_response(
    shared: Arc<Shared>,
    behavior: Behavior,
    chunks: Vec<String>,
) -> Response {
    let error = llm::sse::data_frame(
        br#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
    );
    sse_frames(
        shared,
        behavior,
        chunks
            .into_iter()
            .map(|c| llm::sse::data_frame(c.as_bytes()))
            .collect(),
        error,
    )
}

/// Sends `frames` at the behaviour's pace; `error_frame` is the vendor's in-stream
/// error, for `Failure::ErrorEventMidStream`.
pub(crate) fn sse_frames(
    shared: Arc<Shared>,
    behavior: Behavior,
    frames: Vec<Bytes>,
    error_frame: Bytes,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let cut = match behavior.failure {
            Some(
                Failure::ResetMidStream { after_chunks }
                | Failure::StallMidStream { after_chunks }
                | Failure::TruncateMidStream { after_chunks }
                | Failure::ErrorEventMidStream { after_chunks },
            ) => Some(after_chunks),
            _ => None,
        };
        for (i, frame) in frames.into_iter().enumerate() {
            if cut == Some(i) {
                match behavior.failure {
                    Some(Failure::ResetMidStream { .. }) => {
                        // Let the chunks already sent leave the write buffer first,
                        // as they would have on a real connection.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        let _ = tx.send(Err(std::io::Error::other("injected reset"))).await;
                    }
                    Some(Failure::StallMidStream { .. }) => {
                        tx.closed().await;
                        shared.stream_aborted();
                    }
                    Some(Failure::ErrorEventMidStream { .. }) => {
                        let _ = tx.send(Ok(error_frame)).await;
                    }
                    _ => {}
                }
                return;
            }
            if i > 0 && !behavior.chunk_interval.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(behavior.chunk_interval) => {}
                    () = tx.closed() => {
                        shared.stream_aborted();
                        return;
                    }
                }
            }
            if tx.send(Ok(frame)).await.is_err() {
                shared.stream_aborted();
                return;
            }
        }
        shared.stream_completed();
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    response
}

async fn embeddings(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (behavior, req) = match pre_answer(&shared, req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let base64 = req["encoding_format"].as_str() == Some("base64");
    let mut body = if base64 && !behavior.ignore_encoding_format {
        parse_json(fx::EMBEDDINGS_RESPONSE)
    } else {
        parse_json(fx::EMBEDDINGS_RESPONSE_FLOAT)
    };
    merge(&mut body, &behavior.extra_fields);
    json_response(&body)
}

async fn models(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    match pre_answer_get(&shared, req).await {
        Ok(()) => json_response(&parse_json(fx::MODELS_RESPONSE)),
        Err(resp) => resp,
    }
}

async fn pre_answer_get(shared: &Shared, req: Request) -> Result<(), Response> {
    shared.record(req.method(), req.uri(), req.headers(), b"");
    if let Some(Failure::Status { status, body }) = shared.behavior().failure {
        return Err(error_response(status, body.as_deref()));
    }
    Ok(())
}
