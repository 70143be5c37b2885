//! An Anthropic client, an OpenAI-compatible upstream: the Messages request
//! becomes a chat request; the completion, its stream and its errors come back in
//! Anthropic's shapes, with Anthropic's exact event sequence.
//!
//! Choices where the APIs differ:
//! - `system` becomes the first message; a `system` turn among the messages (Claude
//!   Code sends one) a system message at the same position, its text blocks
//!   joined; `tool_result` blocks become `tool`
//!   messages placed before the rest of their user turn, as OpenAI requires.
//! - `max_tokens` is sent as `max_tokens` (what every OpenAI-compatible server
//!   accepts); `stop_sequences` as `stop`; `metadata.user_id` as `user`.
//! - `top_k` and `thinking` have no OpenAI equivalent and are dropped; thinking and
//!   redacted-thinking blocks in past assistant turns are dropped too (OpenAI cannot
//!   take them back). Server tools, documents and images inside tool results are
//!   refused.
//! - A streamed request always asks the upstream for usage
//!   (`stream_options.include_usage`), since Anthropic reports it in
//!   `message_delta`.
//! - `reasoning_content` from the upstream (DeepSeek and others) becomes a thinking
//!   block with an empty signature.

use serde_json::{Map, Value, json};

use super::{TranslateError, stop_reason};
use crate::anthropic::{
    self, BlockDelta, ContentBlock, DeltaUsage, ImageSource, MessageDeltaBody, MessagesRequest,
    MessagesResponse, Role, StreamEvent, ToolResultContent, Usage,
};
use crate::openai::ErrorBody as OpenAiError;
use crate::openai::types::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, CompletionUsage,
    Content, ContentPart, FunctionDefinition, ImageUrl, NamedFunction, NamedToolChoice, Stop,
    StreamOptions, Tool, ToolChoice,
};

/// Anthropic Messages request → OpenAI chat request.
pub fn request(req: MessagesRequest, model: &str) -> Result<ChatCompletionRequest, TranslateError> {
    let mut messages = Vec::new();
    if let Some(system) = &req.system {
        messages.push(ChatMessage::System {
            content: Content::Text(system.text()),
            name: None,
        });
    }
    for (i, message) in req.messages.into_iter().enumerate() {
        let blocks = message.content.into_blocks();
        match message.role {
            Role::User => user_messages(blocks, i, &mut messages)?,
            Role::Assistant => messages.push(assistant_message(blocks, i)?),
            // At the same position: an OpenAI-compatible server reads it there.
            Role::System => messages.push(ChatMessage::System {
                content: Content::Text(
                    blocks
                        .iter()
                        .filter_map(ContentBlock::as_text)
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                name: None,
            }),
        }
    }
    let (tool_choice, parallel_tool_calls) = match req.tool_choice {
        None => (None, None),
        Some(choice) => {
            let (choice, disable) = match choice {
                anthropic::ToolChoice::Auto {
                    disable_parallel_tool_use,
                } => (ToolChoice::Mode("auto".into()), disable_parallel_tool_use),
                anthropic::ToolChoice::Any {
                    disable_parallel_tool_use,
                } => (
                    ToolChoice::Mode("required".into()),
                    disable_parallel_tool_use,
                ),
                anthropic::ToolChoice::Tool {
                    name,
                    disable_parallel_tool_use,
                } => (
                    ToolChoice::Named(NamedToolChoice {
                        kind: "function".into(),
                        function: NamedFunction { name },
                    }),
                    disable_parallel_tool_use,
                ),
                anthropic::ToolChoice::None => (ToolChoice::Mode("none".into()), None),
            };
            (Some(choice), disable.filter(|d| *d).map(|_| false))
        }
    };
    let tools = req
        .tools
        .map(|tools| {
            tools
                .into_iter()
                .map(|t| {
                    let Some(parameters) = t.input_schema else {
                        return Err(TranslateError::Unsupported(format!(
                            "tool '{}' is an Anthropic server tool, which this model's provider does not support",
                            t.name
                        )));
                    };
                    Ok(Tool {
                        kind: "function".into(),
                        function: FunctionDefinition {
                            name: t.name,
                            description: t.description,
                            parameters: Some(parameters),
                            strict: None,
                        },
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let stream = req.stream.unwrap_or(false);
    Ok(ChatCompletionRequest {
        model: model.to_owned(),
        messages,
        max_tokens: Some(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        stop: req.stop_sequences.filter(|s| !s.is_empty()).map(Stop::Many),
        user: req.metadata.and_then(|m| m.user_id),
        tools,
        tool_choice,
        parallel_tool_calls,
        stream: stream.then_some(true),
        stream_options: stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        ..ChatCompletionRequest::default()
    })
}

fn user_messages(
    blocks: Vec<ContentBlock>,
    i: usize,
    out: &mut Vec<ChatMessage>,
) -> Result<(), TranslateError> {
    let mut parts = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::Text { text, .. } => parts.push(ContentPart::Text { text }),
            ContentBlock::Image { source, .. } => parts.push(ContentPart::ImageUrl {
                image_url: ImageUrl {
                    url: match source {
                        ImageSource::Base64 { media_type, data } => {
                            format!("data:{media_type};base64,{data}")
                        }
                        ImageSource::Url { url } => url,
                    },
                    detail: None,
                },
            }),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            } => {
                let text = match content {
                    None => String::new(),
                    Some(ToolResultContent::Text(t)) => t,
                    Some(ToolResultContent::Blocks(blocks)) => blocks
                        .iter()
                        .map(|b| {
                            b.as_text().map(str::to_owned).ok_or_else(|| {
                                TranslateError::Unsupported(format!(
                                    "messages.{i}.content.{j}: a '{}' block inside a tool_result is not supported by this model's provider",
                                    b.kind()
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?
                        .join("\n"),
                };
                // OpenAI has no error flag on tool output: say it in the text.
                let text = if is_error == Some(true) {
                    format!("Error: {text}")
                } else {
                    text
                };
                out.push(ChatMessage::Tool {
                    content: Content::Text(text),
                    tool_call_id: tool_use_id,
                });
            }
            other => {
                return Err(TranslateError::Unsupported(format!(
                    "messages.{i}.content.{j}: '{}' blocks are not supported by this model's provider",
                    other.kind()
                )));
            }
        }
    }
    if !parts.is_empty() {
        let content = match parts.as_slice() {
            [ContentPart::Text { text }] => Content::Text(text.clone()),
            _ => Content::Parts(parts),
        };
        out.push(ChatMessage::User {
            content,
            name: None,
        });
    }
    Ok(())
}

fn assistant_message(blocks: Vec<ContentBlock>, i: usize) -> Result<ChatMessage, TranslateError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.into_iter().enumerate() {
        match block {
            ContentBlock::Text { text: t, .. } => text.push_str(&t),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(super::tool_call(id, name, &input)),
            ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => {}
            other => {
                return Err(TranslateError::Unsupported(format!(
                    "messages.{i}.content.{j}: '{}' blocks are not supported by this model's provider",
                    other.kind()
                )));
            }
        }
    }
    Ok(ChatMessage::Assistant {
        content: (!text.is_empty()).then_some(Content::Text(text)),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        refusal: None,
        reasoning_content: None,
        name: None,
    })
}

fn tool_input(arguments: &str) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(arguments).map_err(|e| {
        TranslateError::Upstream(format!(
            "the upstream's tool call arguments are not valid JSON: {e}"
        ))
    })
}

fn usage(u: Option<&CompletionUsage>) -> Usage {
    let Some(u) = u else {
        return Usage::default();
    };
    let cached = u
        .prompt_tokens_details
        .as_ref()
        .map_or(0, |d| d.cached_tokens);
    Usage {
        input_tokens: u.prompt_tokens.saturating_sub(cached),
        output_tokens: u.completion_tokens,
        cache_creation_input_tokens: Some(0),
        cache_read_input_tokens: Some(cached),
        extra: Map::new(),
    }
}

/// OpenAI chat completion → Anthropic message.
pub fn response(completion: ChatCompletion) -> Result<MessagesResponse, TranslateError> {
    let choice =
        completion.choices.into_iter().next().ok_or_else(|| {
            TranslateError::Upstream("the upstream answered with no choices".into())
        })?;
    let message = choice.message;
    let mut content = Vec::new();
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        content.push(ContentBlock::Thinking {
            thinking: reasoning,
            signature: String::new(),
        });
    }
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        content.push(ContentBlock::text(text));
    }
    for call in message.tool_calls.into_iter().flatten() {
        content.push(ContentBlock::ToolUse {
            input: tool_input(&call.function.arguments)?,
            id: call.id,
            name: call.function.name,
            caller: None,
            cache_control: None,
        });
    }
    Ok(MessagesResponse {
        id: completion.id,
        kind: "message".into(),
        role: Role::Assistant,
        model: completion.model,
        content,
        stop_reason: Some(stop_reason(choice.finish_reason.as_deref()).into()),
        stop_sequence: None,
        usage: usage(completion.usage.as_ref()),
        extra: Map::new(),
    })
}

/// An OpenAI error → Anthropic's status and body. 503 (an overloaded engine)
/// becomes Anthropic's 529 `overloaded_error`.
pub fn error(status: u16, body: &OpenAiError) -> (u16, anthropic::ErrorBody) {
    let status = if status == 503 { 529 } else { status };
    (
        status,
        anthropic::ErrorBody::new(
            anthropic::kind_for_status(status),
            body.error.message.clone(),
        ),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool { openai_index: u32 },
}

/// OpenAI chunks → Anthropic events: `message_start` with the first chunk, one
/// content block per kind of content in arrival order (text, thinking, each tool
/// call), and `message_delta` + `message_stop` at the end, when the usage that
/// OpenAI sends last is known.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    started: bool,
    open: Option<(u32, Open)>,
    next_block: u32,
    closed_tools: Vec<u32>,
    finish_reason: Option<String>,
    usage: Option<CompletionUsage>,
    finished: bool,
}

impl StreamTranslator {
    pub fn new() -> Self {
        Self::default()
    }

    fn start(&mut self, id: &str, model: &str) -> StreamEvent {
        self.started = true;
        StreamEvent::MessageStart {
            message: MessagesResponse {
                id: id.to_owned(),
                kind: "message".into(),
                role: Role::Assistant,
                model: model.to_owned(),
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: Usage::default(),
                extra: Map::new(),
            },
        }
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, kind)) = self.open.take() {
            if let Open::Tool { openai_index } = kind {
                self.closed_tools.push(openai_index);
            }
            out.push(StreamEvent::ContentBlockStop { index });
        }
    }

    /// Opens a block of `kind` unless it is the one open; returns its index.
    fn ensure(
        &mut self,
        kind: Open,
        start: impl FnOnce() -> ContentBlock,
        out: &mut Vec<StreamEvent>,
    ) -> u32 {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, kind));
        out.push(StreamEvent::ContentBlockStart {
            index,
            content_block: start(),
        });
        index
    }

    /// One chunk's JSON → the events it produces.
    pub fn chunk(&mut self, data: &str) -> Result<Vec<StreamEvent>, TranslateError> {
        let chunk: ChatCompletionChunk = serde_json::from_str(data).map_err(|e| {
            TranslateError::Upstream(format!("unreadable OpenAI stream chunk: {e}"))
        })?;
        let mut out = Vec::new();
        if !self.started {
            out.push(self.start(&chunk.id, &chunk.model));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(out);
        };
        let delta = choice.delta;
        if let Some(thinking) = delta.reasoning_content.filter(|t| !t.is_empty()) {
            let index = self.ensure(
                Open::Thinking,
                || ContentBlock::Thinking {
                    thinking: String::new(),
                    signature: String::new(),
                },
                &mut out,
            );
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::ThinkingDelta { thinking },
            });
        }
        if let Some(text) = delta.content.flatten().filter(|t| !t.is_empty()) {
            let index = self.ensure(Open::Text, || ContentBlock::text(""), &mut out);
            out.push(StreamEvent::ContentBlockDelta {
                index,
                delta: BlockDelta::TextDelta { text },
            });
        }
        for call in delta.tool_calls.into_iter().flatten() {
            if self.closed_tools.contains(&call.index) {
                return Err(TranslateError::Upstream(format!(
                    "tool call {} continued after another content block began",
                    call.index
                )));
            }
            let function = call.function.unwrap_or_default();
            let kind = Open::Tool {
                openai_index: call.index,
            };
            let id = call
                .id
                .unwrap_or_else(|| format!("toolu_aiprox_{}", call.index));
            let name = function.name.unwrap_or_default();
            let index = self.ensure(
                kind,
                || ContentBlock::ToolUse {
                    id,
                    name,
                    input: json!({}),
                    caller: None,
                    cache_control: None,
                },
                &mut out,
            );
            if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
                out.push(StreamEvent::ContentBlockDelta {
                    index,
                    delta: BlockDelta::InputJsonDelta {
                        partial_json: arguments,
                    },
                });
            }
        }
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        Ok(out)
    }

    /// The upstream stream ended (`[DONE]`): close the open block, report the
    /// stop reason and usage, stop.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let mut out = Vec::new();
        if !self.started {
            out.push(self.start("msg_aiprox_empty", ""));
        }
        self.close(&mut out);
        let u = usage(self.usage.as_ref());
        out.push(StreamEvent::MessageDelta {
            delta: MessageDeltaBody {
                stop_reason: Some(stop_reason(self.finish_reason.as_deref()).into()),
                stop_sequence: None,
            },
            usage: DeltaUsage {
                input_tokens: Some(u.input_tokens),
                output_tokens: u.output_tokens,
                cache_creation_input_tokens: u.cache_creation_input_tokens,
                cache_read_input_tokens: u.cache_read_input_tokens,
            },
        });
        out.push(StreamEvent::MessageStop);
        out
    }

    /// The usage the upstream reported, if it has yet.
    pub fn usage(&self) -> Option<&CompletionUsage> {
        self.usage.as_ref()
    }
}
