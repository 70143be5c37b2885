//! The items of a Responses conversation: what a request's `input` holds, what a
//! response's `output` holds, and so what a stored conversation is a list of.
//!
//! Reading is strict for the types aiprox knows (an error names the field it is
//! about) and lenient about members: each struct keeps the ones it does not name
//! in `extra`, so an item read and written again loses nothing. An item or content
//! part of a type aiprox does not know is kept whole as raw JSON
//! ([`Item::Other`], [`ContentPart::Other`]): it can be stored and sent back, or
//! refused by name where it cannot be translated.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::typed_body::{self, BodyError};

/// One item of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Message(Message),
    FunctionCall(FunctionCall),
    FunctionCallOutput(FunctionCallOutput),
    Reasoning(Reasoning),
    /// Any other type (`web_search_call`, `item_reference`, `custom_tool_call`…),
    /// as it was sent.
    #[serde(untagged)]
    Other(Map<String, Value>),
}

impl Item {
    /// Reads one item: a known `type` strictly, any other kept whole. An item with
    /// no `type` but a `role` is a message (the shorthand clients send).
    pub fn from_value(value: Value) -> Result<Self, BodyError> {
        let Value::Object(mut map) = value else {
            return Err(BodyError::at(".", "expected an item (a JSON object)"));
        };
        let kind = match map.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            None | Some(Value::Null) if map.contains_key("role") => "message".to_owned(),
            None | Some(Value::Null) => {
                return Err(BodyError::at(
                    "type",
                    "missing: an item needs a 'type' (or a 'role', for a message)",
                ));
            }
            Some(_) => return Err(BodyError::at("type", "expected a string")),
        };
        let known = |mut map: Map<String, Value>| {
            map.remove("type");
            Value::Object(map)
        };
        Ok(match kind.as_str() {
            "message" => Self::Message(typed_body::from_value(known(map))?),
            "function_call" => Self::FunctionCall(typed_body::from_value(known(map))?),
            "function_call_output" => Self::FunctionCallOutput(typed_body::from_value(known(map))?),
            "reasoning" => Self::Reasoning(typed_body::from_value(known(map))?),
            _ => {
                map.entry("type").or_insert(Value::String(kind));
                Self::Other(map)
            }
        })
    }

    /// The item's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Message(_) => "message",
            Self::FunctionCall(_) => "function_call",
            Self::FunctionCallOutput(_) => "function_call_output",
            Self::Reasoning(_) => "reasoning",
            Self::Other(map) => map.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// A user message holding `text` (what a string `input` stands for).
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::Message(Message {
            id: None,
            status: None,
            role: Role::User,
            content: Content::Text(text.into()),
            extra: Map::new(),
        })
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(BodyError::nested)
    }
}

/// A message, from any role: the client's input or the model's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `msg_…`; the client's own messages may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    pub role: Role,
    pub content: Content,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Who speaks: `developer` is the newer name for `system` instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
    Developer,
}

/// Where an output item is: streamed items are `in_progress` until done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    InProgress,
    Completed,
    Incomplete,
}

/// A message's content, or a function call's output: a string or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for Content {
    /// By hand rather than `untagged`, so that an error inside a part keeps its
    /// path (`content[1].image_url`) instead of "did not match any variant".
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = Content;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Content, E> {
                Ok(Content::Text(s.to_owned()))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<Content, E> {
                Ok(Content::Text(s))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element()? {
                    parts.push(part);
                }
                Ok(Content::Parts(parts))
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    InputText(TextPart),
    OutputText(OutputText),
    Refusal(RefusalPart),
    InputImage(InputImage),
    InputFile(InputFile),
    /// Any other type (`input_audio`…), as it was sent.
    #[serde(untagged)]
    Other(Map<String, Value>),
}

impl ContentPart {
    /// Reads one part: a known `type` strictly, any other kept whole.
    pub fn from_value(value: Value) -> Result<Self, BodyError> {
        let Value::Object(mut map) = value else {
            return Err(BodyError::at(
                ".",
                "expected a content part (a JSON object)",
            ));
        };
        let Some(kind) = map.get("type").and_then(Value::as_str).map(str::to_owned) else {
            return Err(BodyError::at(
                "type",
                "missing: a content part needs a string 'type'",
            ));
        };
        let mut known = || {
            map.remove("type");
            Value::Object(std::mem::take(&mut map))
        };
        Ok(match kind.as_str() {
            "input_text" => Self::InputText(typed_body::from_value(known())?),
            "output_text" => Self::OutputText(typed_body::from_value(known())?),
            "refusal" => Self::Refusal(typed_body::from_value(known())?),
            "input_image" => Self::InputImage(typed_body::from_value(known())?),
            "input_file" => Self::InputFile(typed_body::from_value(known())?),
            _ => Self::Other(map),
        })
    }

    /// An `output_text` part holding `text`, with no annotations.
    pub fn output_text(text: impl Into<String>) -> Self {
        Self::OutputText(OutputText {
            text: text.into(),
            annotations: Vec::new(),
            extra: Map::new(),
        })
    }

    /// The part's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::InputText(_) => "input_text",
            Self::OutputText(_) => "output_text",
            Self::Refusal(_) => "refusal",
            Self::InputImage(_) => "input_image",
            Self::InputFile(_) => "input_file",
            Self::Other(map) => map.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(BodyError::nested)
    }
}

/// `input_text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextPart {
    pub text: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `output_text`: the model's text (`logprobs` and the like stay in `extra`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputText {
    pub text: String,
    #[serde(default)]
    pub annotations: Vec<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `refusal`: the model declined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalPart {
    pub refusal: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_image`: `image_url` is a plain string (an http URL or a `data:` URI),
/// not Chat's `{url}` object; or an uploaded file's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input_file`: inline (`file_data`, a `data:` URI), uploaded (`file_id`) or by
/// address (`file_url`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The model asked for a function to be called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The item's id, `fc_…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The call's id, `call_…`: what the `function_call_output` quotes.
    pub call_id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The client's answer to a [`FunctionCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub call_id: String,
    /// Usually a string; a list of `input_text`/`input_image`/`input_file` parts
    /// is accepted too.
    pub output: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The model's reasoning: readable summaries and opaque state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `rs_…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub summary: Vec<SummaryPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_content: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One part of a reasoning summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SummaryPart {
    SummaryText { text: String },
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: Value) -> Result<Item, BodyError> {
        Item::from_value(v)
    }

    fn error_at(v: Value) -> (String, String) {
        match read(v) {
            Err(BodyError::Field { path, message }) => (path, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_may_omit_their_type_and_round_trip() {
        let item = read(json!({"role": "user", "content": "hi"})).unwrap();
        assert_eq!(item, Item::user_text("hi"));
        let output = json!({"id": "msg_1", "type": "message", "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Paris."}],
            "role": "assistant", "phase": "final_answer"});
        let item = read(output.clone()).unwrap();
        let Item::Message(m) = &item else { panic!() };
        assert_eq!(m.role, Role::Assistant);
        assert_eq!(m.extra["phase"], "final_answer");
        assert_eq!(serde_json::to_value(&item).unwrap(), output);
    }

    #[test]
    fn calls_outputs_and_reasoning() {
        let call = json!({"type": "function_call", "id": "fc_1", "call_id": "call_1",
            "name": "f", "arguments": "{}", "status": "completed"});
        assert_eq!(
            serde_json::to_value(read(call.clone()).unwrap()).unwrap(),
            call
        );
        let Item::FunctionCallOutput(out) = read(json!({"type": "function_call_output",
            "call_id": "call_1", "output": [{"type": "input_text", "text": "ok"}]}))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            out.output,
            Content::Parts(vec![ContentPart::InputText(TextPart {
                text: "ok".into(),
                extra: Map::new()
            })])
        );
        let Item::Reasoning(r) = read(json!({"type": "reasoning", "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "hm"}], "encrypted_content": "gAAA"}))
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            r.summary,
            vec![SummaryPart::SummaryText { text: "hm".into() }]
        );
        assert_eq!(r.encrypted_content.as_deref(), Some("gAAA"));
    }

    #[test]
    fn unknown_types_are_kept_whole() {
        let v = json!({"type": "web_search_call", "id": "ws_1", "status": "completed"});
        let item = read(v.clone()).unwrap();
        assert_eq!(item.kind(), "web_search_call");
        assert_eq!(serde_json::to_value(&item).unwrap(), v);
        let part = json!({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}});
        let Item::Message(m) = read(json!({"role": "user", "content": [part]})).unwrap() else {
            panic!()
        };
        let Content::Parts(parts) = &m.content else {
            panic!()
        };
        assert_eq!(parts[0].kind(), "input_audio");
        assert_eq!(serde_json::to_value(&parts[0]).unwrap(), part);
    }

    #[test]
    fn errors_name_their_field() {
        assert_eq!(error_at(json!("hi")).0, ".");
        assert_eq!(error_at(json!({"content": "x"})).0, "type");
        assert_eq!(error_at(json!({"type": 3})).0, "type");
        let (path, message) = error_at(json!({"role": "robot", "content": "x"}));
        assert_eq!(path, "role");
        assert!(message.contains("robot"), "{message}");
        let (path, message) = error_at(json!({"role": "user", "content": [
            {"type": "input_text", "text": "x"},
            {"type": "input_image", "image_url": {"url": "https://x/y.png"}}]}));
        assert_eq!(path, "content[1]");
        assert!(
            message.starts_with("image_url: invalid type: map"),
            "{message}"
        );
        let (path, message) = error_at(json!({"type": "function_call_output", "output": "x"}));
        assert_eq!(path, ".");
        assert!(message.contains("call_id"), "{message}");
        assert_eq!(
            error_at(json!({"role": "user", "content": [{"text": "x"}]})).0,
            "content[0]"
        );
    }
}
