//! `POST /v1/chat/completions`: parse, resolve, call, answer.

use std::time::Instant;

use bytes::Bytes;
use llm::openai::ChatRequest;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;
use crate::routing::Target;
use crate::stream;

#[tracing::instrument(name = "chat", skip_all, fields(model, provider, stream))]
pub async fn complete(state: &AppState, body: &Bytes, x: &mut Exchange) -> Result<Reply, Error> {
    let mut req = ChatRequest::parse(body)?;
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
    crate::failover::each_target(state, &route, x, &req.model, &Chat(&req)).await
}

/// The request, as each target is called with it.
struct Chat<'a>(&'a ChatRequest);

impl crate::failover::Call for Chat<'_> {
    async fn call(
        &self,
        target: &Target,
        x: &mut Exchange,
        first_event: std::time::Duration,
    ) -> Result<Reply, Error> {
        call(target, self.0, x, first_event).await
    }
}

/// One target's answer.
async fn call(
    target: &Target,
    req: &ChatRequest,
    x: &mut Exchange,
    first_event: std::time::Duration,
) -> Result<Reply, Error> {
    x.route(target);
    let sent = Instant::now();
    if req.stream {
        let start = target.provider.chat_stream(req, &target.model).await;
        x.upstream_done(sent);
        let start = start?;
        let chunks = stream::first_item(start.chunks, first_event, &target.provider_name).await?;
        Ok(Reply::Stream {
            headers: start.headers,
            frames: stream::openai_frames(chunks),
        })
    } else {
        let completion = target.provider.chat(req, &target.model).await;
        x.upstream_done(sent);
        let completion = completion?;
        Ok(Reply::Json {
            headers: completion.headers,
            body: completion.body,
        })
    }
}
