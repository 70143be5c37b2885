//! `POST /v1/embeddings`.

use std::time::Instant;

use bytes::Bytes;
use llm::openai::EmbeddingsRequest;

use crate::app::AppState;
use crate::capture::{Exchange, Reply};
use crate::error::Error;

#[tracing::instrument(name = "embeddings", skip_all, fields(model, provider))]
pub async fn embed(state: &AppState, body: &Bytes, x: &mut Exchange) -> Result<Reply, Error> {
    let req = EmbeddingsRequest::parse(body)?;
    x.asked_for(&req.model)?;
    let route = state.routing().resolve(&req.model)?;
    x.prices = state.routing().prices().clone();
    state.limits().admit(x, &route, body.len(), Some(0)).await?;
    let span = tracing::Span::current();
    span.record("model", req.model.as_str());
    let mut attempts = state.attempts(&route, &x.asked)?;
    let mut next = attempts.first();
    let mut answered = Err(Error::ModelNotFound(req.model.clone()));
    while let Some(target) = next {
        span.record("provider", &*target.provider_name);
        x.route(target);
        let sent = Instant::now();
        let _busy = target.busy();
        answered = attempts
            .within(target, target.provider.embeddings(&req, &target.model))
            .await;
        x.upstream_done(sent);
        next = match &answered {
            Err(e) => {
                let t = attempts.next(e).await;
                if t.is_some() {
                    x.failed_over(e);
                }
                t
            }
            Ok(_) => {
                attempts.succeeded();
                None
            }
        };
    }
    let completion = answered?;
    // Some OpenAI-compatible servers ignore `encoding_format`.
    let body = llm::openai::embedding_format::in_asked_encoding(&completion.body, req.base64())
        .map_or(completion.body, Bytes::from);
    Ok(Reply::Json {
        headers: completion.headers,
        body,
    })
}
