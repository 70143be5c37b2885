//! Anthropic stream events → OpenAI `chat.completion.chunk`s, for an OpenAI client
//! streaming from an Anthropic upstream: one event at a time, nothing held back, a
//! chunk ready as soon as its event is.
//!
//! Choices where the streams differ:
//! - The first chunk carries `role`, and goes out with the first content, once its
//!   kind is known: `content` is `null` before tool calls, `""` before the rest.
//! - Each `tool_use` block becomes the next OpenAI tool call index; its streamed
//!   input must add up to JSON by `content_block_stop`.
//! - Signature and citation deltas, and blocks other than text, thinking and
//!   `tool_use`, have no OpenAI form and are dropped.
//! - `message_stop` brings the usage chunk (no choices) when the client asked for
//!   it. An `error` event fails the stream with the OpenAI status and body that
//!   `chat_to_messages::error` gives it as a 529 (it comes on a 200 stream, with no
//!   status of its own; 529 is what an `overloaded_error` has).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::anthropic::{
    self, BlockDelta, ContentBlock, DeltaUsage, ErrorDetail, MessageDeltaBody, MessagesResponse,
    StreamEvent,
};
use crate::openai::ErrorBody as OpenAiError;
use crate::openai::types::{
    ChatCompletionChunk, ChunkChoice, CompletionUsage, Delta, FunctionCallDelta, ToolCallDelta,
};
use crate::translate::{TranslateError, finish_reason};

/// What a started content block is, by the OpenAI delta it feeds.
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
        super::usage(
            self.input_tokens,
            self.output_tokens,
            self.cache_read,
            self.cache_creation,
        )
    }

    /// One SSE event's `data` → the chunks it produces. An `error` event becomes
    /// `Err` with the OpenAI status and body to report.
    pub fn event(&mut self, data: &str) -> Result<Vec<ChatCompletionChunk>, StreamFailure> {
        let event = parse_event(data)?;
        self.check_order(&event)?;
        match event {
            StreamEvent::MessageStart { message } => Ok(self.message_start(message)),
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => Ok(self.content_block_start(index, content_block)),
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.content_block_delta(index, delta)
            }
            StreamEvent::ContentBlockStop { index } => self.content_block_stop(index),
            StreamEvent::MessageDelta { delta, usage } => Ok(self.message_delta(delta, usage)),
            StreamEvent::MessageStop => Ok(self.message_stop()),
            StreamEvent::Ping => Ok(Vec::new()),
            StreamEvent::Error { error } => Err(upstream_failure(error)),
        }
    }

    /// The upstream stream ended: fine after `message_stop`, truncated before.
    pub fn finish(&self) -> Result<(), TranslateError> {
        if self.stopped {
            Ok(())
        } else {
            Err(TranslateError::Truncated)
        }
    }

    /// Only `ping` and `error` may come before `message_start`.
    fn check_order(&self, event: &StreamEvent) -> Result<(), StreamFailure> {
        if self.started
            || matches!(
                event,
                StreamEvent::MessageStart { .. } | StreamEvent::Ping | StreamEvent::Error { .. }
            )
        {
            return Ok(());
        }
        Err(malformed(format!(
            "Anthropic stream event '{}' before message_start",
            event.name()
        )))
    }

    /// Takes the id, model and first counts; sends nothing (the role goes out
    /// with the first content, once its kind is known).
    fn message_start(&mut self, message: MessagesResponse) -> Vec<ChatCompletionChunk> {
        self.started = true;
        self.id = message.id;
        self.model = message.model;
        let u = message.usage;
        self.input_tokens = u.input_tokens;
        self.output_tokens = u.output_tokens;
        self.cache_read = u.cache_read_input_tokens.unwrap_or(0);
        self.cache_creation = u.cache_creation_input_tokens.unwrap_or(0);
        Vec::new()
    }

    fn content_block_start(
        &mut self,
        index: u32,
        content_block: ContentBlock,
    ) -> Vec<ChatCompletionChunk> {
        match content_block {
            ContentBlock::Text { text, .. } => self.text_start(index, text),
            ContentBlock::Thinking { thinking, .. } => self.thinking_start(index, thinking),
            ContentBlock::ToolUse { id, name, .. } => self.tool_use_start(index, id, name),
            _ => {
                self.blocks.insert(index, Block::Other);
                Vec::new()
            }
        }
    }

    /// A text block's opening text; as the first chunk it goes out even empty.
    fn text_start(&mut self, index: u32, text: String) -> Vec<ChatCompletionChunk> {
        self.blocks.insert(index, Block::Text);
        if self.role_sent {
            return self.text_chunk(text);
        }
        vec![self.chunk(
            Delta {
                content: Some(Some(text)),
                ..Delta::default()
            },
            None,
        )]
    }

    /// A thinking block's opening text; as the first chunk it goes out even empty.
    fn thinking_start(&mut self, index: u32, thinking: String) -> Vec<ChatCompletionChunk> {
        self.blocks.insert(index, Block::Thinking);
        if self.role_sent {
            return self.reasoning_chunk(thinking);
        }
        vec![self.chunk(
            Delta {
                reasoning_content: (!thinking.is_empty()).then_some(thinking),
                ..Delta::default()
            },
            None,
        )]
    }

    /// A `tool_use` block opens the next OpenAI tool call: its id, name and empty
    /// arguments.
    fn tool_use_start(&mut self, index: u32, id: String, name: String) -> Vec<ChatCompletionChunk> {
        let openai_index = self.next_tool;
        self.next_tool += 1;
        self.blocks.insert(index, Block::Tool { openai_index });
        self.partial_json.insert(index, String::new());
        let call = ToolCallDelta {
            index: openai_index,
            id: Some(id),
            kind: Some("function".into()),
            function: Some(FunctionCallDelta {
                name: Some(name),
                arguments: Some(String::new()),
            }),
        };
        vec![self.chunk(tool_call_delta(call), None)]
    }

    /// A delta in the kind of its block; a delta of another kind, or for a block
    /// never started, fails the stream.
    fn content_block_delta(
        &mut self,
        index: u32,
        delta: BlockDelta,
    ) -> Result<Vec<ChatCompletionChunk>, StreamFailure> {
        let block = *self.blocks.get(&index).ok_or_else(|| {
            malformed(format!(
                "content_block_delta for block {index}, which was never started"
            ))
        })?;
        match (block, delta) {
            (Block::Text, BlockDelta::TextDelta { text }) => Ok(self.text_chunk(text)),
            (Block::Thinking, BlockDelta::ThinkingDelta { thinking }) => {
                Ok(self.reasoning_chunk(thinking))
            }
            (Block::Tool { openai_index }, BlockDelta::InputJsonDelta { partial_json }) => {
                Ok(self.arguments_chunk(index, openai_index, partial_json))
            }
            // Signatures and citations have no OpenAI form.
            (_, BlockDelta::SignatureDelta { .. } | BlockDelta::CitationsDelta { .. })
            | (Block::Other, _) => Ok(Vec::new()),
            (block, delta) => Err(malformed(format!(
                "a {delta:?} delta does not belong in a {block:?} block"
            ))),
        }
    }

    /// The end of a block: a tool call's streamed input must be JSON.
    fn content_block_stop(
        &mut self,
        index: u32,
    ) -> Result<Vec<ChatCompletionChunk>, StreamFailure> {
        if let Some(json) = self.partial_json.remove(&index)
            && !json.trim().is_empty()
            && let Err(e) = serde_json::from_str::<Value>(&json)
        {
            return Err(malformed(format!(
                "the tool input streamed for block {index} is not valid JSON: {e}"
            )));
        }
        Ok(Vec::new())
    }

    /// The counts so far, and the finish reason once the stop reason is known.
    fn message_delta(
        &mut self,
        delta: MessageDeltaBody,
        usage: DeltaUsage,
    ) -> Vec<ChatCompletionChunk> {
        self.record_usage(&usage);
        let Some(stop_reason) = delta.stop_reason.as_deref() else {
            return Vec::new();
        };
        vec![self.chunk(Delta::default(), Some(finish_reason(Some(stop_reason))))]
    }

    /// `message_delta` counts are cumulative: each one present replaces the last.
    fn record_usage(&mut self, usage: &DeltaUsage) {
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
    }

    /// The end of the message: the usage chunk, if the client asked for one.
    fn message_stop(&mut self) -> Vec<ChatCompletionChunk> {
        self.stopped = true;
        if !self.include_usage {
            return Vec::new();
        }
        let mut c = self.chunk(Delta::default(), None);
        c.choices.clear();
        c.usage = Some(self.usage());
        vec![c]
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

    /// A piece of a tool call's arguments, also kept to check at the block's end
    /// that the whole is JSON.
    fn arguments_chunk(
        &mut self,
        index: u32,
        openai_index: u32,
        partial_json: String,
    ) -> Vec<ChatCompletionChunk> {
        if partial_json.is_empty() {
            return Vec::new();
        }
        if let Some(acc) = self.partial_json.get_mut(&index) {
            acc.push_str(&partial_json);
        }
        let call = ToolCallDelta {
            index: openai_index,
            id: None,
            kind: None,
            function: Some(FunctionCallDelta {
                name: None,
                arguments: Some(partial_json),
            }),
        };
        vec![self.chunk(tool_call_delta(call), None)]
    }
}

/// A delta carrying one tool call's part.
fn tool_call_delta(call: ToolCallDelta) -> Delta {
    Delta {
        tool_calls: Some(vec![call]),
        ..Delta::default()
    }
}

fn parse_event(data: &str) -> Result<StreamEvent, StreamFailure> {
    serde_json::from_str(data)
        .map_err(|e| malformed(format!("unreadable Anthropic stream event: {e}")))
}

/// The upstream broke the stream's format.
fn malformed(message: String) -> StreamFailure {
    StreamFailure::Translate(TranslateError::Upstream(message))
}

/// A mid-stream `error` event → the OpenAI status and body to report. It arrives
/// on a 200 stream; 529 is what an `overloaded_error` would have had as a status.
fn upstream_failure(error: ErrorDetail) -> StreamFailure {
    let body = anthropic::ErrorBody {
        kind: "error".into(),
        error,
        extra: Map::new(),
    };
    let (status, body) = super::error(529, &body);
    StreamFailure::Upstream { status, body }
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
