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
    /// The API keys, used in turn ([`KeyPool`]).
    keys: KeyPool,
    pub timeouts: Timeouts,
}

/// A provider's API keys, used in turn; a key answered 429 or 401 rests (for the
/// wait the upstream asked, 10 s, or 5 min for a refused key) and the call is
/// made again at once with the next, so one key's limit is not the provider's.
#[derive(Debug, Default)]
struct KeyPool {
    keys: Vec<(HeaderName, HeaderValue, std::sync::atomic::AtomicU64)>,
    next: std::sync::atomic::AtomicUsize,
}

use crate::ejection::now_ms;

impl KeyPool {
    /// The next key not resting and not `tried` for this call (or, all resting,
    /// the untried one back soonest).
    fn pick(&self, tried: &[usize]) -> Option<usize> {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.keys.len();
        if n <= 1 {
            return (n == 1).then_some(0);
        }
        let start = self.next.fetch_add(1, Relaxed);
        let now = now_ms();
        let untried = |i: &usize| !tried.contains(i);
        (0..n)
            .map(|i| (start + i) % n)
            .filter(untried)
            .find(|&i| self.keys[i].2.load(Relaxed) <= now)
            .or_else(|| {
                (0..n)
                    .filter(untried)
                    .min_by_key(|&i| self.keys[i].2.load(Relaxed))
            })
    }

    /// The keys resting now: their place in the pool (from 1) and until when.
    fn resting(&self) -> Vec<(u32, u64)> {
        let now = now_ms();
        (0..self.keys.len())
            .filter_map(|i| {
                let until = self.keys[i].2.load(std::sync::atomic::Ordering::Relaxed);
                (until > now).then(|| (u32::try_from(i + 1).unwrap_or(u32::MAX), until))
            })
            .collect()
    }

    /// Rests key `i` after `status`; true when another key may answer instead.
    fn rest(&self, i: usize, status: u16, headers: &HeaderMap) -> bool {
        let rest = match status {
            429 => crate::retry::hint(headers).unwrap_or(Duration::from_secs(10)),
            401 => Duration::from_secs(300),
            _ => return false,
        };
        let until = now_ms().saturating_add(u64::try_from(rest.as_millis()).unwrap_or(u64::MAX));
        // A shorter rest asked by another call never shortens a longer one.
        self.keys[i]
            .2
            .fetch_max(until, std::sync::atomic::Ordering::Relaxed);
        self.keys.len() > 1
    }
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
    /// `auth`: the header carrying each key (`authorization: Bearer …`,
    /// `x-api-key: …`), marked sensitive so it never prints; several are a pool.
    pub fn build(
        name: &str,
        timeouts: Timeouts,
        auth: Vec<(HeaderName, String)>,
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
        let mut keys = KeyPool::default();
        for (header, value) in auth {
            let mut v = HeaderValue::try_from(value).map_err(|_| {
                problem(
                    "api_key_env".into(),
                    "the key is not a valid header value".into(),
                )
            })?;
            v.set_sensitive(true);
            keys.keys
                .push((header, v, std::sync::atomic::AtomicU64::new(0)));
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
            keys,
            timeouts,
        })
    }

    /// The pool's keys resting now: their place (from 1) and until when.
    pub fn resting_keys(&self) -> Vec<(u32, u64)> {
        self.keys.resting()
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
        let body = Bytes::from(body);
        // One call per key at most: a key answered 429 or 401 rests, the next
        // takes the call.
        let mut tries = self.keys.keys.len().max(1);
        let mut tried = Vec::new();
        loop {
            tries -= 1;
            let key = self.keys.pick(&tried);
            tried.extend(key);
            let mut headers = headers.clone();
            if let Some(i) = key {
                let (name, value, _) = &self.keys.keys[i];
                headers.insert(name.clone(), value.clone());
            }
            super::key_calls::used(key);
            let sent = std::time::Instant::now();
            let request = self
                .client
                .post(url.clone())
                .headers(headers)
                .body(body.clone())
                .send();
            let response = match tokio::time::timeout(self.timeouts.first_byte, request).await {
                Err(_) => return Err(self.timeout(self.timeouts.first_byte)),
                Ok(Err(e)) if e.is_timeout() => return Err(self.timeout(self.timeouts.connect)),
                Ok(Err(e)) => return Err(self.unreachable(&e)),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            if let Some(i) = key
                && self.keys.rest(i, status.as_u16(), response.headers())
                && tries > 0
            {
                tracing::info!(provider = %self.name, %status, "key rests; the next key takes the call");
                let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                super::key_calls::rested(i, status.as_u16(), latency_us);
                continue;
            }
            return Ok(UpstreamResponse {
                status,
                headers: forwarded_headers(response.headers()),
                response,
            });
        }
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
