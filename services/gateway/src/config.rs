//! Gateway configuration: server settings, providers and model mappings.
//!
//! Loaded by the `aiprox` binary from defaults, an optional `aiprox.yaml` and
//! `AIPROX_…` environment variables; [`Config::validate`] then checks what serde
//! cannot (references between providers and mappings, environment variables that
//! hold keys) and names the key of every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

/// Everything the gateway needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    /// Upstream LLM APIs by name. The name is what `provider/model` addresses.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Model aliases clients may request, each pointing at a provider's model.
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingConfig>,
}

/// Server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the HTTP API listens. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Request bodies above this many bytes get a 413; it bounds memory per request
    /// while leaving room for images sent inline as base64.
    pub max_body_bytes: usize,
    /// Default upstream timeouts; a provider may override each.
    pub timeouts: Timeouts,
    /// How long in-flight requests and streams may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long to keep serving while readiness is already false, so
    /// load balancers stop sending before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// The log pipeline's queue and spill.
    pub events: crate::publish::EventSettings,
    /// Prices by upstream model name, USD per million tokens, for the logged cost.
    pub prices: BTreeMap<String, crate::publish::Price>,
    /// Who may call the API. Unset: `required` for `aiprox gateway`, `auto` for
    /// `aiprox all`.
    pub auth: Option<AuthMode>,
}

/// Client authentication.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Every request carries a client API key the admin API issued
    /// (`Authorization: Bearer` or `x-api-key`).
    Required,
    /// Anyone may call; a known key is still recorded in the log.
    Open,
    /// Open while no client key exists and the gateway listens on loopback only;
    /// `required` as soon as the first key is created.
    Auto,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 32 * 1024 * 1024,
            timeouts: Timeouts::default(),
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            events: crate::publish::EventSettings::default(),
            prices: BTreeMap::new(),
            auth: None,
        }
    }
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

fn anthropic_version() -> String {
    "2023-06-01".to_owned()
}

fn default_max_tokens() -> u32 {
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

/// Where an alias points.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingConfig {
    pub provider: String,
    pub model: String,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A provider's API key: unsealed (see [`crate::secret`]) or read from the
/// environment variable named.
pub(crate) fn read_api_key(
    provider: &str,
    var: Option<&str>,
    sealed: Option<&str>,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(sealed) = sealed {
        return crate::secret::SecretKey::from_env()
            .and_then(|key| key.open(provider, sealed))
            .map(Some)
            .map_err(|e| ConfigError::new(format!("providers.{provider}.api_key"), e.to_string()));
    }
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(SecretString::from(v))),
        _ => Err(ConfigError::new(
            format!("providers.{provider}.api_key_env"),
            format!("environment variable {var} is not set"),
        )),
    }
}

impl ProviderConfig {
    /// Checks what types cannot, short of reading key variables: the name, the
    /// URL's scheme, header names and values.
    pub fn check(&self, name: &str) -> Result<(), ConfigError> {
        if name.is_empty() || name.contains('/') || name.chars().any(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("providers.{name}"),
                "a provider name must be non-empty, without '/' or spaces",
            ));
        }
        let http = match self {
            Self::Openai(p) => Some((Some(&p.base_url), &p.headers)),
            Self::Anthropic(p) => Some((p.base_url.as_ref(), &p.headers)),
            Self::Demo(_) => None,
        };
        let Some((base_url, headers)) = http else {
            return Ok(());
        };
        if let Some(base_url) = base_url
            && (!matches!(base_url.scheme(), "http" | "https") || !base_url.has_host())
        {
            return Err(ConfigError::new(
                format!("providers.{name}.base_url"),
                "must be an http:// or https:// URL",
            ));
        }
        for (header, value) in headers {
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

    /// The key's environment variable and sealed value, for kinds that take a key.
    pub fn api_key_source(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Openai(p) => (p.api_key_env.as_deref(), p.api_key_sealed.as_deref()),
            Self::Anthropic(p) => (p.api_key_env.as_deref(), p.api_key_sealed.as_deref()),
            Self::Demo(_) => (None, None),
        }
    }
}

impl Config {
    /// Checks what types cannot: names, references, URLs, headers and keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, provider) in &self.providers {
            provider.check(name)?;
            let (env, sealed) = provider.api_key_source();
            read_api_key(name, env, sealed)?;
        }
        for (alias, mapping) in &self.mappings {
            if !self.providers.contains_key(&mapping.provider) {
                return Err(ConfigError::new(
                    format!("mappings.{alias}.provider"),
                    format!("unknown provider '{}'", mapping.provider),
                ));
            }
            if mapping.model.is_empty() {
                return Err(ConfigError::new(
                    format!("mappings.{alias}.model"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }
}
