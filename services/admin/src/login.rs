//! `/api/v1/session`: the web UI's login and logout ([`crate::session`]).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::{ApiError, Kind};
use crate::http::HttpError;
use crate::session::{clear_cookie, cookie_value, set_cookie};
use crate::{AppState, authorised};

/// The token, or the one-time code of the start-up link.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub token: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionState {
    /// The request carries a valid session cookie or admin token.
    pub authenticated: bool,
    /// Where clients reach the gateway (`admin.gateway_url`), for the UI's snippets.
    pub gateway_url: Option<String>,
}

/// Whether this browser is signed in; needs no token.
#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, body = SessionState)))]
pub async fn state(State(app): State<AppState>, headers: HeaderMap) -> Json<SessionState> {
    Json(SessionState {
        authenticated: authorised(&app, &headers).is_some(),
        gateway_url: app
            .gateway_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
    })
}

/// Exchanges the admin token or a login code for a session cookie.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginInput,
    responses((status = 200, body = SessionState), (status = 401, body = crate::http::ErrorBody)))]
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<LoginInput>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(input)) = body else {
        return HttpError(ApiError::new(
            Kind::Invalid,
            "invalid_body",
            "send {\"token\": …} or {\"code\": …}",
        ))
        .into_response();
    };
    let by_token = input.token.as_deref().is_some_and(|t| {
        crate::core::constant_time_eq(
            t.as_bytes(),
            secrecy::ExposeSecret::expose_secret(&*app.token).as_bytes(),
        )
    });
    let by_code = input
        .code
        .as_deref()
        .is_some_and(|c| app.sessions.redeem_code(c));
    if !(by_token || by_code) {
        tracing::info!("admin login refused");
        return HttpError(ApiError::new(
            Kind::Unauthorized,
            "unauthorized",
            "that token or login code is not valid",
        ))
        .into_response();
    }
    let value = match app.sessions.open(&app.token) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a session id");
            return HttpError(ApiError::new(
                Kind::Unavailable,
                "no_session",
                "a session could not be opened",
            ))
            .into_response();
        }
    };
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    tracing::info!(
        by = if by_code { "login link" } else { "token" },
        "admin session opened"
    );
    (
        StatusCode::OK,
        [(header::SET_COOKIE, set_cookie(&value, secure))],
        Json(SessionState {
            authenticated: true,
            gateway_url: app
                .gateway_url
                .as_ref()
                .map(|u| u.as_str().trim_end_matches('/').to_owned()),
        }),
    )
        .into_response()
}

/// Ends the session: the cookie is cleared and its id revoked.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204)))]
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(v) = cookie_value(&headers) {
        app.sessions.close(v);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie())],
    )
        .into_response()
}
