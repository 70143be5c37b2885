//! The gateway's one error type. Every error a client can see has a status, a stable
//! snake_case code, and the body shape of the API the client called (OpenAI's, or
//! Anthropic's on `/v1/messages`); unexpected errors are logged in full and
//! answered with a generic message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use llm::anthropic;
use llm::openai::{ErrorBody, InvalidRequest};
use llm::translate::{chat_to_messages, messages_to_chat};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidRequest(#[from] InvalidRequest),
    #[error(
        "You didn't provide an API key. Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`."
    )]
    MissingApiKey,
    #[error("Incorrect API key provided.")]
    InvalidApiKey,
    #[error("The model `{0}` does not exist or you do not have access to it.")]
    ModelNotFound(String),
    #[error("This API key expired; ask for a new one.")]
    KeyExpired,
    #[error("This API key may not use the model `{0}`.")]
    ModelNotAllowed(String),
    /// The key's per-minute limit is used up (every gateway together).
    #[error("Rate limit reached for this API key: {limit} {what} per minute. Try again in {}s.", retry_after.as_secs().max(1))]
    RateLimited {
        what: &'static str,
        limit: u64,
        retry_after: std::time::Duration,
    },
    /// The key has `limit` requests in flight already (every gateway together).
    #[error("This API key has {limit} requests in flight, its limit; retry when one is done.")]
    InFlightLimit { limit: u64 },
    /// The request's upper-bound cost does not fit what is left of the key's
    /// budget.
    #[error("This API key's {period} budget of ${usd:.2} is spent.")]
    BudgetExceeded { period: &'static str, usd: f64 },
    /// The key's limits cannot be checked (the bus is unreachable) and the
    /// gateway is set to refuse then.
    #[error("The rate limits of this API key cannot be checked right now; retry shortly.")]
    LimitsUnavailable,
    #[error("Request body is larger than the {limit}-byte limit.")]
    BodyTooLarge { limit: usize },
    #[error("Could not read the request body: {0}")]
    BodyRead(String),
    #[error("The request body stalled for more than {seconds} s.")]
    BodyTimeout { seconds: f64 },
    /// The bodies in flight fill `max_body_bytes_in_flight`: try again shortly.
    #[error("The gateway is busy with other large requests; retry shortly.")]
    Overloaded,
    #[error("Invalid URL ({method} {path})")]
    UnknownRoute { method: String, path: String },
    #[error("Method {method} is not allowed on {path}.")]
    MethodNotAllowed { method: String, path: String },
    /// The request uses something the provider's API cannot express.
    #[error("{0}")]
    Untranslatable(String),
    /// An Anthropic request body Anthropic's API would refuse.
    #[error("{0}")]
    InvalidMessagesRequest(String),
    /// `GET`/`DELETE /v1/responses/{id}` of a response not stored (or not the
    /// key's).
    #[error("Response with id '{0}' not found.")]
    ResponseNotFound(String),
    /// `previous_response_id` names a response not stored (or not the key's).
    #[error("Previous response with id '{0}' not found.")]
    PreviousResponseNotFound(String),
    /// The stored conversations cannot be reached (the bus is away).
    #[error("Stored responses cannot be reached right now; retry shortly.")]
    ConversationsUnavailable,
    #[error("Provider `{provider}` does not support {what}.")]
    Unsupported {
        provider: String,
        what: &'static str,
    },
    #[error("Could not reach provider `{provider}`: {reason}")]
    UpstreamUnreachable { provider: String, reason: String },
    #[error("Provider `{provider}` did not answer within {seconds} s.")]
    UpstreamTimeout { provider: String, seconds: f64 },
    #[error("Provider `{provider}` sent a response aiprox cannot read: {reason}")]
    UpstreamProtocol { provider: String, reason: String },
    /// The upstream answered with an error status; passed through, normalised.
    /// `retry_after`: when it said to come back (`retry-after-ms`, `retry-after`,
    /// `x-ratelimit-reset-*`).
    #[error("{}", .body.error.message)]
    Upstream {
        status: StatusCode,
        body: ErrorBody,
        retry_after: Option<std::time::Duration>,
    },
    /// An Anthropic upstream answered with an error status.
    #[error("{}", .body.error.message)]
    UpstreamAnthropic {
        status: StatusCode,
        body: Box<anthropic::ErrorBody>,
        retry_after: Option<std::time::Duration>,
    },
    /// Inline media (a `data:` URL, a base64 source) that cannot be used.
    #[error(transparent)]
    InvalidMedia(#[from] llm::inline_media::InvalidMedia),
    #[error("internal error")]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    /// Whether the next target may succeed where this one failed: the upstream
    /// could not be reached or did not answer in time, or answered 408, 409, 429, a
    /// 5xx or 529. Never another 4xx: the request itself is wrong, everywhere.
    pub fn is_retryable(&self) -> bool {
        let status = match self {
            Self::UpstreamUnreachable { .. } | Self::UpstreamTimeout { .. } => return true,
            Self::Upstream { status, .. } | Self::UpstreamAnthropic { status, .. } => *status,
            _ => return false,
        };
        matches!(status.as_u16(), 408 | 409 | 429 | 500..=599)
    }

    /// When the upstream said to try again, if it did.
    pub fn upstream_retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Upstream { retry_after, .. } | Self::UpstreamAnthropic { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Whether it came from an upstream (the gateway gave up on it).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::UpstreamUnreachable { .. }
                | Self::UpstreamTimeout { .. }
                | Self::UpstreamProtocol { .. }
                | Self::Upstream { .. }
                | Self::UpstreamAnthropic { .. }
        )
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(InvalidRequest::MissingModel) | Self::ModelNotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::InvalidRequest(_)
            | Self::BodyRead(_)
            | Self::Unsupported { .. }
            | Self::Untranslatable(_)
            | Self::InvalidMessagesRequest(_)
            | Self::PreviousResponseNotFound(_)
            | Self::InvalidMedia(_) => StatusCode::BAD_REQUEST,
            Self::ResponseNotFound(_) => StatusCode::NOT_FOUND,
            Self::ConversationsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::MissingApiKey | Self::InvalidApiKey | Self::KeyExpired => {
                StatusCode::UNAUTHORIZED
            }
            Self::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } | Self::BudgetExceeded { .. } | Self::InFlightLimit { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::LimitsUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::UnknownRoute { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UpstreamUnreachable { .. } | Self::UpstreamProtocol { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream { status, .. } => *status,
            Self::UpstreamAnthropic { status, body, .. } => {
                StatusCode::from_u16(chat_to_messages::error(status.as_u16(), body).0)
                    .unwrap_or(*status)
            }
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code clients may match on.
    pub fn code(&self) -> Option<&str> {
        Some(match self {
            Self::InvalidRequest(e) => e.code(),
            Self::ModelNotFound(_) => "model_not_found",
            Self::MissingApiKey => "missing_api_key",
            Self::InvalidApiKey => "invalid_api_key",
            Self::KeyExpired => "key_expired",
            Self::ModelNotAllowed(_) => "model_not_allowed",
            Self::RateLimited { .. } => "rate_limit_exceeded",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::InFlightLimit { .. } => "concurrency_limit_exceeded",
            Self::LimitsUnavailable => "limits_unavailable",
            Self::BodyTooLarge { .. } => "request_too_large",
            Self::BodyRead(_) => "invalid_body",
            Self::BodyTimeout { .. } => "request_timeout",
            Self::Overloaded => "overloaded",
            Self::UnknownRoute { .. } => "unknown_url",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unsupported { .. } => "unsupported_endpoint",
            Self::Untranslatable(_) => "unsupported_by_provider",
            Self::InvalidMessagesRequest(_) => "invalid_request",
            Self::ResponseNotFound(_) => "response_not_found",
            Self::PreviousResponseNotFound(_) => "previous_response_not_found",
            Self::ConversationsUnavailable => "store_unavailable",
            Self::InvalidMedia(_) => "invalid_image",
            Self::UpstreamUnreachable { .. } => "upstream_unreachable",
            Self::UpstreamTimeout { .. } => "upstream_timeout",
            Self::UpstreamProtocol { .. } => "upstream_protocol_error",
            Self::Upstream { body, .. } => return body.error.code.as_deref(),
            Self::UpstreamAnthropic { .. } => return None,
            Self::Unexpected(_) => "internal_error",
        })
    }

    /// The error in OpenAI's shape.
    pub fn openai_body(&self) -> ErrorBody {
        match self {
            Self::Upstream { body, .. } => return body.clone(),
            Self::UpstreamAnthropic { status, body, .. } => {
                return chat_to_messages::error(status.as_u16(), body).1;
            }
            _ => {}
        }
        let kind = match self {
            Self::UpstreamUnreachable { .. } | Self::UpstreamProtocol { .. } => "upstream_error",
            Self::UpstreamTimeout { .. } => "timeout_error",
            Self::Unexpected(_)
            | Self::Overloaded
            | Self::LimitsUnavailable
            | Self::ConversationsUnavailable => "server_error",
            Self::ModelNotAllowed(_) => "permission_error",
            // OpenAI's own 429 names what ran out.
            Self::RateLimited { what, .. } => what,
            Self::BudgetExceeded { .. } => "insufficient_quota",
            Self::InFlightLimit { .. } => "requests",
            _ => "invalid_request_error",
        };
        let param = match self {
            Self::InvalidRequest(e) => e.param(),
            Self::ModelNotFound(_) | Self::ModelNotAllowed(_) => Some("model"),
            Self::PreviousResponseNotFound(_) => Some("previous_response_id"),
            Self::InvalidMedia(e) => Some(e.path.as_str()),
            _ => None,
        };
        ErrorBody::new(self.to_string(), kind, param, self.code())
    }

    /// The status and body as the Responses API answers them: OpenAI's shape,
    /// but an unknown model is a 400 about `model` (Chat's is a 404).
    pub fn responses(&self) -> (StatusCode, ErrorBody) {
        let (status, body) = llm::translate::responses_to_chat::error(
            self.status_code().as_u16(),
            &self.openai_body(),
        );
        (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            body,
        )
    }

    /// The error as `/v1/responses` answers it.
    pub fn into_responses_response(self) -> Response {
        self.log();
        let (status, body) = self.responses();
        let retry = self.retry_after();
        (status, retry, axum::Json(body)).into_response()
    }

    /// The status and body in Anthropic's shape, for `/v1/messages`.
    pub fn anthropic(&self) -> (StatusCode, anthropic::ErrorBody) {
        match self {
            Self::UpstreamAnthropic { status, body, .. } => (*status, (**body).clone()),
            Self::Upstream { status, body, .. } => {
                let (status, body) = messages_to_chat::error(status.as_u16(), body);
                (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    body,
                )
            }
            _ => {
                let status = self.status_code();
                let kind = match self {
                    Self::UpstreamUnreachable { .. } | Self::UpstreamProtocol { .. } => "api_error",
                    _ => anthropic::kind_for_status(status.as_u16()),
                };
                (status, anthropic::ErrorBody::new(kind, self.to_string()))
            }
        }
    }

    /// The error as `/v1/messages` answers it.
    pub fn into_anthropic_response(self) -> Response {
        self.log();
        let (status, body) = self.anthropic();
        let retry = self.retry_after();
        (status, retry, axum::Json(body)).into_response()
    }

    /// `Retry-After` for refusals a client should simply try again.
    fn retry_after(&self) -> axum::http::HeaderMap {
        let mut headers = axum::http::HeaderMap::new();
        let seconds = match self {
            Self::Overloaded
            | Self::LimitsUnavailable
            | Self::ConversationsUnavailable
            | Self::InFlightLimit { .. } => 1,
            Self::RateLimited { retry_after, .. } => retry_after.as_secs().max(1),
            _ => return headers,
        };
        headers.insert(axum::http::header::RETRY_AFTER, seconds.into());
        headers
    }

    fn log(&self) {
        if let Self::Unexpected(e) = self {
            tracing::error!(error = ?e, "unexpected error");
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let retry = self.retry_after();
        (self.status_code(), retry, axum::Json(self.openai_body())).into_response()
    }
}
