//! Wire formats of the LLM APIs aiprox speaks, with no IO.
//!
//! - [`sse`]: incremental Server-Sent Events decoding and the frames aiprox writes.
//! - [`openai`]: the OpenAI HTTP API: a raw-preserving view of chat and embeddings
//!   requests (only the fields aiprox interprets are typed, everything else is kept
//!   byte for byte), the error body shape, and (in [`openai::types`]) typed chat
//!   bodies for translation.
//! - [`anthropic`]: the Anthropic Messages API: typed requests, responses, stream
//!   events and errors.
//! - [`responses`]: the OpenAI Responses API: a raw-preserving view of its
//!   requests, typed conversation items, the Response object and stream events.
//! - [`translate`]: pure conversions between the APIs, one module per direction.
//! - [`count_tokens`]: a Messages request's input tokens estimated with OpenAI's
//!   tokenizers, for `count_tokens` on providers without that API.
//! - [`usage`]: token usage in any of the APIs' shapes, read out of a response body
//!   or stream chunk without parsing the rest of it.
//! - [`assemble`]: a stream (OpenAI chunks, Anthropic events, Responses events)
//!   assembled into the whole response it stands for, so the log holds one body
//!   per request.
//! - [`media`]: base64 media cut out of a request body and replaced by
//!   `aiprox-media://<sha256>` references, each part kept once.
//! - [`inline_media`]: the checks of media sent inline (base64 that decodes, a
//!   media type that is one token), before anything goes upstream.
//! - [`typed_body`]: a client's JSON body read into typed structs strictly: errors
//!   name their field, and an object field must be an object.
//! - [`trace_facts`]: what a request asked for and what its answer says of
//!   itself (sampling parameters, id, model, finish reasons), for its spans, read
//!   by walking the bodies rather than parsing them.
//! - `walk`: the walk over JSON text by its structure that the readers above share.
//! - [`raw`]: [`raw::RawObject`], a JSON object whose values stay unparsed text, which
//!   is how unknown fields cross the gateway unchanged.
//!
//! Test builds add `fixtures`: the recorded vendor payloads that the tests of
//! several modules read.

pub mod anthropic;
pub mod assemble;
pub mod count_tokens;
pub mod inline_media;
pub mod media;
pub mod openai;
pub mod raw;
pub mod responses;
pub mod sse;
pub mod trace_facts;
pub mod translate;
pub mod typed_body;
pub mod usage;
mod walk;

#[cfg(test)]
mod fixtures;
