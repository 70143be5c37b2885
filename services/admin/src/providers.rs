//! Providers through the admin API: the typed input a create or update body
//! deserialises into, its conversion into the stored [`ProviderConfig`] (the API
//! key sealed apart), the answer that never shows the key, and the CRUD calls.
//!
//! The input is flat (one JSON object whatever the kind, as the UI and the gRPC
//! message write it); its `kind` picks which fields apply. A kind's fields are
//! read in one function each ([`openai`], [`anthropic`], [`demo`]).

use std::collections::BTreeMap;
use std::time::Duration;

use config_model::provider::{anthropic_version, default_max_tokens};
use config_model::secret;
use config_model::{
    AnthropicConfig, DemoConfig, OpenAiConfig, ProviderConfig, ProviderKind, TimeoutOverrides,
};
use serde::{Deserialize, Serialize};
use store::ProviderRow;
use url::Url;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind, invalid, name_ok, now_us};

/// A provider's kind as written: a known kind, or any other word (refused with
/// `invalid_provider`, naming it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KindName {
    Known(ProviderKind),
    Unknown(String),
}

impl From<String> for KindName {
    /// The kind a name spells, read by the same rules as JSON (aliases included).
    fn from(name: String) -> Self {
        use serde::de::IntoDeserializer;
        let spelled: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.as_str().into_deserializer();
        ProviderKind::deserialize(spelled).map_or(Self::Unknown(name), Self::Known)
    }
}

impl Default for KindName {
    fn default() -> Self {
        Self::Unknown(String::new())
    }
}

/// A provider as written: everything but timestamps and the mask.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Unique; what `provider/model` addresses. Taken from the path on update.
    #[serde(default)]
    pub name: String,
    /// `openai` (OpenAI and every OpenAI-compatible API), `anthropic` or `demo`.
    #[schema(value_type = String)]
    pub kind: KindName,
    /// The API root: `https://api.openai.com/v1`; for Anthropic without `/v1`.
    pub base_url: Option<String>,
    /// Write-only. On update: absent keeps the stored key, empty removes it.
    pub api_key: Option<String>,
    /// Write-only, instead of `api_key`: a pool of keys, used in turn (a key
    /// answered 429 or 401 rests while the next takes its calls). On update:
    /// absent keeps the stored keys, empty removes them.
    pub api_keys: Option<Vec<String>>,
    /// Or the name of an environment variable holding the key on each gateway.
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Models `GET /v1/models` lists as `provider/model`.
    #[serde(default)]
    pub models: Vec<String>,
    pub anthropic_version: Option<String>,
    pub default_max_tokens: Option<u32>,
    pub timeouts: Option<Timeouts>,
    /// Demo provider: pause between streamed words.
    pub word_delay_ms: Option<u64>,
    /// `openai` kind: whether the server has the Responses API itself (unset:
    /// true for `api.openai.com` only); otherwise `/v1/responses` is served
    /// by translation over chat completions.
    #[serde(default)]
    pub responses_api: Option<bool>,
}

/// Per-provider upstream timeouts, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

impl From<Timeouts> for TimeoutOverrides {
    fn from(t: Timeouts) -> Self {
        Self {
            connect: t.connect_ms.map(Duration::from_millis),
            first_byte: t.first_byte_ms.map(Duration::from_millis),
            idle: t.idle_ms.map(Duration::from_millis),
        }
    }
}

impl From<&TimeoutOverrides> for Timeouts {
    fn from(t: &TimeoutOverrides) -> Self {
        Self {
            connect_ms: ms_of(t.connect),
            first_byte_ms: ms_of(t.first_byte),
            idle_ms: ms_of(t.idle),
        }
    }
}

/// A provider as answered: never its key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Provider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    /// The stored key's last characters (`…abcd`; a pool's, `…abcd, …wxyz`),
    /// when a key is stored.
    pub api_key_masked: Option<String>,
    /// How many keys are stored (a pool holds several).
    pub api_key_count: u32,
    pub has_api_key: bool,
    pub headers: BTreeMap<String, String>,
    pub models: Vec<String>,
    pub anthropic_version: Option<String>,
    pub default_max_tokens: Option<u32>,
    pub timeouts: Timeouts,
    pub word_delay_ms: Option<u64>,
    /// `openai` kind: as set (absent: the default for its server).
    pub responses_api: Option<bool>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

fn invalid_provider(message: impl Into<String>) -> ApiError {
    invalid("invalid_provider", message)
}

fn url(input: &ProviderInput) -> Result<Option<Url>, ApiError> {
    input
        .base_url
        .as_deref()
        .map(|u| {
            Url::parse(u).map_err(|e| invalid_provider(format!("base_url: {e}")).at("base_url"))
        })
        .transpose()
}

fn key_env(input: &ProviderInput) -> Option<String> {
    input.api_key_env.clone().filter(|e| !e.is_empty())
}

fn openai(input: &ProviderInput) -> Result<ProviderConfig, ApiError> {
    let base_url = url(input)?.ok_or_else(|| {
        invalid_provider("base_url is required for an openai provider").at("base_url")
    })?;
    Ok(ProviderConfig::Openai(OpenAiConfig {
        base_url,
        api_key_env: key_env(input),
        api_key_sealed: None,
        headers: input.headers.clone(),
        models: input.models.clone(),
        timeouts: input.timeouts.map(Into::into).unwrap_or_default(),
        responses_api: input.responses_api,
    }))
}

fn anthropic(input: &ProviderInput) -> Result<ProviderConfig, ApiError> {
    Ok(ProviderConfig::Anthropic(AnthropicConfig {
        base_url: url(input)?,
        api_key_env: key_env(input),
        api_key_sealed: None,
        anthropic_version: input
            .anthropic_version
            .clone()
            .unwrap_or_else(anthropic_version),
        default_max_tokens: input.default_max_tokens.unwrap_or_else(default_max_tokens),
        headers: input.headers.clone(),
        models: input.models.clone(),
        timeouts: input.timeouts.map(Into::into).unwrap_or_default(),
    }))
}

fn demo(input: &ProviderInput) -> Result<ProviderConfig, ApiError> {
    let keyed = input.api_key.as_ref().is_some_and(|k| !k.is_empty())
        || input.api_keys.as_ref().is_some_and(|k| !k.is_empty())
        || key_env(input).is_some();
    if !input.headers.is_empty() || input.timeouts.is_some() || input.base_url.is_some() || keyed {
        return Err(invalid_provider(
            "a demo provider takes no base_url, headers, timeouts or key",
        ));
    }
    Ok(ProviderConfig::Demo(DemoConfig {
        word_delay: input.word_delay_ms.map(Duration::from_millis),
        models: input.models.clone(),
    }))
}

impl TryFrom<&ProviderInput> for ProviderConfig {
    type Error = ApiError;

    /// The stored configuration an input describes (its key not included).
    fn try_from(input: &ProviderInput) -> Result<Self, ApiError> {
        let config = match &input.kind {
            KindName::Known(ProviderKind::Openai) => openai(input)?,
            KindName::Known(ProviderKind::Anthropic) => anthropic(input)?,
            KindName::Known(ProviderKind::Demo) => demo(input)?,
            KindName::Unknown(other) => {
                return Err(invalid_provider(format!(
                    "kind must be one of {}, not '{other}'",
                    ProviderKind::NAMES.join(", ")
                ))
                .at("kind"));
            }
        };
        config
            .check(&input.name)
            .map_err(|e| invalid_provider(e.to_string()))?;
        Ok(config)
    }
}

fn ms_of(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A stored provider's configuration.
pub(crate) fn stored_config(row: &ProviderRow) -> Result<ProviderConfig, ApiError> {
    serde_json::from_str(&row.spec).map_err(|e| {
        tracing::error!(provider = %row.name, error = %e, "stored provider unreadable");
        ApiError::new(
            Kind::Unavailable,
            "corrupt_provider",
            "the stored provider is unreadable",
        )
    })
}

/// Between a pool's key masks in the stored mask.
const KEY_MASKS_JOIN: &str = ", ";

/// The keys an input writes: `None` keeps the stored ones, an empty list
/// removes them. A key is one header value: no spaces, no line breaks.
fn written_keys(input: &ProviderInput) -> Result<Option<Vec<&str>>, ApiError> {
    let keys: Vec<&str> = match (&input.api_key, &input.api_keys) {
        (Some(_), Some(_)) => {
            return Err(invalid_provider("give api_key or api_keys, not both").at("api_keys"));
        }
        (Some(k), None) if k.is_empty() => return Ok(Some(Vec::new())),
        (Some(k), None) => vec![k.as_str()],
        (None, Some(ks)) => ks.iter().map(String::as_str).collect(),
        (None, None) => return Ok(None),
    };
    for (i, key) in keys.iter().enumerate() {
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let field = if input.api_keys.is_some() {
                "api_keys"
            } else {
                "api_key"
            };
            return Err(invalid_provider(format!(
                "{field}: key {} is empty or holds spaces or control characters",
                i + 1
            ))
            .at(field));
        }
    }
    Ok(Some(keys))
}

/// The answer for a stored provider.
fn provider_view(row: &ProviderRow) -> Result<Provider, ApiError> {
    let config = stored_config(row)?;
    let http = config.http();
    let (api_key_env, _) = config.api_key_source();
    let (anthropic_version, default_max_tokens, word_delay_ms) = match &config {
        ProviderConfig::Anthropic(c) => (
            Some(c.anthropic_version.clone()),
            Some(c.default_max_tokens),
            None,
        ),
        ProviderConfig::Demo(c) => (None, None, ms_of(c.word_delay)),
        ProviderConfig::Openai(_) => (None, None, None),
    };
    Ok(Provider {
        name: row.name.clone(),
        kind: config.kind().to_string(),
        base_url: http.and_then(|h| h.base_url).map(ToString::to_string),
        api_key_env: api_key_env.map(str::to_owned),
        api_key_masked: row.api_key_mask.clone(),
        api_key_count: row.api_key_mask.as_deref().map_or(0, |m| {
            u32::try_from(m.split(KEY_MASKS_JOIN).count()).unwrap_or(u32::MAX)
        }),
        has_api_key: row.api_key_sealed.is_some(),
        headers: http.map(|h| h.headers.clone()).unwrap_or_default(),
        models: config.models().to_vec(),
        anthropic_version,
        default_max_tokens,
        timeouts: http.map(|h| h.timeouts.into()).unwrap_or_default(),
        word_delay_ms,
        responses_api: match &config {
            ProviderConfig::Openai(c) => c.responses_api,
            _ => None,
        },
        created_at_ms: row.created_at_us / 1000,
        updated_at_ms: row.updated_at_us / 1000,
    })
}

pub(crate) fn provider_not_found(name: &str) -> ApiError {
    ApiError::new(
        Kind::NotFound,
        "provider_not_found",
        format!("no provider '{name}'"),
    )
}

impl AdminCore {
    pub async fn list_providers(&self) -> Result<Vec<Provider>, ApiError> {
        self.store
            .providers()
            .await?
            .iter()
            .map(provider_view)
            .collect()
    }

    pub async fn get_provider(&self, name: &str) -> Result<Provider, ApiError> {
        let row = self
            .store
            .provider(name)
            .await?
            .ok_or_else(|| provider_not_found(name))?;
        provider_view(&row)
    }

    /// The row an input describes; `current` is the stored one on update.
    fn provider_row(
        &self,
        input: &ProviderInput,
        current: Option<&ProviderRow>,
    ) -> Result<ProviderRow, ApiError> {
        if !name_ok(&input.name) || input.name.contains('/') {
            return Err(invalid(
                "invalid_name",
                "a provider name is 1 to 200 characters, no spaces, no '/'",
            )
            .at("name"));
        }
        let config = ProviderConfig::try_from(input)?;
        let (sealed, mask) = match written_keys(input)? {
            Some(keys) if keys.is_empty() => (None, None),
            Some(keys) => {
                let secret = self.secret.as_ref().ok_or_else(|| {
                    invalid(
                        "secret_key_missing",
                        format!(
                            "{}; or give api_key_env instead",
                            secret::SecretError::Missing
                        ),
                    )
                })?;
                // A pool is sealed whole, its keys a line each.
                let sealed = secret
                    .seal(&input.name, &keys.join("\n"))
                    .map_err(|e| ApiError::new(Kind::Unavailable, "seal_failed", e.to_string()))?;
                let masks: Vec<String> = keys.iter().map(|k| secret::mask(k)).collect();
                (Some(sealed), Some(masks.join(KEY_MASKS_JOIN)))
            }
            None => current.map_or((None, None), |c| {
                (c.api_key_sealed.clone(), c.api_key_mask.clone())
            }),
        };
        let now = now_us();
        Ok(ProviderRow {
            name: input.name.clone(),
            spec: crate::core::to_json(&config)?,
            api_key_sealed: sealed,
            api_key_mask: mask,
            created_at_us: current.map_or(now, |c| c.created_at_us),
            updated_at_us: now,
        })
    }

    pub async fn create_provider(&self, input: &ProviderInput) -> Result<Provider, ApiError> {
        let row = self.provider_row(input, None)?;
        if !self.store.insert_provider(&row).await? {
            return Err(ApiError::new(
                Kind::Conflict,
                "provider_exists",
                format!("provider '{}' already exists", input.name),
            ));
        }
        self.publisher.publish().await;
        provider_view(&row)
    }

    pub async fn update_provider(
        &self,
        name: &str,
        input: &ProviderInput,
    ) -> Result<Provider, ApiError> {
        if !input.name.is_empty() && input.name != name {
            return Err(invalid(
                "invalid_name",
                "a provider cannot be renamed: create one and move the mappings",
            ));
        }
        let input = ProviderInput {
            name: name.to_owned(),
            ..input.clone()
        };
        let current = self
            .store
            .provider(name)
            .await?
            .ok_or_else(|| provider_not_found(name))?;
        let row = self.provider_row(&input, Some(&current))?;
        if !self.store.update_provider(&row).await? {
            return Err(provider_not_found(name));
        }
        self.publisher.publish().await;
        provider_view(&row)
    }

    pub async fn delete_provider(&self, name: &str) -> Result<(), ApiError> {
        let users = self.aliases_targeting(name).await?;
        if !users.is_empty() {
            return Err(ApiError::new(
                Kind::Conflict,
                "provider_in_use",
                format!(
                    "mappings still target provider '{name}': {}",
                    users.join(", ")
                ),
            ));
        }
        if !self.store.delete_provider(name).await? {
            return Err(provider_not_found(name));
        }
        self.publisher.publish().await;
        Ok(())
    }
}
