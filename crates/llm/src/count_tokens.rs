//! `POST /v1/messages/count_tokens` for providers that have no such API: a
//! Messages request's input tokens estimated with OpenAI's tokenizers, without
//! calling anyone (Claude Code asks before nearly every turn).
//!
//! Choices where an estimate has to choose:
//! - The tokenizer: `cl100k_base` for `gpt-4…` (but not `gpt-4o`/`gpt-4.1`) and
//!   `gpt-3.5…` models, `o200k_base` (GPT-4o's and later) for every other
//!   model, open-weight ones included: their own tokenizers are not bundled, and
//!   a modern BPE tokenizer's count is the nearest stand-in.
//! - What is counted: the system prompt; every text, thinking and tool-result
//!   text; a tool call's name and input (as compact JSON); each tool's name,
//!   description and input schema (as compact JSON); for other blocks, their
//!   JSON without base64 data.
//! - Framing, as OpenAI's cookbook counts chat messages: 3 tokens a message
//!   and 3 for the reply; 8 for the tool definitions as a whole.
//! - An image counts 1,600 tokens and a document 1,500: Anthropic's cap for an
//!   image (about 1.15 megapixels, at width × height / 750), since the sizes
//!   are not read from the data.

use std::sync::LazyLock;

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// Tokens an image counts, whatever its size.
pub const IMAGE_TOKENS: u64 = 1_600;
/// Tokens a document (PDF) counts.
pub const DOCUMENT_TOKENS: u64 = 1_500;

const PER_MESSAGE: u64 = 3;
const PER_REPLY: u64 = 3;
const PER_TOOLS: u64 = 8;

static O200K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::o200k_base().ok());
static CL100K: LazyLock<Option<CoreBPE>> = LazyLock::new(|| tiktoken_rs::cl100k_base().ok());

/// The tokenizer for `model` (the upstream's name for it).
fn tokenizer(model: &str) -> Option<&'static CoreBPE> {
    let m = model.rsplit('/').next().unwrap_or(model);
    let older = (m.starts_with("gpt-4") && !m.starts_with("gpt-4o") && !m.starts_with("gpt-4.1"))
        || m.starts_with("gpt-3.5");
    if older { &*CL100K } else { &*O200K }.as_ref()
}

/// The estimated input tokens of a Messages request body (parsed JSON), for
/// `model`.
pub fn estimate(body: &Value, model: &str) -> u64 {
    let Some(bpe) = tokenizer(model) else {
        return 0;
    };
    let mut count = Counter { bpe, tokens: 0 };
    match body.get("system") {
        Some(Value::String(text)) => {
            count.text(text);
            count.tokens += PER_MESSAGE;
        }
        Some(Value::Array(blocks)) => {
            blocks.iter().for_each(|b| count.block(b));
            count.tokens += PER_MESSAGE;
        }
        _ => {}
    }
    for message in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        count.tokens += PER_MESSAGE;
        match message.get("content") {
            Some(Value::String(text)) => count.text(text),
            Some(Value::Array(blocks)) => blocks.iter().for_each(|b| count.block(b)),
            _ => {}
        }
    }
    if let Some(tools) = body.get("tools").and_then(Value::as_array)
        && !tools.is_empty()
    {
        count.tokens += PER_TOOLS;
        for tool in tools {
            for member in ["name", "description"] {
                if let Some(text) = tool.get(member).and_then(Value::as_str) {
                    count.text(text);
                }
            }
            if let Some(schema) = tool.get("input_schema") {
                count.json(schema);
            }
        }
    }
    count.tokens + PER_REPLY
}

struct Counter {
    bpe: &'static CoreBPE,
    tokens: u64,
}

impl Counter {
    fn text(&mut self, text: &str) {
        self.tokens += self.bpe.encode_ordinary(text).len() as u64;
    }

    fn json(&mut self, value: &Value) {
        self.text(&value.to_string());
    }

    fn block(&mut self, block: &Value) {
        let text = |name: &str| block.get(name).and_then(Value::as_str);
        match block.get("type").and_then(Value::as_str) {
            Some("text") => self.text(text("text").unwrap_or_default()),
            Some("thinking") => self.text(text("thinking").unwrap_or_default()),
            Some("redacted_thinking") => {}
            Some("image") => self.tokens += IMAGE_TOKENS,
            Some("document") => self.tokens += DOCUMENT_TOKENS,
            Some("tool_use" | "server_tool_use") => {
                self.text(text("name").unwrap_or_default());
                if let Some(input) = block.get("input") {
                    self.json(input);
                }
            }
            Some("tool_result") => match block.get("content") {
                Some(Value::String(t)) => self.text(t),
                Some(Value::Array(parts)) => parts.iter().for_each(|p| self.block(p)),
                _ => {}
            },
            _ => {
                // Anything newer: its JSON, which over-counts rather than
                // forgets it.
                self.json(block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_text_with_openai_tokenizers() {
        let body =
            json!({"model": "m", "messages": [{"role": "user", "content": "Hello, world!"}]});
        // "Hello, world!" is 4 tokens in both encodings; +3 message, +3 reply.
        assert_eq!(estimate(&body, "gpt-4o"), 10);
        assert_eq!(estimate(&body, "gpt-4-turbo"), 10);
        assert_eq!(estimate(&body, "ollama/llama3.2"), 10);
    }

    #[test]
    fn every_part_of_a_request_counts() {
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        let base = estimate(&plain, "gpt-4o");
        let with = |extra: Value| {
            let mut body = plain.clone();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            estimate(&body, "gpt-4o")
        };
        assert!(with(json!({"system": "You are terse."})) > base + 3);
        assert!(with(json!({"system": [{"type": "text", "text": "You are terse."}]})) > base + 3);
        let tools = json!({"tools": [{"name": "get_weather", "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]});
        assert!(with(tools) > base + 15);
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "text", "text": "hi"}]}]});
        assert_eq!(estimate(&image, "gpt-4o"), base + IMAGE_TOKENS);
        let turns = json!({"messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "Sunny"}]}]});
        assert!(estimate(&turns, "gpt-4o") > base + 2 * PER_MESSAGE + 5);
    }

    #[test]
    fn the_recorded_requests() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/anthropic");
        let read = |f: &str| -> Value {
            serde_json::from_slice(&std::fs::read(format!("{dir}/{f}")).unwrap()).unwrap()
        };
        // Plain text: near Anthropic's own count (19), though the tokenizers differ.
        let plain = read("count_tokens_request.json");
        let ours = estimate(&plain, "gpt-4o");
        assert!((14..=22).contains(&ours), "{ours}");
        // Tools: counted, schema included. (Anthropic's 671 includes the system
        // prompt it adds for tool use, which an OpenAI upstream does not bill.)
        let tools = read("count_tokens_request_tools_thinking.json");
        let mut without = tools.clone();
        without.as_object_mut().unwrap().remove("tools");
        let (with, bare) = (estimate(&tools, "gpt-4o"), estimate(&without, "gpt-4o"));
        assert!(with > bare + 30, "{with} against {bare} without the tools");
    }
}
