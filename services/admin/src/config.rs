//! Providers, model mappings and client API keys: validated, stored in the
//! database (the source of truth), and published whole to the gateways after
//! every change (see [`Publisher`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use events::Bus;
use gateway::config::{MappingConfig, ProviderConfig};
use gateway::live::ConfigSnapshot;
use gateway::routing::{ClientKey, key_hash};
use gateway::secret;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use store::{KeyRow, MappingRow, ProviderRow, Store};
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError, Kind};

/// A provider as written: everything but timestamps and the mask.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    /// Unique; what `provider/model` addresses. Taken from the path on update.
    #[serde(default)]
    pub name: String,
    /// `openai` (OpenAI and every OpenAI-compatible API), `anthropic` or `demo`.
    pub kind: String,
    /// The API root: `https://api.openai.com/v1`; for Anthropic without `/v1`.
    pub base_url: Option<String>,
    /// Write-only. On update: absent keeps the stored key, empty removes it.
    pub api_key: Option<String>,
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
}

/// Per-provider upstream timeouts, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
}

/// A provider as answered: never its key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Provider {
    pub name: String,
    pub kind: String,
    pub base_url: Option<String>,
    pub api_key_env: Option<String>,
    /// The stored key's last characters (`…abcd`), when a key is stored.
    pub api_key_masked: Option<String>,
    pub has_api_key: bool,
    pub headers: BTreeMap<String, String>,
    pub models: Vec<String>,
    pub anthropic_version: Option<String>,
    pub default_max_tokens: Option<u32>,
    pub timeouts: Timeouts,
    pub word_delay_ms: Option<u64>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// One place an alias can send a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub provider: String,
    /// The model name the provider knows.
    pub model: String,
}

/// A mapping as written.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingInput {
    /// What clients send as `model`. Taken from the path on update.
    #[serde(default)]
    pub alias: String,
    /// In order of preference; the first serves, the rest are fallbacks.
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Mapping {
    pub alias: String,
    pub targets: Vec<Target>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// Who or what the key is for.
    pub name: String,
}

/// A client API key as listed: never the key.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A new key: the only time the key itself is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedKey {
    pub key: Key,
    /// Give it to the client; only its SHA-256 is stored.
    pub secret: String,
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(Kind::Invalid, code, message)
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The gateway's provider configuration an input describes (its key not included).
fn provider_config(input: &ProviderInput) -> Result<ProviderConfig, ApiError> {
    let mut v = json!({ "kind": input.kind });
    let obj = v
        .as_object_mut()
        .ok_or_else(|| invalid("invalid_provider", "bad input"))?;
    if let Some(url) = &input.base_url {
        obj.insert("base_url".into(), json!(url));
    }
    if let Some(env) = input.api_key_env.as_ref().filter(|e| !e.is_empty()) {
        obj.insert("api_key_env".into(), json!(env));
    }
    let http = matches!(
        input.kind.as_str(),
        "openai" | "openai_compatible" | "anthropic"
    );
    if http {
        obj.insert("headers".into(), json!(input.headers));
        if let Some(t) = input.timeouts {
            let ms = |v: Option<u64>| v.map(|ms| format!("{ms}ms"));
            let mut t_obj = serde_json::Map::new();
            for (k, val) in [
                ("connect", ms(t.connect_ms)),
                ("first_byte", ms(t.first_byte_ms)),
                ("idle", ms(t.idle_ms)),
            ] {
                if let Some(val) = val {
                    t_obj.insert(k.into(), Value::String(val));
                }
            }
            obj.insert("timeouts".into(), Value::Object(t_obj));
        }
    } else if !input.headers.is_empty()
        || input.timeouts.is_some()
        || input.api_key.as_ref().is_some_and(|k| !k.is_empty())
    {
        return Err(invalid(
            "invalid_provider",
            format!(
                "a {} provider takes no headers, timeouts or key",
                input.kind
            ),
        ));
    }
    obj.insert("models".into(), json!(input.models));
    if input.kind == "anthropic" {
        if let Some(version) = &input.anthropic_version {
            obj.insert("anthropic_version".into(), json!(version));
        }
        if let Some(max) = input.default_max_tokens {
            obj.insert("default_max_tokens".into(), json!(max));
        }
    }
    if input.kind == "demo"
        && let Some(ms) = input.word_delay_ms
    {
        obj.insert("word_delay".into(), json!(format!("{ms}ms")));
    }
    let config: ProviderConfig = serde_json::from_value(v).map_err(|e| {
        let message = e.to_string();
        let message = if message.contains("unknown variant") {
            format!(
                "kind must be openai, anthropic or demo, not '{}'",
                input.kind
            )
        } else if message.contains("missing field `base_url`") {
            "base_url is required for an openai provider".to_owned()
        } else {
            message
        };
        invalid("invalid_provider", message)
    })?;
    config
        .check(&input.name)
        .map_err(|e| invalid("invalid_provider", e.to_string()))?;
    Ok(config)
}

fn ms_of(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The answer for a stored provider.
fn provider_view(row: &ProviderRow) -> Result<Provider, ApiError> {
    let config: ProviderConfig = serde_json::from_str(&row.spec).map_err(|e| {
        tracing::error!(provider = %row.name, error = %e, "stored provider unreadable");
        ApiError::new(
            Kind::Unavailable,
            "corrupt_provider",
            "the stored provider is unreadable",
        )
    })?;
    let mut view = Provider {
        name: row.name.clone(),
        kind: String::new(),
        base_url: None,
        api_key_env: None,
        api_key_masked: row.api_key_mask.clone(),
        has_api_key: row.api_key_sealed.is_some(),
        headers: BTreeMap::new(),
        models: Vec::new(),
        anthropic_version: None,
        default_max_tokens: None,
        timeouts: Timeouts::default(),
        word_delay_ms: None,
        created_at_ms: row.created_at_us / 1000,
        updated_at_ms: row.updated_at_us / 1000,
    };
    let timeouts = |t: &gateway::config::TimeoutOverrides| Timeouts {
        connect_ms: ms_of(t.connect),
        first_byte_ms: ms_of(t.first_byte),
        idle_ms: ms_of(t.idle),
    };
    match config {
        ProviderConfig::Openai(c) => {
            view.kind = "openai".into();
            view.base_url = Some(c.base_url.to_string());
            view.api_key_env = c.api_key_env;
            view.headers = c.headers;
            view.models = c.models;
            view.timeouts = timeouts(&c.timeouts);
        }
        ProviderConfig::Anthropic(c) => {
            view.kind = "anthropic".into();
            view.base_url = c.base_url.map(|u| u.to_string());
            view.api_key_env = c.api_key_env;
            view.headers = c.headers;
            view.models = c.models;
            view.anthropic_version = Some(c.anthropic_version);
            view.default_max_tokens = Some(c.default_max_tokens);
            view.timeouts = timeouts(&c.timeouts);
        }
        ProviderConfig::Demo(c) => {
            view.kind = "demo".into();
            view.models = c.models;
            view.word_delay_ms = ms_of(c.word_delay);
        }
    }
    Ok(view)
}

fn mapping_view(row: &MappingRow) -> Result<Mapping, ApiError> {
    let targets: Vec<Target> = serde_json::from_str(&row.targets).map_err(|e| {
        tracing::error!(alias = %row.alias, error = %e, "stored mapping unreadable");
        ApiError::new(
            Kind::Unavailable,
            "corrupt_mapping",
            "the stored mapping is unreadable",
        )
    })?;
    Ok(Mapping {
        alias: row.alias.clone(),
        targets,
        created_at_ms: row.created_at_us / 1000,
        updated_at_ms: row.updated_at_us / 1000,
    })
}

fn key_view(row: &KeyRow) -> Key {
    Key {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        created_at_ms: row.created_at_us / 1000,
        revoked_at_ms: row.revoked_at_us.map(|us| us / 1000),
    }
}

fn random(n: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| {
        tracing::error!(error = %e, "no randomness");
        ApiError::new(Kind::Unavailable, "no_randomness", "cannot generate a key")
    })?;
    Ok(bytes)
}

/// The whole configuration as gateways receive it: providers with their sealed
/// keys, mappings, active keys' hashes.
pub async fn snapshot(store: &Store) -> Result<ConfigSnapshot, ApiError> {
    let mut snapshot = ConfigSnapshot::default();
    for row in store.providers().await? {
        let Ok(mut config) = serde_json::from_str::<ProviderConfig>(&row.spec) else {
            tracing::error!(provider = %row.name, "stored provider unreadable; left out");
            continue;
        };
        match &mut config {
            ProviderConfig::Openai(c) => c.api_key_sealed.clone_from(&row.api_key_sealed),
            ProviderConfig::Anthropic(c) => c.api_key_sealed.clone_from(&row.api_key_sealed),
            ProviderConfig::Demo(_) => {}
        }
        snapshot.providers.insert(row.name, config);
    }
    for row in store.mappings().await? {
        let mapping = mapping_view(&row)?;
        snapshot.mappings.insert(
            mapping.alias,
            mapping
                .targets
                .into_iter()
                .map(|t| MappingConfig {
                    provider: t.provider,
                    model: t.model,
                })
                .collect(),
        );
    }
    let keys = store.keys().await?;
    snapshot.keys_issued = !keys.is_empty();
    snapshot.keys = keys
        .into_iter()
        .filter(|k| k.revoked_at_us.is_none())
        .map(|k| ClientKey {
            id: k.id,
            sha256: k.hash,
        })
        .collect();
    Ok(snapshot)
}

/// Writes the YAML's providers and mappings into an empty database (first start
/// only: later starts keep what the admin API changed). `true` when it seeded.
pub async fn seed(
    store: &Store,
    providers: &BTreeMap<String, ProviderConfig>,
    mappings: &BTreeMap<String, MappingConfig>,
) -> Result<bool, ApiError> {
    let now = now_us();
    let mut provider_rows = Vec::new();
    for (name, config) in providers {
        provider_rows.push(ProviderRow {
            name: name.clone(),
            spec: serde_json::to_string(config).unwrap_or_default(),
            api_key_sealed: None,
            api_key_mask: None,
            created_at_us: now,
            updated_at_us: now,
        });
    }
    let mapping_rows: Vec<MappingRow> = mappings
        .iter()
        .map(|(alias, m)| MappingRow {
            alias: alias.clone(),
            targets: json!([{"provider": m.provider, "model": m.model}]).to_string(),
            created_at_us: now,
            updated_at_us: now,
        })
        .collect();
    Ok(store
        .seed_config(&provider_rows, &mapping_rows, now)
        .await?)
}

/// Publishes snapshots to the bus, one at a time and in order; a snapshot that
/// could not be published is retried in the background until one is.
#[derive(Debug, Clone)]
pub struct Publisher {
    bus: Option<Bus>,
    store: Store,
    lock: Arc<tokio::sync::Mutex<()>>,
    retry: Arc<tokio::sync::Notify>,
}

impl Publisher {
    pub fn new(store: Store, bus: Option<Bus>) -> Self {
        let publisher = Self {
            bus,
            store,
            lock: Arc::default(),
            retry: Arc::default(),
        };
        if publisher.bus.is_some() {
            let retrying = publisher.clone();
            tokio::spawn(async move {
                loop {
                    retrying.retry.notified().await;
                    while let Err(e) = retrying.publish_now().await {
                        tracing::warn!(error = %e.message, "configuration not published; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
        }
        publisher
    }

    /// Publishes the current configuration; on failure leaves it to the retry
    /// loop (the change itself is saved).
    pub async fn publish(&self) {
        if let Err(e) = self.publish_now().await {
            tracing::warn!(error = %e.message, "configuration not published yet; retrying in the background");
            self.retry.notify_one();
        }
    }

    pub async fn publish_now(&self) -> Result<(), ApiError> {
        let Some(bus) = &self.bus else { return Ok(()) };
        let _one_at_a_time = self.lock.lock().await;
        let snapshot = snapshot(&self.store).await?;
        let put = tokio::time::timeout(Duration::from_secs(3), bus.put_config(snapshot.to_bytes()));
        match put.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApiError::new(
                Kind::Unavailable,
                "bus_unavailable",
                e.to_string(),
            )),
            Err(_) => Err(ApiError::new(
                Kind::Unavailable,
                "bus_unavailable",
                "timed out",
            )),
        }
    }
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
            ));
        }
        let config = provider_config(input)?;
        let (sealed, mask) = match input.api_key.as_deref() {
            Some("") => (None, None),
            Some(key) => {
                let secret = self.secret.as_ref().ok_or_else(|| {
                    invalid(
                        "secret_key_missing",
                        format!(
                            "{}; or give api_key_env instead",
                            secret::SecretError::Missing
                        ),
                    )
                })?;
                let sealed = secret
                    .seal(&input.name, key)
                    .map_err(|e| ApiError::new(Kind::Unavailable, "seal_failed", e.to_string()))?;
                (Some(sealed), Some(secret::mask(key)))
            }
            None => current.map_or((None, None), |c| {
                (c.api_key_sealed.clone(), c.api_key_mask.clone())
            }),
        };
        let now = now_us();
        Ok(ProviderRow {
            name: input.name.clone(),
            spec: serde_json::to_string(&config).unwrap_or_default(),
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
        let users: Vec<String> = self
            .store
            .mappings()
            .await?
            .iter()
            .filter_map(|row| mapping_view(row).ok())
            .filter(|m| m.targets.iter().any(|t| t.provider == name))
            .map(|m| m.alias)
            .collect();
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

    pub async fn list_mappings(&self) -> Result<Vec<Mapping>, ApiError> {
        self.store
            .mappings()
            .await?
            .iter()
            .map(mapping_view)
            .collect()
    }

    pub async fn get_mapping(&self, alias: &str) -> Result<Mapping, ApiError> {
        let row = self
            .store
            .mapping(alias)
            .await?
            .ok_or_else(|| mapping_not_found(alias))?;
        mapping_view(&row)
    }

    async fn mapping_row(
        &self,
        input: &MappingInput,
        created_at_us: Option<i64>,
    ) -> Result<MappingRow, ApiError> {
        if !name_ok(&input.alias) {
            return Err(invalid(
                "invalid_alias",
                "an alias is 1 to 200 characters, no spaces",
            ));
        }
        if input.targets.is_empty() {
            return Err(invalid(
                "invalid_mapping",
                "a mapping needs at least one target",
            ));
        }
        for (i, target) in input.targets.iter().enumerate() {
            if target.model.trim().is_empty() {
                return Err(invalid(
                    "invalid_mapping",
                    format!("targets[{i}].model must not be empty"),
                ));
            }
            if self.store.provider(&target.provider).await?.is_none() {
                return Err(invalid(
                    "unknown_provider",
                    format!(
                        "targets[{i}].provider: unknown provider '{}'",
                        target.provider
                    ),
                ));
            }
        }
        let now = now_us();
        Ok(MappingRow {
            alias: input.alias.clone(),
            targets: serde_json::to_string(&input.targets).unwrap_or_default(),
            created_at_us: created_at_us.unwrap_or(now),
            updated_at_us: now,
        })
    }

    pub async fn create_mapping(&self, input: &MappingInput) -> Result<Mapping, ApiError> {
        let row = self.mapping_row(input, None).await?;
        if !self.store.insert_mapping(&row).await? {
            return Err(ApiError::new(
                Kind::Conflict,
                "alias_exists",
                format!("alias '{}' already exists", input.alias),
            ));
        }
        self.publisher.publish().await;
        mapping_view(&row)
    }

    pub async fn update_mapping(
        &self,
        alias: &str,
        input: &MappingInput,
    ) -> Result<Mapping, ApiError> {
        if !input.alias.is_empty() && input.alias != alias {
            return Err(invalid(
                "invalid_alias",
                "an alias cannot be renamed: create the new one, delete the old",
            ));
        }
        let current = self
            .store
            .mapping(alias)
            .await?
            .ok_or_else(|| mapping_not_found(alias))?;
        let input = MappingInput {
            alias: alias.to_owned(),
            targets: input.targets.clone(),
        };
        let row = self
            .mapping_row(&input, Some(current.created_at_us))
            .await?;
        if !self.store.update_mapping(&row).await? {
            return Err(mapping_not_found(alias));
        }
        self.publisher.publish().await;
        mapping_view(&row)
    }

    pub async fn delete_mapping(&self, alias: &str) -> Result<(), ApiError> {
        if !self.store.delete_mapping(alias).await? {
            return Err(mapping_not_found(alias));
        }
        self.publisher.publish().await;
        Ok(())
    }

    pub async fn create_key(&self, input: &KeyInput) -> Result<CreatedKey, ApiError> {
        let name = input.name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(invalid(
                "invalid_name",
                "a key's name is 1 to 200 characters",
            ));
        }
        let secret = format!("sk-aiprox-{}", URL_SAFE_NO_PAD.encode(random(32)?));
        let id = format!("key_{}", hex::encode(random(8)?));
        let row = KeyRow {
            id,
            name: name.to_owned(),
            hash: hex::encode(key_hash(&secret)),
            prefix: secret.chars().take(14).collect(),
            created_at_us: now_us(),
            revoked_at_us: None,
        };
        self.store.insert_key(&row).await?;
        self.publisher.publish().await;
        Ok(CreatedKey {
            key: key_view(&row),
            secret,
        })
    }

    pub async fn list_keys(&self) -> Result<Vec<Key>, ApiError> {
        Ok(self.store.keys().await?.iter().map(key_view).collect())
    }

    pub async fn revoke_key(&self, id: &str) -> Result<Key, ApiError> {
        let row = self.store.revoke_key(id, now_us()).await?.ok_or_else(|| {
            ApiError::new(Kind::NotFound, "key_not_found", format!("no key {id}"))
        })?;
        self.publisher.publish().await;
        Ok(key_view(&row))
    }
}

fn provider_not_found(name: &str) -> ApiError {
    ApiError::new(
        Kind::NotFound,
        "provider_not_found",
        format!("no provider '{name}'"),
    )
}

fn mapping_not_found(alias: &str) -> ApiError {
    ApiError::new(
        Kind::NotFound,
        "mapping_not_found",
        format!("no mapping '{alias}'"),
    )
}
