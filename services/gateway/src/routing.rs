//! Model resolution: which provider serves a requested model, under which name.

use std::collections::HashMap;
use std::sync::Arc;

use llm::openai::Model;

use crate::config::{Config, ConfigError};
use crate::error::Error;
use crate::providers::Provider;

/// An immutable routing table, built once from the configuration.
#[derive(Debug)]
pub struct Routes {
    providers: HashMap<String, Arc<Provider>>,
    aliases: HashMap<String, Target>,
    models: Vec<Model>,
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub provider_name: Arc<str>,
    pub provider: Arc<Provider>,
    pub model: Arc<str>,
}

impl Routes {
    pub fn build(config: &Config, created: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut providers = HashMap::new();
        for (name, provider) in &config.providers {
            providers.insert(
                name.clone(),
                Arc::new(Provider::build(name, provider, &config.settings)?),
            );
        }
        let mut aliases = HashMap::new();
        let mut models = Vec::new();
        for (alias, mapping) in &config.mappings {
            // `validate` guarantees the provider exists.
            let Some(provider) = providers.get(&mapping.provider) else {
                continue;
            };
            aliases.insert(
                alias.clone(),
                Target {
                    provider_name: mapping.provider.as_str().into(),
                    provider: provider.clone(),
                    model: mapping.model.as_str().into(),
                },
            );
            models.push(Model {
                id: alias.clone(),
                object: "model",
                created,
                owned_by: mapping.provider.clone(),
            });
        }
        for (name, provider) in &config.providers {
            for model in Provider::listed_models(provider) {
                models.push(Model {
                    id: format!("{name}/{model}"),
                    object: "model",
                    created,
                    owned_by: name.clone(),
                });
            }
        }
        Ok(Self {
            providers,
            aliases,
            models,
        })
    }

    /// An alias from the mappings, else `provider/model` with a configured provider
    /// (the rest may itself contain `/`, as Hugging Face names do).
    pub fn resolve(&self, model: &str) -> Result<Target, Error> {
        if let Some(target) = self.aliases.get(model) {
            return Ok(target.clone());
        }
        if let Some((provider, upstream)) = model.split_once('/')
            && !upstream.is_empty()
            && let Some(p) = self.providers.get(provider)
        {
            return Ok(Target {
                provider_name: provider.into(),
                provider: p.clone(),
                model: upstream.into(),
            });
        }
        Err(Error::ModelNotFound(model.to_owned()))
    }

    /// What `GET /v1/models` lists: every alias, then every listed provider model.
    pub fn models(&self) -> &[Model] {
        &self.models
    }
}
