//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use events::Bus;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(name = "aiprox", version, about = "An LLM API gateway")]
pub struct Cli {
    /// Configuration file (YAML). Defaults to ./aiprox.yaml when present, else a
    /// built-in demo set-up.
    #[arg(long, short, global = true, env = "AIPROX_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The HTTP gateway alone (stateless, horizontally scaled). Publishes log
    /// events on NATS (`nats_url`); without it, logs nothing.
    Gateway,
    /// The logger alone: NATS → database.
    Logger,
    /// The media writer alone: NATS → media directory.
    Media,
    /// The admin API alone (needs AIPROX_ADMIN_TOKEN).
    Admin,
    /// Every component in one process. Without `nats_url`, on an in-process bus;
    /// with SQLite unless `database_url` says otherwise.
    All,
    /// Load and validate the configuration, print nothing, exit non-zero on error.
    CheckConfig,
}

/// Runs the chosen command until SIGINT or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::config::load(cli.config.as_deref())?;
    telemetry::init_tracing(config.log_format, "info,aiprox=info,gateway=info");
    match cli.command {
        Command::CheckConfig => Ok(()),
        Command::Gateway => {
            let bus = match &config.nats_url {
                Some(url) => Some(nats(url).await?),
                None => {
                    tracing::warn!("no nats_url: the gateway runs without request logging");
                    None
                }
            };
            gateway::run(config.gateway(), bus, telemetry::shutdown::on_signal()).await
        }
        Command::Logger => {
            let bus = nats(required_nats(&config, "logger")?).await?;
            let store = database(&config).await?;
            logger::run(
                config.logger.clone(),
                bus,
                store,
                telemetry::shutdown::on_signal(),
            )
            .await
        }
        Command::Media => {
            let bus = nats(required_nats(&config, "media")?).await?;
            media::run(
                config.media_root.clone(),
                bus,
                telemetry::shutdown::on_signal(),
            )
            .await
        }
        Command::Admin => {
            let admin = admin_config(&config).ok_or_else(|| {
                anyhow::anyhow!("admin_token: set AIPROX_ADMIN_TOKEN; every admin call needs it")
            })?;
            let bus = match &config.nats_url {
                Some(url) => Some(nats(url).await?),
                None => {
                    tracing::warn!("no nats_url: configuration changes reach no gateway");
                    None
                }
            };
            let store = database(&config).await?;
            let publisher = stored_config(&config, &store, bus).await?;
            admin::run(
                admin,
                admin::Deps {
                    store,
                    publisher,
                    secret: secret_key()?,
                },
                telemetry::shutdown::on_signal(),
            )
            .await
        }
        Command::All => all(config).await,
    }
}

/// Migrates and seeds the database, then publishes the stored configuration once
/// (so gateways and database agree from the start); the publisher is the admin
/// API's for every later change.
async fn stored_config(
    config: &Config,
    store: &store::Store,
    bus: Option<Bus>,
) -> anyhow::Result<admin::publisher::Publisher> {
    store.migrate().await?;
    seed(config, store).await?;
    let publisher = admin::publisher::Publisher::new(store.clone(), bus);
    publisher.publish().await;
    Ok(publisher)
}

/// Writes the file's providers and mappings into the database at its first start;
/// from then on the database (edited through the admin API) is the truth.
async fn seed(config: &Config, store: &store::Store) -> anyhow::Result<()> {
    let seeded = admin::publisher::seed(store, &config.providers, &config.mappings)
        .await
        .map_err(|e| {
            anyhow::anyhow!("database_url: cannot seed the configuration: {}", e.message)
        })?;
    if seeded {
        tracing::info!(
            providers = config.providers.len(),
            mappings = config.mappings.len(),
            "configuration seeded from the file into the database"
        );
    } else {
        tracing::info!(
            "configuration from the database (the file seeded it at the first start; change it through the admin API)"
        );
    }
    Ok(())
}

/// The key provider API keys are sealed with; `None` (logged) when not set.
fn secret_key() -> anyhow::Result<Option<config_model::secret::SecretKey>> {
    match config_model::secret::SecretKey::from_env() {
        Ok(key) => Ok(Some(key)),
        Err(config_model::secret::SecretError::Missing) => {
            tracing::warn!(
                "AIPROX_SECRET_KEY is not set: providers can reference keys by api_key_env only"
            );
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn required_nats<'a>(config: &'a Config, component: &str) -> anyhow::Result<&'a str> {
    config.nats_url.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "nats_url: `aiprox {component}` consumes from NATS JetStream; set AIPROX_NATS_URL"
        )
    })
}

fn admin_config(config: &Config) -> Option<admin::Settings> {
    config.admin_token.clone().map(|token| admin::Settings {
        listen: config.admin.listen,
        token,
        media_root: config.media_root.clone(),
    })
}

/// Connects to NATS; creates the stream in the background if NATS is not up yet
/// (the gateway spills to disk meanwhile).
async fn nats(url: &str) -> anyhow::Result<Bus> {
    let bus = events::nats::NatsBus::connect(url).await?;
    if let Err(e) = bus.ensure_stream().await {
        tracing::warn!(error = %e, "NATS not ready; retrying in the background");
        let retry = bus.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if retry.ensure_stream().await.is_ok() {
                    tracing::info!("NATS stream ready");
                    break;
                }
            }
        });
    }
    Ok(Bus::Nats(Box::new(bus)))
}

async fn database(config: &Config) -> anyhow::Result<store::Store> {
    if let Some(path) = config.database_url.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path.split('?').next().unwrap_or(path)).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("database_url: cannot create {}: {e}", dir.display()))?;
    }
    store::Store::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("database_url: {e}"))
}

/// Gateway, logger and media writer in one process. On shutdown the gateway goes
/// first (streams finish, events flush onto the bus), then the consumers drain.
async fn all(mut config: Config) -> anyhow::Result<()> {
    let bus = match &config.nats_url {
        Some(url) => nats(url).await?,
        None => Bus::InProcess(events::memory::InProcessBus::new()),
    };
    // Open on loopback until the first client key is created.
    config.gateway.auth = config
        .gateway
        .auth
        .or(Some(gateway::config::AuthMode::Auto));
    let secret_file = config.media_root.parent().map_or_else(
        || std::path::PathBuf::from("data/secret.key"),
        |dir| dir.join("secret.key"),
    );
    config_model::secret::use_default_file(&secret_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot create {} (or set AIPROX_SECRET_KEY): {e}",
            secret_file.display()
        )
    })?;
    let store = database(&config).await?;
    // The stored configuration reaches the gateway before it serves, admin API or
    // not (keys created earlier must be enforced).
    let publisher = stored_config(&config, &store, Some(bus.clone())).await?;
    let store_for_admin = store.clone();
    let signal = telemetry::shutdown::on_signal();
    let consumers = CancellationToken::new();
    let logger = tokio::spawn(logger::run(
        config.logger.clone(),
        bus.clone(),
        store,
        consumers.clone(),
    ));
    let media = tokio::spawn(media::run(
        config.media_root.clone(),
        bus.clone(),
        consumers.clone(),
    ));
    let admin = match admin_config(&config) {
        Some(admin) => Some(tokio::spawn(admin::run(
            admin,
            admin::Deps {
                store: store_for_admin,
                publisher,
                secret: secret_key()?,
            },
            consumers.clone(),
        ))),
        None => {
            tracing::info!("admin API off: set AIPROX_ADMIN_TOKEN to start it");
            None
        }
    };
    let served = gateway::run(config.gateway(), Some(bus), signal).await;
    consumers.cancel();
    let tasks = [("logger", logger), ("media", media)]
        .into_iter()
        .chain(admin.map(|a| ("admin", a)));
    for (name, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "{name} failed"),
            Err(e) => tracing::error!(error = %e, "{name} panicked"),
        }
    }
    served
}
