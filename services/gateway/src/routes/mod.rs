//! HTTP handlers by API area ([`openai`], [`anthropic`]; [`unrouted`] for the
//! requests no route serves). Each extracts, calls one plain function, returns.

pub mod anthropic;
pub mod openai;
pub mod unrouted;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::Error;

/// Reads a request body up to `limit` bytes: a 413 past it, refused before reading
/// when the declared length already exceeds it.
pub async fn read_body(request: Request, limit: usize) -> Result<Bytes, Error> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Error::BodyTooLarge { limit });
    }
    let body: Body = request.into_body();
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::BodyTooLarge { limit })
        }
        Err(e) => Err(Error::BodyRead(e.to_string())),
    }
}
