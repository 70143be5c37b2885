//! `POST /v1/chat/completions` and the legacy `POST /v1/completions`: parse,
//! resolve, call, answer. Both read and answer alike (a raw body with `model`
//! rewritten, OpenAI's chunks); only the provider call differs (legacy
//! completions pass through to OpenAI-compatible providers alone:
//! [`crate::completions`]).

use std::time::Instant;

use bytes::Bytes;
use llm::openai::ChatRequest;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::routing::Target;
use crate::stream;

/// Which of OpenAI's two generation APIs a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    /// Legacy text completions (`prompt` where chat has `messages`).
    Completions,
}

#[tracing::instrument(name = "chat", skip_all, fields(model, provider, stream))]
pub async fn complete(
    state: &AppState,
    body: &Bytes,
    x: &mut Exchange,
    api: Api,
) -> Result<Reply, Error> {
    let mut req = match api {
        Api::Chat => ChatRequest::parse(body)?,
        Api::Completions => ChatRequest::parse_completion(body)?,
    };
    llm::inline_media::check(body)?;
    x.asked_for(&req.model)?;
    x.sampled_with(&req.body);
    x.stream = req.stream;
    x.client_wants_usage = req.include_usage;
    if req.stream && state.log_queue().is_some() {
        req.request_usage();
    }
    let route = state.routing().resolve(&req.model)?;
    x.prices = state.routing().prices().clone();
    state
        .limits()
        .admit(x, &route, body.len(), crate::limits::max_output(&req.body))
        .await?;
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    span.record("stream", req.stream);
    let request = Request { req: &req, api };
    crate::failover::each_target(state, &route, x, &req.model, &request).await
}

/// The request, as each target is called with it.
struct Request<'a> {
    req: &'a ChatRequest,
    api: Api,
}

impl crate::failover::Call for Request<'_> {
    async fn call(
        &self,
        target: &Target,
        x: &mut Exchange,
        first_event: std::time::Duration,
    ) -> Result<Reply, Error> {
        call(target, self.req, self.api, x, first_event).await
    }
}

/// One target's answer.
async fn call(
    target: &Target,
    req: &ChatRequest,
    api: Api,
    x: &mut Exchange,
    first_event: std::time::Duration,
) -> Result<Reply, Error> {
    x.route(target);
    let sent = Instant::now();
    if req.stream {
        let start = match api {
            Api::Chat => target.provider.chat_stream(req, &target.model).await,
            Api::Completions => crate::completions::stream(target, req).await,
        };
        x.upstream_done(sent);
        let start = start?;
        let chunks = stream::first_item(start.chunks, first_event, &target.provider_name).await?;
        Ok(Reply::Stream {
            headers: start.headers,
            frames: stream::openai_frames(chunks),
        })
    } else {
        let completion = match api {
            Api::Chat => target.provider.chat(req, &target.model).await,
            Api::Completions => crate::completions::whole(target, req).await,
        };
        x.upstream_done(sent);
        let completion = completion?;
        Ok(Reply::Json {
            headers: completion.headers,
            body: completion.body,
        })
    }
}
