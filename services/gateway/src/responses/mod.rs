//! `POST /v1/responses`, OpenAI's Responses API, served by any provider:
//! natively by a server that has the API ([`native`]: the body passed through,
//! only `model` rewritten), by translation over chat completions by every
//! other ([`translated`]; an Anthropic upstream through its chat translation).
//!
//! With `store` (the default, as OpenAI's), each response is kept
//! ([`conversations`]) so that `previous_response_id` continues it on any
//! gateway and any provider, and `GET`/`DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items` find it ([`stored`]).
//!
//! Choices: a response made by translation gets the id
//! `resp_<request id>`; a native one keeps the upstream's. A continuation
//! whose stored conversation is missing (deleted, expired, another key's) is
//! a 400 naming `previous_response_id`, as OpenAI answers. Built-in tools a
//! translated provider cannot run are left out and listed in the log row; a
//! request that forces one is refused.

mod conversations;
mod native;
pub mod stored;
mod translated;
pub mod websocket;

pub use conversations::{Conversations, Entry};
pub use stored::{delete, input_items, retrieve};

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use llm::responses::{
    Content, ContentPart, Item, ItemStatus, Message, ResponseMeta, ResponsesRequest, Role, TextPart,
};
use llm::translate::responses_to_chat::StreamTranslator;
use serde_json::Value;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::providers::Provider;
use crate::routing::Target;
use crate::stream;
use conversations::Chain;

/// `POST /v1/responses`, its responses kept in the gateways' shared store.
pub async fn create(state: &AppState, body: &Bytes, x: &mut Exchange) -> Result<Reply, Error> {
    create_in(state, state.conversations(), body, x).await
}

/// A request whose responses are kept in (and continued from) `conversations`.
#[tracing::instrument(name = "responses", skip_all, fields(model, provider, stream))]
pub async fn create_in(
    state: &AppState,
    conversations: &Conversations,
    body: &Bytes,
    x: &mut Exchange,
) -> Result<Reply, Error> {
    let req = ResponsesRequest::parse(body)?;
    llm::inline_media::check(body)?;
    x.asked_for(&req.model)?;
    x.sampled_with(&req.body);
    x.stream = req.stream;
    let route = state.routing().resolve(&req.model)?;
    x.prices = state.routing().prices().clone();
    state
        .limits()
        .admit(x, &route, body.len(), req.max_output_tokens.map(u64::from))
        .await?;
    let key = x.key_id.as_deref().map(str::to_owned);
    let meta = ResponseMeta {
        id: format!("resp_{}", x.request_id.simple()),
        created_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        model: req.model.clone(),
    };
    let input = input_with_ids(&req.input, &meta);
    let warm_up_only = req.body.get("generate").is_some_and(|g| g.get() == "false");
    let previous = match &req.previous_response_id {
        Some(id) if !warm_up_only => Some(conversations.chain(id, key.as_deref()).await?),
        _ => None,
    };
    let turn = Turn {
        meta,
        input,
        previous,
        key,
        req,
    };
    if warm_up_only {
        return warm_up(conversations, &route, &turn, x).await;
    }
    let span = tracing::Span::current();
    span.record("model", turn.req.model.as_str());
    span.record("stream", turn.req.stream);
    let model = turn.req.model.clone();
    let request = Request {
        conversations,
        turn: &turn,
    };
    crate::failover::each_target(state, &route, x, &model, &request).await
}

/// The request, as each target is called with it.
struct Request<'a> {
    conversations: &'a Conversations,
    turn: &'a Turn,
}

impl crate::failover::Call for Request<'_> {
    async fn call(
        &self,
        target: &Target,
        x: &mut Exchange,
        first_event: std::time::Duration,
    ) -> Result<Reply, Error> {
        call(self.conversations, target, self.turn, x, first_event).await
    }
}

/// A warm-up (`generate: false`, which Codex sends first on a WebSocket, with
/// its instructions and tools): nothing is generated and no upstream is called;
/// the empty response is kept so that the first real turn can continue it.
async fn warm_up(
    conversations: &Conversations,
    route: &crate::routing::Route,
    turn: &Turn,
    x: &mut Exchange,
) -> Result<Reply, Error> {
    if let Some(target) = route.first() {
        x.route(target);
    }
    let mut response = llm::responses::Response::in_progress(&turn.meta, turn.req.echo());
    let created = serde_json::to_value(&response).map_err(|e| Error::Unexpected(e.into()))?;
    response.status = llm::responses::Status::Completed;
    response.usage = Some(llm::responses::Usage::default());
    let completed = serde_json::to_value(&response).map_err(|e| Error::Unexpected(e.into()))?;
    if let Some(keep) = turn.keep(conversations, &x.provider, false) {
        keep.keep(completed.clone()).await;
    }
    if !turn.req.stream {
        let body = serde_json::to_vec(&completed).map_err(|e| Error::Unexpected(e.into()))?;
        return Ok(Reply::Json {
            headers: axum::http::HeaderMap::new(),
            body: Bytes::from(body),
        });
    }
    let frames = [
        ("response.created", created),
        ("response.completed", completed),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, (name, response))| {
        let data = serde_json::json!({"type": name, "response": response, "sequence_number": n});
        Ok(stream::Frame {
            event: Some(name.into()),
            data: Bytes::from(data.to_string()),
        })
    })
    .collect::<Vec<_>>();
    Ok(Reply::Stream {
        headers: axum::http::HeaderMap::new(),
        frames: Box::pin(futures_util::stream::iter(frames)),
    })
}

/// What one request asks, whichever target serves it.
struct Turn {
    req: ResponsesRequest,
    /// Its input items as they are stored ([`input_with_ids`]).
    input: Vec<Value>,
    previous: Option<Chain>,
    /// The id a translated response gets, its time and the model asked.
    meta: ResponseMeta,
    key: Option<String>,
}

impl Turn {
    /// What keeps the response `provider` makes, when it is to be kept
    /// (`store`, or a WebSocket connection's memory); `native`: made by a
    /// server with the Responses API, which holds it only if asked to store it.
    fn keep(&self, conversations: &Conversations, provider: &str, native: bool) -> Option<Keep> {
        (self.req.store || conversations.remembers_all()).then(|| Keep {
            conversations: conversations.clone(),
            shared: self.req.store,
            entry: Entry {
                key_id: self.key.clone(),
                previous_response_id: self.req.previous_response_id.clone(),
                provider: provider.to_owned(),
                native: native && self.req.store,
                input: self.input.clone(),
                response: Value::Null,
            },
        })
    }
}

/// One target's answer.
async fn call(
    conversations: &Conversations,
    target: &Target,
    turn: &Turn,
    x: &mut Exchange,
    first_event: std::time::Duration,
) -> Result<Reply, Error> {
    x.route(target);
    let native = match &*target.provider {
        Provider::OpenAi(p) if p.serves_responses => Some(p),
        _ => None,
    };
    let keep = turn.keep(conversations, &target.provider_name, native.is_some());
    let sent = Instant::now();
    if let Some(provider) = native {
        let body = native::body(&turn.req, turn.previous.as_ref(), target)?;
        if !turn.req.stream {
            let answered = native::answer(provider, body, keep).await;
            x.upstream_done(sent);
            return answered;
        }
        let start = provider.responses_stream(body).await;
        x.upstream_done(sent);
        let (headers, events) = start?;
        let events = stream::first_item(events, first_event, &target.provider_name).await?;
        return Ok(Reply::Stream {
            headers,
            frames: native::frames(events, keep),
        });
    }
    let (chat, omitted) = translated::chat_request(&turn.req, turn.previous.as_ref(), target)?;
    x.omitted_tools = omitted.tools;
    if !turn.req.stream {
        let answered = translated::answer(target, &chat, &turn.meta, &turn.req, keep).await;
        x.upstream_done(sent);
        return answered;
    }
    let start = target.provider.chat_stream(&chat, &target.model).await;
    x.upstream_done(sent);
    let start = start?;
    let chunks = stream::first_item(start.chunks, first_event, &target.provider_name).await?;
    let translator = StreamTranslator::new(turn.meta.clone(), turn.req.echo());
    Ok(Reply::Stream {
        headers: start.headers,
        frames: translated::frames(chunks, translator, keep),
    })
}

/// The request's input items as stored, and as `input_items` lists them: a
/// message in its full form (`type`, `status`, text as an `input_text` part, or
/// `output_text` for the assistant's), and each item without an id given one
/// derived from the response's (`msg_<…>_in0`…).
fn input_with_ids(input: &[Item], meta: &ResponseMeta) -> Vec<Value> {
    let tail = meta.id.strip_prefix("resp_").unwrap_or(&meta.id);
    input
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item = match item {
                Item::Message(m) => Item::Message(full_message(m)),
                other => other.clone(),
            };
            let mut value = serde_json::to_value(&item).unwrap_or(Value::Null);
            if let Some(object) = value.as_object_mut()
                && !object.contains_key("id")
            {
                let prefix = if item.kind() == "message" {
                    "msg"
                } else {
                    "item"
                };
                object.insert("id".into(), format!("{prefix}_{tail}_in{i}").into());
            }
            value
        })
        .collect()
}

fn full_message(m: &Message) -> Message {
    let content = match &m.content {
        Content::Text(text) if m.role == Role::Assistant => {
            Content::Parts(vec![ContentPart::output_text(text.clone())])
        }
        Content::Text(text) => Content::Parts(vec![ContentPart::InputText(TextPart {
            text: text.clone(),
            extra: serde_json::Map::new(),
        })]),
        parts => parts.clone(),
    };
    Message {
        status: m.status.or(Some(ItemStatus::Completed)),
        content,
        ..m.clone()
    }
}

/// A response to store once it is known, with what it continues.
#[derive(Debug)]
struct Keep {
    conversations: Conversations,
    /// For every gateway (`store`), or only the connection's memory.
    shared: bool,
    entry: Entry,
}

impl Keep {
    /// Stores `response` (the Response object answered). A response that cannot
    /// be stored is still answered: the failure is logged, and a continuation of
    /// it will be refused.
    async fn keep(mut self, response: Value) {
        self.entry.response = response;
        if let Err(e) = self.conversations.put(&self.entry, self.shared).await {
            tracing::warn!(error = %e, response_id = self.entry.id(), "response not stored");
        }
    }
}
