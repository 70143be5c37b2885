//! What every HTTP provider shares: one pooled client per provider, headers built
//! once (keys marked sensitive), timeouts, and the upstream event-stream reader.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use llm::sse;

use super::StreamError;
use crate::error::Error;
use config_model::{ConfigError, Timeouts};

/// An upstream HTTP API.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    client: reqwest::Client,
    headers: HeaderMap,
    pub timeouts: Timeouts,
}

/// A response whose headers arrived.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: axum::http::StatusCode,
    /// Upstream headers worth passing to the client.
    pub headers: HeaderMap,
    pub response: reqwest::Response,
}

impl Upstream {
    /// `auth`: the header carrying the key (`authorization: Bearer …`,
    /// `x-api-key: …`), marked sensitive so it never prints.
    pub fn build(
        name: &str,
        timeouts: Timeouts,
        auth: Option<(HeaderName, String)>,
        fixed: &[(HeaderName, &str)],
        configured: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let problem = |key: String, message: String| ConfigError {
            key: format!("providers.{name}.{key}"),
            message,
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in fixed {
            let v = HeaderValue::try_from(*v)
                .map_err(|_| problem(k.to_string(), "not a valid header value".into()))?;
            headers.insert(k.clone(), v);
        }
        for (k, v) in configured {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) else {
                return Err(problem(
                    format!("headers.{k}"),
                    "not a valid HTTP header".into(),
                ));
            };
            headers.insert(name, value);
        }
        if let Some((header, value)) = auth {
            let mut v = HeaderValue::try_from(value).map_err(|_| {
                problem(
                    "api_key_env".into(),
                    "the key is not a valid header value".into(),
                )
            })?;
            v.set_sensitive(true);
            headers.insert(header, v);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                problem(
                    "base_url".into(),
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            name: name.to_owned(),
            client,
            headers,
            timeouts,
        })
    }

    /// Sends `body` and waits for the response headers (the first-byte timeout).
    pub async fn send(
        &self,
        url: &reqwest::Url,
        body: Vec<u8>,
        extra: HeaderMap,
    ) -> Result<UpstreamResponse, Error> {
        let mut headers = self.headers.clone();
        headers.extend(extra);
        let request = self
            .client
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send();
        let response = match tokio::time::timeout(self.timeouts.first_byte, request).await {
            Err(_) => return Err(self.timeout(self.timeouts.first_byte)),
            Ok(Err(e)) if e.is_timeout() => return Err(self.timeout(self.timeouts.connect)),
            Ok(Err(e)) => return Err(self.unreachable(&e)),
            Ok(Ok(response)) => response,
        };
        Ok(UpstreamResponse {
            status: response.status(),
            headers: forwarded_headers(response.headers()),
            response,
        })
    }

    /// Reads a whole body once its headers arrived, within the idle timeout.
    pub async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, Error> {
        match tokio::time::timeout(self.timeouts.idle, response.bytes()).await {
            Err(_) => Err(self.timeout(self.timeouts.idle)),
            Ok(Err(e)) => Err(self.unreachable(&e)),
            Ok(Ok(body)) => Ok(body),
        }
    }

    pub fn timeout(&self, after: Duration) -> Error {
        Error::UpstreamTimeout {
            provider: self.name.clone(),
            seconds: after.as_secs_f64(),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> Error {
        Error::UpstreamUnreachable {
            provider: self.name.clone(),
            reason: root_cause(e),
        }
    }

    pub fn protocol(&self, reason: impl Into<String>) -> Error {
        Error::UpstreamProtocol {
            provider: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// The response body as events, each within the idle timeout.
    pub fn events(&self, response: reqwest::Response) -> EventStream {
        events(response.bytes_stream(), self.timeouts.idle)
    }
}

/// The innermost cause of an HTTP client error: "Connection refused (os error
/// 111)" rather than a sentence with the URL in it.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Upstream headers a client can use: rate limits and retry hints.
fn forwarded_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if n.starts_with("x-ratelimit-")
            || n.starts_with("anthropic-ratelimit-")
            || matches!(
                n,
                "retry-after" | "retry-after-ms" | "x-should-retry" | "openai-processing-ms"
            )
        {
            out.append(name.clone(), value.clone());
        }
    }
    for id in ["x-request-id", "request-id"] {
        if let Some(v) = upstream.get(id) {
            out.insert(HeaderName::from_static("x-upstream-request-id"), v.clone());
        }
    }
    out
}

/// Upstream events; ends at the end of the body (each dialect decides whether
/// that was too early).
pub type EventStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<sse::Event, StreamError>> + Send>>;

fn events(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Duration,
) -> EventStream {
    struct State<S> {
        body: S,
        decoder: sse::Decoder,
        pending: VecDeque<sse::Event>,
        done: bool,
    }
    let state = State {
        body: Box::pin(body),
        decoder: sse::Decoder::new(),
        pending: VecDeque::new(),
        done: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        move |mut s| async move {
            loop {
                if let Some(event) = s.pending.pop_front() {
                    return Some((Ok(event), s));
                }
                if s.done {
                    return None;
                }
                let failure = match tokio::time::timeout(idle, s.body.next()).await {
                    Err(_) => StreamError::Timeout {
                        seconds: idle.as_secs_f64(),
                    },
                    Ok(Some(Err(e))) => StreamError::Read(root_cause(&e)),
                    Ok(Some(Ok(bytes))) => {
                        let State {
                            decoder, pending, ..
                        } = &mut s;
                        match decoder.feed_with(&bytes, |e| pending.push_back(e)) {
                            Ok(()) => continue,
                            Err(e) => StreamError::Protocol(e.to_string()),
                        }
                    }
                    Ok(None) => {
                        s.done = true;
                        match s.decoder.finish() {
                            Ok(Some(e)) => s.pending.push_back(e),
                            Ok(None) => {}
                            Err(e) => return Some((Err(StreamError::Protocol(e.to_string())), s)),
                        }
                        continue;
                    }
                };
                s.done = true;
                s.pending.clear();
                return Some((Err(failure), s));
            }
        },
    ))
}
