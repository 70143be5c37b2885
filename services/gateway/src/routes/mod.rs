//! HTTP handlers by API area ([`openai`], [`responses`], [`anthropic`]; [`unrouted`] for the
//! requests no route serves). Each extracts, calls one plain function, returns.

pub mod anthropic;
pub mod openai;
pub mod responses;
pub mod unrouted;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::app::AppState;
use crate::capture::Exchange;
use crate::error::Error;

/// The most a body buffer is sized from `Content-Length` before bytes arrive.
const FIRST_BLOCK: usize = 64 * 1024;

/// Reads a request body into `x.request_body`: a 413 past `max_body_bytes` (before
/// reading when the declared length already says so), a 408 when it stalls longer
/// than `body_idle_timeout`, and a 503 with `Retry-After` when the bytes of bodies
/// in flight would pass `max_body_bytes_in_flight` for longer than `body_wait`.
/// The room it takes is held by the exchange until its log event is built.
pub async fn read_body(
    state: &AppState,
    request: Request,
    x: &mut Exchange,
) -> Result<Bytes, Error> {
    let settings = state.settings();
    let limit = settings.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Error::BodyTooLarge { limit });
    }
    let mut room = state.body_budget().reserve();
    let waited_until = tokio::time::Instant::now() + settings.body_wait;
    let mut body: Body = request.into_body();
    // Sized by the declared length only up to a first block: a header alone must
    // not make the gateway allocate what the body budget has not granted.
    let declared = declared.map_or(0, |len| usize::try_from(len).unwrap_or(0));
    let mut read = bytes::BytesMut::with_capacity(declared.min(FIRST_BLOCK));
    loop {
        let frame = tokio::time::timeout(settings.body_idle_timeout, body.frame())
            .await
            .map_err(|_| Error::BodyTimeout {
                seconds: settings.body_idle_timeout.as_secs_f64(),
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| Error::BodyRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if read.len() + data.len() > limit {
            return Err(Error::BodyTooLarge { limit });
        }
        let beyond = (read.len() + data.len()).saturating_sub(room.bytes());
        room.grow(beyond, waited_until).await?;
        read.extend_from_slice(&data);
    }
    let body = read.freeze();
    x.request_body = body.clone();
    x.body_room = Some(room);
    Ok(body)
}
