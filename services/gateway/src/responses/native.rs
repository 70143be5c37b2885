//! A server with the Responses API itself (OpenAI): the client's body passes
//! through with `model` rewritten, the answer and its events come back
//! untouched. A continuation names its previous response upstream when that
//! response was made there (the upstream holds it); otherwise the stored
//! conversation goes upstream as input, with no `previous_response_id`, its
//! items without ids (the upstream would look them up) and without reasoning
//! it cannot read (no `encrypted_content`).

use bytes::Bytes;
use futures_util::StreamExt;
use llm::raw::{self, RawObject};
use llm::responses::ResponsesRequest;
use serde_json::Value;

use super::Keep;
use super::conversations::Chain;
use crate::capture::Reply;
use crate::error::Error;
use crate::providers::StreamError;
use crate::providers::openai::OpenAiCompatible;
use crate::routing::Target;
use crate::stream::{Frame, FrameStream};

/// The body for `target`: `previous` passed through by id when it was made on
/// the same provider, else inlined.
pub(super) fn body(
    req: &ResponsesRequest,
    previous: Option<&Chain>,
    target: &Target,
) -> Result<Vec<u8>, Error> {
    let made_here = previous
        .and_then(Chain::last)
        .is_some_and(|last| last.native && last.provider == *target.provider_name);
    let Some(chain) = previous.filter(|_| !made_here) else {
        return Ok(req.upstream_body(&target.model));
    };
    let mut body: RawObject = req.body.clone();
    body.shift_remove("previous_response_id");
    let mut input: Vec<Value> = Vec::new();
    for item in chain.items()? {
        let mut value = serde_json::to_value(item).map_err(|e| Error::Unexpected(e.into()))?;
        // Ids the upstream never issued would be looked up there (and not
        // found), as would a reasoning item without its encrypted content.
        if let Some(object) = value.as_object_mut() {
            if object.get("type").and_then(Value::as_str) == Some("reasoning")
                && object.get("encrypted_content").is_none_or(Value::is_null)
            {
                continue;
            }
            object.remove("id");
        }
        input.push(value);
    }
    for item in &req.input {
        input.push(serde_json::to_value(item).map_err(|e| Error::Unexpected(e.into()))?);
    }
    body.insert("input".into(), raw::to_raw(&input));
    body.insert("model".into(), raw::to_raw(&*target.model));
    Ok(raw::to_vec(&body))
}

/// The whole answer, kept when it asks to be.
pub(super) async fn answer(
    provider: &OpenAiCompatible,
    body: Vec<u8>,
    keep: Option<Keep>,
) -> Result<Reply, Error> {
    let completion = provider.responses(body).await?;
    if let Some(keep) = keep
        && let Ok(response) = serde_json::from_slice::<Value>(&completion.body)
    {
        keep.keep(response).await;
    }
    Ok(Reply::Json {
        headers: completion.headers,
        body: completion.body,
    })
}

/// The upstream's events as frames, read only where they must be: the events
/// carrying a whole Response (the first two and the terminal one; deltas pass
/// unparsed). The terminal event's Response is kept before that event leaves, so
/// a client that saw it can continue at once. A failure after the stream began
/// ends it as the API does: an `error` event, then `response.failed`, numbered
/// after the events relayed (numbers start at 0 and go up by one).
pub(super) fn frames(
    events: crate::providers::http::EventStream,
    keep: Option<Keep>,
) -> FrameStream {
    struct State {
        events: crate::providers::http::EventStream,
        keep: Option<Keep>,
        /// Events relayed, and the Response last seen.
        relayed: u64,
        response: Value,
        ended: bool,
        pending: Vec<Result<Frame, StreamError>>,
    }
    let state = State {
        events,
        keep,
        relayed: 0,
        response: Value::Null,
        ended: false,
        pending: Vec::new(),
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if !s.pending.is_empty() {
                let next = s.pending.remove(0);
                return Some((next, s));
            }
            if s.ended {
                return None;
            }
            match s.events.next().await {
                Some(Ok(event)) => {
                    let name = match event.event {
                        Some(name) => name,
                        None => type_of(&event.data),
                    };
                    let terminal = matches!(
                        name.as_str(),
                        "response.completed" | "response.failed" | "response.incomplete"
                    );
                    let whole =
                        matches!(name.as_str(), "response.created" | "response.in_progress");
                    if (terminal || whole)
                        && let Ok(mut value) = serde_json::from_str::<Value>(&event.data)
                        && value["response"].is_object()
                    {
                        s.response = value["response"].take();
                    }
                    s.relayed += 1;
                    if terminal {
                        s.ended = true;
                        if let Some(keep) = s.keep.take() {
                            keep.keep(std::mem::take(&mut s.response)).await;
                        }
                    }
                    return Some((
                        Ok(Frame {
                            event: Some(name.into()),
                            data: Bytes::from(event.data),
                        }),
                        s,
                    ));
                }
                Some(Err(e)) => {
                    s.ended = true;
                    s.pending = failure(&e, s.relayed, &s.response);
                    s.pending.push(Err(e));
                }
                None => {
                    s.ended = true;
                    let e = StreamError::Truncated;
                    s.pending = failure(&e, s.relayed, &s.response);
                    s.pending.push(Err(e));
                }
            }
        }
    }))
}

/// An event's `type`, for a server that sends no `event:` names.
fn type_of(data: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Typed>(data).map_or_else(|_| String::new(), |t| t.kind)
}

/// `error` and `response.failed` for a stream that broke after `next` events.
fn failure(e: &StreamError, next: u64, response: &Value) -> Vec<Result<Frame, StreamError>> {
    let body = e.openai_body();
    let code = body
        .error
        .code
        .clone()
        .unwrap_or_else(|| "server_error".into());
    let error = serde_json::json!({
        "type": "error",
        "code": code,
        "message": body.error.message,
        "param": null,
        "error": {"type": body.error.kind, "code": code, "message": body.error.message, "param": null},
        "sequence_number": next,
    });
    let mut failed = response.clone();
    if failed.is_object() {
        failed["status"] = "failed".into();
        failed["error"] = serde_json::json!({"code": code, "message": body.error.message});
    }
    let failed = serde_json::json!({
        "type": "response.failed",
        "response": failed,
        "sequence_number": next + 1,
    });
    [("error", error), ("response.failed", failed)]
        .into_iter()
        .map(|(name, data)| {
            Ok(Frame {
                event: Some(name.into()),
                data: Bytes::from(data.to_string()),
            })
        })
        .collect()
}
