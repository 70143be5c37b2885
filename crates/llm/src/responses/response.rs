//! The Response object: what `POST /v1/responses` answers, what retrieve returns,
//! and what a stream's first and last events carry; and [`ResponseMeta`], what
//! the gateway decides for a response it builds itself.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::items::Item;
use super::params::Echo;

/// A whole Response (`object: "response"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// `resp_…`.
    pub id: String,
    pub object: String,
    /// Unix seconds.
    pub created_at: u64,
    pub status: Status,
    /// Set when `status` is `failed`.
    #[serde(default)]
    pub error: Option<ResponseError>,
    /// Set when `status` is `incomplete`.
    #[serde(default)]
    pub incomplete_details: Option<IncompleteDetails>,
    pub model: String,
    pub output: Vec<Item>,
    #[serde(flatten)]
    pub echo: Echo,
    /// `null` until the response is done. Written after the echo, so that what
    /// follows it holds no tool schema with a `usage` of its own: the usage
    /// reader finds it fast ([`crate::usage::of_body`]).
    #[serde(default)]
    pub usage: Option<Usage>,
    /// Members aiprox does not name (`background`, `billing`, `service_tier`…).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Response {
    /// A response just begun: `in_progress`, no output, no usage.
    pub fn in_progress(meta: &ResponseMeta, echo: Echo) -> Self {
        Self {
            id: meta.id.clone(),
            object: "response".into(),
            created_at: meta.created_at,
            status: Status::InProgress,
            error: None,
            incomplete_details: None,
            model: meta.model.clone(),
            output: Vec::new(),
            echo,
            usage: None,
            extra: Map::new(),
        }
    }
}

/// Where a response is. Recordings show `in_progress`, `queued`, `completed` and
/// `failed`; the API also documents `incomplete` and `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Queued,
    Completed,
    Incomplete,
    Failed,
    Cancelled,
}

/// Why a response failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

/// Why a response is `incomplete`: `max_output_tokens` or `content_filter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    pub reason: String,
}

/// Token counts, in the Responses API's names (no `prompt_tokens` here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    #[serde(default)]
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    #[serde(default)]
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Counted in `input_tokens` too.
    #[serde(default)]
    pub cached_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Counted in `output_tokens` too.
    #[serde(default)]
    pub reasoning_tokens: u64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What the gateway decides for a response it builds (a Chat Completions
/// upstream has no response ids): the id, the time, and the model to name until
/// the upstream names its own. Item ids derive from the response id, so one
/// response's items are told apart by their position and no two responses share
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// `resp_…`, unique per response.
    pub id: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The model the client asked for.
    pub model: String,
}

impl ResponseMeta {
    /// The id of the output item at `output_index`, of kind `prefix` (`msg`, `fc`,
    /// `rs`): `resp_abc` gives `msg_abc_0`, `fc_abc_1`…
    pub fn item_id(&self, prefix: &str, output_index: usize) -> String {
        let tail = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{tail}_{output_index}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every recorded Response body reads and writes back to the same value.
    #[test]
    fn recorded_responses_round_trip() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/openai-responses"
        );
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("responses_response") && !name.starts_with("responses_retrieve") {
                continue;
            }
            let body: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let response: Response = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(response.object, "response", "{name}");
            assert!(response.usage.as_ref().unwrap().total_tokens > 0, "{name}");
            assert_eq!(serde_json::to_value(&response).unwrap(), body, "{name}");
            read += 1;
        }
        assert_eq!(read, 9);
    }

    #[test]
    fn item_ids_derive_from_the_response_id() {
        let meta = ResponseMeta {
            id: "resp_abc".into(),
            created_at: 1,
            model: "m".into(),
        };
        assert_eq!(meta.item_id("msg", 0), "msg_abc_0");
        assert_eq!(meta.item_id("fc", 2), "fc_abc_2");
    }
}
