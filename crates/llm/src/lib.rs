//! Wire formats of the LLM APIs aiprox speaks, with no IO.
//!
//! - [`sse`]: incremental Server-Sent Events decoding and the frames aiprox writes.
//! - [`openai`]: the OpenAI HTTP API: a raw-preserving view of chat and embeddings
//!   requests (only the fields aiprox interprets are typed, everything else is kept
//!   byte for byte), and the error body shape.
//! - [`raw`]: [`raw::RawObject`], a JSON object whose values stay unparsed text, which
//!   is how unknown fields cross the gateway unchanged.

pub mod openai;
pub mod raw;
pub mod sse;
