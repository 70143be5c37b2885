//! The configuration file and its layers.
//!
//! Precedence, lowest first: defaults in code, the YAML file (`--config`,
//! `AIPROX_CONFIG`, else `./aiprox.yaml` when present, else the built-in demo
//! set-up), then environment variables `AIPROX_<SECTION>__<KEY>` (`__` separates
//! levels: `AIPROX_GATEWAY__LISTEN=0.0.0.0:8080`,
//! `AIPROX_PROVIDERS__OPENAI__BASE_URL=…`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config_model::ProviderConfig;
use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use gateway::config::Settings;
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
    /// Where request logs and the live configuration are stored: SQLite by
    /// default (`sqlite://…`); `postgres://…`, or `mysql://…` / `mariadb://…`
    /// (MySQL 8, MariaDB 10.11) for the split services.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// NATS with JetStream (`nats://host:4222`). Unset, `aiprox all` uses an
    /// in-process bus; the split services need it.
    #[serde(default)]
    pub nats_url: Option<String>,
    /// `aiprox all` without NATS: the most bytes of events that wait in memory for
    /// the database writer. Past it they go to the gateway's spill directory and
    /// are replayed from there, so memory stays flat when requests come faster
    /// than the writer stores them.
    #[serde(default = "default_in_process_backlog_bytes")]
    pub in_process_backlog_bytes: usize,
    /// The shared directory media files are written to.
    #[serde(default = "default_media_root")]
    pub media_root: std::path::PathBuf,
    #[serde(default)]
    pub logger: logger::Settings,
    /// The admin API's token (`AIPROX_ADMIN_TOKEN`); without it the admin API does
    /// not start.
    #[serde(default)]
    pub admin_token: Option<secrecy::SecretString>,
    #[serde(default)]
    pub admin: AdminSettings,
    /// `ops.listen`: where `/healthz`, `/readyz` and `/metrics` of this process
    /// are served (off when unset; the gateway and admin answer health on their
    /// own ports too, the gateway `/metrics` as well).
    #[serde(default)]
    pub ops: telemetry::ops::OpsSettings,
    #[serde(default)]
    pub gateway: Settings,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Aliases, each with one target, a list in order (the first serves, the
    /// next take over when it fails), or `{strategy, targets}`.
    #[serde(default)]
    pub mappings: BTreeMap<String, config_model::Mapping>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// Where the admin API and the web UI listen.
    pub listen: std::net::SocketAddr,
    /// Where the admin reaches a gateway for the UI's Playground, and the address
    /// the UI shows clients. `aiprox all` defaults it to its own gateway.
    pub gateway_url: Option<url::Url>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8081)),
            gateway_url: None,
        }
    }
}

fn default_database_url() -> String {
    "sqlite://data/aiprox.db".to_owned()
}

fn default_in_process_backlog_bytes() -> usize {
    32 * 1024 * 1024
}

fn default_media_root() -> std::path::PathBuf {
    std::path::PathBuf::from("data/media")
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

/// The top-level keys environment variables may set. Other `AIPROX_…` variables
/// (`AIPROX_CONFIG`, or a provider key a user chose to call `AIPROX_OPENAI_KEY`)
/// are not configuration and must not be read as such.
const SECTIONS: &[&str] = &[
    "log_format",
    "database_url",
    "nats_url",
    "in_process_backlog_bytes",
    "media_root",
    "logger",
    "admin_token",
    "admin",
    "ops",
    "gateway",
    "providers",
    "mappings",
];

fn is_config_key(key: &figment::value::UncasedStr) -> bool {
    let key = key.as_str().to_ascii_lowercase();
    SECTIONS
        .iter()
        .any(|s| key == *s || key.starts_with(&format!("{s}__")))
}

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
    let figment = figment.merge(Env::prefixed("AIPROX_").filter(is_config_key).split("__"));
    let mut config: Config = figment.extract().map_err(describe)?;
    // An empty variable means unset (`AIPROX_NATS_URL=` to force the in-process bus).
    config.nats_url = config.nats_url.filter(|u| !u.trim().is_empty());
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

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use std::path::Path;

    use figment::Jail;

    use super::load;

    fn load_err(jail: &mut Jail, yaml: &str) -> String {
        jail.create_file("bad.yaml", yaml).unwrap();
        format!("{:#}", load(Some(Path::new("bad.yaml"))).unwrap_err())
    }

    #[test]
    fn without_a_file_the_built_in_demo_set_up_is_used() {
        Jail::expect_with(|_jail| {
            let config = load(None).unwrap();
            assert!(config.providers.contains_key("demo"));
            assert_eq!(config.mappings["demo"].targets[0].model, "echo");
            assert_eq!(config.gateway.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn the_example_file_loads() {
        Jail::expect_with(|_jail| {
            let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../aiprox.example.yaml");
            let config = load(Some(Path::new(example))).unwrap();
            assert!(config.mappings.contains_key("demo"));
            Ok(())
        });
    }

    #[test]
    fn a_mapping_names_one_target_a_list_in_order_or_its_strategy_and_targets() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "aiprox.yaml",
                "providers:\n  a: {kind: openai, base_url: 'http://a.example/v1'}\n  b: {kind: anthropic}\n\
                 mappings:\n  one: {provider: a, model: x}\n  \
                 both: [{provider: a, model: x}, {provider: b, model: claude-haiku-4-5}]\n  \
                 spread: {strategy: weighted, targets: [{provider: a, model: x, weight: 3}, {provider: b, model: y, timeout_ms: 900}]}\n",
            )?;
            let gateway = load(None).unwrap().gateway();
            assert_eq!(gateway.mappings["one"].targets.len(), 1);
            let both: Vec<_> = gateway.mappings["both"]
                .targets
                .iter()
                .map(|t| (t.provider.as_str(), t.model.as_str()))
                .collect();
            assert_eq!(both, [("a", "x"), ("b", "claude-haiku-4-5")]);
            let spread = &gateway.mappings["spread"];
            assert_eq!(spread.strategy, config_model::Strategy::Weighted);
            assert_eq!(spread.targets[0].weight, 3);
            assert_eq!(spread.targets[1].timeout_ms, Some(900));
            Ok(())
        });
    }

    #[test]
    fn environment_variables_override_the_file() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "aiprox.yaml",
                "gateway: {listen: '127.0.0.1:9000', max_body_bytes: 10}\n\
                 providers: {local: {kind: openai, base_url: 'http://a.example/v1'}}\n",
            )?;
            jail.set_env("AIPROX_GATEWAY__LISTEN", "0.0.0.0:7000");
            jail.set_env("AIPROX_PROVIDERS__LOCAL__BASE_URL", "http://b.example/v1");
            jail.set_env("AIPROX_CONFIG", "ignored-here: the flag reads it");
            jail.set_env("AIPROX_OPENAI_KEY", "sk-a-key-not-a-setting");
            let config = load(None).unwrap();
            assert_eq!(config.gateway.listen.to_string(), "0.0.0.0:7000");
            assert_eq!(config.gateway.max_body_bytes, 10);
            let config_model::ProviderConfig::Openai(local) = &config.providers["local"] else {
                panic!("wrong kind");
            };
            assert_eq!(local.base_url.as_str(), "http://b.example/v1");
            Ok(())
        });
    }

    #[test]
    fn bad_configuration_fails_naming_the_key() {
        Jail::expect_with(|jail| {
            let cases = [
                ("gateway: {max_body_bytes: lots}", "gateway.max_body_bytes"),
                ("gateway: {listen: nowhere}", "gateway.listen"),
                (
                    "gateway: {timeouts: {idle: forever}}",
                    "gateway.timeouts.idle",
                ),
                ("gateway: {lisen: '127.0.0.1:1'}", "lisen"),
                ("providers: {x: {kind: openai}}", "base_url"),
                ("providers: {x: {kind: carrier-pigeon}}", "carrier-pigeon"),
                (
                    "providers: {x: {kind: openai, base_url: 'ftp://h/v1'}}",
                    "providers.x.base_url",
                ),
                (
                    "providers: {x: {kind: openai, base_url: 'http://h/v1', api_key_env: AIPROX_UNSET_VAR_FOR_TEST}}",
                    "providers.x.api_key_env: environment variable AIPROX_UNSET_VAR_FOR_TEST is not set",
                ),
                (
                    "providers: {x: {kind: openai, base_url: 'http://h/v1', headers: {'bad header': v}}}",
                    "providers.x.headers.bad header",
                ),
                (
                    "mappings: {gpt4: {provider: ghost, model: m}}",
                    "mappings.gpt4.provider: unknown provider 'ghost'",
                ),
            ];
            for (yaml, key) in cases {
                let err = load_err(jail, yaml);
                assert!(err.contains(key), "{yaml}\n=> {err}");
            }
            Ok(())
        });
    }
}
