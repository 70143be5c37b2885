//! A Responses client, a Chat Completions upstream: the request, with the
//! conversation the gateway rebuilt from `previous_response_id`, becomes a chat
//! request; the completion, its stream and its errors come back as a Response,
//! Responses stream events and Responses errors. An Anthropic upstream is served
//! by chaining this with [`super::chat_to_messages`]. The stream is translated by
//! [`StreamTranslator`] (`responses_to_chat/stream.rs`, whose header lists the
//! stream's own choices).
//!
//! Choices where the APIs differ:
//! - `instructions` become the first message, a `system` one. `developer` messages
//!   become `system` messages too: every Chat server knows `system`, not all know
//!   `developer`.
//! - The conversation is the history, then `input`. Text parts (`input_text`,
//!   `output_text`) become text; `input_image` an `image_url` part (its plain
//!   string becomes `{url}`); `input_file` a `file` part (a file by URL only is
//!   refused); an assistant's `refusal` part its `refusal`. A user message of
//!   one `input_text` part is sent as a string (servers without content arrays
//!   read it).
//! - `function_call` items become the `tool_calls` of one assistant message,
//!   merged with the assistant message just before them and with the calls next
//!   to them; `function_call_output`s become `tool` messages, their output parts
//!   joined as text. An output must answer a call made earlier in the
//!   conversation, as the Responses API requires (the chat upstream's refusal
//!   would be less clear).
//! - `reasoning` items are dropped: a summary is not the model's input, and
//!   `encrypted_content` means something to OpenAI only. Items of other types
//!   (`item_reference`, built-in tool calls…) are refused by name. An error about
//!   an item names it `input[i]`, or `history[i]` for the stored conversation.
//! - Function tools (flat in Responses) become Chat function tools. Any other
//!   type is a built-in tool the upstream cannot run (`web_search`,
//!   `file_search`, Codex's `namespace`, which wraps functions under a name
//!   the chat upstream has no way to call back): left out and listed in
//!   [`Omitted`], for the log. A `tool_choice` forcing one is refused, as is
//!   `required` with no function left; `tool_choice` and `parallel_tool_calls`
//!   are only sent with tools (Chat refuses them alone).
//! - `max_output_tokens` → `max_completion_tokens`; `text.format` →
//!   `response_format` (`json_schema`'s flat `name`/`schema`/`strict` nested
//!   under `json_schema`); `reasoning.effort` → `reasoning_effort` (a client
//!   asking for an effort means a reasoning model); `user` is kept. `store`,
//!   `metadata`, `include`, `reasoning.summary`, `text.verbosity` and every
//!   other member are not sent.
//! - A stream asks the upstream for usage (`stream_options.include_usage`), which
//!   `response.completed` carries.
//! - The completion becomes: a `reasoning` item holding `reasoning_content` as one
//!   `summary_text` (first, where OpenAI puts reasoning), then the message (its
//!   text, and a `refusal` part if the model refused), then one `function_call`
//!   per tool call. A completion with neither text nor calls still gets a
//!   message, empty, so that `output` is never empty. Item ids derive from the
//!   response id ([`ResponseMeta::item_id`]); `model` is the upstream's.
//! - `finish_reason` `length` → status `incomplete` with reason
//!   `max_output_tokens`, `content_filter` → `incomplete` with reason
//!   `content_filter`, and the last item is `incomplete`; anything else →
//!   `completed`.
//! - Usage is renamed (`prompt_tokens` → `input_tokens`, `completion_tokens` →
//!   `output_tokens`), with `cached_tokens` and `reasoning_tokens` as details.
//! - Errors keep Chat's body, which the Responses API shares; an unknown model is
//!   a 400 with `param: "model"`, as the Responses API answers it (Chat: 404).

mod stream;

pub use stream::StreamTranslator;

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::TranslateError;
use crate::openai::ErrorBody;
use crate::openai::types::{
    self as chat, ChatCompletion, ChatCompletionRequest, ChatMessage, CompletionUsage,
    FunctionDefinition, ImageUrl, NamedFunction, NamedToolChoice, StreamOptions, ToolCall,
};
use crate::responses::{
    Content, ContentPart, Echo, FunctionCall, IncompleteDetails, InputTokensDetails, Item,
    ItemStatus, Message, OutputTokensDetails, Reasoning, RefusalPart, Response, ResponseMeta,
    ResponsesRequest, Role, Status, SummaryPart, TextConfig, Tool, ToolChoice, Usage,
};

/// What the chat request leaves out of the client's: built-in tools, by `type`
/// in request order, for the gateway to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Omitted {
    pub tools: Vec<String>,
}

/// Responses request → chat request. `history` is the stored conversation
/// `previous_response_id` names (its input and output items, in order), empty
/// for a new one; `model` the upstream's name for the model.
pub fn request(
    req: &ResponsesRequest,
    history: Vec<Item>,
    model: &str,
) -> Result<(ChatCompletionRequest, Omitted), TranslateError> {
    let (tools, omitted) = split_tools(&req.tools);
    let tool_choice = tool_choice(req.tool_choice.as_ref(), &tools, &omitted)?;
    let mut conversation = Conversation::default();
    if let Some(instructions) = req.instructions.as_deref().filter(|i| !i.is_empty()) {
        conversation.messages.push(ChatMessage::System {
            content: chat::Content::Text(instructions.to_owned()),
            name: None,
        });
    }
    for (i, item) in history.into_iter().enumerate() {
        conversation.add(item, &format!("history[{i}]"))?;
    }
    for (i, item) in req.input.iter().cloned().enumerate() {
        conversation.add(item, &format!("input[{i}]"))?;
    }
    if !conversation.has_turns {
        return Err(TranslateError::Unsupported(
            "'input' must hold at least one message or function call output".into(),
        ));
    }
    let mut extra = Map::new();
    if let Some(format) = response_format(req.text.as_ref())? {
        extra.insert("response_format".into(), format);
    }
    if let Some(effort) = req.reasoning.as_ref().and_then(|r| r.effort.clone()) {
        extra.insert("reasoning_effort".into(), Value::String(effort));
    }
    let has_tools = !tools.is_empty();
    let chat_request = ChatCompletionRequest {
        model: model.to_owned(),
        messages: conversation.messages,
        max_completion_tokens: req.max_output_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        user: req.user.clone(),
        tools: has_tools.then_some(tools),
        tool_choice,
        parallel_tool_calls: req.parallel_tool_calls.filter(|_| has_tools),
        stream: req.stream.then_some(true),
        stream_options: req.stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        extra,
        ..ChatCompletionRequest::default()
    };
    Ok((chat_request, Omitted { tools: omitted }))
}

/// Function tools as Chat's, and the `type` of every other tool.
fn split_tools(tools: &[Tool]) -> (Vec<chat::Tool>, Vec<String>) {
    let mut functions = Vec::new();
    let mut omitted = Vec::new();
    for tool in tools {
        match tool {
            Tool::Function(f) => functions.push(chat::Tool {
                kind: "function".into(),
                function: FunctionDefinition {
                    name: f.name.clone(),
                    description: f.description.clone(),
                    parameters: f.parameters.clone(),
                    strict: f.strict,
                },
            }),
            Tool::Other(_) => omitted.push(tool.kind().to_owned()),
        }
    }
    (functions, omitted)
}

/// `tool_choice` as Chat's, or `None` when no tool is left to choose.
fn tool_choice(
    choice: Option<&ToolChoice>,
    tools: &[chat::Tool],
    omitted: &[String],
) -> Result<Option<chat::ToolChoice>, TranslateError> {
    match choice {
        None => Ok(None),
        Some(ToolChoice::Mode(mode)) if mode == "required" && tools.is_empty() => {
            Err(TranslateError::Unsupported(format!(
                "tool_choice 'required' needs a function tool, and this request has none this model's provider can run (built-in tools left out: {})",
                if omitted.is_empty() {
                    "none".to_owned()
                } else {
                    omitted.join(", ")
                }
            )))
        }
        Some(ToolChoice::Mode(_)) if tools.is_empty() => Ok(None),
        Some(ToolChoice::Mode(mode)) => Ok(Some(chat::ToolChoice::Mode(mode.clone()))),
        Some(ToolChoice::Function { name }) => Ok(Some(chat::ToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: NamedFunction { name: name.clone() },
        }))),
        Some(ToolChoice::Other(map)) => {
            let kind = map.get("type").and_then(Value::as_str).unwrap_or("");
            Err(TranslateError::Unsupported(format!(
                "tool_choice of type '{kind}' is not supported by this model's provider: it can run function tools only"
            )))
        }
    }
}

/// `text.format` as Chat's `response_format`; plain text needs none.
fn response_format(text: Option<&TextConfig>) -> Result<Option<Value>, TranslateError> {
    let Some(format) = text.and_then(|t| t.format.as_ref()) else {
        return Ok(None);
    };
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(json!({"type": "json_object"}))),
        "json_schema" => {
            let Some(name) = &format.name else {
                return Err(TranslateError::Unsupported(
                    "text.format.name is required for a json_schema format".into(),
                ));
            };
            let mut schema = Map::new();
            schema.insert("name".into(), Value::String(name.clone()));
            if let Some(description) = format.extra.get("description").filter(|d| d.is_string()) {
                schema.insert("description".into(), description.clone());
            }
            if let Some(s) = &format.schema {
                schema.insert("schema".into(), s.clone());
            }
            if let Some(strict) = format.strict {
                schema.insert("strict".into(), Value::Bool(strict));
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        other => Err(TranslateError::Unsupported(format!(
            "text.format type '{other}' is not supported by this model's provider"
        ))),
    }
}

/// The chat messages the items add up to, and the calls made so far.
#[derive(Default)]
struct Conversation {
    messages: Vec<ChatMessage>,
    call_ids: HashSet<String>,
    /// Whether anything but the system prompt was added.
    has_turns: bool,
}

impl Conversation {
    /// Adds item `at` (`input[2]`, `history[0]`).
    fn add(&mut self, item: Item, at: &str) -> Result<(), TranslateError> {
        match item {
            Item::Message(m) => {
                let message = message(m, at)?;
                self.has_turns |= !matches!(message, ChatMessage::System { .. });
                self.messages.push(message);
            }
            Item::FunctionCall(call) => {
                self.has_turns = true;
                self.call_ids.insert(call.call_id.clone());
                self.push_call(ToolCall {
                    id: call.call_id,
                    kind: "function".into(),
                    function: chat::FunctionCall {
                        name: call.name,
                        arguments: call.arguments,
                    },
                });
            }
            Item::FunctionCallOutput(out) => {
                if !self.call_ids.contains(&out.call_id) {
                    return Err(TranslateError::Unsupported(format!(
                        "{at}: No tool call found for function call output with call_id {}.",
                        out.call_id
                    )));
                }
                self.has_turns = true;
                self.messages.push(ChatMessage::Tool {
                    content: chat::Content::Text(text_only(out.output, &format!("{at}.output"))?),
                    tool_call_id: out.call_id,
                });
            }
            Item::Reasoning(_) => {}
            Item::Other(_) => {
                return Err(TranslateError::Unsupported(format!(
                    "{at}: items of type '{}' are not supported by this model's provider",
                    item.kind()
                )));
            }
        }
        Ok(())
    }

    /// A call joins the assistant message just before it (text or calls), or
    /// opens one.
    fn push_call(&mut self, call: ToolCall) {
        if let Some(ChatMessage::Assistant { tool_calls, .. }) = self.messages.last_mut() {
            tool_calls.get_or_insert_with(Vec::new).push(call);
            return;
        }
        self.messages.push(ChatMessage::Assistant {
            content: None,
            tool_calls: Some(vec![call]),
            refusal: None,
            reasoning_content: None,
            name: None,
        });
    }
}

/// A message item as a chat message of its role (`developer` as `system`).
fn message(m: Message, at: &str) -> Result<ChatMessage, TranslateError> {
    let at = format!("{at}.content");
    Ok(match m.role {
        Role::User => ChatMessage::User {
            content: user_content(m.content, &at)?,
            name: None,
        },
        Role::System | Role::Developer => ChatMessage::System {
            content: chat::Content::Text(text_only(m.content, &at)?),
            name: None,
        },
        Role::Assistant => {
            let (text, refusal) = assistant_text(m.content, &at)?;
            ChatMessage::Assistant {
                content: text.map(chat::Content::Text),
                tool_calls: None,
                refusal,
                reasoning_content: None,
                name: None,
            }
        }
    })
}

/// A user's content: text, images and files.
fn user_content(content: Content, at: &str) -> Result<chat::Content, TranslateError> {
    let parts = match content {
        Content::Text(text) => return Ok(chat::Content::Text(text)),
        // One text part is sent as text: servers that take no content arrays
        // (older vLLM and Ollama builds) still read it.
        Content::Parts(mut parts)
            if parts.len() == 1 && matches!(parts[0], ContentPart::InputText(_)) =>
        {
            let Some(ContentPart::InputText(p)) = parts.pop() else {
                return Ok(chat::Content::Text(String::new()));
            };
            return Ok(chat::Content::Text(p.text));
        }
        Content::Parts(parts) => parts,
    };
    parts
        .into_iter()
        .enumerate()
        .map(|(j, part)| match part {
            ContentPart::InputText(p) => Ok(chat::ContentPart::Text { text: p.text }),
            ContentPart::OutputText(p) => Ok(chat::ContentPart::Text { text: p.text }),
            ContentPart::Refusal(p) => Ok(chat::ContentPart::Text { text: p.refusal }),
            ContentPart::InputImage(image) => match image.image_url {
                Some(url) => Ok(chat::ContentPart::ImageUrl {
                    image_url: ImageUrl {
                        url,
                        detail: image.detail,
                    },
                }),
                None => Err(TranslateError::Unsupported(format!(
                    "{at}[{j}]: an input_image needs an image_url (an http URL or a data: URI); uploaded files are not supported by this model's provider"
                ))),
            },
            ContentPart::InputFile(file) if file.file_data.is_some() || file.file_id.is_some() => {
                let mut f = Map::new();
                for (key, value) in [
                    ("file_data", file.file_data),
                    ("file_id", file.file_id),
                    ("filename", file.filename),
                ] {
                    if let Some(value) = value {
                        f.insert(key.into(), Value::String(value));
                    }
                }
                Ok(chat::ContentPart::Other(Map::from_iter([
                    ("type".to_owned(), Value::String("file".into())),
                    ("file".to_owned(), Value::Object(f)),
                ])))
            }
            ContentPart::InputFile(_) => Err(TranslateError::Unsupported(format!(
                "{at}[{j}]: an input_file by file_url is not supported by this model's provider (send file_data or file_id)"
            ))),
            other => Err(TranslateError::Unsupported(format!(
                "{at}[{j}]: content part type '{}' is not supported by this model's provider",
                other.kind()
            ))),
        })
        .collect::<Result<_, _>>()
        .map(chat::Content::Parts)
}

/// The text of content that may only hold text (system prompts, function call
/// outputs), parts joined.
fn text_only(content: Content, at: &str) -> Result<String, TranslateError> {
    let parts = match content {
        Content::Text(text) => return Ok(text),
        Content::Parts(parts) => parts,
    };
    let mut text = String::new();
    for (j, part) in parts.into_iter().enumerate() {
        match part {
            ContentPart::InputText(p) => text.push_str(&p.text),
            ContentPart::OutputText(p) => text.push_str(&p.text),
            other => {
                return Err(TranslateError::Unsupported(format!(
                    "{at}[{j}]: a '{}' part is not supported here by this model's provider, only text",
                    other.kind()
                )));
            }
        }
    }
    Ok(text)
}

/// An assistant's text (`None` when it has none) and refusal.
fn assistant_text(
    content: Content,
    at: &str,
) -> Result<(Option<String>, Option<String>), TranslateError> {
    let parts = match content {
        Content::Text(text) => return Ok((Some(text), None)),
        Content::Parts(parts) => parts,
    };
    let (mut text, mut refusal) = (None::<String>, None::<String>);
    for (j, part) in parts.into_iter().enumerate() {
        match part {
            ContentPart::InputText(p) => text.get_or_insert_default().push_str(&p.text),
            ContentPart::OutputText(p) => text.get_or_insert_default().push_str(&p.text),
            ContentPart::Refusal(p) => refusal.get_or_insert_default().push_str(&p.refusal),
            other => {
                return Err(TranslateError::Unsupported(format!(
                    "{at}[{j}]: a '{}' part in an assistant message is not supported by this model's provider",
                    other.kind()
                )));
            }
        }
    }
    Ok((text, refusal))
}

/// Chat completion → Response. `meta` gives the id and time (the upstream's
/// completion id is not a Response id); `echo` is `ResponsesRequest::echo`.
pub fn response(
    completion: ChatCompletion,
    meta: &ResponseMeta,
    echo: Echo,
) -> Result<Response, TranslateError> {
    let choice =
        completion.choices.into_iter().next().ok_or_else(|| {
            TranslateError::Upstream("the upstream answered with no choices".into())
        })?;
    let (status, incomplete_details) = outcome(choice.finish_reason.as_deref());
    let message = choice.message;
    let mut output = Vec::new();
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        output.push(reasoning_item(meta.item_id("rs", output.len()), reasoning));
    }
    let text = message.content.filter(|t| !t.is_empty());
    let calls = message.tool_calls.unwrap_or_default();
    if text.is_some() || message.refusal.is_some() || calls.is_empty() {
        let mut parts = Vec::new();
        if text.is_some() || message.refusal.is_none() {
            parts.push(ContentPart::output_text(text.unwrap_or_default()));
        }
        if let Some(refusal) = message.refusal {
            parts.push(ContentPart::Refusal(RefusalPart {
                refusal,
                extra: Map::new(),
            }));
        }
        output.push(Item::Message(assistant_message(
            meta.item_id("msg", output.len()),
            parts,
            ItemStatus::Completed,
        )));
    }
    for call in calls {
        output.push(Item::FunctionCall(FunctionCall {
            id: Some(meta.item_id("fc", output.len())),
            call_id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
            status: Some(ItemStatus::Completed),
            extra: Map::new(),
        }));
    }
    if status != Status::Completed
        && let Some(last) = output.last_mut()
    {
        set_status(last, ItemStatus::Incomplete);
    }
    let mut response = Response::in_progress(meta, echo);
    response.status = status;
    response.incomplete_details = incomplete_details;
    if !completion.model.is_empty() {
        response.model = completion.model;
    }
    response.output = output;
    response.usage = completion.usage.as_ref().map(usage);
    Ok(response)
}

/// A chat error → the Responses status and body: the same, but for an unknown
/// model, which the Responses API reports as a 400 about `model`.
pub fn error(status: u16, body: &ErrorBody) -> (u16, ErrorBody) {
    let mut body = body.clone();
    if body.error.code.as_deref() == Some("model_not_found") {
        body.error.kind = "invalid_request_error".into();
        body.error.param = Some("model".into());
        return (400, body);
    }
    (status, body)
}

/// The status a `finish_reason` gives a response, and why it is incomplete.
fn outcome(finish_reason: Option<&str>) -> (Status, Option<IncompleteDetails>) {
    let incomplete = |reason: &str| {
        (
            Status::Incomplete,
            Some(IncompleteDetails {
                reason: reason.into(),
            }),
        )
    };
    match finish_reason {
        Some("length") => incomplete("max_output_tokens"),
        Some("content_filter") => incomplete("content_filter"),
        _ => (Status::Completed, None),
    }
}

/// Chat usage in the Responses API's names.
fn usage(u: &CompletionUsage) -> Usage {
    let reasoning = u
        .extra
        .get("completion_tokens_details")
        .and_then(|d| d.get("reasoning_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Usage {
        input_tokens: u.prompt_tokens,
        input_tokens_details: InputTokensDetails {
            cached_tokens: u
                .prompt_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens),
            extra: Map::new(),
        },
        output_tokens: u.completion_tokens,
        output_tokens_details: OutputTokensDetails {
            reasoning_tokens: reasoning,
            extra: Map::new(),
        },
        total_tokens: u.total_tokens,
        extra: Map::new(),
    }
}

fn reasoning_item(id: String, text: String) -> Item {
    Item::Reasoning(Reasoning {
        id: Some(id),
        summary: vec![SummaryPart::SummaryText { text }],
        encrypted_content: None,
        extra: Map::new(),
    })
}

fn assistant_message(id: String, parts: Vec<ContentPart>, status: ItemStatus) -> Message {
    Message {
        id: Some(id),
        status: Some(status),
        role: Role::Assistant,
        content: Content::Parts(parts),
        extra: Map::new(),
    }
}

/// Sets an output item's status (reasoning items have none).
fn set_status(item: &mut Item, status: ItemStatus) {
    match item {
        Item::Message(m) => m.status = Some(status),
        Item::FunctionCall(c) => c.status = Some(status),
        _ => {}
    }
}
