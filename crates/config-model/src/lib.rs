//! aiprox's configuration model: what the admin API stores and publishes and what
//! every gateway applies. No IO beyond reading the master secret; no HTTP.
//!
//! - [`provider`]: the closed set of provider kinds ([`ProviderConfig`]) with their
//!   settings and upstream timeouts, and the checks serde cannot make.
//! - [`mapping`]: where an alias sends requests ([`Target`]).
//! - [`snapshot`]: the whole configuration as published to the gateways
//!   ([`ConfigSnapshot`]): providers with sealed keys, mappings with their ordered
//!   targets, the active client keys' hashes.
//! - [`client_key`]: the SHA-256 a client API key is known by.
//! - [`secret`]: provider API keys sealed at rest (ChaCha20-Poly1305 under
//!   `AIPROX_SECRET_KEY`), opened by gateways, masked for display.
//! - [`error`]: a configuration problem, naming its key.
//!
//! The gateway builds live providers and its routing table from these types; the
//! admin validates, stores and publishes them. Neither imports the other.

pub mod client_key;
pub mod error;
pub mod health;
pub mod limits;
pub mod mapping;
pub mod prices;
pub mod provider;
pub mod secret;
pub mod snapshot;

pub use client_key::{ClientKey, key_hash};
pub use error::ConfigError;
pub use health::{HealthReport, KeyRest, TargetHealth};
pub use limits::{Budget, BudgetPeriod, KeyLimits};
pub use mapping::{Mapping, Strategy, Target};
pub use provider::{
    AnthropicConfig, DemoConfig, OpenAiConfig, ProviderConfig, ProviderKind, TimeoutOverrides,
    Timeouts,
};
pub use snapshot::ConfigSnapshot;
