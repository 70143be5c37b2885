//! The gateway's settings (listener, limits, timeouts, the log pipeline, prices,
//! client authentication) and the configuration it serves: providers and model
//! mappings, whose types live in the `config-model` crate it shares with the admin.
//!
//! Loaded by the `aiprox` binary from defaults, an optional `aiprox.yaml` and
//! `AIPROX_…` environment variables; [`Config::validate`] then checks what serde
//! cannot (references between providers and mappings, environment variables that
//! hold keys) and names the key of every problem.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config_model::{ConfigError, Mapping, ProviderConfig, Strategy, Timeouts};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Everything the gateway needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub settings: Settings,
    /// Upstream LLM APIs by name. The name is what `provider/model` addresses.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Model aliases clients may request, each with its targets and the
    /// strategy that picks the first (the others take over when it fails).
    #[serde(default)]
    pub mappings: BTreeMap<String, Mapping>,
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
    /// A client that has not sent its whole request head by then is disconnected
    /// (slowloris).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest silence while reading a request body (a body shorter than its
    /// `Content-Length`, a client that stalls): past it, 408.
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    /// Request body bytes held by requests in flight at once; a request that
    /// would pass it waits up to `body_wait`, then gets 503 with `Retry-After`.
    /// Bounds memory under many large bodies (images).
    pub max_body_bytes_in_flight: usize,
    /// How long a request waits for room under `max_body_bytes_in_flight`.
    #[serde(with = "humantime_serde")]
    pub body_wait: Duration,
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
    pub events: EventSettings,
    /// Prices overriding the bundled table ([`config_model::prices`]), USD per
    /// million tokens, for the logged cost: by `provider/model`, by alias (the
    /// model a client asked for), or by upstream model name, in that order.
    pub prices: BTreeMap<String, Price>,
    /// Who may call the API. Unset: `required` for `aiprox gateway`, `auto` for
    /// `aiprox all`.
    pub auth: Option<AuthMode>,
    /// Retries and fallbacks: attempts per request, the budget, the backoff.
    pub retry: crate::retry::RetrySettings,
    /// Outlier ejection: when a failing target is left out, and for how long.
    pub ejection: crate::ejection::EjectionSettings,
    /// Client keys' limits: what happens while the bus is unreachable.
    pub limits: crate::limits::LimitSettings,
    /// How often the gateway reports its targets' health (ejections, load,
    /// resting keys) on the bus, for the admin API.
    #[serde(with = "humantime_serde")]
    pub health_report_interval: Duration,
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
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            max_body_bytes_in_flight: 128 * 1024 * 1024,
            body_wait: Duration::from_secs(5),
            timeouts: Timeouts::default(),
            shutdown_grace: Duration::from_secs(30),
            drain_delay: Duration::ZERO,
            events: EventSettings::default(),
            prices: BTreeMap::new(),
            auth: None,
            retry: crate::retry::RetrySettings::default(),
            ejection: crate::ejection::EjectionSettings::default(),
            health_report_interval: Duration::from_secs(5),
            limits: crate::limits::LimitSettings::default(),
        }
    }
}

/// USD per million tokens (input, output, cached input, cache write).
pub use config_model::prices::Price;

/// How the pipeline holds events it cannot publish yet.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Exchanges waiting for the publisher; past it, events are dropped (counted).
    pub queue_capacity: usize,
    /// Where events wait while the bus is unreachable.
    pub spill_dir: PathBuf,
    /// Spill size limit in bytes; past it, events are dropped (counted).
    pub spill_max_bytes: u64,
    /// How long the publisher waits, after the first event of a batch, for more
    /// to join it: longer means fewer, larger messages (less CPU per request) and
    /// events reaching the log later.
    pub linger_ms: u64,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            spill_dir: PathBuf::from("data/spill"),
            spill_max_bytes: 1024 * 1024 * 1024,
            linger_ms: 5,
        }
    }
}

/// A provider's API keys: the sealed one (see `config_model::secret`), or one
/// from each environment variable `api_key_env` names (`KEY_A,KEY_B`: a pool,
/// used in turn).
pub(crate) fn read_api_keys(
    provider: &str,
    vars: Option<&str>,
    sealed: Option<&str>,
) -> Result<Vec<SecretString>, ConfigError> {
    if let Some(sealed) = sealed {
        return config_model::secret::SecretKey::from_env()
            .and_then(|key| key.open(provider, sealed))
            // A pool is sealed whole, its keys a line each.
            .map(|k| {
                k.expose_secret()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| SecretString::from(l.to_owned()))
                    .collect()
            })
            .map_err(|e| ConfigError::new(format!("providers.{provider}.api_key"), e.to_string()));
    }
    let Some(vars) = vars else {
        return Ok(Vec::new());
    };
    vars.split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|var| match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
            _ => Err(ConfigError::new(
                format!("providers.{provider}.api_key_env"),
                format!("environment variable {var} is not set"),
            )),
        })
        .collect()
}

impl Config {
    /// Checks what types cannot: names, references, URLs, headers and keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, provider) in &self.providers {
            provider.check(name)?;
            let (env, sealed) = provider.api_key_source();
            read_api_keys(name, env, sealed)?;
        }
        for (alias, mapping) in &self.mappings {
            let targets = &mapping.targets;
            // One target is the YAML's form: its problems are named without an index.
            let one = targets.len() == 1;
            for (i, target) in targets.iter().enumerate() {
                let key = if one {
                    format!("mappings.{alias}")
                } else {
                    format!("mappings.{alias}.targets[{i}]")
                };
                if !self.providers.contains_key(&target.provider) {
                    return Err(ConfigError::new(
                        format!("{key}.provider"),
                        format!("unknown provider '{}'", target.provider),
                    ));
                }
                if target.model.is_empty() {
                    return Err(ConfigError::new(
                        format!("{key}.model"),
                        "must not be empty",
                    ));
                }
                if target.timeout_ms == Some(0) {
                    return Err(ConfigError::new(
                        format!("{key}.timeout_ms"),
                        "must be above 0 (leave it out for the provider's timeouts)",
                    ));
                }
            }
            if mapping.strategy == Strategy::Weighted && targets.iter().all(|t| t.weight == 0) {
                return Err(ConfigError::new(
                    format!("mappings.{alias}.targets"),
                    "a weighted mapping needs a target of weight above 0",
                ));
            }
        }
        Ok(())
    }
}
