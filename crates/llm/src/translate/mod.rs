//! Translation between the OpenAI Chat Completions, OpenAI Responses and
//! Anthropic Messages APIs: pure functions, one module per direction.
//!
//! - [`chat_to_messages`]: an OpenAI client served by an Anthropic upstream
//!   (request OpenAI → Anthropic; response, stream and errors Anthropic → OpenAI).
//! - [`messages_to_chat`]: an Anthropic client served by an OpenAI-compatible
//!   upstream (request Anthropic → OpenAI; response, stream and errors OpenAI →
//!   Anthropic).
//! - [`responses_to_chat`]: a Responses client served by a Chat Completions
//!   upstream (request Responses → Chat; response, stream and errors Chat →
//!   Responses). Chained with [`chat_to_messages`], it serves a Responses client
//!   from an Anthropic upstream.

pub mod chat_to_messages;
pub mod messages_to_chat;
pub mod responses_to_chat;

/// Why a translation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client asked for something the other API cannot express (a 400).
    #[error("{0}")]
    Unsupported(String),
    /// The upstream sent something that is not its API's format (a 502, or an
    /// error event on a stream).
    #[error("{0}")]
    Upstream(String),
    /// The upstream stream ended before its end marker.
    #[error("the upstream stream ended before message_stop")]
    Truncated,
}

/// `stop_reason` (Anthropic) → `finish_reason` (OpenAI). `refusal` has no exact
/// equivalent: it becomes `content_filter`, OpenAI's reason for withheld output;
/// `pause_turn` (a server tool paused a long turn) becomes `stop`, since the turn
/// did end and the client may continue it.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// `finish_reason` (OpenAI) → `stop_reason` (Anthropic).
pub fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// An Anthropic `tool_use` as an OpenAI tool call (arguments: the input as
/// compact JSON text).
pub(crate) fn tool_call(
    id: String,
    name: String,
    input: &serde_json::Value,
) -> crate::openai::types::ToolCall {
    crate::openai::types::ToolCall {
        id,
        kind: "function".into(),
        function: crate::openai::types::FunctionCall {
            name,
            arguments: input.to_string(),
        },
    }
}

/// Splits a `data:` URI into its media type and base64 payload.
pub(crate) fn parse_data_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_both_ways() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
            ("refusal", "content_filter"),
        ] {
            assert_eq!(finish_reason(Some(anthropic)), openai);
            assert_eq!(stop_reason(Some(openai)), anthropic);
        }
        assert_eq!(finish_reason(Some("stop_sequence")), "stop");
        assert_eq!(finish_reason(Some("pause_turn")), "stop");
        assert_eq!(stop_reason(None), "end_turn");
    }

    #[test]
    fn data_uris() {
        assert_eq!(
            parse_data_uri("data:image/png;base64,AAA="),
            Some(("image/png", "AAA="))
        );
        assert_eq!(parse_data_uri("data:image/png,AAA="), None);
        assert_eq!(parse_data_uri("https://x/y.png"), None);
    }
}
