//! OpenAI and every OpenAI-compatible API. The client's body goes upstream with only
//! `model` rewritten; the upstream's body comes back untouched.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use llm::openai::{ChatRequest, EmbeddingsRequest, ErrorBody};
use secrecy::ExposeSecret;

use super::{ChunkStream, Completion, LlmProvider, StreamError, StreamStart};
use crate::config::{ConfigError, OpenAiConfig, Settings, Timeouts, read_api_key};
use crate::error::Error;

#[derive(Debug)]
pub struct OpenAiCompatible {
    name: String,
    /// Parsed once: parsing a URL per request showed up in the profile.
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    /// Authorization (marked sensitive, so it never prints) and configured extras.
    headers: HeaderMap,
    client: reqwest::Client,
    timeouts: Timeouts,
}

impl OpenAiCompatible {
    pub fn build(
        name: &str,
        config: &OpenAiConfig,
        settings: &Settings,
    ) -> Result<Self, ConfigError> {
        let key = |k: &str| ConfigError {
            key: format!("providers.{name}.{k}"),
            message: String::new(),
        };
        let timeouts = config.timeouts.apply(settings.timeouts);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in &config.headers {
            let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) else {
                return Err(ConfigError {
                    message: "not a valid HTTP header".into(),
                    ..key(&format!("headers.{k}"))
                });
            };
            headers.insert(k, v);
        }
        if let Some(secret) = read_api_key(name, config.api_key_env.as_deref())? {
            let mut v = HeaderValue::try_from(format!("Bearer {}", secret.expose_secret()))
                .map_err(|_| ConfigError {
                    message: "the key is not a valid header value".into(),
                    ..key("api_key_env")
                })?;
            v.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, v);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ConfigError {
                message: format!("cannot build the HTTP client: {e}"),
                ..key("base_url")
            })?;
        let base = config.base_url.as_str().trim_end_matches('/');
        let endpoint = |path: &str| {
            reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| ConfigError {
                message: e.to_string(),
                ..key("base_url")
            })
        };
        Ok(Self {
            name: name.to_owned(),
            chat_url: endpoint("chat/completions")?,
            embeddings_url: endpoint("embeddings")?,
            headers,
            client,
            timeouts,
        })
    }

    /// Sends `body` and waits for the response headers.
    async fn send(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<reqwest::Response, Error> {
        let request = self
            .client
            .post(url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send();
        match tokio::time::timeout(self.timeouts.first_byte, request).await {
            Err(_) => Err(self.timeout(self.timeouts.first_byte)),
            Ok(Err(e)) if e.is_timeout() => Err(self.timeout(self.timeouts.connect)),
            Ok(Err(e)) => Err(Error::UpstreamUnreachable {
                provider: self.name.clone(),
                reason: root_cause(&e),
            }),
            Ok(Ok(response)) => Ok(response),
        }
    }

    fn timeout(&self, after: Duration) -> Error {
        Error::UpstreamTimeout {
            provider: self.name.clone(),
            seconds: after.as_secs_f64(),
        }
    }

    /// Reads a whole body once its headers arrived; the upstream has the idle
    /// timeout to send it.
    async fn read_body(&self, response: reqwest::Response) -> Result<Bytes, Error> {
        match tokio::time::timeout(self.timeouts.idle, response.bytes()).await {
            Err(_) => Err(self.timeout(self.timeouts.idle)),
            Ok(Err(e)) => Err(Error::UpstreamUnreachable {
                provider: self.name.clone(),
                reason: root_cause(&e),
            }),
            Ok(Ok(body)) => Ok(body),
        }
    }

    /// A whole JSON answer, or the upstream's error passed through.
    async fn call(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<Completion, Error> {
        let response = self.send(url, body).await?;
        let status = response.status();
        let headers = forwarded_headers(response.headers());
        let body = self.read_body(response).await?;
        if !status.is_success() {
            return Err(upstream_error(status, &body));
        }
        Ok(Completion { headers, body })
    }
}

impl LlmProvider for OpenAiCompatible {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        self.call(&self.chat_url, req.upstream_body(model)).await
    }

    async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<StreamStart, Error> {
        let response = self.send(&self.chat_url, req.upstream_body(model)).await?;
        let status = response.status();
        if !status.is_success() {
            let body = self.read_body(response).await?;
            return Err(upstream_error(status, &body));
        }
        let headers = forwarded_headers(response.headers());
        Ok(StreamStart {
            headers,
            chunks: chunks(response.bytes_stream(), self.timeouts.idle),
        })
    }

    async fn embeddings(&self, req: &EmbeddingsRequest, model: &str) -> Result<Completion, Error> {
        self.call(&self.embeddings_url, req.upstream_body(model))
            .await
    }
}

fn upstream_error(status: StatusCode, body: &[u8]) -> Error {
    Error::Upstream {
        status,
        body: ErrorBody::from_upstream(status.as_u16(), body),
    }
}

/// The innermost cause of an HTTP client error: "Connection refused (os error
/// 111)" rather than a sentence with the URL in it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
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
            || matches!(
                n,
                "retry-after" | "retry-after-ms" | "x-should-retry" | "openai-processing-ms"
            )
        {
            out.append(name.clone(), value.clone());
        }
    }
    if let Some(id) = upstream.get("x-request-id") {
        out.insert(HeaderName::from_static("x-upstream-request-id"), id.clone());
    }
    out
}

/// Turns an upstream OpenAI event stream into chunk payloads.
fn chunks(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Duration,
) -> ChunkStream {
    struct State<S> {
        body: S,
        decoder: llm::sse::Decoder,
        pending: VecDeque<Result<Bytes, StreamError>>,
        finished: bool,
    }
    let state = State {
        body: Box::pin(body),
        decoder: llm::sse::Decoder::new(),
        pending: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(
        state,
        move |mut s| async move {
            loop {
                if let Some(item) = s.pending.pop_front() {
                    if item.is_err() {
                        s.pending.clear();
                        s.finished = true;
                    }
                    return Some((item, s));
                }
                if s.finished {
                    return None;
                }
                let next = match tokio::time::timeout(idle, s.body.next()).await {
                    Err(_) => Some(Err(StreamError::Timeout {
                        seconds: idle.as_secs_f64(),
                    })),
                    Ok(Some(Err(e))) => Some(Err(StreamError::Read(root_cause(&e)))),
                    Ok(Some(Ok(bytes))) => {
                        let State {
                            decoder,
                            pending,
                            finished,
                            ..
                        } = &mut s;
                        match decoder.feed_with(&bytes, |event| {
                            if *finished {
                                return;
                            }
                            push_event(event, pending, finished);
                        }) {
                            Ok(()) => None,
                            Err(e) => Some(Err(StreamError::Protocol(e.to_string()))),
                        }
                    }
                    Ok(None) => {
                        if let Ok(Some(event)) = s.decoder.finish() {
                            push_event(event, &mut s.pending, &mut s.finished);
                        }
                        if !s.finished {
                            s.pending.push_back(Err(StreamError::Truncated));
                        }
                        s.finished = true;
                        None
                    }
                };
                if let Some(item) = next {
                    s.pending.push_back(item);
                }
            }
        },
    ))
}

fn push_event(
    event: llm::sse::Event,
    pending: &mut VecDeque<Result<Bytes, StreamError>>,
    finished: &mut bool,
) {
    if event.data == "[DONE]" {
        *finished = true;
        return;
    }
    if event.event.as_deref() == Some("error") {
        pending.push_back(Err(StreamError::Upstream(ErrorBody::from_upstream(
            500,
            event.data.as_bytes(),
        ))));
        return;
    }
    pending.push_back(Ok(Bytes::from(event.data)));
}
