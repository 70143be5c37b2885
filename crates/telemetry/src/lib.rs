//! What every aiprox service shares for running in production.
//!
//! - [`init_tracing`]: the `tracing` subscriber (human or JSON lines, filtered by
//!   `RUST_LOG`).
//! - [`shutdown`]: a [`CancellationToken`] cancelled on SIGINT or SIGTERM, the one
//!   signal that drives every server and consumer loop.
//! - [`retry`]: the one backoff policy of background work, ending on shutdown.
//! - [`health`]: `/healthz` (alive) and `/readyz` (ready for traffic), with the
//!   [`health::Readiness`] flag a service flips off first when it drains.
//! - [`ops`]: the listener serving health and Prometheus metrics on `ops.listen`.
//! - [`trace`]: OpenTelemetry spans, exported over OTLP when configured.

pub mod health;
pub mod ops;
pub mod retry;
pub mod shutdown;
pub mod trace;

pub use tokio_util::sync::CancellationToken;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default filter. Calling
/// it twice is harmless (the second call does nothing), which tests rely on.
pub fn init_tracing(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
