//! Anthropic's API: `/v1/messages`. Errors answer in Anthropic's shape.

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;

use super::read_body;
use crate::app::AppState;
use crate::error::Error;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/messages", post(messages))
}

async fn messages(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let result = async {
        let body = read_body(request, state.max_body_bytes()).await?;
        crate::messages::create(&state, &headers, &body).await
    };
    result.await.unwrap_or_else(Error::into_anthropic_response)
}
