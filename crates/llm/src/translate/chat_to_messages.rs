//! An OpenAI client, an Anthropic upstream: the chat request becomes a Messages
//! request; the message, its stream and its errors come back in OpenAI's shapes.
//!
//! Choices where the APIs differ:
//! - `system` and `developer` messages, wherever they stand, are joined (blank line
//!   between) into Anthropic's one `system` prompt.
//! - Consecutive messages of one role are merged, `tool` messages become
//!   `tool_result` blocks at the start of a user turn, and a conversation that
//!   opens with the assistant gets a `(continue)` user turn first, since Anthropic
//!   requires alternating roles that start with `user`.
//! - `max_completion_tokens`, else `max_tokens`, else the provider's default: the
//!   field is required by Anthropic.
//! - `temperature` is clamped to Anthropic's 0..=1.
//! - `n` above 1 is refused (Anthropic returns one message); sampling options with
//!   no Anthropic equivalent (`seed`, penalties, `logprobs`, `response_format`…)
//!   are dropped; `top_k` and `thinking` given as extra fields are passed on.
//! - Anthropic's `thinking` comes back as `reasoning_content`; cache reads and
//!   writes count into `prompt_tokens` (as OpenAI counts cached tokens) and cache
//!   reads are `prompt_tokens_details.cached_tokens`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{TranslateError, finish_reason, parse_data_uri};
use crate::anthropic::{
    self, BlockDelta, Content as AContent, ContentBlock, ImageSource, Message, MessagesRequest,
    MessagesResponse, Metadata, Role, StreamEvent, System, ToolResultContent,
};
use crate::openai::ErrorBody as OpenAiError;
use crate::openai::types::{
    ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatMessage, Choice, ChunkChoice,
    CompletionUsage, Content, ContentPart, Delta, FunctionCallDelta, PromptTokensDetails,
    ResponseMessage, ToolCall, ToolCallDelta, ToolChoice,
};

/// Extra request members that mean the same in both APIs and are passed on.
const PASSED_EXTRAS: &[&str] = &["top_k", "thinking"];

/// OpenAI chat request → Anthropic Messages request.
pub fn request(
    req: ChatCompletionRequest,
    model: &str,
    default_max_tokens: u32,
) -> Result<MessagesRequest, TranslateError> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::Unsupported(
            "'n' above 1 is not supported by this model's provider (Anthropic returns one message)"
                .into(),
        ));
    }
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for (i, message) in req.messages.into_iter().enumerate() {
        let (role, blocks) = match message {
            ChatMessage::System { content, .. } | ChatMessage::Developer { content, .. } => {
                system.push(content.text());
                continue;
            }
            ChatMessage::User { content, .. } => (Role::User, user_blocks(content, i)?),
            ChatMessage::Assistant {
                content,
                tool_calls,
                ..
            } => (Role::Assistant, assistant_blocks(content, tool_calls, i)?),
            ChatMessage::Tool {
                content,
                tool_call_id,
            } => (
                Role::User,
                vec![ContentBlock::ToolResult {
                    tool_use_id: tool_call_id,
                    content: Some(ToolResultContent::Text(content.text())),
                    is_error: None,
                    cache_control: None,
                }],
            ),
        };
        if blocks.is_empty() {
            continue;
        }
        push_merged(&mut messages, role, blocks);
    }
    if messages.first().is_some_and(|m| m.role == Role::Assistant) {
        messages.insert(
            0,
            Message {
                role: Role::User,
                content: AContent::Blocks(vec![ContentBlock::text("(continue)")]),
            },
        );
    }
    if messages.is_empty() {
        return Err(TranslateError::Unsupported(
            "'messages' must contain at least one user or assistant message".into(),
        ));
    }

    let disable_parallel = req.parallel_tool_calls.map(|p| !p).filter(|d| *d);
    let tool_choice = match req.tool_choice {
        None => disable_parallel.map(|d| anthropic::ToolChoice::Auto {
            disable_parallel_tool_use: Some(d),
        }),
        Some(ToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => anthropic::ToolChoice::Auto {
                disable_parallel_tool_use: disable_parallel,
            },
            "required" => anthropic::ToolChoice::Any {
                disable_parallel_tool_use: disable_parallel,
            },
            "none" => anthropic::ToolChoice::None,
            other => {
                return Err(TranslateError::Unsupported(format!(
                    "unknown tool_choice '{other}'"
                )));
            }
        }),
        Some(ToolChoice::Named(named)) => Some(anthropic::ToolChoice::Tool {
            name: named.function.name,
            disable_parallel_tool_use: disable_parallel,
        }),
    };
    let tools = req.tools.map(|tools| {
        tools
            .into_iter()
            .map(|t| anthropic::Tool {
                name: t.function.name,
                description: t.function.description,
                input_schema: Some(
                    t.function
                        .parameters
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                ),
                extra: Map::new(),
            })
            .collect()
    });
    let mut extra = Map::new();
    for key in PASSED_EXTRAS {
        if let Some(v) = req.extra.get(*key) {
            extra.insert((*key).to_owned(), v.clone());
        }
    }
    Ok(MessagesRequest {
        model: model.to_owned(),
        messages,
        max_tokens: req
            .max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(default_max_tokens),
        system: (!system.is_empty()).then(|| System::Text(system.join("\n\n"))),
        metadata: req.user.map(|u| Metadata { user_id: Some(u) }),
        stop_sequences: req.stop.map(|s| s.into_vec()).filter(|s| !s.is_empty()),
        stream: req.stream.filter(|s| *s),
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        tools,
        tool_choice,
        extra,
    })
}

fn push_merged(messages: &mut Vec<Message>, role: Role, blocks: Vec<ContentBlock>) {
    if let Some(last) = messages.last_mut()
        && last.role == role
        && let AContent::Blocks(existing) = &mut last.content
    {
        existing.extend(blocks);
        return;
    }
    messages.push(Message {
        role,
        content: AContent::Blocks(blocks),
    });
}

fn user_blocks(content: Content, i: usize) -> Result<Vec<ContentBlock>, TranslateError> {
    match content {
        Content::Text(text) => Ok(vec![ContentBlock::text(text)]),
        Content::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| match part {
                ContentPart::Text { text } => Ok(ContentBlock::text(text)),
                ContentPart::ImageUrl { image_url } => Ok(ContentBlock::Image {
                    source: image_source(&image_url.url).ok_or_else(|| {
                        TranslateError::Unsupported(format!(
                            "messages[{i}].content[{j}].image_url.url must be a base64 data: URL or an http(s) URL"
                        ))
                    })?,
                    cache_control: None,
                }),
                ContentPart::Other(v) => Err(TranslateError::Unsupported(format!(
                    "messages[{i}].content[{j}]: content part type '{}' is not supported by this model's provider",
                    v.get("type").and_then(Value::as_str).unwrap_or("unknown")
                ))),
            })
            .collect(),
    }
}

fn image_source(url: &str) -> Option<ImageSource> {
    if let Some((media_type, data)) = parse_data_uri(url) {
        return Some(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    (url.starts_with("https://") || url.starts_with("http://")).then(|| ImageSource::Url {
        url: url.to_owned(),
    })
}

fn assistant_blocks(
    content: Option<Content>,
    tool_calls: Option<Vec<ToolCall>>,
    i: usize,
) -> Result<Vec<ContentBlock>, TranslateError> {
    let mut blocks = Vec::new();
    if let Some(content) = content {
        let text = content.text();
        if !text.is_empty() {
            blocks.push(ContentBlock::text(text));
        }
    }
    for (j, call) in tool_calls.into_iter().flatten().enumerate() {
        let arguments = call.function.arguments.trim();
        let input = if arguments.is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                TranslateError::Unsupported(format!(
                    "messages[{i}].tool_calls[{j}].function.arguments is not valid JSON: {e}"
                ))
            })?
        };
        blocks.push(ContentBlock::ToolUse {
            id: call.id,
            name: call.function.name,
            input,
            caller: None,
            cache_control: None,
        });
    }
    Ok(blocks)
}

/// OpenAI usage from Anthropic's counts.
fn usage(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> CompletionUsage {
    let prompt = input + cache_read + cache_creation;
    CompletionUsage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt + output,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: cache_read,
            extra: Map::new(),
        }),
        extra: Map::new(),
    }
}

/// Anthropic message → OpenAI chat completion. `created` is the Unix time the
/// gateway received the answer (Anthropic sends none).
pub fn response(message: MessagesResponse, created: u64) -> Result<ChatCompletion, TranslateError> {
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in message.content {
        match block {
            ContentBlock::Text { text: t, .. } => {
                has_text = true;
                text.push_str(&t);
            }
            ContentBlock::Thinking { thinking, .. } => reasoning.push_str(&thinking),
            ContentBlock::ToolUse {
                id, name, input, ..
            } => tool_calls.push(super::tool_call(id, name, &input)),
            // Redacted thinking and server-tool blocks have no OpenAI form.
            _ => {}
        }
    }
    let u = &message.usage;
    Ok(ChatCompletion {
        id: message.id,
        object: "chat.completion".into(),
        created,
        model: message.model,
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".into(),
                content: has_text.then_some(text),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                refusal: None,
            },
            logprobs: None,
            finish_reason: Some(finish_reason(message.stop_reason.as_deref()).into()),
        }],
        usage: Some(usage(
            u.input_tokens,
            u.output_tokens,
            u.cache_read_input_tokens.unwrap_or(0),
            u.cache_creation_input_tokens.unwrap_or(0),
        )),
        extra: Map::new(),
    })
}

/// An Anthropic error → the OpenAI status and body. Overload (529, which HTTP
/// clients do not know) becomes 503, OpenAI's status for an overloaded engine.
pub fn error(status: u16, body: &anthropic::ErrorBody) -> (u16, OpenAiError) {
    let message = body.error.message.clone();
    let (status, kind, code) = match body.error.kind.as_str() {
        "invalid_request_error" => (status, "invalid_request_error", None),
        "authentication_error" => (401, "invalid_request_error", Some("invalid_api_key")),
        "permission_error" => (403, "permission_error", Some("permission_denied")),
        "not_found_error" if message.starts_with("model:") => {
            (404, "invalid_request_error", Some("model_not_found"))
        }
        "not_found_error" => (404, "invalid_request_error", Some("not_found")),
        "request_too_large" => (413, "invalid_request_error", Some("request_too_large")),
        "rate_limit_error" => (429, "requests", Some("rate_limit_exceeded")),
        "billing_error" => (status, "insufficient_quota", Some("insufficient_quota")),
        "overloaded_error" => (503, "server_error", Some("overloaded")),
        "timeout_error" => (504, "timeout_error", Some("timeout")),
        _ => (
            if status < 500 { 500 } else { status },
            "server_error",
            None,
        ),
    };
    (status, OpenAiError::new(message, kind, None, code))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool { openai_index: u32 },
    Other,
}

/// Anthropic stream events → OpenAI chunks, one event at a time, nothing held
/// back: a chunk is ready as soon as its event is.
#[derive(Debug)]
pub struct StreamTranslator {
    include_usage: bool,
    created: u64,
    id: String,
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    cache_read: u64,
    cache_creation: u64,
    blocks: HashMap<u32, Block>,
    partial_json: HashMap<u32, String>,
    next_tool: u32,
    started: bool,
    role_sent: bool,
    stopped: bool,
}

impl StreamTranslator {
    /// `include_usage`: the client's `stream_options.include_usage`; `created`:
    /// the Unix time the stream started.
    pub fn new(include_usage: bool, created: u64) -> Self {
        Self {
            include_usage,
            created,
            id: String::new(),
            model: String::new(),
            input_tokens: 0,
            output_tokens: 0,
            cache_read: 0,
            cache_creation: 0,
            blocks: HashMap::new(),
            partial_json: HashMap::new(),
            next_tool: 0,
            started: false,
            role_sent: false,
            stopped: false,
        }
    }

    /// Whether `message_stop` arrived: nothing more is expected.
    pub fn is_done(&self) -> bool {
        self.stopped
    }

    /// The usage so far, in OpenAI's shape (for logging).
    pub fn usage(&self) -> CompletionUsage {
        usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read,
            self.cache_creation,
        )
    }

    /// A chunk; the first one also carries `role`, and `content` as OpenAI sends
    /// it first: `""` before text, `null` before tool calls.
    fn chunk(&mut self, mut delta: Delta, finish: Option<&str>) -> ChatCompletionChunk {
        if !self.role_sent {
            self.role_sent = true;
            delta.role = Some("assistant".into());
            if delta.content.is_none() {
                delta.content = Some(if delta.tool_calls.is_some() {
                    None
                } else {
                    Some(String::new())
                });
            }
        }
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason: finish.map(str::to_owned),
            }],
            usage: None,
            extra: Map::new(),
        }
    }

    /// One SSE event's `data` → the chunks it produces. An `error` event becomes
    /// `Err` with the OpenAI status and body to report.
    pub fn event(&mut self, data: &str) -> Result<Vec<ChatCompletionChunk>, StreamFailure> {
        let event: StreamEvent = serde_json::from_str(data).map_err(|e| {
            StreamFailure::Translate(TranslateError::Upstream(format!(
                "unreadable Anthropic stream event: {e}"
            )))
        })?;
        if !self.started
            && !matches!(
                event,
                StreamEvent::MessageStart { .. } | StreamEvent::Ping | StreamEvent::Error { .. }
            )
        {
            return Err(StreamFailure::Translate(TranslateError::Upstream(format!(
                "Anthropic stream event '{}' before message_start",
                event.name()
            ))));
        }
        let out = match event {
            StreamEvent::MessageStart { message } => {
                self.started = true;
                self.id = message.id;
                self.model = message.model;
                let u = message.usage;
                self.input_tokens = u.input_tokens;
                self.output_tokens = u.output_tokens;
                self.cache_read = u.cache_read_input_tokens.unwrap_or(0);
                self.cache_creation = u.cache_creation_input_tokens.unwrap_or(0);
                // The role goes out with the first content, once its kind is known.
                Vec::new()
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => match content_block {
                ContentBlock::Text { text, .. } => {
                    self.blocks.insert(index, Block::Text);
                    if self.role_sent {
                        self.text_chunk(text)
                    } else {
                        vec![self.chunk(
                            Delta {
                                content: Some(Some(text)),
                                ..Delta::default()
                            },
                            None,
                        )]
                    }
                }
                ContentBlock::Thinking { thinking, .. } => {
                    self.blocks.insert(index, Block::Thinking);
                    if self.role_sent {
                        self.reasoning_chunk(thinking)
                    } else {
                        vec![self.chunk(
                            Delta {
                                reasoning_content: (!thinking.is_empty()).then_some(thinking),
                                ..Delta::default()
                            },
                            None,
                        )]
                    }
                }
                ContentBlock::ToolUse { id, name, .. } => {
                    let openai_index = self.next_tool;
                    self.next_tool += 1;
                    self.blocks.insert(index, Block::Tool { openai_index });
                    self.partial_json.insert(index, String::new());
                    vec![self.chunk(
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: openai_index,
                                id: Some(id),
                                kind: Some("function".into()),
                                function: Some(FunctionCallDelta {
                                    name: Some(name),
                                    arguments: Some(String::new()),
                                }),
                            }]),
                            ..Delta::default()
                        },
                        None,
                    )]
                }
                _ => {
                    self.blocks.insert(index, Block::Other);
                    Vec::new()
                }
            },
            StreamEvent::ContentBlockDelta { index, delta } => {
                let block = *self.blocks.get(&index).ok_or_else(|| {
                    StreamFailure::Translate(TranslateError::Upstream(format!(
                        "content_block_delta for block {index}, which was never started"
                    )))
                })?;
                match (block, delta) {
                    (Block::Text, BlockDelta::TextDelta { text }) => self.text_chunk(text),
                    (Block::Thinking, BlockDelta::ThinkingDelta { thinking }) => {
                        self.reasoning_chunk(thinking)
                    }
                    (Block::Tool { openai_index }, BlockDelta::InputJsonDelta { partial_json }) => {
                        if partial_json.is_empty() {
                            Vec::new()
                        } else {
                            if let Some(acc) = self.partial_json.get_mut(&index) {
                                acc.push_str(&partial_json);
                            }
                            vec![self.chunk(
                                Delta {
                                    tool_calls: Some(vec![ToolCallDelta {
                                        index: openai_index,
                                        id: None,
                                        kind: None,
                                        function: Some(FunctionCallDelta {
                                            name: None,
                                            arguments: Some(partial_json),
                                        }),
                                    }]),
                                    ..Delta::default()
                                },
                                None,
                            )]
                        }
                    }
                    // Signatures and citations have no OpenAI form.
                    (_, BlockDelta::SignatureDelta { .. } | BlockDelta::CitationsDelta { .. })
                    | (Block::Other, _) => Vec::new(),
                    (block, delta) => {
                        return Err(StreamFailure::Translate(TranslateError::Upstream(format!(
                            "a {delta:?} delta does not belong in a {block:?} block"
                        ))));
                    }
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if let Some(json) = self.partial_json.remove(&index)
                    && !json.trim().is_empty()
                    && let Err(e) = serde_json::from_str::<Value>(&json)
                {
                    return Err(StreamFailure::Translate(TranslateError::Upstream(format!(
                        "the tool input streamed for block {index} is not valid JSON: {e}"
                    ))));
                }
                Vec::new()
            }
            StreamEvent::MessageDelta { delta, usage } => {
                self.output_tokens = usage.output_tokens;
                if let Some(v) = usage.input_tokens {
                    self.input_tokens = v;
                }
                if let Some(v) = usage.cache_read_input_tokens {
                    self.cache_read = v;
                }
                if let Some(v) = usage.cache_creation_input_tokens {
                    self.cache_creation = v;
                }
                if delta.stop_reason.is_some() {
                    vec![self.chunk(
                        Delta::default(),
                        Some(finish_reason(delta.stop_reason.as_deref())),
                    )]
                } else {
                    Vec::new()
                }
            }
            StreamEvent::MessageStop => {
                self.stopped = true;
                if self.include_usage {
                    let mut c = self.chunk(Delta::default(), None);
                    c.choices.clear();
                    c.usage = Some(self.usage());
                    vec![c]
                } else {
                    Vec::new()
                }
            }
            StreamEvent::Ping => Vec::new(),
            StreamEvent::Error { error } => {
                // Mid-stream errors arrive on a 200 stream; 529 is what an
                // overloaded_error would have had as a status.
                let body = anthropic::ErrorBody {
                    kind: "error".into(),
                    error,
                    extra: Map::new(),
                };
                let (status, openai) = self::error(529, &body);
                return Err(StreamFailure::Upstream {
                    status,
                    body: openai,
                });
            }
        };
        Ok(out)
    }

    /// The upstream stream ended: fine after `message_stop`, truncated before.
    pub fn finish(&self) -> Result<(), TranslateError> {
        if self.stopped {
            Ok(())
        } else {
            Err(TranslateError::Truncated)
        }
    }

    fn text_chunk(&mut self, text: String) -> Vec<ChatCompletionChunk> {
        if text.is_empty() {
            return Vec::new();
        }
        vec![self.chunk(
            Delta {
                content: Some(Some(text)),
                ..Delta::default()
            },
            None,
        )]
    }

    fn reasoning_chunk(&mut self, thinking: String) -> Vec<ChatCompletionChunk> {
        if thinking.is_empty() {
            return Vec::new();
        }
        vec![self.chunk(
            Delta {
                reasoning_content: Some(thinking),
                ..Delta::default()
            },
            None,
        )]
    }
}

/// How a translated stream can fail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamFailure {
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// The upstream reported an error mid-stream (`event: error`).
    #[error("{}", .body.error.message)]
    Upstream { status: u16, body: OpenAiError },
}
