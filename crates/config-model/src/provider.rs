//! The closed set of provider kinds and their settings, as the YAML seed, the
//! database and the published snapshot hold them (JSON or YAML, tagged by `kind`).
//! Adding a kind is a variant of [`ProviderKind`] and of [`ProviderConfig`] with
//! their arms in the `match`es below, here; then the code that builds it in the
//! gateway, and the function that reads its fields in the admin.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::ConfigError;

/// The kinds of provider there are, as the API and the YAML spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    #[serde(alias = "openai_compatible")]
    Openai,
    Anthropic,
    Demo,
}

impl ProviderKind {
    /// Every kind's name, for messages that list them.
    pub const NAMES: [&'static str; 3] = ["openai", "anthropic", "demo"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Demo => "demo",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One upstream, by kind.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// OpenAI, or any API that speaks its protocol (Ollama's `/v1`, vLLM, DeepSeek,
    /// Groq, Together, LM Studio…).
    #[serde(alias = "openai_compatible")]
    Openai(OpenAiConfig),
    /// Anthropic's Messages API, with full two-way translation for OpenAI clients
    /// and native pass-through for Anthropic clients.
    Anthropic(AnthropicConfig),
    /// Answers by itself, with no upstream: echoes the last user message. For a
    /// first run without any vendor key, and for demos.
    Demo(DemoConfig),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root, including the version segment: `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1`.
    pub base_url: Url,
    /// Name of the environment variable holding the API key; keys never sit in the
    /// file. Unset for keyless local servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The API key sealed with `AIPROX_SECRET_KEY` (see [`crate::secret`]), as the
    /// admin API stores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_sealed: Option<String>,
    /// Extra headers sent with every upstream request (`OpenAI-Organization`, a
    /// gateway tenant header…).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Models listed by `GET /v1/models` as `provider/model`.
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub timeouts: TimeoutOverrides,
    /// Whether the server has the Responses API itself (`{base_url}/responses`):
    /// `/v1/responses` then passes through with only `model` rewritten;
    /// otherwise aiprox serves it by translation over chat completions. Unset:
    /// true for `api.openai.com`, false for any other server (Ollama, vLLM…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses_api: Option<bool>,
}

impl OpenAiConfig {
    /// Whether `/v1/responses` passes through to this server natively.
    pub fn serves_responses(&self) -> bool {
        self.responses_api
            .unwrap_or_else(|| self.base_url.host_str() == Some("api.openai.com"))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AnthropicConfig {
    /// The API root, without `/v1`. Default `https://api.anthropic.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<Url>,
    /// Name of the environment variable holding the API key (sent as `x-api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// The API key sealed with `AIPROX_SECRET_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_sealed: Option<String>,
    /// `anthropic-version` sent upstream, unless an Anthropic client sends its own.
    #[serde(default = "anthropic_version")]
    pub anthropic_version: String,
    /// `max_tokens` for OpenAI requests that set none: Anthropic requires it.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub timeouts: TimeoutOverrides,
}

/// The `anthropic-version` sent when neither the provider nor the client names one.
pub fn anthropic_version() -> String {
    "2023-06-01".to_owned()
}

/// The `max_tokens` sent to Anthropic for requests that set none.
pub fn default_max_tokens() -> u32 {
    4096
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Pause between streamed words, so streaming is visible to a person.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub word_delay: Option<Duration>,
    /// Models listed by `GET /v1/models` as `provider/model`.
    #[serde(default)]
    pub models: Vec<String>,
}

/// Upstream timeouts.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// TCP (and TLS) connection set-up. A provider that cannot be reached fails fast
    /// with a 502.
    #[serde(with = "humantime_serde")]
    pub connect: Duration,
    /// From sending the request to the response headers. A non-streamed completion
    /// arrives whole, so this bounds its generation time; a 504 past it.
    #[serde(with = "humantime_serde")]
    pub first_byte: Duration,
    /// Longest silence between two pieces of a response body (stream chunks). A
    /// stream that stalls longer ends with an error event.
    #[serde(with = "humantime_serde")]
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(600),
            idle: Duration::from_secs(300),
        }
    }
}

/// Per-provider timeout overrides.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TimeoutOverrides {
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub first_byte: Option<Duration>,
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
}

impl TimeoutOverrides {
    pub fn apply(&self, defaults: Timeouts) -> Timeouts {
        Timeouts {
            connect: self.connect.unwrap_or(defaults.connect),
            first_byte: self.first_byte.unwrap_or(defaults.first_byte),
            idle: self.idle.unwrap_or(defaults.idle),
        }
    }
}

/// What an HTTP provider kind shares: where it is, what it sends with every call.
#[derive(Debug, Clone, Copy)]
pub struct HttpParts<'a> {
    /// `None`: the kind's default root.
    pub base_url: Option<&'a Url>,
    pub headers: &'a BTreeMap<String, String>,
    pub timeouts: &'a TimeoutOverrides,
}

impl ProviderConfig {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Openai(_) => ProviderKind::Openai,
            Self::Anthropic(_) => ProviderKind::Anthropic,
            Self::Demo(_) => ProviderKind::Demo,
        }
    }

    /// The HTTP settings of kinds that call an upstream; `None` for the demo.
    pub fn http(&self) -> Option<HttpParts<'_>> {
        match self {
            Self::Openai(p) => Some(HttpParts {
                base_url: Some(&p.base_url),
                headers: &p.headers,
                timeouts: &p.timeouts,
            }),
            Self::Anthropic(p) => Some(HttpParts {
                base_url: p.base_url.as_ref(),
                headers: &p.headers,
                timeouts: &p.timeouts,
            }),
            Self::Demo(_) => None,
        }
    }

    /// Models `GET /v1/models` lists as `provider/model`.
    pub fn models(&self) -> &[String] {
        match self {
            Self::Openai(p) => &p.models,
            Self::Anthropic(p) => &p.models,
            Self::Demo(p) => &p.models,
        }
    }

    /// The key's environment variable and sealed value, for kinds that take a key.
    pub fn api_key_source(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Openai(p) => (p.api_key_env.as_deref(), p.api_key_sealed.as_deref()),
            Self::Anthropic(p) => (p.api_key_env.as_deref(), p.api_key_sealed.as_deref()),
            Self::Demo(_) => (None, None),
        }
    }

    /// Where a sealed key goes, for kinds that take a key.
    pub fn api_key_sealed_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            Self::Openai(p) => Some(&mut p.api_key_sealed),
            Self::Anthropic(p) => Some(&mut p.api_key_sealed),
            Self::Demo(_) => None,
        }
    }

    /// Checks what types cannot, short of reading key variables: the name, the
    /// URL's scheme, header names and values.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("providers.{name}"),
                "a provider name must be non-empty, without '/' or spaces",
            ));
        }
        let Some(http) = self.http() else {
            return Ok(());
        };
        if let Some(base_url) = http.base_url
            && (!matches!(base_url.scheme(), "http" | "https") || !base_url.has_host())
        {
            return Err(ConfigError::new(
                format!("providers.{name}.base_url"),
                "must be an http:// or https:// URL",
            ));
        }
        if let Self::Anthropic(p) = self
            && http::HeaderValue::try_from(p.anthropic_version.as_str()).is_err()
        {
            return Err(ConfigError::new(
                format!("providers.{name}.anthropic_version"),
                "not a valid HTTP header value",
            ));
        }
        for (header, value) in http.headers {
            if http::HeaderName::try_from(header.as_str()).is_err()
                || http::HeaderValue::try_from(value.as_str()).is_err()
            {
                return Err(ConfigError::new(
                    format!("providers.{name}.headers.{header}"),
                    "not a valid HTTP header",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anthropic(version: &str) -> ProviderConfig {
        ProviderConfig::Anthropic(AnthropicConfig {
            base_url: None,
            api_key_env: None,
            api_key_sealed: None,
            anthropic_version: version.to_owned(),
            default_max_tokens: 1,
            headers: BTreeMap::new(),
            models: vec![],
            timeouts: TimeoutOverrides::default(),
        })
    }

    #[test]
    fn header_values_with_line_breaks_are_refused_naming_the_key() {
        assert_eq!(anthropic("2023-06-01").check("a"), Ok(()));
        let err = anthropic("2023-06-01\r\nx-a: 1").check("a").unwrap_err();
        assert_eq!(err.key, "providers.a.anthropic_version");
    }
}
