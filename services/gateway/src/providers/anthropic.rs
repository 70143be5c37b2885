//! Anthropic's Messages API: OpenAI chat requests translated both ways
//! (`llm::translate::chat_to_messages`), and Anthropic requests passed through
//! natively with only `model` rewritten.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName};
use bytes::Bytes;
use llm::anthropic::{self, MessagesResponse};
use llm::openai::types::ChatCompletionRequest;
use llm::openai::{ChatRequest, EmbeddingsRequest};
use llm::raw::{self, RawObject};
use llm::translate::TranslateError;
use llm::translate::chat_to_messages::{self, StreamFailure, StreamTranslator};
use secrecy::ExposeSecret;

use super::http::{EventStream, Upstream};
use super::{Completion, LlmProvider, StreamError, StreamStart};
use config_model::{AnthropicConfig, ConfigError};

use crate::config::{Settings, read_api_keys};
use crate::error::Error;
use crate::stream::{Translate, translate};

const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");

#[derive(Debug)]
pub struct Anthropic {
    pub(super) upstream: Upstream,
    messages_url: reqwest::Url,
    count_tokens_url: reqwest::Url,
    default_max_tokens: u32,
    pub(super) peer: std::sync::Arc<super::Peer>,
}

/// One event of a native (pass-through) Anthropic stream.
#[derive(Debug, Clone)]
pub struct NativeEvent {
    pub name: String,
    pub data: Bytes,
}

/// A native Anthropic stream: events as the upstream sent them, ending after
/// `message_stop` or an `error` event.
pub type NativeStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<NativeEvent, StreamError>> + Send>>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Anthropic {
    pub fn build(
        name: &str,
        config: &AnthropicConfig,
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
                HeaderName::from_static("x-api-key"),
                key.expose_secret().to_owned(),
            )
        })
        .collect();
        let base = match &config.base_url {
            Some(url) => url.clone(),
            None => url::Url::parse("https://api.anthropic.com").map_err(|e| ConfigError {
                key: format!("providers.{name}.base_url"),
                message: e.to_string(),
            })?,
        };
        Ok(Self {
            upstream: Upstream::build(
                name,
                config.timeouts.apply(settings.timeouts),
                auth,
                &[(ANTHROPIC_VERSION, config.anthropic_version.as_str())],
                &config.headers,
            )?,
            messages_url: super::openai::endpoint(name, &base, "v1/messages")?,
            count_tokens_url: super::openai::endpoint(name, &base, "v1/messages/count_tokens")?,
            peer: std::sync::Arc::new(super::Peer::of("anthropic", &base)),
            default_max_tokens: config.default_max_tokens,
        })
    }

    /// The client's `anthropic-version` and `anthropic-beta`, which only an
    /// Anthropic client sends and which select API behaviour.
    fn client_headers(client: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in [ANTHROPIC_VERSION, ANTHROPIC_BETA] {
            for v in client.get_all(&name) {
                out.append(name.clone(), v.clone());
            }
        }
        out
    }

    /// Sends a Messages body; an error status becomes the upstream's error.
    async fn send(
        &self,
        body: Vec<u8>,
        headers: HeaderMap,
    ) -> Result<super::http::UpstreamResponse, Error> {
        self.send_to(&self.messages_url, body, headers).await
    }

    async fn send_to(
        &self,
        url: &reqwest::Url,
        body: Vec<u8>,
        headers: HeaderMap,
    ) -> Result<super::http::UpstreamResponse, Error> {
        let answer = self.upstream.send(url, body, headers).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        let status = answer.status;
        let retry_after = crate::retry::hint(&answer.headers);
        let body = self.upstream.read_body(answer.response).await?;
        Err(Error::UpstreamAnthropic {
            status,
            body: Box::new(anthropic::ErrorBody::from_upstream(status.as_u16(), &body)),
            retry_after,
        })
    }

    /// `POST /v1/messages` passed through: the client's body with `model`
    /// rewritten, the upstream's answer untouched.
    pub async fn messages(
        &self,
        body: &RawObject,
        model: &str,
        client: &HeaderMap,
    ) -> Result<Completion, Error> {
        let body = raw::to_vec_replacing(body, "model", &raw::to_raw(model));
        let answer = self.send(body, Self::client_headers(client)).await?;
        let body = self.upstream.read_body(answer.response).await?;
        Ok(Completion {
            headers: answer.headers,
            body,
        })
    }

    /// `POST /v1/messages/count_tokens` passed through, as [`Self::messages`].
    pub async fn count_tokens(
        &self,
        body: &RawObject,
        model: &str,
        client: &HeaderMap,
    ) -> Result<Completion, Error> {
        let body = raw::to_vec_replacing(body, "model", &raw::to_raw(model));
        let answer = self
            .send_to(&self.count_tokens_url, body, Self::client_headers(client))
            .await?;
        let body = self.upstream.read_body(answer.response).await?;
        Ok(Completion {
            headers: answer.headers,
            body,
        })
    }

    /// The streamed form of [`Self::messages`].
    pub async fn messages_stream(
        &self,
        body: &RawObject,
        model: &str,
        client: &HeaderMap,
    ) -> Result<(HeaderMap, NativeStream), Error> {
        let body = raw::to_vec_replacing(body, "model", &raw::to_raw(model));
        let answer = self.send(body, Self::client_headers(client)).await?;
        Ok((
            answer.headers,
            native_events(self.upstream.events(answer.response)),
        ))
    }

    fn translate_request(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<Vec<u8>, Error> {
        let typed: ChatCompletionRequest = llm::typed_body::from_slice(&raw::to_vec(&req.body))
            .map_err(|e| Error::InvalidRequest(e.into()))?;
        let mut messages = chat_to_messages::request(typed, model, self.default_max_tokens)
            .map_err(translate_error)?;
        messages.stream = stream.then_some(true);
        serde_json::to_vec(&messages).map_err(|e| Error::Unexpected(e.into()))
    }
}

fn translate_error(e: TranslateError) -> Error {
    match e {
        TranslateError::Unsupported(message) => Error::Untranslatable(message),
        other => Error::Unexpected(anyhow::anyhow!(other)),
    }
}

impl LlmProvider for Anthropic {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        let body = self.translate_request(req, model, false)?;
        let answer = self.send(body, HeaderMap::new()).await?;
        let body = self.upstream.read_body(answer.response).await?;
        let message: MessagesResponse = serde_json::from_slice(&body).map_err(|e| {
            self.upstream
                .protocol(format!("unreadable Anthropic message: {e}"))
        })?;
        let completion = chat_to_messages::response(message, now())
            .map_err(|e| self.upstream.protocol(e.to_string()))?;
        let body = serde_json::to_vec(&completion).map_err(|e| Error::Unexpected(e.into()))?;
        Ok(Completion {
            headers: answer.headers,
            body: Bytes::from(body),
        })
    }

    async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<StreamStart, Error> {
        let body = self.translate_request(req, model, true)?;
        let answer = self.send(body, HeaderMap::new()).await?;
        let translator = StreamTranslator::new(req.include_usage, now());
        let events = self.upstream.events(answer.response);
        Ok(StreamStart {
            headers: answer.headers,
            chunks: translated_chunks(events, translator),
        })
    }

    async fn embeddings(
        &self,
        _req: &EmbeddingsRequest,
        _model: &str,
    ) -> Result<Completion, Error> {
        Err(Error::Unsupported {
            provider: self.upstream.name.clone(),
            what: "embeddings",
        })
    }
}

/// Anthropic events → OpenAI chunk payloads, each as soon as its event arrives.
struct ToChunks(StreamTranslator);

impl Translate for ToChunks {
    type In = llm::sse::Event;
    type Out = Bytes;

    fn item(&mut self, event: llm::sse::Event) -> Result<Vec<Bytes>, StreamError> {
        self.0
            .event(&event.data)
            .map_err(stream_error)?
            .iter()
            .map(|chunk| {
                serde_json::to_vec(chunk)
                    .map(Bytes::from)
                    .map_err(|e| StreamError::Protocol(e.to_string()))
            })
            .collect()
    }

    fn end(&mut self) -> Result<Vec<Bytes>, StreamError> {
        self.0.finish().map_err(|e| stream_error(e.into()))?;
        Ok(Vec::new())
    }

    /// Nothing follows message_stop.
    fn done(&self) -> bool {
        self.0.is_done()
    }
}

fn translated_chunks(events: EventStream, translator: StreamTranslator) -> super::ChunkStream {
    translate(events, ToChunks(translator))
}

fn stream_error(e: StreamFailure) -> StreamError {
    match e {
        StreamFailure::Upstream { body, .. } => StreamError::Upstream(body),
        StreamFailure::Translate(TranslateError::Truncated) => StreamError::Truncated,
        StreamFailure::Translate(e) => StreamError::Protocol(e.to_string()),
    }
}

/// Native events, ending after `message_stop` or `error`; the body ending before
/// either is a truncated stream.
#[derive(Default)]
struct Native {
    ended: bool,
}

impl Translate for Native {
    type In = llm::sse::Event;
    type Out = NativeEvent;

    fn item(&mut self, event: llm::sse::Event) -> Result<Vec<NativeEvent>, StreamError> {
        let name = event.event.unwrap_or_else(|| "message".to_owned());
        self.ended = name == "message_stop" || name == "error";
        Ok(vec![NativeEvent {
            name,
            data: Bytes::from(event.data),
        }])
    }

    fn end(&mut self) -> Result<Vec<NativeEvent>, StreamError> {
        Err(StreamError::Truncated)
    }

    fn done(&self) -> bool {
        self.ended
    }
}

fn native_events(events: EventStream) -> NativeStream {
    translate(events, Native::default())
}
