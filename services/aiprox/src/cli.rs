//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// The HTTP gateway alone (the stateless, horizontally scaled component).
    Gateway,
    /// Every component in one process, on embedded defaults.
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
        // Later components (logger, media, admin) join `all` as they arrive.
        Command::Gateway | Command::All => {
            let shutdown = telemetry::shutdown::on_signal();
            gateway::run(config.gateway(), shutdown).await
        }
    }
}
