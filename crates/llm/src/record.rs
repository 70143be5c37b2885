//! What the request log needs from bodies, computed off the request path.

use std::borrow::Cow;
use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;
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
    // Built once: building a searcher costs more than searching a body.
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\":"));
    static USAGE_REV: std::sync::LazyLock<memchr::memmem::FinderRev<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::FinderRev::new(b"\"usage\":"));
    // The last 1 KiB holds a usage object and what follows it; searched forward
    // (vectorised, unlike the reverse search) for its last match.
    // Failing that, the reverse search over the rest (a match may straddle the cut).
    let window = body.len().saturating_sub(1024);
    let straddle = (window + USAGE.needle().len() - 1).min(body.len());
    let last = USAGE
        .find_iter(&body[window..])
        .last()
        .map(|at| window + at)
        .or_else(|| USAGE_REV.rfind(&body[..straddle]));
    if let Some(at) = last
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
    let (fields, len) = read_usage(rest)?;
    if !closes_top_level(rest.get(len..)?) {
        return None;
    }
    fields.tokens()
}

/// Whether `tail`, what follows a member's value, holds only members with scalar
/// values and then closes the object, with nothing after it: the member belonged
/// to the top-level object, not to one nested in it.
fn closes_top_level(tail: &[u8]) -> bool {
    let mut i = skip_space(tail, 0);
    loop {
        match tail.get(i) {
            Some(b'}') => return skip_space(tail, i + 1) == tail.len(),
            Some(b',') => {
                i = skip_space(tail, i + 1);
                if tail.get(i) != Some(&b'"') {
                    return false;
                }
                let Some((end, _)) = string_end(tail, i + 1) else {
                    return false;
                };
                i = skip_space(tail, end + 1);
                if tail.get(i) != Some(&b':') {
                    return false;
                }
                i = skip_space(tail, i + 1);
                if matches!(tail.get(i), Some(b'{' | b'[') | None) {
                    return false;
                }
                let Some(end) = value_end(tail, i) else {
                    return false;
                };
                i = skip_space(tail, end);
            }
            _ => return false,
        }
    }
}

/// The members of a usage object, in either API's shape: `None` for an absent
/// member, `Some(0)` for one present but not a count (as [`usage`] reads it).
#[derive(Default)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl UsageFields {
    /// The tokens these counts add up to: OpenAI's shape when `prompt_tokens` is
    /// present, else Anthropic's (`input_tokens` counting cache reads and writes).
    fn tokens(&self) -> Option<Tokens> {
        let n = |v: Option<u64>| v.unwrap_or(0);
        if self.prompt_tokens.is_some() {
            return Some(Tokens {
                input: n(self.prompt_tokens),
                output: n(self.completion_tokens),
                cached: n(self.cached_tokens),
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

/// Reads the usage object at the start of `b`: the counts at its top and inside
/// `prompt_tokens_details`, every other member passed over. Returns the fields and
/// where the object ends. Anything it would have to interpret (an escaped name, a
/// fraction, a negative number, a count that is not a number, a nested `usage`)
/// makes it give up, and the caller reads the body through.
fn read_usage(b: &[u8]) -> Option<(UsageFields, usize)> {
    let mut f = UsageFields::default();
    let mut members = Members::of(b)?;
    while let Some((name, value)) = members.next()? {
        let slot = match name {
            b"prompt_tokens" => &mut f.prompt_tokens,
            b"completion_tokens" => &mut f.completion_tokens,
            b"input_tokens" => &mut f.input_tokens,
            b"output_tokens" => &mut f.output_tokens,
            b"cache_read_input_tokens" => &mut f.cache_read_input_tokens,
            b"cache_creation_input_tokens" => &mut f.cache_creation_input_tokens,
            b"prompt_tokens_details" => {
                // The last one counts, as in a parsed object.
                f.cached_tokens = None;
                if let Some(mut details) = Members::of(value) {
                    while let Some((name, value)) = details.next()? {
                        if name == b"cached_tokens" {
                            f.cached_tokens = Some(read_count(value)?);
                        }
                    }
                }
                continue;
            }
            b"usage" => return None,
            _ => continue,
        };
        *slot = Some(read_count(value)?);
    }
    Some((f, members.end()))
}

/// A count: a plain unsigned integer, or `null` (read as 0, as [`usage`] reads it).
fn read_count(value: &[u8]) -> Option<u64> {
    if value == b"null" {
        return Some(0);
    }
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The members of the JSON object at the start of a slice, one at a time, as raw
/// (name, value) bytes. Values are passed over by their structure (strings,
/// nesting), never interpreted, so picking the one or two members a reader needs
/// costs little more than finding them. A name holding an escape, or anything
/// malformed, ends the walk with `None`: the caller then reads the JSON properly.
struct Members<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Members<'a> {
    /// The object at the start of `b` (after any whitespace); `None` when `b` does
    /// not start with one.
    fn of(b: &'a [u8]) -> Option<Self> {
        let at = skip_space(b, 0);
        (b.get(at) == Some(&b'{')).then_some(Self { b, at: at + 1 })
    }

    /// The next member, or `Some(None)` once the object is closed.
    fn next(&mut self) -> Option<Option<(&'a [u8], &'a [u8])>> {
        let b = self.b;
        let mut i = skip_space(b, self.at);
        match *b.get(i)? {
            b'}' => {
                self.at = i + 1;
                return Some(None);
            }
            b',' => i = skip_space(b, i + 1),
            _ => {}
        }
        if *b.get(i)? != b'"' {
            return None;
        }
        let (end, escapes) = string_end(b, i + 1)?;
        if escapes {
            return None;
        }
        let name = &b[i + 1..end];
        i = skip_space(b, end + 1);
        if *b.get(i)? != b':' {
            return None;
        }
        let start = skip_space(b, i + 1);
        let stop = value_end(b, start)?;
        self.at = stop;
        Some(Some((name, &b[start..stop])))
    }

    /// Where the object ends, once [`Members::next`] has said it is closed.
    fn end(&self) -> usize {
        self.at
    }
}

/// Past the whitespace at `i`.
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The closing quote of the string whose text starts at `from`, and whether the
/// text holds escapes.
fn string_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut escapes = false;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some((i, escapes));
        }
        escapes = true;
        i += 2;
    }
}

/// The end of the value starting at `start`.
fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match *b.get(start)? {
        b'"' => string_end(b, start + 1).map(|(end, _)| end + 1),
        open @ (b'{' | b'[') => {
            // Only the value's own kind of bracket counts: in valid JSON the other
            // kind is balanced inside it. Found by a vectorised search.
            let close = if open == b'{' { b'}' } else { b']' };
            // Most values nest nothing: their end is the first closing bracket, if
            // no escape or nested bracket precedes it and it lies outside strings
            // (an even number of quotes before it).
            let body = b.get(start + 1..)?;
            if let Some(at) = memchr::memchr(close, body) {
                let inner = &body[..at];
                if memchr::memchr2(open, b'\\', inner).is_none()
                    && memchr::memchr_iter(b'"', inner).count().is_multiple_of(2)
                {
                    return Some(start + at + 2);
                }
            }
            let mut depth = 0usize;
            let mut i = start;
            loop {
                i += memchr::memchr3(b'"', open, close, b.get(i..)?)?;
                match b[i] {
                    b'"' => {
                        i = string_end(b, i + 1)?.0 + 1;
                        continue;
                    }
                    c if c == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                }
                i += 1;
            }
        }
        _ => {
            let len = b[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .unwrap_or(b.len() - start);
            (len > 0).then_some(start + len)
        }
    }
}

/// The usage of a response body (or a `usage` object) in either API's shape.
pub fn usage(body: &Value) -> Option<Tokens> {
    let u = body.get("usage").filter(|u| u.is_object()).unwrap_or(body);
    let count = |v: Option<&Value>| v.map(n);
    UsageFields {
        prompt_tokens: count(u.get("prompt_tokens")),
        completion_tokens: count(u.get("completion_tokens")),
        cached_tokens: count(
            u.get("prompt_tokens_details")
                .and_then(|d| d.get("cached_tokens")),
        ),
        input_tokens: count(u.get("input_tokens")),
        output_tokens: count(u.get("output_tokens")),
        cache_read_input_tokens: count(u.get("cache_read_input_tokens")),
        cache_creation_input_tokens: count(u.get("cache_creation_input_tokens")),
    }
    .tokens()
}

/// Whether an OpenAI chunk is the usage chunk (`choices: []` with a usage).
pub fn is_usage_chunk(payload: &[u8]) -> bool {
    // Cheap screen first: this runs on every streamed chunk, and only the last one
    // has a usage object; the others (OpenAI's and vLLM's) say `"usage":null`, which
    // the parse below would read as no usage anyway.
    static USAGE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    let not_null = |at: usize| {
        let i = skip_space(payload, at + 7);
        payload.get(i) == Some(&b':') && payload.get(skip_space(payload, i + 1)) != Some(&b'n')
    };
    if !USAGE.find_iter(payload).any(not_null) {
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

/// The parts of a chunk assembly reads (no catch-all map: parsing stays cheap;
/// strings borrowed from the chunk unless they hold escapes).
#[derive(serde::Deserialize)]
struct LeanChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<LeanChoice<'a>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    /// Where the `choices` value lies in the chunk, when the walk found it.
    #[serde(skip)]
    choices_at: Option<(usize, usize)>,
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
/// same in every chunk) are passed over by [`Members`] without being read. A chunk
/// the walk cannot read is parsed whole, and skipped if that fails too.
///
/// `skip` carries, from one chunk to the next, the previous chunk and how much of
/// it the walk passed over without reading anything (the members before
/// `choices`): a chunk that starts with the same bytes is in the same state there,
/// so its walk starts at that point. In a stream those bytes (id, object, created,
/// model, fingerprints) repeat in every chunk and are over half of it.
fn read_chunk<'a>(chunk: &'a [u8], skip: &mut Option<(&'a [u8], usize)>) -> Option<LeanChunk<'a>> {
    let whole = || serde_json::from_slice::<LeanChunk<'_>>(chunk).ok();
    let Some(mut members) = Members::of(chunk) else {
        return whole();
    };
    if let Some((prev, at)) = *skip
        && chunk.get(..at) == prev.get(..at)
    {
        members.at = at;
    }
    let mut out = LeanChunk {
        choices: Vec::new(),
        usage: None,
        choices_at: None,
    };
    // Nothing read yet: the walk so far can be skipped in the next chunk.
    let mut unread = true;
    loop {
        let at = members.at;
        match members.next() {
            Some(Some((b"choices", value))) => {
                if unread {
                    *skip = Some((chunk, at));
                    unread = false;
                }
                out.choices = serde_json::from_slice(value).ok()?;
                let start = members.at - value.len();
                out.choices_at = Some((start, members.at));
            }
            Some(Some((b"usage", value))) if value != b"null" => {
                unread = false;
                out.usage = serde_json::from_slice(value).ok()?;
            }
            Some(Some(_)) => {}
            Some(None) => return Some(out),
            None => return whole(),
        }
    }
}

/// A chunk read whole whose choices are a single text delta (choice 0, nothing but
/// `content` and perhaps a finish reason, which chunks like it repeat, so reading
/// it again changes nothing; no usage anywhere in the chunk): in a stream, the
/// chunks after it differ from it only inside that text (and in members after
/// `choices`, such as `obfuscation`). A chunk whose bytes equal the template's up to
/// the text and from the text's end to the end of `choices` is in the same parse
/// state at both points, so its choices are the template's with its own text: it
/// is read by comparing bytes and finding one string's end, not by parsing.
struct Template<'a> {
    chunk: &'a [u8],
    text_start: usize,
    text_end: usize,
    choices_end: usize,
}

impl<'a> Template<'a> {
    fn of(chunk: &'a [u8], c: &LeanChunk<'_>) -> Option<Self> {
        let (start, end) = c.choices_at?;
        let [choice] = c.choices.as_slice() else {
            return None;
        };
        let delta = &choice.delta;
        if choice.index != 0
            || c.usage.is_some()
            || delta.reasoning_content.is_some()
            || delta.tool_calls.is_some()
        {
            return None;
        }
        // The text borrowed from the chunk (no escapes): where it lies.
        let Some(Text(Cow::Borrowed(text))) = &delta.content else {
            return None;
        };
        let text_start = (text.as_ptr() as usize).checked_sub(chunk.as_ptr() as usize)?;
        let text_end = text_start + text.len();
        (text_start > start
            && text_end < end
            && chunk.get(text_start - 1) == Some(&b'"')
            && chunk.get(text_end) == Some(&b'"'))
        .then_some(Self {
            chunk,
            text_start,
            text_end,
            choices_end: end,
        })
    }

    /// The text of a chunk like the template, and where its walk goes on (just past
    /// `choices`); `None` when the chunk is not like it.
    fn read<'c>(&self, chunk: &'c [u8]) -> Option<(Cow<'c, str>, usize)> {
        if chunk.get(..self.text_start)? != &self.chunk[..self.text_start] {
            return None;
        }
        let (end, escapes) = string_end(chunk, self.text_start)?;
        let tail = &self.chunk[self.text_end..self.choices_end];
        if chunk.get(end..end + tail.len())? != tail {
            return None;
        }
        let raw = &chunk[self.text_start..end];
        let text = if !escapes && raw.iter().all(|&c| c >= 0x20) {
            Cow::Borrowed(std::str::from_utf8(raw).ok()?)
        } else {
            Cow::Owned(serde_json::from_slice(&chunk[self.text_start - 1..=end]).ok()?)
        };
        Some((text, end + tail.len()))
    }
}

/// The members after `choices` of a chunk read by its template: a non-null `usage`
/// is kept; `None` when the walk fails or meets anything else it must read.
fn read_rest(chunk: &[u8], at: usize) -> Option<Option<&RawValue>> {
    let mut members = Members { b: chunk, at };
    let mut usage = None;
    loop {
        match members.next()? {
            Some((b"choices", _)) => return None,
            Some((b"usage", value)) if value != b"null" => {
                usage = Some(serde_json::from_slice(value).ok()?);
            }
            Some(_) => {}
            None => return Some(usage),
        }
    }
}

/// OpenAI chunks (the `data:` payloads) → the `chat.completion` body they add up
/// to, and its usage. Written straight from the pieces (no `Value` built): this
/// runs for every streamed request.
pub fn assemble_openai(chunks: &[Bytes]) -> (Vec<u8>, Option<Tokens>) {
    assemble_openai_with(chunks, true)
}

/// [`assemble_openai`], with or without reading chunks by their [`Template`] (the
/// tests compare both).
fn assemble_openai_with(chunks: &[Bytes], templates: bool) -> (Vec<u8>, Option<Tokens>) {
    let mut head: Option<ChunkHead<'_>> = None;
    let mut content = String::new();
    let mut has_content = false;
    let mut reasoning = String::new();
    let mut finish: Option<Cow<'_, str>> = None;
    let mut usage: Option<&RawValue> = None;
    let mut calls: BTreeMap<u32, (String, String, String)> = BTreeMap::new();
    let mut skip = None;
    let mut template: Option<Template<'_>> = None;
    for chunk in chunks {
        if let Some((text, rest)) = template.as_ref().and_then(|t| t.read(chunk))
            && let Some(u) = read_rest(chunk, rest)
        {
            has_content = true;
            content.push_str(&text);
            if let Some(u) = u.filter(|u| u.get().starts_with('{')) {
                usage = Some(u);
            }
            continue;
        }
        let Some(c) = read_chunk(chunk, &mut skip) else {
            continue;
        };
        template = Template::of(chunk, &c).filter(|_| templates);
        if head.as_ref().is_none_or(|h| h.id.is_empty()) {
            head = serde_json::from_slice::<ChunkHead<'_>>(chunk).ok();
        }
        if let Some(u) = c.usage.filter(|u| u.get().starts_with('{')) {
            usage = Some(u);
        }
        for choice in c.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content {
                has_content = true;
                content.push_str(&text);
            }
            if let Some(r) = choice.delta.reasoning_content {
                reasoning.push_str(&r);
            }
            for call in choice.delta.tool_calls.into_iter().flatten() {
                let entry = calls.entry(call.index).or_default();
                if let Some(id) = call.id {
                    entry.0 = id.0.into_owned();
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
                finish = Some(f.0);
            }
        }
    }
    let tokens = usage.and_then(|u| {
        read_usage(u.get().as_bytes())
            .and_then(|(fields, _)| fields.tokens())
            .or_else(|| usage_of_value(u))
    });
    let head = head.unwrap_or(ChunkHead {
        id: Cow::Borrowed(""),
        model: Cow::Borrowed(""),
        created: 0,
    });
    let completion = Completion {
        id: &head.id,
        object: "chat.completion",
        created: head.created,
        model: &head.model,
        choices: [CompletionChoice {
            index: 0,
            message: CompletionMessage {
                role: "assistant",
                content: has_content.then_some(content.as_str()),
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning.as_str()),
                tool_calls: calls
                    .values()
                    .map(|(id, name, arguments)| CompletionToolCall {
                        id,
                        kind: "function",
                        function: CompletionFunction { name, arguments },
                    })
                    .collect(),
            },
            finish_reason: finish.as_deref(),
        }],
        usage,
    };
    (serde_json::to_vec(&completion).unwrap_or_default(), tokens)
}

fn usage_of_value(raw: &RawValue) -> Option<Tokens> {
    usage(&serde_json::from_str::<Value>(raw.get()).ok()?)
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
    // The searchers are built once: building one costs more than a search.
    static BASE64: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"base64"));
    static AUDIO: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"input_audio"));
    if BASE64.find(body).is_none() && AUDIO.find(body).is_none() {
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

    /// A seeded xorshift: `next(n)` is a number below `n`, the same run to run.
    fn random(mut seed: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        }
    }

    /// Every chunk of the recorded OpenAI streams, in order.
    fn recorded_chunks() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/openai");
        let mut chunks = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sse") {
                let events = crate::sse::Decoder::new()
                    .feed(&std::fs::read(&path).unwrap())
                    .unwrap();
                chunks.extend(events.into_iter().map(|e| e.data.into_bytes()));
            }
        }
        chunks
    }

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

    /// Random usage objects, members and spacing: the fast read must agree with the
    /// full one on every body (including those where it gives up and reads through).
    #[test]
    fn the_fast_usage_read_agrees_on_random_bodies() {
        let mut next = random(0x9E37_79B9_7F4A_7C15_u64);
        let names = [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "prompt_tokens_details",
            "completion_tokens_details",
            "cached_tokens",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "server_tool_use",
            "service_tier",
            "prompt_tokens",
            "input_tokens",
            "output_tokens",
            "completion_tokens",
            "prompt_tokens_details",
            "usage",
            "prompt\\u005ftokens",
        ];
        let scalars = [
            "0",
            "7",
            "1234567",
            "null",
            "24",
            "8",
            "3",
            "0",
            "100",
            "5",
            "1.5",
            "-3",
            "2e3",
            "\"12\"",
            "true",
            "\"a \\\"}]{[ b\"",
            "[1, {\"prompt_tokens\": 9}]",
            "18446744073709551616",
            "\"x}y]\"",
            "[\"]\", 2]",
        ];
        let space = [" ", "", "\n  ", ""];
        // A member's value: mostly counts; sometimes an object of members like
        // `prompt_tokens_details` holds; sometimes anything at all.
        let value = |next: &mut dyn FnMut(usize) -> usize| -> String {
            let pick = next(8);
            if pick > 2 {
                next(100_000).to_string()
            } else if pick == 0 {
                let inner = [
                    "cached_tokens",
                    "audio_tokens",
                    "prompt_tokens",
                    "cached_tokens",
                ];
                let mut o = String::from("{");
                for i in 0..next(4) {
                    if i > 0 {
                        o.push(',');
                    }
                    let v = if next(3) > 0 {
                        next(1000).to_string()
                    } else {
                        scalars[next(scalars.len())].to_owned()
                    };
                    o += &format!("\"{}\":{v}", inner[next(inner.len())]);
                }
                o + "}"
            } else {
                scalars[next(scalars.len())].to_owned()
            }
        };
        let (mut checked, mut fast_reads) = (0, 0);
        for _ in 0..5000 {
            let mut usage = String::from("{");
            for i in 0..next(8) {
                if i > 0 {
                    usage.push(',');
                }
                let sp = space[next(space.len())];
                let v = value(&mut next);
                usage += &format!("{sp}\"{}\"{sp}:{sp}{v}", names[next(names.len())]);
            }
            usage.push('}');
            let body = match next(3) {
                0 => format!(
                    r#"{{"id":"x","choices":[{{"message":{{"content":"hi"}}}}],"usage":{usage}}}"#
                ),
                1 => format!(
                    r#"{{"usage" : {usage} , "service_tier":"default","system_fingerprint":"fp"}}"#
                ),
                _ => format!(r#"{{"usage":{usage},"content":[{{"text":"x"}}]}}"#),
            };
            let (fast, through) = (
                usage_of_body(body.as_bytes()),
                usage_read_through(body.as_bytes()),
            );
            assert_eq!(fast, through, "{body}");
            checked += usize::from(through.is_some());
            fast_reads += usize::from(
                read_usage(usage.as_bytes())
                    .and_then(|(f, _)| f.tokens())
                    .is_some(),
            );
        }
        assert!(checked > 1000, "only {checked} bodies with usage");
        assert!(
            fast_reads > 500,
            "the fast read gave up on all but {fast_reads}"
        );
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

    /// The member-by-member chunk read must agree with parsing the chunk whole, on
    /// every recorded chunk and on chunks built to trip it.
    #[test]
    fn the_fast_chunk_read_agrees_with_parsing_it_whole() {
        let mut chunks = recorded_chunks();
        assert!(chunks.len() > 30, "only {} recorded chunks", chunks.len());
        let built: [&[u8]; 12] = [
            // Usage before choices, twice: the second chunk must not skip it.
            br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"choices":[]}"#,
            br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"choices":[]}"#,
            // The same start as the chunk before, then other members.
            br#"{"id":"u","usage":{"prompt_tokens":3,"completion_tokens":1},"x":1,"choices":[{"index":0,"delta":{"content":"y"}}]}"#,
            br#"{"id":"a","choices":[{"index":0,"delta":{"content":"say \"hi\"\n\u00e9 \ud83d\ude00"},"finish_reason":null}],"usage":null}"#,
            br#"{ "choices" : [ { "index" : 1 , "delta" : { "content" : null , "role" : "assistant" } } , {"index":0,"delta":{"reasoning_content":"hmm"}} ] }"#,
            br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{\"a\":"}}]},"finish_reason":"tool_calls"}]}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
            br#"{"choices":[{"index":0,"delta":{"content":["not","text"]}}]}"#,
            br#"{"choices":null}"#,
            br#"{"ch\u006fices":[{"index":0,"delta":{"content":"x"}}]}"#,
            br#"{"choices":[{"index":-1,"delta":{"content":"x"}}]}"#,
            br#"{"choices":[{"index":0,"delta":{"content":"unterminated}}]}"#,
        ];
        chunks.extend(built.iter().map(|c| c.to_vec()));
        let mut skip = None;
        for chunk in &chunks {
            let fast = read_chunk(chunk, &mut skip);
            let whole = serde_json::from_slice::<LeanChunk<'_>>(chunk).ok();
            let text = String::from_utf8_lossy(chunk);
            assert_eq!(fast.is_some(), whole.is_some(), "{text}");
            if let (Some(fast), Some(whole)) = (fast, whole) {
                assert_eq!(fast.choices, whole.choices, "{text}");
                assert_eq!(
                    fast.usage.map(RawValue::get),
                    whole.usage.map(RawValue::get),
                    "{text}"
                );
            }
        }
    }

    /// The screen in front of the usage-chunk parse must never turn away a chunk
    /// the parse would call a usage chunk.
    #[test]
    fn the_usage_chunk_screen_agrees_with_parsing() {
        #[derive(serde::Deserialize)]
        struct Probe {
            #[serde(default)]
            choices: Vec<serde::de::IgnoredAny>,
            #[serde(default)]
            usage: Option<serde::de::IgnoredAny>,
        }
        let parsed = |c: &[u8]| {
            serde_json::from_slice::<Probe>(c)
                .is_ok_and(|p| p.choices.is_empty() && p.usage.is_some())
        };
        let mut chunks = recorded_chunks();
        let built: [&[u8]; 8] = [
            br#"{"choices":[],"usage" : {"prompt_tokens":1}}"#,
            br#"{"choices":[], "usage" :
 null}"#,
            br#"{"choices":[],"usage":5}"#,
            br#"{"x":"say \"usage\": 1","choices":[],"usage":{}}"#,
            br#"{"usage":null,"choices":[],"usage":{"prompt_tokens":1}}"#,
            br#"{"choices":[],"usage":{"prompt_tokens":1},"x":{"usage":null}}"#,
            br#"{"choices":[],"usage":nul}"#,
            br#"{"choices":[{"index":0}],"usage":{"prompt_tokens":1}}"#,
        ];
        chunks.extend(built.iter().map(|c| c.to_vec()));
        let mut usage_chunks = 0;
        for chunk in &chunks {
            let expected = parsed(chunk);
            assert_eq!(
                is_usage_chunk(chunk),
                expected,
                "{}",
                String::from_utf8_lossy(chunk)
            );
            usage_chunks += usize::from(expected);
        }
        assert!(usage_chunks >= 4, "only {usage_chunks} usage chunks");
    }

    /// Streams of random chunks (text deltas with and without escapes, role and
    /// finish chunks, tool calls, other choices, usage, varying members after
    /// `choices`, broken chunks): reading chunks by their template must assemble
    /// exactly what reading every chunk does.
    #[test]
    fn chunks_read_by_template_assemble_as_chunks_read_whole() {
        let mut next = random(0x6A09_E667_F3BC_C909_u64);
        let texts = [
            "The",
            " quick",
            "",
            "say \\\"hi\\\"",
            "a\\nb",
            "\\u00e9\\ud83d\\ude00",
            "caf\u{e9}",
            "\\\\",
            "brackets ]}[{ , :",
            "\"},\"x\":\"",
            "tab\\t",
        ];
        let prefix =
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","#;
        let (mut streams, mut fast) = (0, 0);
        for _ in 0..400 {
            let mut chunks = Vec::new();
            for _ in 0..next(25) {
                let text = texts[next(texts.len())];
                let choices = match next(18) {
                    0 => format!(r#"[{{"index":0,"delta":{{"role":"assistant","content":"{text}"}}}}]"#),
                    1 => r#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#.to_owned(),
                    2 => r#"[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]"#.to_owned(),
                    3 => format!(r#"[{{"index":1,"delta":{{"content":"{text}"}}}}]"#),
                    4 => format!(r#"[{{"index":0,"delta":{{"reasoning_content":"{text}"}}}}]"#),
                    5 => "[]".to_owned(),
                    6 => r#"[{"index":0,"delta":{"content":null}}]"#.to_owned(),
                    // The same start as a text delta, then something more.
                    7 => format!(r#"[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":"stop"}}]"#),
                    8 => format!(
                        r#"[{{"index":0,"delta":{{"content":"{text}","tool_calls":[{{"index":0,"function":{{"arguments":"x"}}}}]}}}}]"#
                    ),
                    9 => format!(r#"[{{"index":0,"delta":{{"content":"{text}"}}}},{{"index":1,"delta":{{"content":"z"}}}}]"#),
                    10 => format!(r#"[{{"index":0,"delta":{{"content":"{text}","reasoning_content":"r"}}}}]"#),
                    11 => format!(r#"[{{"index":0,"delta":{{"content":"{text}"}}}}]"#),
                    _ => format!(
                        r#"[{{"index":0,"delta":{{"content":"{text}"}},"logprobs":null,"finish_reason":null}}]"#
                    ),
                };
                let rest = match next(8) {
                    0 => r#","usage":{"prompt_tokens":5,"completion_tokens":2}"#.to_owned(),
                    1 => r#","choices":[]"#.to_owned(),
                    2 => r#","usage":null,"extra":{"a":[1,"]"]}"#.to_owned(),
                    3 => r#","obfuscation":"open"#.to_owned(),
                    _ => format!(r#","usage":null,"obfuscation":"{}""#, "x".repeat(next(20))),
                };
                chunks.push(Bytes::from(format!(
                    "{prefix}\"choices\":{choices}{rest}}}"
                )));
            }
            let whole = assemble_openai_with(&chunks, false);
            assert_eq!(assemble_openai_with(&chunks, true), whole, "{chunks:?}");
            streams += 1;
            let (mut skip, mut template) = (None, None::<Template<'_>>);
            for chunk in &chunks {
                if template.as_ref().and_then(|t| t.read(chunk)).is_some() {
                    fast += 1;
                } else if let Some(c) = read_chunk(chunk, &mut skip) {
                    template = Template::of(chunk, &c);
                }
            }
        }
        assert_eq!(streams, 400);
        // Most text chunks follow another one: they must be read by template.
        assert!(fast > 200, "only {fast} chunks read by template");
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
        let (body, tokens) = assemble_openai(&payloads("openai/chat_stream_basic.sse"));
        let text: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            text["choices"][0]["message"]["content"],
            "The capital of Mexico is Mexico City."
        );
        let expected = Some(Tokens {
            input: 14,
            output: 8,
            cached: 0,
        });
        assert_eq!(usage(&text), expected);
        assert_eq!(tokens, expected);
        assert_eq!(text["object"], "chat.completion");
        assert_eq!(text["choices"][0]["finish_reason"], "stop");
        assert_eq!(text["choices"][0]["message"]["role"], "assistant");
        assert!(text["choices"][0]["message"].get("tool_calls").is_none());
        let (body, _) = assemble_openai(&payloads("openai/chat_stream_parallel_tool_calls.sse"));
        let tools: Value = serde_json::from_slice(&body).unwrap();
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
