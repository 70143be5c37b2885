//! Every provider without the Responses API: the request, with the stored
//! conversation it continues, becomes a chat request
//! (`llm::translate::responses_to_chat`), which the provider serves as it
//! serves `/v1/chat/completions` (an Anthropic one translating it once more);
//! the completion or its chunks come back as a Response or Responses events.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::StreamExt;
use llm::openai::ChatRequest;
use llm::openai::types::{ChatCompletion, ChatCompletionChunk};
use llm::responses::{ResponseMeta, ResponsesRequest, StreamEvent};
use llm::translate::TranslateError;
use llm::translate::responses_to_chat::{self, Omitted, StreamTranslator};

use super::Keep;
use super::conversations::Chain;
use crate::capture::Reply;
use crate::error::Error;
use crate::providers::{ChunkStream, StreamError};
use crate::routing::Target;
use crate::stream::{Frame, FrameStream};

/// The chat request for `target`, and the built-in tools it leaves out.
pub(super) fn chat_request(
    req: &ResponsesRequest,
    previous: Option<&Chain>,
    target: &Target,
) -> Result<(ChatRequest, Omitted), Error> {
    let history = previous.map(Chain::items).transpose()?.unwrap_or_default();
    let (chat, omitted) =
        responses_to_chat::request(req, history, &target.model).map_err(untranslatable)?;
    let bytes = serde_json::to_vec(&chat).map_err(|e| Error::Unexpected(e.into()))?;
    let chat = ChatRequest::parse(&bytes)
        .map_err(|e| Error::Unexpected(anyhow::anyhow!("the translated request: {e}")))?;
    Ok((chat, omitted))
}

fn untranslatable(e: TranslateError) -> Error {
    match e {
        TranslateError::Unsupported(message) => Error::Untranslatable(message),
        other => Error::Unexpected(anyhow::anyhow!(other)),
    }
}

/// The whole answer as a Response, kept when it asks to be.
pub(super) async fn answer(
    target: &Target,
    chat: &ChatRequest,
    meta: &ResponseMeta,
    req: &ResponsesRequest,
    keep: Option<Keep>,
) -> Result<Reply, Error> {
    let completion = target.provider.chat(chat, &target.model).await?;
    let typed: ChatCompletion =
        serde_json::from_slice(&completion.body).map_err(|e| Error::UpstreamProtocol {
            provider: target.provider_name.to_string(),
            reason: format!("unreadable chat completion: {e}"),
        })?;
    let response = responses_to_chat::response(typed, meta, req.echo()).map_err(|e| {
        Error::UpstreamProtocol {
            provider: target.provider_name.to_string(),
            reason: e.to_string(),
        }
    })?;
    let value = serde_json::to_value(&response).map_err(|e| Error::Unexpected(e.into()))?;
    let body = serde_json::to_vec(&value).map_err(|e| Error::Unexpected(e.into()))?;
    if let Some(keep) = keep {
        keep.keep(value).await;
    }
    Ok(Reply::Json {
        headers: completion.headers,
        body: Bytes::from(body),
    })
}

/// The chat chunks as Responses events. The final Response is kept before the
/// terminal event leaves; a failure after the start ends the stream with an
/// `error` event and `response.failed`, then the error (for the log).
pub(super) fn frames(
    chunks: ChunkStream,
    translator: StreamTranslator,
    keep: Option<Keep>,
) -> FrameStream {
    struct State {
        chunks: ChunkStream,
        translator: StreamTranslator,
        keep: Option<Keep>,
        pending: VecDeque<Result<Frame, StreamError>>,
        ended: bool,
    }
    let state = State {
        chunks,
        translator,
        keep,
        pending: VecDeque::new(),
        ended: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(next) = s.pending.pop_front() {
                return Some((next, s));
            }
            if s.ended {
                return None;
            }
            match s.chunks.next().await {
                Some(Ok(payload)) => {
                    let translated = serde_json::from_slice::<ChatCompletionChunk>(&payload)
                        .map_err(|e| e.to_string())
                        .and_then(|chunk| s.translator.chunk(chunk).map_err(|e| e.to_string()));
                    match translated {
                        Ok(events) => s.pending.extend(events.iter().map(frame)),
                        Err(reason) => {
                            s.ended = true;
                            fail(
                                &mut s.translator,
                                &mut s.pending,
                                StreamError::Protocol(reason),
                            );
                        }
                    }
                }
                Some(Err(e)) => {
                    s.ended = true;
                    fail(&mut s.translator, &mut s.pending, e);
                }
                None => {
                    s.ended = true;
                    let events = s.translator.finish();
                    if let Some(keep) = s.keep.take()
                        && let Ok(response) = serde_json::to_value(s.translator.response())
                    {
                        keep.keep(response).await;
                    }
                    s.pending.extend(events.iter().map(frame));
                }
            }
        }
    }))
}

fn fail(
    translator: &mut StreamTranslator,
    pending: &mut VecDeque<Result<Frame, StreamError>>,
    e: StreamError,
) {
    let body = e.openai_body();
    let code = body
        .error
        .code
        .clone()
        .unwrap_or_else(|| body.error.kind.clone());
    pending.extend(
        translator
            .fail(&code, &body.error.message)
            .iter()
            .map(frame),
    );
    pending.push_back(Err(e));
}

fn frame(event: &StreamEvent) -> Result<Frame, StreamError> {
    Ok(Frame {
        event: Some(event.name().into()),
        data: Bytes::from(serde_json::to_vec(event).unwrap_or_default()),
    })
}
