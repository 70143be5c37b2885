//! The Responses API over a WebSocket (`GET /v1/responses` with an upgrade),
//! as Codex CLI speaks it: the client sends `{"type": "response.create", …}`
//! text frames holding a `POST /v1/responses` body's members at the top level;
//! each is served as a streamed `POST` is (same routing, limits and log) and
//! answered with the same `response.*` events, one JSON event per text frame.
//! A refused request is one `{"type": "error", "status", "error"}` frame; the
//! connection stays open for the next.
//!
//! A continuation names its previous response and sends only the new items:
//! the connection remembers its own responses, even those sent with
//! `store: false` (which Codex sends), for as long as it is open.
//!
//! A `GET /v1/responses` that is not a WebSocket upgrade is answered 426 at
//! once: Codex then moves to HTTP immediately (anything else it retries for
//! seconds).

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{State, ws::rejection::WebSocketUpgradeRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::Conversations;
use crate::app::{AppState, RequestContext};
use crate::capture::{self, Exchange};
use crate::stream::Dialect;

/// Upgrades, or answers 426.
pub async fn upgrade(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.on_upgrade(move |socket| serve(socket, state, ctx)),
        Err(_) => (
            StatusCode::UPGRADE_REQUIRED,
            [(axum::http::header::UPGRADE, "websocket")],
            Json(json!({"error": {
                "message": "GET /v1/responses is the WebSocket transport: upgrade, or POST /v1/responses.",
                "type": "invalid_request_error",
                "param": null,
                "code": "upgrade_required",
            }})),
        )
            .into_response(),
    }
}

/// One connection: its requests in turn.
async fn serve(mut socket: WebSocket, state: AppState, ctx: RequestContext) {
    let conversations = state.conversations().for_connection();
    while let Some(Ok(message)) = socket.recv().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let sent = match request_body(text.as_str()) {
            Ok(body) => turn(&mut socket, &state, &conversations, &ctx, body).await,
            Err(message) => {
                send(
                    &mut socket,
                    error_event(400, "invalid_request_error", &message),
                )
                .await
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), axum::Error> {
    socket.send(Message::Text(text.into())).await
}

/// The `POST` body a `response.create` stands for: its members but `type`,
/// streamed.
fn request_body(text: &str) -> Result<Bytes, String> {
    let mut value: serde_json::Map<String, Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    match value.remove("type") {
        Some(Value::String(t)) if t == "response.create" => {}
        Some(other) => return Err(format!("unknown event type {other}: send response.create")),
        None => return Err("missing 'type': send response.create".into()),
    }
    value.insert("stream".into(), Value::Bool(true));
    serde_json::to_vec(&value)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// Serves one request as a streamed `POST` (logged the same way), sending its
/// events as they come.
async fn turn(
    socket: &mut WebSocket,
    state: &AppState,
    conversations: &Conversations,
    ctx: &RequestContext,
    body: Bytes,
) -> Result<(), axum::Error> {
    let mut ctx = ctx.clone();
    ctx.id = uuid::Uuid::now_v7();
    ctx.started = std::time::Instant::now();
    ctx.received_at_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    ctx.span = None;
    let mut x = Exchange::new(&ctx, "/v1/responses", Dialect::Responses);
    x.request_body = body.clone();
    let result = crate::providers::key_calls::scope(async {
        super::create_in(state, conversations, &body, &mut x).await
    })
    .await;
    // Through the same path as an HTTP answer: the log taps it there.
    let response = capture::finish(state.log_queue(), x, result);
    let status = response.status();
    let mut body = response.into_body().into_data_stream();
    if !status.is_success() {
        let mut bytes = Vec::new();
        while let Some(Ok(chunk)) = body.next().await {
            bytes.extend_from_slice(&chunk);
        }
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let event = json!({"type": "error", "status": status.as_u16(), "error": error["error"]});
        return send(socket, event.to_string()).await;
    }
    let mut decoder = llm::sse::Decoder::new();
    while let Some(Ok(chunk)) = body.next().await {
        for event in decoder.feed(&chunk).unwrap_or_default() {
            send(socket, event.data).await?;
        }
    }
    if let Ok(Some(last)) = decoder.finish() {
        send(socket, last.data).await?;
    }
    Ok(())
}

fn error_event(status: u16, kind: &str, message: &str) -> String {
    json!({"type": "error", "status": status, "error": {
        "type": kind, "code": null, "message": message, "param": null,
    }})
    .to_string()
}
