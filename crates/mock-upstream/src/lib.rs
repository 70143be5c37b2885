//! A mock LLM vendor: a real HTTP server on a free port that answers like OpenAI
//! and like Anthropic, from the payloads recorded in `fixtures/`.
//!
//! - [`fixtures`]: the recorded bodies, compiled in.
//! - [`behavior`]: what the mock does to the next requests: latency, stream chunk
//!   count and pace, extra response fields, injected failures (status codes,
//!   connection resets, stalls, truncated streams).
//! - [`openai`]: the OpenAI routes (`/v1/chat/completions`, `/v1/embeddings`,
//!   `/v1/models`), which behave like the vendor: usage chunks only when
//!   `stream_options.include_usage` asks for them, tool-call streams when tools are
//!   offered.
//! - [`responses`]: `/v1/responses` (from the recorded Responses payloads) and the
//!   legacy `/v1/completions`.
//! - [`anthropic`]: `/v1/messages` and `/v1/messages/count_tokens`, answered like Anthropic, after checking the
//!   request the way Anthropic does (required `max_tokens`, alternating roles that
//!   start with `user`, `tool_result` placement): an invalid request gets
//!   Anthropic's 400 and is counted, so tests can assert the gateway sent none.
//! - [`server`]: the accept loop, the record of requests received, and the control
//!   routes under `/_mock/` (so a test in another process can steer it).

pub mod anthropic;
pub mod behavior;
pub mod fixtures;
pub mod openai;
pub mod responses;
pub mod server;

pub use behavior::{Behavior, Failure};
pub use server::{MockUpstream, Recorded};
