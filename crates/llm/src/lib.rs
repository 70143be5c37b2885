//! Wire formats of the LLM APIs aiprox speaks, with no IO.
//!
//! - [`sse`]: incremental Server-Sent Events decoding and the frames aiprox writes.
//! - [`openai`]: the OpenAI HTTP API: a raw-preserving view of chat and embeddings
//!   requests (only the fields aiprox interprets are typed, everything else is kept
//!   byte for byte), the error body shape, and (in [`openai::types`]) typed chat
//!   bodies for translation.
//! - [`anthropic`]: the Anthropic Messages API: typed requests, responses, stream
//!   events and errors.
//! - [`translate`]: pure conversions between the two, one file per direction.
//! - [`record`]: what logging needs from bodies: token usage in either API's shape,
//!   a stream assembled into the whole response it stands for, and base64 media
//!   cut out of a request and replaced by `aiprox-media://<sha256>` references.
//! - [`raw`]: [`raw::RawObject`], a JSON object whose values stay unparsed text, which
//!   is how unknown fields cross the gateway unchanged.

pub mod anthropic;
pub mod openai;
pub mod raw;
pub mod record;
pub mod sse;
pub mod translate;
