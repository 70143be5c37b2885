//! Streamed responses assembled into the whole response they stand for, so that the
//! request log holds one response body per request however it was served.
//!
//! - [`openai`]: OpenAI chunks (`chat.completion.chunk` payloads) → the
//!   `chat.completion` body they add up to, and its usage. This runs for every
//!   streamed request, on streams of mostly tiny chunks, so each chunk is read lean:
//!   its members are walked (by the walker of [`crate::usage`]) and only `choices`
//!   and a non-null `usage` are parsed, into types whose strings borrow from the
//!   chunk; the body is written straight from those pieces, no `Value` built.
//! - [`anthropic`]: Anthropic Messages stream events → the `message` they add up
//!   to, read through the typed [`StreamEvent`]s.
//! - [`completions`]: legacy text completion chunks → the `text_completion`
//!   they add up to.
//! - [`responses`]: OpenAI Responses stream events → the Response they end with.
//!   The terminal event carries the whole Response, so only that event is read
//!   (from the end, where it is); a stream cut before it is pieced together from
//!   the events it has.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

mod completions;

pub use completions::completions;

use crate::anthropic::{BlockDelta, ContentBlock, StreamEvent};
use crate::usage::Tokens;
use crate::walk::Members;

/// The parts of a chunk assembly reads (no catch-all map: parsing stays cheap;
/// strings borrowed from the chunk unless they hold escapes).
#[derive(serde::Deserialize)]
struct LeanChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<LeanChoice<'a>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

/// What only the first chunk is read for.
#[derive(serde::Deserialize)]
struct ChunkHead<'a> {
    #[serde(default, borrow)]
    id: Cow<'a, str>,
    #[serde(default, borrow)]
    model: Cow<'a, str>,
    #[serde(default)]
    created: u64,
}

/// A string borrowed from the chunk unless it holds escapes. (A bare
/// `Option<Cow<str>>` field is always decoded into an owned copy: serde borrows a
/// `Cow` only when it is the field's own type, as here.)
#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct LeanChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    delta: LeanDelta<'a>,
    #[serde(default, borrow)]
    finish_reason: Option<Text<'a>>,
}

/// A delta's text and tool call parts; `null` content reads as absent.
#[derive(Default, serde::Deserialize, Debug, PartialEq)]
struct LeanDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Text<'a>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Text<'a>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<LeanToolCall<'a>>>,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct LeanToolCall<'a> {
    #[serde(default)]
    index: u32,
    #[serde(default, borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    function: Option<LeanFunction<'a>>,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct LeanFunction<'a> {
    #[serde(default, borrow)]
    name: Option<Text<'a>>,
    #[serde(default, borrow)]
    arguments: Option<Text<'a>>,
}

/// The parts of an OpenAI chunk assembly reads. Only `choices` and a non-null
/// `usage` are parsed; the chunk's other members (id, model, fingerprints…, the
/// same in every chunk) are passed over by the member walker without being read. A
/// chunk the walk cannot read is parsed whole, and skipped if that fails too.
fn read_chunk(chunk: &[u8]) -> Option<LeanChunk<'_>> {
    let whole = || serde_json::from_slice::<LeanChunk<'_>>(chunk).ok();
    let Some(mut members) = Members::of(chunk) else {
        return whole();
    };
    let mut out = LeanChunk {
        choices: Vec::new(),
        usage: None,
    };
    loop {
        match members.next() {
            Some(Some((b"choices", value))) => out.choices = serde_json::from_slice(value).ok()?,
            Some(Some((b"usage", value))) if value != b"null" => {
                out.usage = serde_json::from_slice(value).ok()?;
            }
            Some(Some(_)) => {}
            Some(None) => return Some(out),
            None => return whole(),
        }
    }
}

/// OpenAI chunks (the `data:` payloads) → the `chat.completion` body they add up
/// to, and its usage. Written straight from the pieces (no `Value` built): this
/// runs for every streamed request.
pub fn openai(chunks: &[Bytes]) -> (Vec<u8>, Option<Tokens>) {
    let mut assembly = Assembly::default();
    for chunk in chunks {
        assembly.add_chunk(chunk);
    }
    let tokens = assembly.usage.and_then(crate::usage::of_raw);
    let body = serde_json::to_vec(&assembly.completion()).unwrap_or_default();
    (body, tokens)
}

/// What the OpenAI chunks read so far add up to, borrowing from them.
#[derive(Default)]
struct Assembly<'a> {
    /// From the first chunk with an id.
    head: Option<ChunkHead<'a>>,
    content: String,
    /// Whether any chunk had content, even empty.
    has_content: bool,
    reasoning: String,
    finish: Option<Cow<'a, str>>,
    /// The last usage object.
    usage: Option<&'a RawValue>,
    /// By the tool call's index.
    calls: BTreeMap<u32, AssembledCall>,
}

/// One tool call, its name and arguments joined from their pieces.
#[derive(Default)]
struct AssembledCall {
    id: String,
    name: String,
    arguments: String,
}

impl<'a> Assembly<'a> {
    /// Reads one chunk in; a chunk that cannot be read is skipped.
    fn add_chunk(&mut self, chunk: &'a [u8]) {
        let Some(c) = read_chunk(chunk) else {
            return;
        };
        if self.head.as_ref().is_none_or(|h| h.id.is_empty()) {
            self.head = serde_json::from_slice::<ChunkHead<'_>>(chunk).ok();
        }
        if let Some(u) = c.usage.filter(|u| u.get().starts_with('{')) {
            self.usage = Some(u);
        }
        for choice in c.choices.into_iter().filter(|c| c.index == 0) {
            self.add_choice(choice);
        }
    }

    /// Appends the first choice's delta and takes its finish reason.
    fn add_choice(&mut self, choice: LeanChoice<'a>) {
        if let Some(text) = choice.delta.content {
            self.has_content = true;
            self.content.push_str(&text);
        }
        if let Some(r) = choice.delta.reasoning_content {
            self.reasoning.push_str(&r);
        }
        for call in choice.delta.tool_calls.into_iter().flatten() {
            self.add_tool_call(call);
        }
        if let Some(f) = choice.finish_reason {
            self.finish = Some(f.0);
        }
    }

    /// A tool call's piece: the id replaces, name and arguments append.
    fn add_tool_call(&mut self, call: LeanToolCall<'_>) {
        let entry = self.calls.entry(call.index).or_default();
        if let Some(id) = call.id {
            entry.id = id.0.into_owned();
        }
        if let Some(f) = call.function {
            if let Some(name) = f.name {
                entry.name.push_str(&name);
            }
            if let Some(args) = f.arguments {
                entry.arguments.push_str(&args);
            }
        }
    }

    /// The `chat.completion` the chunks add up to.
    fn completion(&self) -> Completion<'_> {
        let (id, model, created) = match &self.head {
            Some(head) => (&*head.id, &*head.model, head.created),
            None => ("", "", 0),
        };
        Completion {
            id,
            object: "chat.completion",
            created,
            model,
            choices: [CompletionChoice {
                index: 0,
                message: CompletionMessage {
                    role: "assistant",
                    content: self.has_content.then_some(self.content.as_str()),
                    reasoning_content: (!self.reasoning.is_empty())
                        .then_some(self.reasoning.as_str()),
                    tool_calls: self.calls.values().map(AssembledCall::completion).collect(),
                },
                finish_reason: self.finish.as_deref(),
            }],
            usage: self.usage,
        }
    }
}

impl AssembledCall {
    fn completion(&self) -> CompletionToolCall<'_> {
        CompletionToolCall {
            id: &self.id,
            kind: "function",
            function: CompletionFunction {
                name: &self.name,
                arguments: &self.arguments,
            },
        }
    }
}

/// The `chat.completion` a stream adds up to, in the order OpenAI writes it.
#[derive(serde::Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Option<&'a RawValue>,
}

#[derive(serde::Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: CompletionMessage<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct CompletionMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<CompletionToolCall<'a>>,
}

#[derive(serde::Serialize)]
struct CompletionToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CompletionFunction<'a>,
}

#[derive(serde::Serialize)]
struct CompletionFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// Anthropic events (the `data:` payloads) → the message they add up to.
pub fn anthropic(events: &[Bytes]) -> Value {
    let mut message = Map::new();
    let mut blocks: BTreeMap<u32, Value> = BTreeMap::new();
    let mut partial: BTreeMap<u32, String> = BTreeMap::new();
    let mut error = Value::Null;
    for data in events {
        let Ok(event) = serde_json::from_slice::<StreamEvent>(data) else {
            continue;
        };
        match event {
            StreamEvent::MessageStart { message: m } => {
                if let Ok(Value::Object(m)) = serde_json::to_value(m) {
                    message = m;
                }
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                if matches!(content_block, ContentBlock::ToolUse { .. }) {
                    partial.insert(index, String::new());
                }
                blocks.insert(
                    index,
                    serde_json::to_value(content_block).unwrap_or(Value::Null),
                );
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let Some(block) = blocks.get_mut(&index) else {
                    continue;
                };
                let append = |block: &mut Value, key: &str, text: &str| {
                    let old = block[key].as_str().unwrap_or("").to_owned();
                    block[key] = Value::String(old + text);
                };
                match delta {
                    BlockDelta::TextDelta { text } => append(block, "text", &text),
                    BlockDelta::ThinkingDelta { thinking } => append(block, "thinking", &thinking),
                    BlockDelta::SignatureDelta { signature } => {
                        append(block, "signature", &signature);
                    }
                    BlockDelta::InputJsonDelta { partial_json } => {
                        partial.entry(index).or_default().push_str(&partial_json);
                    }
                    BlockDelta::CitationsDelta { .. } => {}
                }
            }
            StreamEvent::ContentBlockStop { index } => {
                if let (Some(json), Some(block)) = (partial.remove(&index), blocks.get_mut(&index))
                    && !json.trim().is_empty()
                {
                    block["input"] = serde_json::from_str(&json).unwrap_or(Value::String(json));
                }
            }
            StreamEvent::MessageDelta { delta, usage } => {
                message.insert("stop_reason".into(), json!(delta.stop_reason));
                message.insert("stop_sequence".into(), json!(delta.stop_sequence));
                let u = message.entry("usage").or_insert_with(|| json!({}));
                if let Ok(Value::Object(delta_usage)) = serde_json::to_value(usage) {
                    for (k, v) in delta_usage {
                        u[k] = v;
                    }
                }
            }
            StreamEvent::Error { error: e } => error = json!({"type": "error", "error": e}),
            StreamEvent::MessageStop | StreamEvent::Ping => {}
        }
    }
    message.insert(
        "content".into(),
        Value::Array(blocks.into_values().collect()),
    );
    if !error.is_null() {
        message.insert("error".into(), error);
    }
    Value::Object(message)
}

/// Responses stream events (the `data:` payloads) → the Response they add up to,
/// and its usage: the `response` of the terminal event (`response.completed`,
/// `response.incomplete` or `response.failed`), as sent. A stream cut before its
/// terminal event gives the last response object it sent (`response.created`,
/// `queued` or `in_progress`), its `output` the items done so far and its `error`
/// that of an `error` event.
pub fn responses(events: &[Bytes]) -> (Vec<u8>, Option<Tokens>) {
    #[derive(serde::Deserialize)]
    struct Terminal<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
        #[serde(default, borrow)]
        response: Option<&'a RawValue>,
    }
    for data in events.iter().rev() {
        let Ok(event) = serde_json::from_slice::<Terminal<'_>>(data) else {
            continue;
        };
        if let ("response.completed" | "response.incomplete" | "response.failed", Some(response)) =
            (&*event.kind, event.response)
        {
            let body = response.get().as_bytes().to_vec();
            let tokens = crate::usage::of_body(&body);
            return (body, tokens);
        }
    }
    let whole = unfinished_response(events);
    let tokens = crate::usage::of_value(&whole);
    (serde_json::to_vec(&whole).unwrap_or_default(), tokens)
}

/// What a Responses stream cut before its terminal event says of its response.
fn unfinished_response(events: &[Bytes]) -> Value {
    let mut response = Map::new();
    let mut done: BTreeMap<u64, Value> = BTreeMap::new();
    let mut error = None;
    for data in events {
        let Ok(Value::Object(mut event)) = serde_json::from_slice::<Value>(data) else {
            continue;
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match kind.as_str() {
            "response.created" | "response.queued" | "response.in_progress" => {
                if let Some(Value::Object(r)) = event.remove("response") {
                    response = r;
                }
            }
            "response.output_item.done" => {
                if let (Some(index), Some(item)) = (
                    event.get("output_index").and_then(Value::as_u64),
                    event.remove("item"),
                ) {
                    done.insert(index, item);
                }
            }
            // Its fields nested under `error` as recorded, or at the top as typed.
            "error" => error = Some(event.remove("error").unwrap_or(Value::Object(event))),
            _ => {}
        }
    }
    response.insert("output".into(), Value::Array(done.into_values().collect()));
    if let Some(error) = error {
        response.insert("error".into(), error);
    }
    Value::Object(response)
}

#[cfg(test)]
mod tests;
