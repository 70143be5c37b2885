//! A `POST /v1/responses` body as the gateway reads it.
//!
//! Like [`crate::openai::ChatRequest`], the body is held as a [`RawObject`] and a
//! pass-through sends it on byte for byte with only `model` replaced. The members
//! aiprox interprets are read into types at once, so every refusal is a 400 that
//! names its field, before anything goes upstream.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::items::Item;
use super::params::{Echo, ReasoningConfig, TextConfig, Tool, ToolChoice};
use crate::openai::InvalidRequest;
use crate::raw::{self, RawObject};
use crate::typed_body::{self, BodyError};

/// A Responses request: the raw body and the members aiprox interprets.
#[derive(Debug, Clone)]
pub struct ResponsesRequest {
    /// The body as sent, member values unparsed.
    pub body: RawObject,
    pub model: String,
    pub stream: bool,
    /// Whether the response is kept for `previous_response_id` and retrieval:
    /// the API's default is yes.
    pub store: bool,
    /// The stored response this one continues: `input` then holds only the new
    /// items, and the conversation before them is the gateway's to rebuild.
    pub previous_response_id: Option<String>,
    /// `input`; a string is one user message.
    pub input: Vec<Item>,
    pub instructions: Option<String>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    /// Extra output asked for (`reasoning.encrypted_content`…).
    pub include: Vec<String>,
    pub max_output_tokens: Option<u32>,
    pub metadata: Option<Map<String, Value>>,
    pub text: Option<TextConfig>,
    pub reasoning: Option<ReasoningConfig>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// The end user, as in Chat Completions.
    pub user: Option<String>,
}

impl ResponsesRequest {
    /// Reads a body: the members above typed, each refusal a 400 naming its
    /// field (`input[2].content[0]`), the rest kept verbatim. A string `input`
    /// becomes one user message; absent `input` is an empty list.
    pub fn parse(bytes: &[u8]) -> Result<Self, InvalidRequest> {
        let body = raw::parse_object(bytes).map_err(|e| InvalidRequest::Json(e.to_string()))?;
        let model = match member::<String>(&body, "model", "a string")? {
            Some(m) if !m.is_empty() => m,
            _ => return Err(InvalidRequest::MissingModel),
        };
        Ok(Self {
            model,
            stream: member(&body, "stream", "a boolean")?.unwrap_or(false),
            store: member(&body, "store", "a boolean")?.unwrap_or(true),
            previous_response_id: member(&body, "previous_response_id", "a string")?,
            input: input(&body)?,
            instructions: member(&body, "instructions", "a string")?,
            tools: member(&body, "tools", "an array of tools")?.unwrap_or_default(),
            tool_choice: member(&body, "tool_choice", "a string or an object")?,
            parallel_tool_calls: member(&body, "parallel_tool_calls", "a boolean")?,
            include: member(&body, "include", "an array of strings")?.unwrap_or_default(),
            max_output_tokens: member(&body, "max_output_tokens", "an integer")?,
            metadata: member(&body, "metadata", "an object")?,
            text: member(&body, "text", "an object")?,
            reasoning: member(&body, "reasoning", "an object")?,
            temperature: member(&body, "temperature", "a number")?,
            top_p: member(&body, "top_p", "a number")?,
            user: member(&body, "user", "a string")?,
            body,
        })
    }

    /// The body to send to an OpenAI Responses upstream: the client's, with
    /// `model` replaced.
    pub fn upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        raw::to_vec_replacing(&self.body, "model", &raw::to_raw(upstream_model))
    }

    /// The parameters a Response built for this request repeats, with the API's
    /// defaults where the client set none (`tool_choice: "auto"`, `temperature`
    /// and `top_p` 1, `parallel_tool_calls: true`, `text.format: {type: "text"}`,
    /// `metadata: {}`).
    pub fn echo(&self) -> Echo {
        let mut text = self.text.clone().unwrap_or_else(TextConfig::plain);
        if text.format.is_none() {
            text.format = TextConfig::plain().format;
        }
        Echo {
            instructions: self.instructions.clone(),
            max_output_tokens: self.max_output_tokens,
            parallel_tool_calls: Some(self.parallel_tool_calls.unwrap_or(true)),
            previous_response_id: self.previous_response_id.clone(),
            reasoning: Some(
                self.reasoning
                    .clone()
                    .unwrap_or_else(ReasoningConfig::unset),
            ),
            store: Some(self.store),
            temperature: Some(self.temperature.unwrap_or(1.0)),
            text: Some(text),
            tool_choice: Some(self.tool_choice.clone().unwrap_or_default()),
            tools: self.tools.clone(),
            top_p: Some(self.top_p.unwrap_or(1.0)),
            metadata: Some(self.metadata.clone().unwrap_or_default()),
        }
    }
}

/// Member `name` as a `T`: absent or `null` is `None`. A value of the wrong type
/// is refused by name; an error inside it names the field it is about
/// (`tools[1].name`).
fn member<T: DeserializeOwned>(
    body: &RawObject,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, InvalidRequest> {
    let Some(value) = value_of(body, name)? else {
        return Ok(None);
    };
    typed_body::from_value(value)
        .map(Some)
        .map_err(|e| refusal(name, expected, e))
}

/// Member `name` parsed, unless absent or `null`.
fn value_of(body: &RawObject, name: &str) -> Result<Option<Value>, InvalidRequest> {
    match body.get(name) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str(raw.get())
            .map(Some)
            .map_err(|e| InvalidRequest::Json(e.to_string())),
    }
}

fn refusal(name: &'static str, expected: &'static str, e: BodyError) -> InvalidRequest {
    match e {
        BodyError::Field { path, .. } if path == "." => InvalidRequest::WrongType {
            param: name,
            expected,
        },
        BodyError::Field { path, message } => InvalidRequest::Field {
            param: typed_body::join_path(name, &path),
            message,
        },
        BodyError::Json(message) => InvalidRequest::Json(message),
    }
}

/// `input`: a string (one user message) or an array of items, each read on its
/// own so that an error names it (`input[2].content[0]`).
fn input(body: &RawObject) -> Result<Vec<Item>, InvalidRequest> {
    const EXPECTED: &str = "a string or an array of input items";
    match value_of(body, "input")? {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![Item::user_text(text)]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                Item::from_value(item).map_err(|e| match e {
                    BodyError::Field { path, message } => InvalidRequest::Field {
                        param: typed_body::join_path(&format!("input[{i}]"), &path),
                        message,
                    },
                    BodyError::Json(message) => InvalidRequest::Json(message),
                })
            })
            .collect(),
        Some(_) => Err(InvalidRequest::WrongType {
            param: "input",
            expected: EXPECTED,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::responses::{Content, Role};

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../../fixtures/openai-responses/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn recorded_requests_parse_and_only_the_model_changes() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/openai-responses"
        );
        let mut parsed = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !name.starts_with("responses_request_") {
                continue;
            }
            let bytes = fixture(&name);
            let req = ResponsesRequest::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!req.input.is_empty(), "{name}");
            let out: Value = serde_json::from_slice(&req.upstream_body("upstream-x")).unwrap();
            let mut expected: Value = serde_json::from_slice(&bytes).unwrap();
            expected["model"] = "upstream-x".into();
            assert_eq!(out, expected, "{name}");
            parsed += 1;
        }
        assert_eq!(parsed, 16);
    }

    #[test]
    fn members_are_read() {
        let req = ResponsesRequest::parse(&fixture("responses_request_stream_function_call.json"))
            .unwrap();
        assert_eq!(req.model, "gpt-5");
        assert!(req.stream && req.store);
        assert_eq!(req.previous_response_id, None);
        assert_eq!(req.include, ["reasoning.encrypted_content"]);
        assert_eq!(req.tool_choice, Some(ToolChoice::Mode("required".into())));
        assert_eq!(req.tools[0].kind(), "function");
        assert_eq!(req.reasoning.unwrap().effort.as_deref(), Some("low"));

        let req = ResponsesRequest::parse(&fixture("responses_request_string_input_2025-03.json"))
            .unwrap();
        assert!(!req.stream);
        assert_eq!(req.input, vec![Item::user_text("Hello!")]);

        let req = ResponsesRequest::parse(&fixture("responses_request_function_call_output.json"))
            .unwrap();
        assert_eq!(
            req.previous_response_id.as_deref(),
            Some("resp_0435eb6c2aa8e9eb0069e15ffeb3fc81959cd2d1e915a8c7ea")
        );
        let Item::FunctionCallOutput(out) = &req.input[0] else {
            panic!("{:?}", req.input[0])
        };
        assert_eq!(out.call_id, "call_P1vN20XNjvNyIm0VshHYzmSA");

        let req =
            ResponsesRequest::parse(&fixture("responses_request_input_image_url.json")).unwrap();
        let Item::Message(m) = &req.input[0] else {
            panic!()
        };
        assert_eq!(m.role, Role::User);
        assert!(matches!(&m.content, Content::Parts(p) if p[1].kind() == "input_image"));
    }

    #[test]
    fn the_echo_fills_in_defaults() {
        let req = ResponsesRequest::parse(
            br#"{"model":"m","input":"hi","store":false,"text":{"verbosity":"low"}}"#,
        )
        .unwrap();
        let echo = serde_json::to_value(req.echo()).unwrap();
        assert_eq!(
            echo,
            json!({"instructions": null, "max_output_tokens": null, "parallel_tool_calls": true,
                "previous_response_id": null, "reasoning": {"effort": null, "summary": null},
                "store": false, "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "low"},
                "tool_choice": "auto", "tools": [], "top_p": 1.0, "metadata": {}})
        );
    }

    #[test]
    fn refusals_name_their_field() {
        let cases: &[(&[u8], &str, Option<&str>)] = &[
            (b"{", "invalid_json", None),
            (br#"{"input":"x"}"#, "model_not_found", Some("model")),
            (br#"{"model":"","input":"x"}"#, "model_not_found", Some("model")),
            (br#"{"model":"m","input":5}"#, "invalid_type", Some("input")),
            (br#"{"model":"m","input":[7]}"#, "invalid_type", Some("input[0]")),
            (
                br#"{"model":"m","input":[{"role":"user","content":"x"},{"type":"function_call_output","output":"x"}]}"#,
                "invalid_type",
                Some("input[1]"),
            ),
            (
                br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":{"url":"u"}}]}]}"#,
                "invalid_type",
                Some("input[0].content[0]"),
            ),
            (
                br#"{"model":"m","input":[{"role":"tool","content":"x"}]}"#,
                "invalid_type",
                Some("input[0].role"),
            ),
            (br#"{"model":"m","stream":"yes"}"#, "invalid_type", Some("stream")),
            (br#"{"model":"m","store":1}"#, "invalid_type", Some("store")),
            (br#"{"model":"m","tools":{}}"#, "invalid_type", Some("tools")),
            (
                br#"{"model":"m","tools":[{"type":"function","name":"f"},{"type":"function"}]}"#,
                "invalid_type",
                Some("tools[1]"),
            ),
            (br#"{"model":"m","tool_choice":3}"#, "invalid_type", Some("tool_choice")),
            (br#"{"model":"m","max_output_tokens":-1}"#, "invalid_type", Some("max_output_tokens")),
            (br#"{"model":"m","text":[]}"#, "invalid_type", Some("text")),
            (
                br#"{"model":"m","text":{"format":{"type":7}}}"#,
                "invalid_type",
                Some("text.format.type"),
            ),
            (br#"{"model":"m","reasoning":"high"}"#, "invalid_type", Some("reasoning")),
            (br#"{"model":"m","temperature":"hot"}"#, "invalid_type", Some("temperature")),
            (br#"{"model":"m","include":[1]}"#, "invalid_type", Some("include[0]")),
        ];
        for (body, code, param) in cases {
            let err = ResponsesRequest::parse(body).unwrap_err();
            let text = String::from_utf8_lossy(body);
            assert_eq!(err.code(), *code, "{text}: {err}");
            assert_eq!(err.param(), *param, "{text}: {err}");
        }
        let err = ResponsesRequest::parse(
            br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":{"url":"u"}}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid value for 'input[0].content[0]': image_url: invalid type: map, expected a string"
        );
    }
}
