//! Model resolution and client keys: which provider serves a requested model,
//! under which name, and who may ask. One immutable [`RoutingTable`] per configuration
//! snapshot; the gateway swaps it whole when the configuration changes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use config_model::{ClientKey, Strategy, key_hash};
use llm::openai::Model;

use config_model::{ConfigError, ProviderConfig};

use crate::config::{AuthMode, Config};
use crate::error::Error;
use crate::providers::Provider;

/// An immutable routing table and key set.
#[derive(Debug)]
pub struct RoutingTable {
    providers: HashMap<String, Built>,
    aliases: HashMap<String, Route>,
    models: Vec<Model>,
    /// SHA-256 of each active client key → who it is.
    keys: HashMap<[u8; 32], Caller>,
    /// Requests without a known key are let through.
    open: bool,
    /// Prices over the bundled table: `gateway.prices`, then the admin API's.
    prices: Arc<std::collections::BTreeMap<String, config_model::prices::Price>>,
}

/// Who a known client key is: its id, and its limits when it has any.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: Arc<str>,
    pub limits: Option<Arc<config_model::KeyLimits>>,
}

/// A provider with the configuration it was built from, so the next snapshot can
/// keep it (and its connection pool) when that configuration did not change.
#[derive(Debug)]
struct Built {
    config: ProviderConfig,
    provider: Arc<Provider>,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider_name: Arc<str>,
    pub provider: Arc<Provider>,
    pub model: Arc<str>,
    /// Its health for outlier ejection and its load for balancing (a mapping's
    /// targets; none for a `provider/model` asked directly).
    pub health: Option<Arc<crate::ejection::Health>>,
    /// Its share of first calls under `weighted`; 0 for a backup.
    pub weight: u32,
    /// How long a call to it may take before the next target takes over.
    pub timeout: Option<std::time::Duration>,
}

impl Target {
    /// Counts a call in flight until the guard drops (nothing for a target
    /// without health: a `provider/model` asked directly is never balanced).
    pub fn busy(&self) -> Option<crate::balance::Busy> {
        self.health.as_ref().map(crate::balance::Load::busy)
    }
}

/// The targets a request may go to and the strategy that picks the first; the
/// others take over in order when it fails in a way another target may not
/// ([`Error::is_retryable`]).
#[derive(Debug, Clone)]
pub struct Route {
    pub strategy: Strategy,
    targets: Arc<[Target]>,
}

impl Route {
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target listed first.
    pub fn first(&self) -> Option<&Target> {
        self.targets.first()
    }
}

/// What the routing table is built from.
#[derive(Debug)]
pub struct Source<'a> {
    pub config: &'a Config,
    pub keys: &'a [ClientKey],
    /// Keys were issued (some may be revoked since): `auto` is closed.
    pub keys_issued: bool,
    /// `created` of every listed model (Unix seconds).
    pub created: u64,
    /// The table this one replaces: unchanged providers are kept.
    pub previous: Option<&'a RoutingTable>,
    /// A provider that cannot be built fails the whole build (start-up) rather than
    /// being left out with an error logged (a live update must not take the other
    /// providers down).
    pub strict: bool,
    /// The targets' health, kept across snapshots.
    pub ejections: &'a Arc<crate::ejection::Ejections>,
    /// Prices set through the admin API, over `gateway.prices`.
    pub prices: &'a std::collections::BTreeMap<String, config_model::prices::Price>,
}

impl RoutingTable {
    pub fn build(source: &Source<'_>) -> Result<Self, ConfigError> {
        let config = source.config;
        if source.strict {
            config.validate()?;
        }
        let mut providers = HashMap::new();
        for (name, provider_config) in &config.providers {
            let kept = source
                .previous
                .and_then(|p| p.providers.get(name))
                .filter(|b| b.config == *provider_config)
                .map(|b| b.provider.clone());
            let provider = match kept {
                Some(p) => p,
                None => match Provider::build(name, provider_config, &config.settings)
                    .and_then(|p| provider_config.check(name).map(|()| p))
                {
                    Ok(p) => Arc::new(p),
                    Err(e) if source.strict => return Err(e),
                    Err(e) => {
                        tracing::error!(error = %e, provider = %name, "provider left out of the configuration");
                        continue;
                    }
                },
            };
            providers.insert(
                name.clone(),
                Built {
                    config: provider_config.clone(),
                    provider,
                },
            );
        }
        let mut aliases = HashMap::new();
        let mut models = Vec::new();
        for (alias, mapping) in &config.mappings {
            let route: Vec<Target> = mapping
                .targets
                .iter()
                .filter_map(|t| {
                    let Some(built) = providers.get(&t.provider) else {
                        tracing::error!(%alias, provider = %t.provider, "mapping target left out: no such provider");
                        return None;
                    };
                    Some(Target {
                        provider_name: t.provider.as_str().into(),
                        provider: built.provider.clone(),
                        model: t.model.as_str().into(),
                        health: Some(source.ejections.of(&t.provider, &t.model)),
                        weight: t.weight,
                        timeout: t.timeout_ms.map(std::time::Duration::from_millis),
                    })
                })
                .collect();
            let Some(first) = route.first() else {
                tracing::error!(%alias, "mapping left out: no target");
                continue;
            };
            models.push(Model {
                id: alias.clone(),
                object: "model",
                created: source.created,
                owned_by: first.provider_name.to_string(),
            });
            aliases.insert(
                alias.clone(),
                Route {
                    strategy: mapping.strategy,
                    targets: route.into(),
                },
            );
        }
        for (name, built) in &providers {
            for model in built.config.models() {
                models.push(Model {
                    id: format!("{name}/{model}"),
                    object: "model",
                    created: source.created,
                    owned_by: name.clone(),
                });
            }
        }
        models.sort_by(|a, b| a.id.cmp(&b.id));
        let mut keys = HashMap::new();
        for key in source.keys {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&key.sha256, &mut hash).is_ok() {
                let limits = (!key.limits.is_empty()).then(|| Arc::new(key.limits.clone()));
                keys.insert(
                    hash,
                    Caller {
                        id: Arc::from(key.id.as_str()),
                        limits,
                    },
                );
            } else {
                tracing::error!(key_id = %key.id, "client key left out: its hash is not hex SHA-256");
            }
        }
        let open = match config.settings.auth.unwrap_or(AuthMode::Required) {
            AuthMode::Open => true,
            AuthMode::Required => false,
            AuthMode::Auto => {
                !source.keys_issued && keys.is_empty() && is_loopback(config.settings.listen)
            }
        };
        let mut prices = config.settings.prices.clone();
        prices.extend(source.prices.iter().map(|(k, p)| (k.clone(), *p)));
        Ok(Self {
            providers,
            aliases,
            models,
            keys,
            open,
            prices: Arc::new(prices),
        })
    }

    /// An alias from the mappings (its targets in order), else `provider/model`
    /// with a configured provider (the rest may itself contain `/`, as Hugging
    /// Face names do).
    pub fn resolve(&self, model: &str) -> Result<Route, Error> {
        if let Some(route) = self.aliases.get(model) {
            return Ok(route.clone());
        }
        if let Some((provider, upstream)) = model.split_once('/')
            && !upstream.is_empty()
            && let Some(p) = self.providers.get(provider)
        {
            return Ok(Route {
                strategy: Strategy::Fallback,
                targets: Arc::new([Target {
                    provider_name: provider.into(),
                    provider: p.provider.clone(),
                    model: upstream.into(),
                    health: None,
                    weight: 1,
                    timeout: None,
                }]),
            });
        }
        Err(Error::ModelNotFound(model.to_owned()))
    }

    /// The prices over the bundled table ([`config_model::prices::lookup`]).
    pub fn prices(&self) -> &Arc<std::collections::BTreeMap<String, config_model::prices::Price>> {
        &self.prices
    }

    /// Every provider by name.
    pub fn providers(&self) -> impl Iterator<Item = (&str, &Provider)> {
        self.providers
            .iter()
            .map(|(name, b)| (name.as_str(), &*b.provider))
    }

    /// What `GET /v1/models` lists: every alias and every listed provider model.
    pub fn models(&self) -> &[Model] {
        &self.models
    }

    /// Who is calling: `Ok(Some(caller))` for a known key (not expired),
    /// `Ok(None)` for an unknown or missing key when the gateway is open, else
    /// the refusal.
    pub fn authenticate(&self, key: Option<&str>) -> Result<Option<Caller>, Error> {
        let known = key.and_then(|k| self.keys.get(&key_hash(k)).cloned());
        match (known, key) {
            (Some(caller), _) => {
                let expired = caller
                    .limits
                    .as_ref()
                    .and_then(|l| l.expires_at_ms)
                    .is_some_and(|at| {
                        i64::try_from(crate::ejection::now_ms()).unwrap_or(i64::MAX) >= at
                    });
                if expired {
                    return Err(Error::KeyExpired);
                }
                Ok(Some(caller))
            }
            _ if self.open => Ok(None),
            (None, None) => Err(Error::MissingApiKey),
            (None, Some(_)) => Err(Error::InvalidApiKey),
        }
    }
}

fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().is_loopback()
}
