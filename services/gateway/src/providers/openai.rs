//! OpenAI and every OpenAI-compatible API. The client's body goes upstream with
//! `model` rewritten (and a logged stream asking for its usage, which the client
//! does not see unless it asked too); the upstream's body comes back untouched.

use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use bytes::Bytes;
use llm::openai::{ChatRequest, EmbeddingsRequest, ErrorBody};
use secrecy::ExposeSecret;

use super::http::{EventStream, Upstream};
use super::{ChunkStream, Completion, LlmProvider, StreamError, StreamStart};
use config_model::{ConfigError, OpenAiConfig};

use crate::config::{Settings, read_api_keys};
use crate::error::Error;
use crate::stream::{Translate, translate};

#[derive(Debug)]
pub struct OpenAiCompatible {
    pub(super) upstream: Upstream,
    /// Parsed once: parsing a URL per request showed up in the profile.
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    completions_url: reqwest::Url,
    responses_url: reqwest::Url,
    /// Whether the server has the Responses API itself.
    pub serves_responses: bool,
    pub(super) peer: std::sync::Arc<super::Peer>,
}

/// `{base}/{path}` as a URL, or the config error naming `base_url`.
pub(crate) fn endpoint(
    name: &str,
    base: &url::Url,
    path: &str,
) -> Result<reqwest::Url, ConfigError> {
    let base = base.as_str().trim_end_matches('/');
    reqwest::Url::parse(&format!("{base}/{path}")).map_err(|e| ConfigError {
        key: format!("providers.{name}.base_url"),
        message: e.to_string(),
    })
}

impl OpenAiCompatible {
    pub fn build(
        name: &str,
        config: &OpenAiConfig,
        settings: &Settings,
    ) -> Result<Self, ConfigError> {
        let auth: Vec<(HeaderName, String)> = read_api_keys(
            name,
            config.api_key_env.as_deref(),
            config.api_key_sealed.as_deref(),
        )?
        .into_iter()
        .map(|key| {
            (
                header::AUTHORIZATION,
                format!("Bearer {}", key.expose_secret()),
            )
        })
        .collect();
        Ok(Self {
            upstream: Upstream::build(
                name,
                config.timeouts.apply(settings.timeouts),
                auth,
                &[],
                &config.headers,
            )?,
            chat_url: endpoint(name, &config.base_url, "chat/completions")?,
            embeddings_url: endpoint(name, &config.base_url, "embeddings")?,
            completions_url: endpoint(name, &config.base_url, "completions")?,
            responses_url: endpoint(name, &config.base_url, "responses")?,
            serves_responses: config.serves_responses(),
            peer: std::sync::Arc::new(super::Peer::of("openai", &config.base_url)),
        })
    }

    /// A whole JSON answer, or the upstream's error passed through.
    async fn call(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<Completion, Error> {
        let answer = self.upstream.send(url, body, HeaderMap::new()).await?;
        let body = self.upstream.read_body(answer.response).await?;
        if !answer.status.is_success() {
            return Err(upstream_error(answer.status, &answer.headers, &body));
        }
        Ok(Completion {
            headers: answer.headers,
            body,
        })
    }

    /// A stream of chunk payloads, or the upstream's error passed through.
    async fn stream(&self, url: &reqwest::Url, body: Vec<u8>) -> Result<StreamStart, Error> {
        let answer = self.upstream.send(url, body, HeaderMap::new()).await?;
        if !answer.status.is_success() {
            let body = self.upstream.read_body(answer.response).await?;
            return Err(upstream_error(answer.status, &answer.headers, &body));
        }
        Ok(StreamStart {
            headers: answer.headers,
            chunks: chunks(self.upstream.events(answer.response)),
        })
    }

    /// `POST /responses` on a server with the Responses API: `body` as it goes.
    pub async fn responses(&self, body: Vec<u8>) -> Result<Completion, Error> {
        self.call(&self.responses_url, body).await
    }

    /// The streamed form of [`Self::responses`]: the upstream's events as they
    /// come (the Responses API's `event:` + `data:` frames).
    pub async fn responses_stream(&self, body: Vec<u8>) -> Result<(HeaderMap, EventStream), Error> {
        let answer = self
            .upstream
            .send(&self.responses_url, body, HeaderMap::new())
            .await?;
        if !answer.status.is_success() {
            let body = self.upstream.read_body(answer.response).await?;
            return Err(upstream_error(answer.status, &answer.headers, &body));
        }
        Ok((answer.headers, self.upstream.events(answer.response)))
    }

    /// `POST /completions` (legacy text completions), passed through.
    pub async fn completions(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        self.call(&self.completions_url, req.upstream_body(model))
            .await
    }

    /// The streamed form of [`Self::completions`].
    pub async fn completions_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<StreamStart, Error> {
        self.stream(&self.completions_url, req.upstream_body(model))
            .await
    }
}

impl LlmProvider for OpenAiCompatible {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        self.call(&self.chat_url, req.upstream_body(model)).await
    }

    async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<StreamStart, Error> {
        self.stream(&self.chat_url, req.upstream_body(model)).await
    }

    async fn embeddings(&self, req: &EmbeddingsRequest, model: &str) -> Result<Completion, Error> {
        self.call(&self.embeddings_url, req.upstream_body(model))
            .await
    }
}

fn upstream_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Error {
    Error::Upstream {
        status,
        body: ErrorBody::from_upstream(status.as_u16(), body),
        retry_after: crate::retry::hint(headers),
    }
}

/// An OpenAI event stream as chunk payloads: ends at `data: [DONE]`; the body
/// ending before it is a truncated stream; an `event: error` is an upstream error.
#[derive(Default)]
struct Chunks {
    done: bool,
}

impl Translate for Chunks {
    type In = llm::sse::Event;
    type Out = Bytes;

    fn item(&mut self, event: llm::sse::Event) -> Result<Vec<Bytes>, StreamError> {
        if event.data == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        // OpenAI's in-stream error is a `data: {"error": …}`; some servers name
        // the event instead.
        if event.event.as_deref() == Some("error") || event.data.starts_with("{\"error\"") {
            return Err(StreamError::Upstream(ErrorBody::from_upstream(
                500,
                event.data.as_bytes(),
            )));
        }
        Ok(vec![Bytes::from(event.data)])
    }

    fn end(&mut self) -> Result<Vec<Bytes>, StreamError> {
        Err(StreamError::Truncated)
    }

    fn done(&self) -> bool {
        self.done
    }
}

fn chunks(events: EventStream) -> ChunkStream {
    translate(events, Chunks::default())
}
