//! The OpenAI HTTP API as the gateway sees it.
//!
//! Requests are held as a [`RawObject`]: the members aiprox interprets (`model`,
//! `messages`, `stream`, `stream_options`, `input`) are type-checked and read, the
//! rest travel verbatim. Only `model` is rewritten (and `stream_options` when the
//! gateway asks a stream for its usage).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::raw::{self, RawObject};

pub mod embedding_format;
pub mod types;

/// `{"error": {...}}`, the body of every OpenAI error.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub fn new(
        message: impl Into<String>,
        kind: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self {
            error: ErrorDetail {
                message: message.into(),
                kind: kind.into(),
                param: param.map(str::to_owned),
                code: code.map(str::to_owned),
            },
        }
    }

    /// Reads an upstream error body. Anything that is not already OpenAI-shaped is
    /// wrapped, keeping its text as the message.
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        if let Ok(parsed) = serde_json::from_slice::<LenientErrorBody>(body) {
            let e = parsed.error;
            return Self::new(
                e.message
                    .unwrap_or_else(|| format!("upstream returned HTTP {status}")),
                e.kind.unwrap_or_else(|| kind_for_status(status).to_owned()),
                e.param.as_ref().and_then(|v| v.as_str()),
                e.code.as_ref().and_then(code_text).as_deref(),
            );
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            format!("upstream returned HTTP {status}")
        } else {
            truncate(text, 2000).to_owned()
        };
        Self::new(message, kind_for_status(status), None, None)
    }
}

/// The OpenAI error `type` usual for an HTTP status.
pub fn kind_for_status(status: u16) -> &'static str {
    match status {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        504 => "timeout_error",
        _ => "api_error",
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn code_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct LenientErrorBody {
    error: LenientErrorDetail,
}

#[derive(Deserialize)]
struct LenientErrorDetail {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    param: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
}

/// Why a request body was refused. Each maps to a 400 (or, for the model, a 404)
/// in OpenAI's error shape.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRequest {
    #[error(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.) Details: {0}"
    )]
    Json(String),
    #[error("you must provide a model parameter")]
    MissingModel,
    #[error("Invalid type for '{param}': expected {expected}.")]
    WrongType {
        param: &'static str,
        expected: &'static str,
    },
    #[error("Missing required parameter: '{0}'.")]
    Missing(&'static str),
    #[error("Invalid value for '{param}': {message}")]
    InvalidValue {
        param: String,
        message: &'static str,
    },
    /// A field of the typed body that does not read (see [`crate::typed_body`]).
    #[error("Invalid value for '{param}': {message}")]
    Field { param: String, message: String },
}

impl From<crate::typed_body::BodyError> for InvalidRequest {
    fn from(e: crate::typed_body::BodyError) -> Self {
        match e {
            crate::typed_body::BodyError::Json(message) => Self::Json(message),
            crate::typed_body::BodyError::Field { path, message } => Self::Field {
                param: path,
                message,
            },
        }
    }
}

impl InvalidRequest {
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Json(_) => None,
            Self::MissingModel => Some("model"),
            Self::WrongType { param, .. } | Self::Missing(param) => Some(param),
            Self::InvalidValue { param, .. } | Self::Field { param, .. } => Some(param),
        }
    }

    /// A stable snake_case code, as OpenAI uses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Json(_) => "invalid_json",
            Self::MissingModel => "model_not_found",
            Self::WrongType { .. } => "invalid_type",
            Self::Missing(_) => "missing_required_parameter",
            Self::InvalidValue { .. } => "invalid_value",
            Self::Field { .. } => "invalid_type",
        }
    }
}

fn member<'a, T: Deserialize<'a>>(
    body: &'a RawObject,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, InvalidRequest> {
    match body.get(name) {
        None => Ok(None),
        Some(v) if v.get() == "null" => Ok(None),
        Some(v) => serde_json::from_str(v.get())
            .map(Some)
            .map_err(|_| InvalidRequest::WrongType {
                param: name,
                expected,
            }),
    }
}

/// A member that must be a JSON object (serde alone would read a struct from an
/// array too).
fn object_member<'a, T: Deserialize<'a>>(
    body: &'a RawObject,
    name: &'static str,
) -> Result<Option<T>, InvalidRequest> {
    let wrong = InvalidRequest::WrongType {
        param: name,
        expected: "an object",
    };
    match body.get(name) {
        None => Ok(None),
        Some(v) if v.get() == "null" => Ok(None),
        Some(v) if !v.get().starts_with('{') => Err(wrong),
        Some(v) => serde_json::from_str(v.get()).map(Some).map_err(|_| wrong),
    }
}

fn parse_body(body: &[u8]) -> Result<RawObject, InvalidRequest> {
    raw::parse_object(body).map_err(|e| InvalidRequest::Json(e.to_string()))
}

fn parse_model(body: &RawObject) -> Result<String, InvalidRequest> {
    let model: Option<Cow<'_, str>> = member(body, "model", "a string")?;
    match model {
        Some(m) if !m.is_empty() => Ok(m.into_owned()),
        _ => Err(InvalidRequest::MissingModel),
    }
}

/// The part of a chat message aiprox reads.
#[derive(Deserialize)]
struct MessageHead<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// A `POST /v1/chat/completions` body.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub body: RawObject,
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
}

impl ChatRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidRequest> {
        let body = parse_body(bytes)?;
        let model = parse_model(&body)?;
        let messages: Vec<&RawValue> =
            member(&body, "messages", "an array")?.ok_or(InvalidRequest::Missing("messages"))?;
        for (i, m) in messages.iter().enumerate() {
            let not_a_message = || InvalidRequest::InvalidValue {
                param: format!("messages[{i}]"),
                message: "each message must be an object with a string 'role'.",
            };
            if !m.get().starts_with('{') {
                return Err(not_a_message());
            }
            let head: MessageHead<'_> =
                serde_json::from_str(m.get()).map_err(|_| not_a_message())?;
            if head.role.is_empty() {
                return Err(InvalidRequest::InvalidValue {
                    param: format!("messages[{i}].role"),
                    message: "the role must not be empty.",
                });
            }
        }
        let stream = member::<bool>(&body, "stream", "a boolean")?.unwrap_or(false);
        let include_usage = object_member::<StreamOptions>(&body, "stream_options")?
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok(Self {
            body,
            model,
            stream,
            include_usage,
        })
    }

    /// A `POST /v1/completions` body (legacy text completions), read like a chat
    /// request (model, stream, usage) with `prompt` where chat has `messages`.
    pub fn parse_completion(bytes: &[u8]) -> Result<Self, InvalidRequest> {
        let body = parse_body(bytes)?;
        let model = parse_model(&body)?;
        match body.get("prompt").map(|p| p.get()) {
            None | Some("null") => return Err(InvalidRequest::Missing("prompt")),
            Some(p) if !(p.starts_with('"') || p.starts_with('[')) => {
                return Err(InvalidRequest::WrongType {
                    param: "prompt",
                    expected: "a string, an array of strings or an array of tokens",
                });
            }
            Some(_) => {}
        }
        let stream = member::<bool>(&body, "stream", "a boolean")?.unwrap_or(false);
        let include_usage = object_member::<StreamOptions>(&body, "stream_options")?
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        Ok(Self {
            body,
            model,
            stream,
            include_usage,
        })
    }

    /// Asks the upstream for the usage chunk (`stream_options.include_usage`),
    /// keeping any other stream option the client set. The log needs the usage;
    /// the gateway hides the chunk from a client that did not ask for it.
    pub fn request_usage(&mut self) {
        if self.include_usage {
            return;
        }
        let mut options: serde_json::Map<String, serde_json::Value> = self
            .body
            .get("stream_options")
            .and_then(|v| serde_json::from_str(v.get()).ok())
            .unwrap_or_default();
        options.insert("include_usage".into(), true.into());
        self.body
            .insert("stream_options".into(), raw::to_raw(&options));
        self.include_usage = true;
    }

    /// The body to send upstream: the client's, with `model` replaced.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        with_model(&self.body, upstream_model)
    }

    /// The text of the last `user` message: its string content, or its text parts
    /// joined by a space.
    pub fn last_user_text(&self) -> Option<String> {
        let messages: Vec<MessageHead<'_>> =
            member(&self.body, "messages", "an array").ok().flatten()?;
        let content = messages.iter().rev().find(|m| m.role == "user")?.content?;
        content_text(content)
    }
}

fn content_text(content: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Content<'a> {
        Text(String),
        Parts(#[serde(borrow)] Vec<Part<'a>>),
    }
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default)]
        text: Option<String>,
    }
    match serde_json::from_str::<Content<'_>>(content.get()).ok()? {
        Content::Text(s) => Some(s),
        Content::Parts(parts) => {
            let texts: Vec<String> = parts
                .into_iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text)
                .collect();
            Some(texts.join(" "))
        }
    }
}

/// A `POST /v1/embeddings` body.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    pub body: RawObject,
    pub model: String,
}

/// What `input` may be: text or tokens, alone or in a list.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// The inputs as separate items, tokens rendered as text.
    pub fn items(&self) -> Vec<String> {
        match self {
            Self::Text(s) => vec![s.clone()],
            Self::Texts(v) => v.clone(),
            Self::Tokens(t) => vec![format!("{t:?}")],
            Self::TokenLists(l) => l.iter().map(|t| format!("{t:?}")).collect(),
        }
    }
}

impl EmbeddingsRequest {
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidRequest> {
        let body = parse_body(bytes)?;
        let model = parse_model(&body)?;
        if !body.contains_key("input") {
            return Err(InvalidRequest::Missing("input"));
        }
        Ok(Self { body, model })
    }

    pub fn input(&self) -> Result<EmbeddingInput, InvalidRequest> {
        member(
            &self.body,
            "input",
            "a string, an array of strings or an array of tokens",
        )?
        .ok_or(InvalidRequest::Missing("input"))
    }

    /// `encoding_format`: `float` unless the client asks for `base64`.
    pub fn base64(&self) -> bool {
        matches!(
            member::<Cow<'_, str>>(&self.body, "encoding_format", "a string"),
            Ok(Some(f)) if f == "base64"
        )
    }

    pub fn dimensions(&self) -> Option<usize> {
        member(&self.body, "dimensions", "an integer")
            .ok()
            .flatten()
    }

    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        with_model(&self.body, upstream_model)
    }
}

fn with_model(body: &RawObject, model: &str) -> Vec<u8> {
    raw::to_vec_replacing(body, "model", &raw::to_raw(model))
}

/// Token counts as OpenAI reports them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_fixtures_parse_and_only_model_changes() {
        for name in [
            "chat_request_basic.json",
            "chat_request_stream_basic.json",
            "chat_request_tools.json",
            "chat_request_tool_result.json",
            "chat_request_vision.json",
            "chat_request_stream_parallel_tools.json",
        ] {
            let path = format!(
                "{}/../../fixtures/openai/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let bytes = std::fs::read(&path).unwrap();
            let req = ChatRequest::parse(&bytes).unwrap();
            let out: serde_json::Value =
                serde_json::from_slice(&req.upstream_body("upstream-x")).unwrap();
            let mut expected: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            expected["model"] = "upstream-x".into();
            assert_eq!(out, expected, "{name}");
        }
    }

    #[test]
    fn chat_request_reads_stream_flags_and_last_user_text() {
        let req = ChatRequest::parse(
            br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
            "messages":[{"role":"user","content":"first"},{"role":"assistant","content":"x"},
            {"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"data:"}},{"type":"text","text":"world"}]}]}"#,
        )
        .unwrap();
        assert!(req.stream && req.include_usage);
        assert_eq!(req.last_user_text().as_deref(), Some("hello world"));
    }

    #[test]
    fn chat_request_refusals() {
        let cases: &[(&[u8], &str, Option<&str>)] = &[
            (b"{", "invalid_json", None),
            (b"[]", "invalid_json", None),
            (br#"{"messages":[]}"#, "model_not_found", Some("model")),
            (
                br#"{"model":7,"messages":[]}"#,
                "invalid_type",
                Some("model"),
            ),
            (
                br#"{"model":"m"}"#,
                "missing_required_parameter",
                Some("messages"),
            ),
            (
                br#"{"model":"m","messages":{}}"#,
                "invalid_type",
                Some("messages"),
            ),
            (
                br#"{"model":"m","messages":[1]}"#,
                "invalid_value",
                Some("messages[0]"),
            ),
            (
                br#"{"model":"m","messages":[],"stream":"yes"}"#,
                "invalid_type",
                Some("stream"),
            ),
            (
                br#"{"model":"m","messages":[],"stream_options":{"include_usage":1}}"#,
                "invalid_type",
                Some("stream_options"),
            ),
        ];
        for (body, code, param) in cases {
            let err = ChatRequest::parse(body).unwrap_err();
            assert_eq!(err.code(), *code, "{}", String::from_utf8_lossy(body));
            assert_eq!(err.param(), *param);
        }
    }

    #[test]
    fn upstream_errors_are_normalised() {
        let openai = ErrorBody::from_upstream(
            404,
            br#"{"error": {"message": "nope", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}"#,
        );
        assert_eq!(
            openai,
            ErrorBody::new(
                "nope",
                "invalid_request_error",
                None,
                Some("model_not_found")
            )
        );
        let text = ErrorBody::from_upstream(502, b"Bad Gateway\n");
        assert_eq!(text, ErrorBody::new("Bad Gateway", "api_error", None, None));
        let empty = ErrorBody::from_upstream(503, b"");
        assert_eq!(empty.error.message, "upstream returned HTTP 503");
        // Ollama's shape: {"error": "message"} is not an object, so it is wrapped whole.
        let ollama = ErrorBody::from_upstream(400, br#"{"error":"model 'x' not found"}"#);
        assert_eq!(ollama.error.kind, "invalid_request_error");
        assert!(ollama.error.message.contains("model 'x' not found"));
    }
}
