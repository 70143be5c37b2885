//! Anthropic's API: `/v1/messages` and `/v1/messages/count_tokens`. Errors answer in Anthropic's shape.

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};

use super::read_body;
use crate::app::{AppState, RequestContext};
use crate::capture::{self, Exchange};
use crate::stream::Dialect;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
}

async fn messages(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/messages", Dialect::Anthropic);
    let headers = request.headers().clone();
    // The keys each call used, for the log (`key_calls`).
    crate::providers::key_calls::scope(async move {
        let result = async {
            let body = read_body(&state, request, &mut x).await?;
            crate::messages::create(&state, &headers, &body, &mut x).await
        }
        .await;
        capture::finish(state.log_queue(), x, result)
    })
    .await
}

async fn count_tokens(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/messages/count_tokens", Dialect::Anthropic);
    let headers = request.headers().clone();
    let result = async {
        let body = read_body(&state, request, &mut x).await?;
        crate::count_tokens::count(&state, &headers, &body, &mut x).await
    }
    .await;
    capture::finish(state.log_queue(), x, result)
}
