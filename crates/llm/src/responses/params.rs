//! The request parameters a Response repeats back to the client: tools, the tool
//! choice, the text format, reasoning options, and the [`Echo`] that carries them
//! with the sampling settings.
//!
//! Tools of types aiprox cannot run (`web_search`, `namespace`, `file_search`…)
//! are kept whole ([`Tool::Other`]), as are tool choices that name them.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::typed_body::{self, BodyError};

/// One entry of `tools`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tool {
    /// Responses function tools are flat: `{type, name, description, parameters,
    /// strict}`, not Chat's `{type, function: {…}}`.
    Function(FunctionTool),
    /// A built-in tool (`web_search`, `file_search`, `computer_use_preview`,
    /// `local_shell`, `custom`, Codex's `namespace`…), as it was sent.
    #[serde(untagged)]
    Other(Map<String, Value>),
}

impl Tool {
    /// The tool's `type`.
    pub fn kind(&self) -> &str {
        match self {
            Self::Function(_) => "function",
            Self::Other(map) => map.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    fn from_value(value: Value) -> Result<Self, BodyError> {
        let Value::Object(mut map) = value else {
            return Err(BodyError::at(".", "expected a tool (a JSON object)"));
        };
        match map.get("type").and_then(Value::as_str) {
            Some("function") => {
                map.remove("type");
                Ok(Self::Function(typed_body::from_value(Value::Object(map))?))
            }
            Some(_) => Ok(Self::Other(map)),
            None => Err(BodyError::at(
                "type",
                "missing: a tool needs a string 'type'",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(BodyError::nested)
    }
}

/// A function the client runs itself. `description`, `parameters` and `strict`
/// are written back even when `null`, as OpenAI echoes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    /// `auto`, `none` or `required`.
    Mode(String),
    /// `{type: "function", name}`: that function must be called.
    Function { name: String },
    /// Any other object: a built-in tool forced by its type (`{type:
    /// "web_search"}`), `allowed_tools`, `mcp`, `custom`…, as it was sent.
    Other(Map<String, Value>),
}

impl Default for ToolChoice {
    fn default() -> Self {
        Self::Mode("auto".into())
    }
}

impl ToolChoice {
    fn from_value(value: Value) -> Result<Self, BodyError> {
        match value {
            Value::String(mode) => Ok(Self::Mode(mode)),
            Value::Object(map) if map.get("type").and_then(Value::as_str) == Some("function") => {
                match map.get("name") {
                    Some(Value::String(name)) => Ok(Self::Function { name: name.clone() }),
                    _ => Err(BodyError::at(
                        "name",
                        "a function tool choice needs a string 'name'",
                    )),
                }
            }
            Value::Object(map) if map.get("type").is_some_and(Value::is_string) => {
                Ok(Self::Other(map))
            }
            Value::Object(_) => Err(BodyError::at("type", "missing: expected a string 'type'")),
            _ => Err(BodyError::at(".", "expected a string or an object")),
        }
    }
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Function<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            name: &'a str,
        }
        match self {
            Self::Mode(mode) => serializer.serialize_str(mode),
            Self::Function { name } => Function {
                kind: "function",
                name,
            }
            .serialize(serializer),
            Self::Other(map) => map.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(BodyError::nested)
    }
}

/// `text`: the output's format (and, in `extra`, `verbosity`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `text.format`: `{type: "text"}`, `{type: "json_object"}` or `{type:
/// "json_schema", name, schema, strict, description}` (flat, not Chat's
/// `response_format.json_schema` object). `description` stays in `extra`, so that
/// a `null` one is written back as it was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl TextConfig {
    /// The plain-text format, what a response echoes when none was asked for.
    pub fn plain() -> Self {
        Self {
            format: Some(TextFormat {
                kind: "text".into(),
                name: None,
                schema: None,
                strict: None,
                extra: Map::new(),
            }),
            extra: Map::new(),
        }
    }
}

/// `reasoning`: `effort` (`none`, `minimal`, `low`, `medium`, `high`…). `summary`
/// (`auto`, `concise`, `detailed`) and older names (`generate_summary`) stay in
/// `extra`, written back as they were read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    #[serde(default)]
    pub effort: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ReasoningConfig {
    /// No reasoning options, as a response echoes them: `{effort: null, summary:
    /// null}`.
    pub fn unset() -> Self {
        Self {
            effort: None,
            extra: Map::from_iter([("summary".to_owned(), Value::Null)]),
        }
    }
}

/// The request's parameters as a Response repeats them, defaults filled in (see
/// `ResponsesRequest::echo`). Flattened into [`super::Response`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub reasoning: Option<ReasoningConfig>,
    #[serde(default)]
    pub store: Option<bool>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub tools: Vec<Tool>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tools_are_functions_or_kept_whole() {
        let tools: Vec<Tool> = serde_json::from_value(json!([
            {"type": "function", "name": "get_weather", "description": null,
             "parameters": {"type": "object"}, "strict": true},
            {"type": "web_search", "search_context_size": "low"},
            {"type": "namespace", "name": "web", "tools": []}
        ]))
        .unwrap();
        let kinds: Vec<&str> = tools.iter().map(Tool::kind).collect();
        assert_eq!(kinds, ["function", "web_search", "namespace"]);
        let Tool::Function(f) = &tools[0] else {
            panic!()
        };
        assert_eq!((f.name.as_str(), f.strict), ("get_weather", Some(true)));
        assert_eq!(
            serde_json::to_value(&tools[1]).unwrap(),
            json!({"type": "web_search", "search_context_size": "low"})
        );
        let err = serde_json::from_value::<Tool>(json!({"type": "function"})).unwrap_err();
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn tool_choices() {
        let read = |v: Value| serde_json::from_value::<ToolChoice>(v).unwrap();
        assert_eq!(read(json!("required")), ToolChoice::Mode("required".into()));
        let function = read(json!({"type": "function", "name": "f"}));
        assert_eq!(function, ToolChoice::Function { name: "f".into() });
        assert_eq!(
            serde_json::to_value(&function).unwrap(),
            json!({"type": "function", "name": "f"})
        );
        assert!(matches!(
            read(json!({"type": "web_search"})),
            ToolChoice::Other(_)
        ));
        assert!(serde_json::from_value::<ToolChoice>(json!(3)).is_err());
        assert!(serde_json::from_value::<ToolChoice>(json!({"type": "function"})).is_err());
    }
}
