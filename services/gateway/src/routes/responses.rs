//! OpenAI's Responses API: `POST /v1/responses`, the stored responses
//! (`GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`),
//! and `GET /v1/responses`, the WebSocket transport. Errors answer in the
//! Responses API's shape.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use super::read_body;
use crate::app::{AppState, RequestContext};
use crate::capture::{self, Exchange};
use crate::responses::stored::ListQuery;
use crate::stream::Dialect;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/responses", post(create))
}

/// The routes answered without a log record of their own: the stored
/// responses, and the WebSocket upgrade (each of its requests is logged).
pub fn stored_router() -> Router<AppState> {
    Router::new()
        .route("/v1/responses", get(crate::responses::websocket::upgrade))
        .route("/v1/responses/{id}", get(retrieve).delete(delete))
        .route("/v1/responses/{id}/input_items", get(input_items))
}

async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/responses", Dialect::Responses);
    // The keys each call used, for the log (`key_calls`).
    crate::providers::key_calls::scope(async move {
        let result = async {
            let body = read_body(&state, request, &mut x).await?;
            crate::responses::create(&state, &body, &mut x).await
        }
        .await;
        capture::finish(state.log_queue(), x, result)
    })
    .await
}

async fn retrieve(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Response {
    answer(crate::responses::retrieve(&state, ctx.key_id.as_deref(), &id).await)
}

async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
) -> Response {
    answer(crate::responses::delete(&state, ctx.key_id.as_deref(), &id).await)
}

async fn input_items(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return crate::error::Error::InvalidRequest(llm::openai::InvalidRequest::InvalidValue {
            param: "limit".into(),
            message: "'limit' must be an integer, 'order' 'asc' or 'desc', 'after' an item id.",
        })
        .into_responses_response();
    };
    answer(crate::responses::input_items(&state, ctx.key_id.as_deref(), &id, &query).await)
}

fn answer(result: Result<serde_json::Value, crate::error::Error>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_responses_response(),
    }
}
