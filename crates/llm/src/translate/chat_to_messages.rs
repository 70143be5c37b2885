//! An OpenAI client, an Anthropic upstream: the chat request becomes a Messages
//! request; the message, its stream and its errors come back in OpenAI's shapes.
//! The stream is translated by [`StreamTranslator`] (`chat_to_messages/stream.rs`,
//! whose header lists the stream's own choices).
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

mod stream;

pub use stream::{StreamFailure, StreamTranslator};

use serde_json::{Map, Value, json};

use super::{TranslateError, finish_reason, parse_data_uri};
use crate::anthropic::{
    self, Content as AContent, ContentBlock, ImageSource, Message, MessagesRequest,
    MessagesResponse, Metadata, Role, System, ToolResultContent,
};
use crate::openai::ErrorBody as OpenAiError;
use crate::openai::types::{
    ChatCompletion, ChatCompletionRequest, ChatMessage, Choice, CompletionUsage, Content,
    ContentPart, PromptTokensDetails, ResponseMessage, Tool, ToolCall, ToolChoice,
};

/// Extra request members that mean the same in both APIs and are passed on.
const PASSED_EXTRAS: &[&str] = &["top_k", "thinking"];

/// OpenAI chat request → Anthropic Messages request.
pub fn request(
    req: ChatCompletionRequest,
    model: &str,
    default_max_tokens: u32,
) -> Result<MessagesRequest, TranslateError> {
    refuse_several_choices(req.n)?;
    let system = system_prompt(&req.messages);
    let messages = turns(req.messages)?;
    let tool_choice = tool_choice(req.tool_choice, req.parallel_tool_calls)?;
    Ok(MessagesRequest {
        model: model.to_owned(),
        messages,
        max_tokens: req
            .max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(default_max_tokens),
        system,
        metadata: req.user.map(|u| Metadata { user_id: Some(u) }),
        stop_sequences: req.stop.map(|s| s.into_vec()).filter(|s| !s.is_empty()),
        stream: req.stream.filter(|s| *s),
        temperature: req.temperature.map(|t| t.clamp(0.0, 1.0)),
        top_p: req.top_p,
        top_k: None,
        tools: req.tools.map(tools),
        tool_choice,
        extra: passed_extras(&req.extra),
    })
}

/// Anthropic returns one message: `n` above 1 cannot be served.
fn refuse_several_choices(n: Option<u32>) -> Result<(), TranslateError> {
    if n.is_some_and(|n| n > 1) {
        return Err(TranslateError::Unsupported(
            "'n' above 1 is not supported by this model's provider (Anthropic returns one message)"
                .into(),
        ));
    }
    Ok(())
}

/// The `system` and `developer` messages, wherever they stand, joined (blank line
/// between) into one prompt.
fn system_prompt(messages: &[ChatMessage]) -> Option<System> {
    let parts: Vec<String> = messages
        .iter()
        .filter_map(|message| match message {
            ChatMessage::System { content, .. } | ChatMessage::Developer { content, .. } => {
                Some(content.text())
            }
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| System::Text(parts.join("\n\n")))
}

/// The user and assistant turns, as Anthropic requires them: alternating, merged
/// where one role speaks twice, and opening with `user`.
fn turns(chat: Vec<ChatMessage>) -> Result<Vec<Message>, TranslateError> {
    let mut messages: Vec<Message> = Vec::new();
    for (i, message) in chat.into_iter().enumerate() {
        if let Some((role, blocks)) = turn(message, i)?
            && !blocks.is_empty()
        {
            push_merged(&mut messages, role, blocks);
        }
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
    Ok(messages)
}

/// Chat message `i` as a role and its blocks: a `tool` message is a user's
/// `tool_result`. `None` for the messages that make the system prompt.
fn turn(
    message: ChatMessage,
    i: usize,
) -> Result<Option<(Role, Vec<ContentBlock>)>, TranslateError> {
    Ok(Some(match message {
        ChatMessage::System { .. } | ChatMessage::Developer { .. } => return Ok(None),
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
    }))
}

/// `tool_choice` and `parallel_tool_calls` → Anthropic's `tool_choice`, which
/// carries both.
fn tool_choice(
    choice: Option<ToolChoice>,
    parallel_tool_calls: Option<bool>,
) -> Result<Option<anthropic::ToolChoice>, TranslateError> {
    let disable_parallel = parallel_tool_calls.map(|p| !p).filter(|d| *d);
    Ok(match choice {
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
    })
}

/// OpenAI function tools → Anthropic tools; a function without parameters takes
/// an empty object.
fn tools(tools: Vec<Tool>) -> Vec<anthropic::Tool> {
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
}

/// The [`PASSED_EXTRAS`] the client sent.
fn passed_extras(extra: &Map<String, Value>) -> Map<String, Value> {
    PASSED_EXTRAS
        .iter()
        .filter_map(|key| Some(((*key).to_owned(), extra.get(*key)?.clone())))
        .collect()
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

/// OpenAI usage from Anthropic's counts. The upstream's numbers may add up past
/// `u64::MAX`: the sums saturate.
fn usage(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> CompletionUsage {
    let prompt = input
        .saturating_add(cache_read)
        .saturating_add(cache_creation);
    CompletionUsage {
        prompt_tokens: prompt,
        completion_tokens: output,
        total_tokens: prompt.saturating_add(output),
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: cache_read,
            extra: Map::new(),
        }),
        // OpenAI's usage has no cache writes: Anthropic's count rides along by
        // its own name (as LiteLLM does), so the log can price them.
        extra: if cache_creation > 0 {
            Map::from_iter([(
                "cache_creation_input_tokens".to_owned(),
                Value::from(cache_creation),
            )])
        } else {
            Map::new()
        },
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
