//! The gateway: OpenAI's and Anthropic's HTTP APIs in front of any number of LLM
//! providers.
//!
//! - [`config`]: the typed settings, providers and model mappings, validated at
//!   start-up with errors that name the offending key.
//! - [`routing`]: turns a requested model name into its route: the targets (a
//!   provider and an upstream model each) in order (aliases from the mappings, or
//!   `provider/model`); [`retry`]: which of them a request calls, how often and when;
//!   [`ejection`]: the targets left out for a while for failing.
//! - [`providers`]: the closed set of provider kinds (OpenAI-compatible, Anthropic,
//!   demo) behind one small trait, dispatched with `match`.
//! - [`chat`], [`completions`], [`embeddings`], [`messages`], [`count_tokens`]:
//!   what a request does once its body is read: parse, resolve, call the provider
//!   (translating between the OpenAI and Anthropic APIs where client and provider
//!   differ), shape the answer. The SSE
//!   relay, in either API's dialect, lives in [`stream`].
//! - [`responses`]: OpenAI's Responses API, natively or over chat completions,
//!   with the conversations `previous_response_id` continues, over HTTP and
//!   WebSocket.
//! - [`body_budget`]: the bytes of request bodies held at once, bounded.
//! - [`failover`]: the loop that calls a route's targets in turn until one
//!   answers, which every generating endpoint shares.
//! - [`routes`]: the axum handlers, by API area; thin wrappers around the above.
//! - [`error`]: the one error type, rendered in the error shape of the API the
//!   client called.
//! - [`capture`], [`publish`]: the log pipeline. The request path captures each
//!   exchange into a bounded queue (never waiting); a background publisher builds
//!   `LogEvent`/`MediaEvent`s and publishes them on the bus, spilling to disk while
//!   the bus is away.
//! - [`live`]: the configuration snapshot the admin API publishes, watched and
//!   swapped in whole (its types, and provider keys sealed at rest, are the
//!   `config-model` crate's).
//! - [`app`]: builds the server on a port ([`Application`]), the request-id layer,
//!   `/metrics`, and graceful shutdown (in-flight streams finish, events flush);
//!   [`serve`]: the accept loop, with a header-read deadline.

pub mod app;
pub mod balance;
pub mod body_budget;
pub mod capture;
pub mod chat;
pub mod completions;
pub mod config;
pub mod count_tokens;
pub mod ejection;
pub mod embeddings;
pub mod error;
pub mod failover;
pub mod health_report;
pub mod limits;
pub mod live;
pub mod messages;
pub mod providers;
pub mod publish;
pub mod responses;
pub mod retry;
pub mod routes;
pub mod routing;
pub mod serve;
pub mod stream;

pub use app::{AppState, Application, run};
pub use config::Config;
pub use error::Error;
