//! What the request log needs from bodies, computed off the request path.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::anthropic::{BlockDelta, ContentBlock, StreamEvent};

/// Token counts, normalised: `input` includes cached tokens (as OpenAI counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The usage of a whole response body, read without building the rest of it.
///
/// Both vendors put `usage` after the content, near the end of the top-level
/// object, so the last `"usage":` in the body is the one (inside a string the quotes
/// would be escaped): only that object is parsed. Anything unexpected falls back to
/// reading the body through.
pub fn usage_of_body(body: &[u8]) -> Option<Tokens> {
    // Built once: building the searcher costs more than searching a body.
    static USAGE: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"\"usage\":"));
    if let Some(at) = USAGE.rfind(body)
        && at > 0
        && body[at - 1] != b'\\'
        && let Some(tokens) = usage_at(&body[at + 8..])
    {
        return Some(tokens);
    }
    #[derive(serde::Deserialize)]
    struct Only {
        usage: Option<Value>,
    }
    let only: Only = serde_json::from_slice(body).ok()?;
    usage(&only.usage?)
}

/// The usage object at the start of `rest` (after `"usage":`), when it is a member
/// of the top-level object: what follows it holds only scalar members and closes
/// exactly one object.
fn usage_at(rest: &[u8]) -> Option<Tokens> {
    if rest.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    // Typed: no map or string is built for the dozen members a usage object has.
    let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<UsageFields>();
    let fields = stream.next()?.ok()?;
    let tail = rest.get(stream.byte_offset()..)?;
    let (mut in_string, mut escaped, mut closes) = (false, false, 0);
    for &b in tail {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' if closes == 0 => in_string = true,
            b'}' => closes += 1,
            b'{' | b'[' | b']' | b'"' => return None,
            _ if closes > 0 && !b.is_ascii_whitespace() => return None,
            _ => {}
        }
    }
    if closes != 1 {
        return None;
    }
    fields.tokens()
}

/// The members of a usage object, in either API's shape.
#[derive(serde::Deserialize)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

#[derive(serde::Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

impl UsageFields {
    /// The same reading as [`usage`].
    fn tokens(&self) -> Option<Tokens> {
        let n = |v: Option<u64>| v.unwrap_or(0);
        if self.prompt_tokens.is_some() {
            return Some(Tokens {
                input: n(self.prompt_tokens),
                output: n(self.completion_tokens),
                cached: n(self
                    .prompt_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens)),
            });
        }
        if self.input_tokens.is_some() || self.output_tokens.is_some() {
            let cached = n(self.cache_read_input_tokens);
            return Some(Tokens {
                input: n(self.input_tokens) + cached + n(self.cache_creation_input_tokens),
                output: n(self.output_tokens),
                cached,
            });
        }
        None
    }
}

/// The usage of a response body (or a `usage` object) in either API's shape.
pub fn usage(body: &Value) -> Option<Tokens> {
    let u = body.get("usage").filter(|u| u.is_object()).unwrap_or(body);
    if u.get("prompt_tokens").is_some() {
        return Some(Tokens {
            input: n(&u["prompt_tokens"]),
            output: n(&u["completion_tokens"]),
            cached: n(&u["prompt_tokens_details"]["cached_tokens"]),
        });
    }
    if u.get("input_tokens").is_some() || u.get("output_tokens").is_some() {
        let cached = n(&u["cache_read_input_tokens"]);
        return Some(Tokens {
            input: n(&u["input_tokens"]) + cached + n(&u["cache_creation_input_tokens"]),
            output: n(&u["output_tokens"]),
            cached,
        });
    }
    None
}

/// Whether an OpenAI chunk is the usage chunk (`choices: []` with a usage).
pub fn is_usage_chunk(payload: &[u8]) -> bool {
    // Cheap screen first: this runs on every streamed chunk, and only the last one
    // has a usage object.
    if memchr::memmem::find(payload, b"\"usage\"").is_none() {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default)]
        choices: Vec<serde::de::IgnoredAny>,
        #[serde(default)]
        usage: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(payload)
        .is_ok_and(|p| p.choices.is_empty() && p.usage.is_some())
}

/// The parts of a chunk assembly reads (no catch-all map: parsing stays cheap).
#[derive(serde::Deserialize)]
struct LeanChunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    created: u64,
    #[serde(default)]
    choices: Vec<LeanChoice>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(serde::Deserialize)]
struct LeanChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: crate::openai::types::Delta,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// OpenAI chunks (the `data:` payloads) → the `chat.completion` they add up to.
pub fn assemble_openai(chunks: &[Bytes]) -> Value {
    let mut id = String::new();
    let mut model = String::new();
    let mut created = 0;
    let mut content = String::new();
    let mut has_content = false;
    let mut reasoning = String::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    let mut calls: BTreeMap<u32, (String, String, String)> = BTreeMap::new();
    for chunk in chunks {
        let Ok(c) = serde_json::from_slice::<LeanChunk>(chunk) else {
            continue;
        };
        if id.is_empty() {
            id = c.id;
            model = c.model;
            created = c.created;
        }
        if let Some(u) = c.usage.filter(Value::is_object) {
            usage = u;
        }
        for choice in c.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content.flatten() {
                has_content = true;
                content.push_str(&text);
            }
            if let Some(r) = choice.delta.reasoning_content {
                reasoning.push_str(&r);
            }
            for call in choice.delta.tool_calls.into_iter().flatten() {
                let entry = calls.entry(call.index).or_default();
                if let Some(id) = call.id {
                    entry.0 = id;
                }
                if let Some(f) = call.function {
                    if let Some(name) = f.name {
                        entry.1.push_str(&name);
                    }
                    if let Some(args) = f.arguments {
                        entry.2.push_str(&args);
                    }
                }
            }
            if let Some(f) = choice.finish_reason {
                finish = Value::String(f);
            }
        }
    }
    let mut message = json!({"role": "assistant", "content": if has_content { Value::String(content) } else { Value::Null }});
    if !reasoning.is_empty() {
        message["reasoning_content"] = reasoning.into();
    }
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .into_values()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
    }
    json!({
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    })
}

/// Anthropic events (the `data:` payloads) → the message they add up to.
pub fn assemble_anthropic(events: &[Bytes]) -> Value {
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

/// One media part cut out of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub sha256: String,
    pub mime: String,
    pub data: Bytes,
}

/// The reference that replaces a media part in a logged body.
pub fn media_reference(sha256: &str) -> String {
    format!("aiprox-media://{sha256}")
}

/// Cuts every base64 media part out of a JSON body: OpenAI `data:` URLs
/// (`image_url.url`, `file_data`), OpenAI `input_audio.data`, and Anthropic
/// `{"type": "base64", "media_type", "data"}` sources. Each is replaced by its
/// `aiprox-media://<sha256>` reference. A body with none comes back as it was,
/// without being re-serialised.
pub fn extract_media(body: &Bytes) -> (Bytes, Vec<Media>) {
    // Every form carries base64; a body without the word has nothing to cut.
    if memchr::memmem::find(body, b"base64").is_none()
        && memchr::memmem::find(body, b"input_audio").is_none()
    {
        return (body.clone(), Vec::new());
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return (body.clone(), Vec::new());
    };
    let mut found = Vec::new();
    walk(&mut value, &mut found);
    if found.is_empty() {
        return (body.clone(), found);
    }
    let out = serde_json::to_vec(&value).map_or_else(|_| body.clone(), Bytes::from);
    (out, found)
}

fn decode(data: &str) -> Option<Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    engine.decode(data.trim()).ok().filter(|d| !d.is_empty())
}

fn keep(data: Vec<u8>, mime: &str, found: &mut Vec<Media>) -> String {
    let sha = hex::encode(Sha256::digest(&data));
    if !found.iter().any(|m| m.sha256 == sha) {
        found.push(Media {
            sha256: sha.clone(),
            mime: mime.to_owned(),
            data: Bytes::from(data),
        });
    }
    media_reference(&sha)
}

fn walk(value: &mut Value, found: &mut Vec<Media>) {
    match value {
        Value::String(s) => {
            if let Some((mime, data)) = crate::translate::parse_data_uri(s)
                && let Some(bytes) = decode(data)
            {
                let mime = mime.to_owned();
                *s = keep(bytes, &mime, found);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, found)),
        Value::Object(map) => {
            // Anthropic: {"type": "base64", "media_type": "...", "data": "..."}
            if map.get("type").and_then(Value::as_str) == Some("base64")
                && let Some(mime) = map
                    .get("media_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                && let Some(bytes) = map.get("data").and_then(Value::as_str).and_then(decode)
            {
                map.insert("data".into(), Value::String(keep(bytes, &mime, found)));
                return;
            }
            // OpenAI: {"input_audio": {"data": "...", "format": "wav"}}
            if let Some(Value::Object(audio)) = map.get_mut("input_audio")
                && let Some(format) = audio
                    .get("format")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                && let Some(bytes) = audio.get("data").and_then(Value::as_str).and_then(decode)
            {
                let r = keep(bytes, &format!("audio/{format}"), found);
                audio.insert("data".into(), Value::String(r));
            }
            map.values_mut().for_each(|v| walk(v, found));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    /// The full read, as a reference for the fast path.
    fn usage_read_through(body: &[u8]) -> Option<Tokens> {
        let v: Value = serde_json::from_slice(body).ok()?;
        usage(v.get("usage")?)
    }

    #[test]
    fn the_fast_usage_read_agrees_with_reading_the_body_through() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
        let mut checked = 0;
        for sub in ["openai", "anthropic"] {
            for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.ends_with(".json") || !name.contains("response") {
                    continue;
                }
                let body = std::fs::read(&path).unwrap();
                let expected = usage_read_through(&body);
                assert_eq!(usage_of_body(&body), expected, "{name}");
                checked += usize::from(expected.is_some());
            }
        }
        assert!(checked >= 5, "only {checked} fixtures with usage");
        let tricky: [&[u8]; 6] = [
            // A nested "usage" key before the top-level one (Anthropic tool input).
            br#"{"content":[{"type":"tool_use","input":{"usage":{"input_tokens":99}}}],"usage":{"input_tokens":5,"output_tokens":2}}"#,
            // Usage first, a nested one after it: the last match is not top level.
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":1},"x":{"usage":{"prompt_tokens":7,"completion_tokens":7}}}"#,
            // The words inside a string.
            br#"{"choices":[{"message":{"content":"say \"usage\": {\"prompt_tokens\": 3}"}}],"usage":{"prompt_tokens":4,"completion_tokens":1}}"#,
            // usage followed by another member, with spaces.
            br#"{"usage" : {"prompt_tokens":4,"completion_tokens":1} , "system_fingerprint":"fp"}"#,
            // No usage, and usage null.
            br#"{"choices":[]}"#,
            br#"{"usage":null}"#,
        ];
        for body in tricky {
            let (fast, through) = (usage_of_body(body), usage_read_through(body));
            assert_eq!(fast, through, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn usage_in_both_shapes() {
        assert_eq!(
            usage(
                &json!({"usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}})
            ),
            Some(Tokens {
                input: 10,
                output: 3,
                cached: 4
            })
        );
        assert_eq!(
            usage(
                &json!({"usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 1}})
            ),
            Some(Tokens {
                input: 15,
                output: 3,
                cached: 4
            })
        );
        assert_eq!(usage(&json!({"id": "x"})), None);
    }

    #[test]
    fn media_is_cut_out_of_both_apis_and_deduplicated() {
        let openai = Bytes::from(
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]})
            .to_string(),
        );
        let (body, media) = extract_media(&openai);
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].mime, "image/png");
        assert_eq!(media[0].data.len(), 70);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let reference = media_reference(&media[0].sha256);
        assert_eq!(
            body["messages"][0]["content"][0]["image_url"]["url"],
            reference.as_str()
        );
        assert_eq!(
            body["messages"][0]["content"][2]["image_url"]["url"],
            "https://example.com/x.png"
        );

        let anthropic = Bytes::from(
            json!({"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]})
            .to_string(),
        );
        let (body, media2) = extract_media(&anthropic);
        assert_eq!(media2, media);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["messages"][0]["content"][0]["source"]["data"],
            reference.as_str()
        );

        let plain = Bytes::from_static(br#"{"messages": [{"role": "user", "content": "hi"}]}"#);
        let (same, none) = extract_media(&plain);
        assert!(none.is_empty());
        assert_eq!(same, plain);
    }

    #[test]
    fn streams_assemble_into_whole_responses() {
        let path = |p: &str| format!("{}/../../fixtures/{p}", env!("CARGO_MANIFEST_DIR"));
        let payloads = |p: &str| -> Vec<Bytes> {
            crate::sse::Decoder::new()
                .feed(&std::fs::read(path(p)).unwrap())
                .unwrap()
                .into_iter()
                .filter(|e| e.data != "[DONE]")
                .map(|e| Bytes::from(e.data))
                .collect()
        };
        let text = assemble_openai(&payloads("openai/chat_stream_basic.sse"));
        assert_eq!(
            text["choices"][0]["message"]["content"],
            "The capital of Mexico is Mexico City."
        );
        assert_eq!(
            usage(&text),
            Some(Tokens {
                input: 14,
                output: 8,
                cached: 0
            })
        );
        let tools = assemble_openai(&payloads("openai/chat_stream_parallel_tool_calls.sse"));
        let calls = tools["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["function"]["name"], "get_product_name");

        let message = assemble_anthropic(&payloads(
            "anthropic/messages_stream_text_then_tool_use.sse",
        ));
        assert_eq!(
            message["content"][0]["text"],
            "I'll check the current weather in Paris for you."
        );
        assert_eq!(message["content"][1]["input"], json!({"location": "Paris"}));
        assert_eq!(message["stop_reason"], "tool_use");
        assert_eq!(
            usage(&message),
            Some(Tokens {
                input: 377,
                output: 65,
                cached: 0
            })
        );

        assert!(is_usage_chunk(
            br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(!is_usage_chunk(
            br#"{"choices":[{"index":0}],"usage":null}"#
        ));
    }
}
