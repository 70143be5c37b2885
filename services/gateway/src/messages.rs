//! `POST /v1/messages`, Anthropic's API, served by any provider: natively by an
//! Anthropic upstream (body passed through, only `model` rewritten), by translation
//! (`llm::translate::messages_to_chat`) by every other.

use std::time::Instant;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use llm::anthropic::{MessagesRequest, RawRequest};
use llm::openai::ChatRequest;
use llm::openai::types::ChatCompletion;
use llm::translate::messages_to_chat::{self, StreamTranslator};

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::providers::anthropic::NativeStream;
use crate::providers::{ChunkStream, Provider, StreamError};
use crate::routing::Target;
use crate::stream::{Frame, FrameStream, Translate, translate};

#[tracing::instrument(name = "messages", skip_all, fields(model, provider, stream))]
pub async fn create(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    x: &mut Exchange,
) -> Result<Reply, Error> {
    let raw = RawRequest::parse(body).map_err(Error::InvalidMessagesRequest)?;
    llm::inline_media::check(body)?;
    x.asked_for(&raw.model)?;
    x.sampled_with(&raw.body);
    x.stream = raw.stream;
    let route = state.routing().resolve(&raw.model)?;
    x.prices = state.routing().prices().clone();
    state
        .limits()
        .admit(x, &route, body.len(), crate::limits::max_output(&raw.body))
        .await?;
    let span = tracing::Span::current();
    span.record("model", raw.model.as_str());
    span.record("stream", raw.stream);
    let request = Messages {
        headers,
        body,
        raw: &raw,
    };
    crate::failover::each_target(state, &route, x, &raw.model, &request).await
}

/// The request, as each target is called with it.
struct Messages<'a> {
    headers: &'a HeaderMap,
    body: &'a Bytes,
    raw: &'a RawRequest,
}

impl crate::failover::Call for Messages<'_> {
    async fn call(
        &self,
        target: &Target,
        x: &mut Exchange,
        first_event: std::time::Duration,
    ) -> Result<Reply, Error> {
        call(target, self.headers, self.body, self.raw, x, first_event).await
    }
}

/// One target's answer: natively from an Anthropic upstream, translated from any
/// other.
async fn call(
    target: &Target,
    headers: &HeaderMap,
    body: &Bytes,
    raw: &RawRequest,
    x: &mut Exchange,
    first_event: std::time::Duration,
) -> Result<Reply, Error> {
    x.route(target);
    let sent = Instant::now();
    if let Provider::Anthropic(anthropic) = &*target.provider {
        return if raw.stream {
            let started = anthropic
                .messages_stream(&raw.body, &target.model, headers)
                .await;
            x.upstream_done(sent);
            let (headers, events) = started?;
            let events =
                crate::stream::first_item(events, first_event, &target.provider_name).await?;
            Ok(Reply::Stream {
                headers,
                frames: native_frames(events),
            })
        } else {
            let c = anthropic.messages(&raw.body, &target.model, headers).await;
            x.upstream_done(sent);
            let c = c?;
            Ok(Reply::Json {
                headers: c.headers,
                body: c.body,
            })
        };
    }

    let typed: MessagesRequest = llm::typed_body::from_slice(body)
        .map_err(|e| Error::InvalidMessagesRequest(format!("invalid request body: {e}")))?;
    let chat = messages_to_chat::request(typed, &target.model)
        .map_err(|e| Error::Untranslatable(e.to_string()))?;
    let chat =
        ChatRequest::parse(&serde_json::to_vec(&chat).map_err(|e| Error::Unexpected(e.into()))?)?;
    if raw.stream {
        let start = target.provider.chat_stream(&chat, &target.model).await;
        x.upstream_done(sent);
        let start = start?;
        let chunks =
            crate::stream::first_item(start.chunks, first_event, &target.provider_name).await?;
        Ok(Reply::Stream {
            headers: start.headers,
            frames: translated_frames(chunks),
        })
    } else {
        let c = target.provider.chat(&chat, &target.model).await;
        x.upstream_done(sent);
        let c = c?;
        let protocol = |reason: String| Error::UpstreamProtocol {
            provider: target.provider_name.to_string(),
            reason,
        };
        let completion: ChatCompletion = serde_json::from_slice(&c.body)
            .map_err(|e| protocol(format!("unreadable chat completion: {e}")))?;
        let message =
            messages_to_chat::response(completion).map_err(|e| protocol(e.to_string()))?;
        let body = serde_json::to_vec(&message).map_err(|e| Error::Unexpected(e.into()))?;
        Ok(Reply::Json {
            headers: c.headers,
            body: Bytes::from(body),
        })
    }
}

fn native_frames(events: NativeStream) -> FrameStream {
    Box::pin(events.map(|item| {
        item.map(|e| Frame {
            event: Some(e.name.into()),
            data: e.data,
        })
    }))
}

/// OpenAI chunks → Anthropic events, each as soon as its chunk arrives; the
/// closing events once the upstream's stream ends.
struct ToEvents(StreamTranslator);

fn frames(events: Vec<llm::anthropic::StreamEvent>) -> Result<Vec<Frame>, StreamError> {
    events
        .into_iter()
        .map(|event| {
            serde_json::to_vec(&event)
                .map(|data| Frame {
                    event: Some(event.name().into()),
                    data: Bytes::from(data),
                })
                .map_err(|e| StreamError::Protocol(e.to_string()))
        })
        .collect()
}

impl Translate for ToEvents {
    type In = Bytes;
    type Out = Frame;

    fn item(&mut self, payload: Bytes) -> Result<Vec<Frame>, StreamError> {
        let text = String::from_utf8_lossy(&payload);
        let events = self
            .0
            .chunk(&text)
            .map_err(|e| StreamError::Protocol(e.to_string()))?;
        frames(events)
    }

    fn end(&mut self) -> Result<Vec<Frame>, StreamError> {
        frames(self.0.finish())
    }
}

fn translated_frames(chunks: ChunkStream) -> FrameStream {
    translate(chunks, ToEvents(StreamTranslator::new()))
}
