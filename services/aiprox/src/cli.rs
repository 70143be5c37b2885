//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use std::sync::Arc;

use events::Bus;
use prometheus_client::registry::Registry;
use telemetry::health::Readiness;
use telemetry::retry;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::stored_responses::StoredResponses;

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
    if matches!(cli.command, Command::CheckConfig) {
        return Ok(());
    }
    let traces = telemetry::trace::init(service_name(&cli.command))?;
    let ran = component(cli.command, config).await;
    if let Some(traces) = traces {
        traces.shutdown().await;
    }
    ran
}

/// The `service.name` of a component's spans, unless `OTEL_SERVICE_NAME` says.
fn service_name(command: &Command) -> &'static str {
    match command {
        Command::Gateway => "aiprox-gateway",
        Command::Logger => "aiprox-logger",
        Command::Media => "aiprox-media",
        Command::Admin => "aiprox-admin",
        Command::All | Command::CheckConfig => "aiprox",
    }
}

async fn component(command: Command, config: Config) -> anyhow::Result<()> {
    let signal = telemetry::shutdown::on_signal();
    match command {
        Command::CheckConfig => Ok(()),
        Command::Gateway => {
            let bus = match &config.nats_url {
                Some(url) => Some(nats(url, &signal).await?),
                None => {
                    tracing::warn!("no nats_url: the gateway runs without request logging");
                    None
                }
            };
            let app = gateway::Application::build_with_metrics(
                config.gateway(),
                bus,
                Registry::default(),
            )
            .await?;
            serve_ops(&config, app.readiness(), app.metrics(), &signal);
            app.run_until_stopped(signal).await?;
            Ok(())
        }
        Command::Logger => {
            let bus = nats(required_nats(&config, "logger")?, &signal).await?;
            let store = database(&config).await?;
            let mut registry = Registry::default();
            let observed = logger::Observed {
                metrics: logger::Metrics::register(&mut registry),
                readiness: Readiness::not_yet(),
            };
            serve_ops(
                &config,
                observed.readiness.clone(),
                Arc::new(registry),
                &signal,
            );
            logger::run(config.logger.clone(), bus, store, observed, signal).await
        }
        Command::Media => {
            let bus = nats(required_nats(&config, "media")?, &signal).await?;
            let mut registry = Registry::default();
            let observed = (
                media::Metrics::register(&mut registry),
                Readiness::not_yet(),
            );
            serve_ops(&config, observed.1.clone(), Arc::new(registry), &signal);
            media::run(config.media_root.clone(), bus, observed, signal).await
        }
        Command::Admin => {
            let admin = admin_settings(&config).ok_or_else(|| {
                anyhow::anyhow!("admin_token: set AIPROX_ADMIN_TOKEN; every admin call needs it")
            })?;
            let bus = match &config.nats_url {
                Some(url) => Some(nats(url, &signal).await?),
                None => {
                    tracing::warn!("no nats_url: configuration changes reach no gateway");
                    None
                }
            };
            let store = database(&config).await?;
            let publisher = stored_config(&config, &store, bus, &signal).await?;
            let mut registry = Registry::default();
            let deps = admin::Deps {
                store,
                publisher,
                secret: secret_key()?,
                metrics: admin::metrics::Metrics::register(&mut registry),
            };
            // Ready once migrated and seeded, which happened above.
            serve_ops(&config, Readiness::default(), Arc::new(registry), &signal);
            admin::run(admin, deps, signal).await
        }
        Command::All => all(config, signal).await,
    }
}

/// Migrates and seeds the database, then publishes the stored configuration once
/// (so gateways and database agree from the start); the publisher is the admin
/// API's for every later change.
async fn stored_config(
    config: &Config,
    store: &store::Store,
    bus: Option<Bus>,
    shutdown: &CancellationToken,
) -> anyhow::Result<admin::publisher::Publisher> {
    store.migrate().await?;
    seed(config, store).await?;
    let publisher = admin::publisher::Publisher::new(store.clone(), bus, shutdown.clone());
    publisher.publish().await;
    Ok(publisher)
}

/// Writes the file's providers and mappings into the database at its first start;
/// from then on the database (edited through the admin API) is the truth.
async fn seed(config: &Config, store: &store::Store) -> anyhow::Result<()> {
    let seeded = admin::publisher::seed(store, &config.providers, &config.gateway().mappings)
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

/// Serves health and metrics on `ops.listen`, when set, until `shutdown`.
fn serve_ops(
    config: &Config,
    readiness: Readiness,
    metrics: telemetry::ops::Metrics,
    shutdown: &CancellationToken,
) {
    let Some(listen) = config.ops.listen else {
        return;
    };
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = telemetry::ops::serve(listen, readiness, metrics, shutdown).await {
            tracing::error!(error = %e, "the health and metrics listener stopped");
        }
    });
}

fn required_nats<'a>(config: &'a Config, component: &str) -> anyhow::Result<&'a str> {
    config.nats_url.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "nats_url: `aiprox {component}` consumes from NATS JetStream; set AIPROX_NATS_URL"
        )
    })
}

fn admin_settings(config: &Config) -> Option<admin::Settings> {
    config.admin_token.clone().map(|token| admin::Settings {
        listen: config.admin.listen,
        token,
        media_root: config.media_root.clone(),
        gateway_url: config.admin.gateway_url.clone(),
        login_code: None,
    })
}

/// The admin of `aiprox all`: always on (a token generated on loopback, see
/// [`crate::admin_login`]), its Playground on this process's gateway, and a
/// one-time login link printed.
fn all_admin_settings(
    config: &Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<admin::Settings> {
    let token = crate::admin_login::token(
        config.admin_token.clone(),
        config.admin.listen,
        &data_dir.join("admin.token"),
    )?;
    let gateway_url = match &config.admin.gateway_url {
        Some(url) => url.clone(),
        None => url::Url::parse(&crate::admin_login::local_url(config.gateway.listen))?,
    };
    let code = admin::session::random_hex().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    crate::admin_login::announce(&crate::admin_login::local_url(config.admin.listen), &code);
    Ok(admin::Settings {
        listen: config.admin.listen,
        token,
        media_root: config.media_root.clone(),
        gateway_url: Some(gateway_url),
        login_code: Some(code),
    })
}

/// Connects to NATS; creates the stream in the background if NATS is not up yet
/// (the gateway spills to disk meanwhile), until it is or `shutdown`.
async fn nats(url: &str, shutdown: &CancellationToken) -> anyhow::Result<Bus> {
    let bus = events::nats::NatsBus::connect(url).await?;
    if let Err(e) = bus.ensure_stream().await {
        tracing::warn!(error = %e, "NATS not ready; retrying in the background");
        let retrying = bus.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let policy = retry::policy(Duration::from_secs(2), Duration::from_secs(10));
            let ready = retry::until_ok("NATS stream not ready", policy, &shutdown, || {
                retrying.ensure_stream()
            });
            if ready.await.is_some() {
                tracing::info!("NATS stream ready");
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

/// Starts the in-process bus's spend counters at each budgeted key's logged
/// spend of its period, so budgets hold across restarts (NATS keeps its own).
async fn seed_spend(
    bus: &events::memory::InProcessBus,
    store: &store::Store,
) -> anyhow::Result<()> {
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    )
    .unwrap_or(0);
    let mut spent_since = std::collections::HashMap::new();
    for key in store.keys().await? {
        let limits = config_model::KeyLimits::from_column(&key.limits);
        let Some(budget) = limits.budget.filter(|_| key.revoked_at_us.is_none()) else {
            continue;
        };
        let since_us = i64::try_from(budget.period.start_ms(now_ms) * 1000).unwrap_or(0);
        if let std::collections::hash_map::Entry::Vacant(e) = spent_since.entry(since_us) {
            e.insert(store.keys_spend_since(since_us).await?);
        }
        let spent = spent_since
            .get(&since_us)
            .and_then(|s| s.get(&key.id))
            .copied()
            .unwrap_or(0.0);
        bus.seed_spend(
            &gateway::limits::spend_counter_name(&key.id, budget),
            gateway::limits::micro_usd(spent),
        );
    }
    Ok(())
}

/// Gateway, logger, media writer, admin API and web UI in one process. A
/// component that fails ends the process at once with its error. On shutdown the
/// gateway goes first (streams finish, events flush onto the bus), then the others
/// drain.
async fn all(mut config: Config, signal: CancellationToken) -> anyhow::Result<()> {
    // Open on loopback until the first client key is created.
    config.gateway.auth = config
        .gateway
        .auth
        .or(Some(gateway::config::AuthMode::Auto));
    let data_dir = config.media_root.parent().map_or_else(
        || std::path::PathBuf::from("data"),
        std::path::Path::to_path_buf,
    );
    let secret_file = data_dir.join("secret.key");
    config_model::secret::use_default_file(&secret_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot create {} (or set AIPROX_SECRET_KEY): {e}",
            secret_file.display()
        )
    })?;
    let store = database(&config).await?;
    let bus = match &config.nats_url {
        Some(url) => nats(url, &signal).await?,
        // Stored responses in the database: they outlive a restart, and go
        // with the logs' retention.
        None => Bus::InProcess(
            events::memory::InProcessBus::with_backlog_limit(config.in_process_backlog_bytes)
                .with_response_keeper(Arc::new(StoredResponses::new(store.clone()))),
        ),
    };
    // The stored configuration reaches the gateway before it serves, admin API or
    // not (keys created earlier must be enforced).
    let others = CancellationToken::new();
    let publisher = stored_config(&config, &store, Some(bus.clone()), &others).await?;
    if let Bus::InProcess(memory) = &bus {
        seed_spend(memory, &store).await?;
    }
    let mut components = tokio::task::JoinSet::new();
    let named = |name: &'static str, run: anyhow::Result<()>| (name, run);
    // One registry for every component; ready when the gateway is.
    let mut registry = Registry::default();
    {
        let observed = logger::Observed {
            metrics: logger::Metrics::register(&mut registry),
            readiness: Readiness::not_yet(),
        };
        let (settings, bus, store, stop) = (
            config.logger.clone(),
            bus.clone(),
            store.clone(),
            others.clone(),
        );
        components.spawn(async move {
            named(
                "logger",
                logger::run(settings, bus, store, observed, stop).await,
            )
        });
    }
    {
        let observed = (
            media::Metrics::register(&mut registry),
            Readiness::not_yet(),
        );
        let (root, bus, stop) = (config.media_root.clone(), bus.clone(), others.clone());
        components
            .spawn(async move { named("media", media::run(root, bus, observed, stop).await) });
    }
    {
        let admin = all_admin_settings(&config, &data_dir)?;
        let deps = admin::Deps {
            store,
            publisher,
            secret: secret_key()?,
            metrics: admin::metrics::Metrics::register(&mut registry),
        };
        let stop = others.clone();
        components.spawn(async move { named("admin", admin::run(admin, deps, stop).await) });
    }
    let app =
        gateway::Application::build_with_metrics(config.gateway(), Some(bus), registry).await?;
    serve_ops(&config, app.readiness(), app.metrics(), &signal);
    let stop_gateway = signal.clone();
    let gateway = async move {
        app.run_until_stopped(stop_gateway).await?;
        anyhow::Ok(())
    };
    tokio::pin!(gateway);
    let failed = tokio::select! {
        served = &mut gateway => {
            others.cancel();
            drain(&mut components).await;
            return served;
        }
        Some(ended) = components.join_next() => ended_early(ended),
    };
    // A component ended before shutdown: stop the rest, then say why.
    signal.cancel();
    others.cancel();
    let _ = gateway.await;
    drain(&mut components).await;
    Err(failed)
}

/// Why a component that should run until shutdown ended.
fn ended_early(
    ended: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Error {
    match ended {
        Ok((name, Err(e))) => anyhow::anyhow!("{name}: {e:#}"),
        Ok((name, Ok(()))) => anyhow::anyhow!("{name} stopped unexpectedly"),
        Err(e) => anyhow::anyhow!("a component panicked: {e}"),
    }
}

/// Waits for the components to finish draining, logging any that failed.
async fn drain(components: &mut tokio::task::JoinSet<(&'static str, anyhow::Result<()>)>) {
    while let Some(ended) = components.join_next().await {
        match ended {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => tracing::error!(error = %e, "{name} failed"),
            Err(e) => tracing::error!(error = %e, "a component panicked"),
        }
    }
}
