//! The `aiprox` binary's library half: the command line and the configuration it
//! loads, so both can be tested without starting a process.
//!
//! - [`config`]: the whole configuration file, layered from defaults, `aiprox.yaml`
//!   and `AIPROX_…` environment variables, with errors that name the key.
//! - [`cli`]: the subcommands (`gateway`, `logger`, `media`, `admin`, `all`,
//!   `check-config`) and what each starts.
//! - [`stored_responses`]: `aiprox all`'s stored Responses API conversations,
//!   kept in its database for the in-process bus.

pub mod admin_login;
pub mod cli;
pub mod config;
pub mod stored_responses;
