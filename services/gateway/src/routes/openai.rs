//! OpenAI's API: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`.

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use llm::openai::ModelList;

use super::read_body;
use crate::app::{AppState, RequestContext};
use crate::capture::{self, Exchange};
use crate::stream::Dialect;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/completions", post(completions))
}

/// The model list, answered without a log record.
pub fn models_router() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
}

async fn chat_completions(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/chat/completions", Dialect::OpenAi);
    // The keys each call used, for the log (`key_calls`).
    crate::providers::key_calls::scope(async move {
        let result = async {
            let body = read_body(&state, request, &mut x).await?;
            crate::chat::complete(&state, &body, &mut x, crate::chat::Api::Chat).await
        }
        .await;
        capture::finish(state.log_queue(), x, result)
    })
    .await
}

async fn completions(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/completions", Dialect::OpenAi);
    // The keys each call used, for the log (`key_calls`).
    crate::providers::key_calls::scope(async move {
        let result = async {
            let body = read_body(&state, request, &mut x).await?;
            crate::chat::complete(&state, &body, &mut x, crate::chat::Api::Completions).await
        }
        .await;
        capture::finish(state.log_queue(), x, result)
    })
    .await
}

async fn embeddings(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    let mut x = Exchange::new(&ctx, "/v1/embeddings", Dialect::OpenAi);
    // The keys each call used, for the log (`key_calls`).
    crate::providers::key_calls::scope(async move {
        let result = async {
            let body = read_body(&state, request, &mut x).await?;
            crate::embeddings::embed(&state, &body, &mut x).await
        }
        .await;
        capture::finish(state.log_queue(), x, result)
    })
    .await
}

async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state.routing().models().to_vec(),
    })
}

async fn get_model(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let routes = state.routing();
    match routes.models().iter().find(|m| m.id == id) {
        Some(model) => Json(model.clone()).into_response(),
        None => match routes.resolve(&id) {
            // A `provider/model` that is not listed still routes; describe it.
            Ok(route) => Json(llm::openai::Model {
                id,
                object: "model",
                created: 0,
                owned_by: route
                    .first()
                    .map(|t| t.provider_name.to_string())
                    .unwrap_or_default(),
            })
            .into_response(),
            Err(e) => e.into_response(),
        },
    }
}
