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
use crate::error::Error;
use crate::providers::anthropic::NativeStream;
use crate::providers::{ChunkStream, Provider, StreamError};
use crate::record::{Answer, Exchange};
use crate::stream::{Frame, FrameStream};

#[tracing::instrument(name = "messages", skip_all, fields(model, provider, stream))]
pub async fn create(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    x: &mut Exchange,
) -> Result<Answer, Error> {
    let raw = RawRequest::parse(body).map_err(Error::InvalidMessagesRequest)?;
    x.requested_model.clone_from(&raw.model);
    x.stream = raw.stream;
    let target = state.routes().resolve(&raw.model)?;
    x.provider = target.provider_name.to_string();
    x.upstream_model = target.model.to_string();
    let span = tracing::Span::current();
    span.record("model", raw.model.as_str());
    span.record("provider", &*target.provider_name);
    span.record("stream", raw.stream);

    let sent = Instant::now();
    if let Provider::Anthropic(anthropic) = &*target.provider {
        return if raw.stream {
            let started = anthropic
                .messages_stream(&raw.body, &target.model, headers)
                .await;
            x.upstream_done(sent);
            let (headers, events) = started?;
            Ok(Answer::Stream {
                headers,
                frames: native_frames(events),
            })
        } else {
            let c = anthropic.messages(&raw.body, &target.model, headers).await;
            x.upstream_done(sent);
            let c = c?;
            Ok(Answer::Json {
                headers: c.headers,
                body: c.body,
            })
        };
    }

    let typed: MessagesRequest = serde_json::from_slice(body)
        .map_err(|e| Error::InvalidMessagesRequest(format!("invalid request body: {e}")))?;
    let chat = messages_to_chat::request(typed, &target.model)
        .map_err(|e| Error::Untranslatable(e.to_string()))?;
    let chat =
        ChatRequest::parse(&serde_json::to_vec(&chat).map_err(|e| Error::Unexpected(e.into()))?)?;
    if raw.stream {
        let start = target.provider.chat_stream(&chat, &target.model).await;
        x.upstream_done(sent);
        let start = start?;
        Ok(Answer::Stream {
            headers: start.headers,
            frames: translated_frames(start.chunks),
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
        Ok(Answer::Json {
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
fn translated_frames(chunks: ChunkStream) -> FrameStream {
    type Pending = std::collections::VecDeque<Result<Frame, StreamError>>;
    struct State {
        chunks: ChunkStream,
        translator: StreamTranslator,
        pending: Pending,
        done: bool,
    }
    fn push(pending: &mut Pending, events: Vec<llm::anthropic::StreamEvent>) {
        for event in events {
            pending.push_back(
                serde_json::to_vec(&event)
                    .map(|data| Frame {
                        event: Some(event.name().into()),
                        data: Bytes::from(data),
                    })
                    .map_err(|e| StreamError::Protocol(e.to_string())),
            );
        }
    }
    let state = State {
        chunks,
        translator: StreamTranslator::new(),
        pending: Pending::new(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(item) = s.pending.pop_front() {
                return Some((item, s));
            }
            if s.done {
                return None;
            }
            match s.chunks.next().await {
                None => {
                    s.done = true;
                    let events = s.translator.finish();
                    push(&mut s.pending, events);
                }
                Some(Err(e)) => {
                    s.done = true;
                    s.pending.push_back(Err(e));
                }
                Some(Ok(payload)) => {
                    let text = String::from_utf8_lossy(&payload);
                    match s.translator.chunk(&text) {
                        Ok(events) => push(&mut s.pending, events),
                        Err(e) => {
                            s.done = true;
                            s.pending
                                .push_back(Err(StreamError::Protocol(e.to_string())));
                        }
                    }
                }
            }
        }
    }))
}
