//! What the mock does with the requests it receives.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Settings applied to every vendor request (`/v1/...`) until changed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Wait this long before the response headers.
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Text streams: this many content chunks instead of the recording's.
    pub chunks: Option<usize>,
    /// Streams: wait this long between chunks.
    #[serde(with = "millis")]
    pub chunk_interval: Duration,
    /// Members added to every response object and every stream chunk, to prove
    /// that unknown fields reach the client.
    pub extra_fields: Map<String, Value>,
    /// A failure to inject instead of the normal answer.
    pub failure: Option<Failure>,
    /// Embeddings: answer floats whatever `encoding_format` asks, as some
    /// OpenAI-compatible servers do.
    pub ignore_encoding_format: bool,
    /// Do not keep requests (benchmarks).
    pub no_record: bool,
    /// Anthropic: answer with this recorded file (`messages_stream_thinking.sse`,
    /// `messages_response_basic_2026.json`…) instead of the one the request
    /// implies.
    pub fixture: Option<String>,
}

/// Injected failures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Failure {
    /// Answer with this status. The body is the recorded vendor error for the
    /// status when there is one (401, 400, 404, 429), else `body`, else a plain-text
    /// line.
    Status { status: u16, body: Option<String> },
    /// Answer 429 (the vendor's recorded body) with `retry-after-ms` and
    /// `retry-after` asking to wait this long.
    RateLimited { retry_after_ms: u64 },
    /// Close the connection without answering.
    Reset,
    /// Send the headers and `after_chunks` chunks, then close the connection
    /// abruptly.
    ResetMidStream { after_chunks: usize },
    /// Never answer (until the client goes away).
    Stall,
    /// Send `after_chunks` chunks, then hang.
    StallMidStream { after_chunks: usize },
    /// Send `after_chunks` chunks, then end the body cleanly without `[DONE]`
    /// (OpenAI) or `message_stop` (Anthropic).
    TruncateMidStream { after_chunks: usize },
    /// Send `after_chunks` chunks, then the vendor's in-stream error (OpenAI's
    /// `data: {"error": …}`, Anthropic's `event: error` overload) and end.
    ErrorEventMidStream { after_chunks: usize },
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}
