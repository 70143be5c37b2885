//! The provider kinds aiprox can call, as a closed enum over one small trait.
//!
//! - [`openai`]: OpenAI and every API that speaks its protocol; bodies pass through
//!   with `model` rewritten (and, for a logged stream, usage asked for).
//! - [`anthropic`]: Anthropic's Messages API, natively for Anthropic clients and
//!   translated both ways for OpenAI clients.
//! - [`demo`]: answers without any upstream, so a first run needs no vendor key.
//! - [`http`]: the one upstream HTTP client they share (timeouts, headers, keys).

pub mod anthropic;
pub mod demo;
pub mod http;
pub mod key_calls;
pub mod openai;

use std::future::Future;
use std::pin::Pin;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::Stream;
use llm::openai::{ChatRequest, EmbeddingsRequest, ErrorBody};

use config_model::ProviderConfig;

use crate::config::Settings;
use crate::error::Error;

/// Whom a provider's calls go to, as spans name it: `gen_ai.provider.name` (the
/// protocol's vendor: every OpenAI-compatible API is `openai`), `server.address`
/// and `server.port`.
#[derive(Debug, Clone)]
pub struct Peer {
    pub system: &'static str,
    pub address: Option<String>,
    pub port: Option<u16>,
}

impl Peer {
    pub fn of(system: &'static str, url: &url::Url) -> Self {
        Self {
            system,
            address: url.host_str().map(str::to_owned),
            port: url.port_or_known_default(),
        }
    }
}

/// A whole (non-streamed) successful answer, in OpenAI's shape.
#[derive(Debug)]
pub struct Completion {
    /// Upstream headers worth passing on (rate limits, retry hints).
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// OpenAI chunk payloads (the JSON after `data: `), without the final `[DONE]`.
/// The stream ends with `None` after the upstream's own end marker, or with one
/// error.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, StreamError>> + Send>>;

/// A stream that has started: the upstream accepted the request.
pub struct StreamStart {
    pub headers: HeaderMap,
    pub chunks: ChunkStream,
}

impl std::fmt::Debug for StreamStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamStart")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// What can go wrong once a stream has started, when only an error event can tell
/// the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StreamError {
    #[error("the upstream stream stalled for more than {seconds} s")]
    Timeout { seconds: f64 },
    #[error("the upstream connection failed mid-stream: {0}")]
    Read(String),
    #[error("the upstream stream ended before its end marker")]
    Truncated,
    #[error("the upstream sent an unreadable stream: {0}")]
    Protocol(String),
    #[error("{}", .0.error.message)]
    Upstream(ErrorBody),
}

impl StreamError {
    /// The error event's body, in Anthropic's shape.
    pub fn anthropic_body(&self) -> llm::anthropic::ErrorBody {
        match self {
            Self::Upstream(body) => llm::translate::messages_to_chat::error(500, body).1,
            Self::Timeout { .. } => {
                llm::anthropic::ErrorBody::new("timeout_error", self.to_string())
            }
            _ => llm::anthropic::ErrorBody::new("api_error", self.to_string()),
        }
    }

    /// The error event's body, in OpenAI's shape.
    pub fn openai_body(&self) -> ErrorBody {
        match self {
            Self::Upstream(body) => body.clone(),
            Self::Timeout { .. } => ErrorBody::new(
                self.to_string(),
                "timeout_error",
                None,
                Some("stream_timeout"),
            ),
            Self::Read(_) | Self::Truncated => ErrorBody::new(
                self.to_string(),
                "upstream_error",
                None,
                Some("stream_interrupted"),
            ),
            Self::Protocol(_) => ErrorBody::new(
                self.to_string(),
                "upstream_error",
                None,
                Some("upstream_protocol_error"),
            ),
        }
    }
}

/// What every provider kind implements.
pub trait LlmProvider {
    fn chat(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> impl Future<Output = Result<Completion, Error>> + Send;

    fn chat_stream(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> impl Future<Output = Result<StreamStart, Error>> + Send;

    fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> impl Future<Output = Result<Completion, Error>> + Send;
}

/// A configured provider. Always held in an `Arc`, built once, so the size
/// difference between kinds costs nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Provider {
    OpenAi(openai::OpenAiCompatible),
    Anthropic(anthropic::Anthropic),
    Demo(demo::Demo),
}

impl Provider {
    /// Builds the provider called `name`.
    pub fn build(
        name: &str,
        config: &ProviderConfig,
        settings: &Settings,
    ) -> Result<Self, config_model::ConfigError> {
        Ok(match config {
            ProviderConfig::Openai(c) => {
                Self::OpenAi(openai::OpenAiCompatible::build(name, c, settings)?)
            }
            ProviderConfig::Anthropic(c) => {
                Self::Anthropic(anthropic::Anthropic::build(name, c, settings)?)
            }
            ProviderConfig::Demo(c) => Self::Demo(demo::Demo::new(c)),
        })
    }

    /// Whom its calls go to.
    pub fn peer(&self) -> &std::sync::Arc<Peer> {
        match self {
            Self::OpenAi(p) => &p.peer,
            Self::Anthropic(p) => &p.peer,
            Self::Demo(p) => &p.peer,
        }
    }

    /// Its pool's keys resting now: their place (from 1) and until when.
    pub fn resting_keys(&self) -> Vec<(u32, u64)> {
        match self {
            Self::OpenAi(p) => p.upstream.resting_keys(),
            Self::Anthropic(p) => p.upstream.resting_keys(),
            Self::Demo(_) => Vec::new(),
        }
    }

    pub async fn chat(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        match self {
            Self::OpenAi(p) => p.chat(req, model).await,
            Self::Anthropic(p) => p.chat(req, model).await,
            Self::Demo(p) => p.chat(req, model).await,
        }
    }

    pub async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<StreamStart, Error> {
        match self {
            Self::OpenAi(p) => p.chat_stream(req, model).await,
            Self::Anthropic(p) => p.chat_stream(req, model).await,
            Self::Demo(p) => p.chat_stream(req, model).await,
        }
    }

    pub async fn embeddings(
        &self,
        req: &EmbeddingsRequest,
        model: &str,
    ) -> Result<Completion, Error> {
        match self {
            Self::OpenAi(p) => p.embeddings(req, model).await,
            Self::Anthropic(p) => p.embeddings(req, model).await,
            Self::Demo(p) => p.embeddings(req, model).await,
        }
    }
}
