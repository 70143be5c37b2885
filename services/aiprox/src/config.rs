//! The configuration file and its layers.
//!
//! Precedence, lowest first: defaults in code, the YAML file (`--config`,
//! `AIPROX_CONFIG`, else `./aiprox.yaml` when present, else the built-in demo
//! set-up), then environment variables `AIPROX_<SECTION>__<KEY>` (`__` separates
//! levels: `AIPROX_GATEWAY__LISTEN=0.0.0.0:8080`,
//! `AIPROX_PROVIDERS__OPENAI__BASE_URL=…`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use gateway::config::{MappingConfig, ProviderConfig, Settings};
use serde::Deserialize;
use telemetry::LogFormat;

/// The configuration used when no file is given and `./aiprox.yaml` does not exist:
/// a demo provider and a `demo` alias, so the first run answers without any key.
pub const BUILT_IN: &str = "\
providers:
  demo:
    kind: demo
    word_delay: 40ms
mappings:
  demo:
    provider: demo
    model: echo
";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `text` for a terminal, `json` for log collectors.
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub gateway: Settings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingConfig>,
}

impl Config {
    /// The gateway's part.
    pub fn gateway(&self) -> gateway::Config {
        gateway::Config {
            settings: self.gateway.clone(),
            providers: self.providers.clone(),
            mappings: self.mappings.clone(),
        }
    }
}

/// Environment variables that are not configuration keys.
const NOT_KEYS: &[&str] = &["config"];

/// Loads and validates the configuration. `path` is the `--config` flag (or
/// `AIPROX_CONFIG`).
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let default_path = PathBuf::from("aiprox.yaml");
    let figment = match path {
        Some(p) => {
            if !p.exists() {
                anyhow::bail!("config file {} does not exist", p.display());
            }
            Figment::new().merge(Yaml::file_exact(p))
        }
        None if default_path.exists() => Figment::new().merge(Yaml::file_exact(&default_path)),
        None => Figment::new().merge(Yaml::string(BUILT_IN)),
    };
    let figment = figment.merge(Env::prefixed("AIPROX_").split("__").ignore(NOT_KEYS));
    let config: Config = figment.extract().map_err(describe)?;
    config
        .gateway()
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

/// One line per problem, each naming its key and where the value came from.
fn describe(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(top level)".to_owned()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref())
                .map(|s| format!(" (from {s})"))
                .unwrap_or_default();
            format!("{key}: {}{source}", e.kind)
        })
        .collect();
    anyhow::anyhow!("invalid configuration:\n  {}", lines.join("\n  "))
}
