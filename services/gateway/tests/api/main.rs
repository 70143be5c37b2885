//! The gateway over real HTTP: the gateway and a mock upstream, each on port 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anthropic_upstream;
mod balance;
mod chat;
mod costs;
mod errors;
mod fallback;
mod helpers;
mod hostile_input;
mod lifecycle;
mod limits;
mod live;
mod logging;
mod messages_endpoint;
mod models_embeddings;
mod responses;
mod streaming;
