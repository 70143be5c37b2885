//! Token usage read out of response bodies and stream chunks, in any of the APIs'
//! shapes (Chat Completions, Responses, Anthropic Messages), for the request log
//! and for pricing.
//!
//! Reading it runs for every request, and only `usage` is wanted from a body that
//! may be large, so the body is not parsed: every API puts `usage` near the end
//! of the top-level object, so the last `"usage":` is found by a byte search and
//! only that object is read, member by member. The member walker (`Members`) passes
//! over JSON values by their structure, without interpreting them, so picking a few
//! members costs little more than finding them; stream assembly
//! ([`crate::assemble`]) walks chunks with it too. Whatever the walker would have to
//! interpret sends the read back to a full parse, so the fast path never answers
//! differently from it (the tests check both on recorded and random bodies).
//!
//! [`is_usage_chunk`] picks out the streamed OpenAI chunk that carries the usage,
//! behind a byte screen: it runs on every chunk, and only the last one has usage.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::walk::{Members, skip_space, string_end, value_end};

/// Token counts, normalised: `input` includes cached and cache-write tokens (as
/// OpenAI counts); `cache_write` is Anthropic's `cache_creation_input_tokens`
/// (also read from an OpenAI-shaped usage, where aiprox's translation of an
/// Anthropic answer puts it), of which `cache_write_1h` were written to the
/// one-hour cache (`cache_creation.ephemeral_1h_input_tokens`), dearer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cached: u64,
    pub cache_write: u64,
    pub cache_write_1h: u64,
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The usage of a whole response body, read without building the rest of it.
///
/// Every API puts `usage` after the content, near the end of the top-level
/// object, so the last `"usage":` in the body is the one (inside a string the quotes
/// would be escaped): only that object is parsed. Anything unexpected falls back to
/// reading the body through. A Responses stream event (`response.completed`) has
/// no usage of its own: there, the usage is its response's (`response.usage`).
pub fn of_body(body: &[u8]) -> Option<Tokens> {
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
    struct Only<'a> {
        usage: Option<Value>,
        #[serde(borrow)]
        response: Option<&'a RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Nested {
        usage: Option<Value>,
    }
    let only: Only<'_> = serde_json::from_slice(body).ok()?;
    let usage = match only.usage {
        Some(usage) => usage,
        None => {
            serde_json::from_str::<Nested>(only.response?.get())
                .ok()?
                .usage?
        }
    };
    of_value(&usage)
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

/// Whether `tail`, what follows a member's value, holds only members and then
/// closes the object, with nothing after it: the member belonged to the top-level
/// object, not to one nested in it. (Responses bodies end with `"metadata": {}`.)
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
                let Some(end) = value_end(tail, i) else {
                    return false;
                };
                i = skip_space(tail, end);
            }
            _ => return false,
        }
    }
}

/// The members of a usage object, in any API's shape: `None` for an absent
/// member, `Some(0)` for one present but not a count (as [`of_value`] reads it).
#[derive(Default)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    cached_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    /// `input_tokens_details.cached_tokens` (Responses).
    input_cached_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    /// `cache_creation.ephemeral_1h_input_tokens` (Anthropic).
    cache_write_1h: Option<u64>,
    /// Whether a member only the Responses shape has is present
    /// (`total_tokens`, `input_tokens_details`, `output_tokens_details`).
    responses_members: bool,
}

impl UsageFields {
    /// The tokens these counts add up to: Chat's shape when `prompt_tokens` is
    /// present; else the Responses shape, `input_tokens` counting cached tokens as
    /// Chat does, when a member only it has is present; else Anthropic's
    /// (`input_tokens` plus cache reads and writes; the sum saturates, as the
    /// counts are the upstream's).
    fn tokens(&self) -> Option<Tokens> {
        let n = |v: Option<u64>| v.unwrap_or(0);
        let cache_write = n(self.cache_creation_input_tokens);
        let cache_write_1h = n(self.cache_write_1h).min(cache_write);
        if self.prompt_tokens.is_some() {
            return Some(Tokens {
                input: n(self.prompt_tokens),
                output: n(self.completion_tokens),
                cached: n(self.cached_tokens),
                cache_write,
                cache_write_1h,
            });
        }
        if self.responses_members && (self.input_tokens.is_some() || self.output_tokens.is_some()) {
            return Some(Tokens {
                input: n(self.input_tokens),
                output: n(self.output_tokens),
                cached: n(self.input_cached_tokens),
                cache_write: 0,
                cache_write_1h: 0,
            });
        }
        if self.input_tokens.is_some() || self.output_tokens.is_some() {
            let cached = n(self.cache_read_input_tokens);
            return Some(Tokens {
                input: n(self.input_tokens)
                    .saturating_add(cached)
                    .saturating_add(cache_write),
                output: n(self.output_tokens),
                cached,
                cache_write,
                cache_write_1h,
            });
        }
        None
    }
}

/// Reads the usage object at the start of `b`: the counts at its top and inside
/// `prompt_tokens_details` and `input_tokens_details`, every other member passed
/// over. Returns the fields and where the object ends. Anything it would have to
/// interpret (an escaped name, a fraction, a negative number, a count that is not
/// a number, a nested `usage`) makes it give up, and the caller reads the body
/// through.
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
                f.cached_tokens = read_detail(value, b"cached_tokens")?;
                continue;
            }
            b"input_tokens_details" => {
                f.responses_members = true;
                f.input_cached_tokens = read_detail(value, b"cached_tokens")?;
                continue;
            }
            b"cache_creation" => {
                f.cache_write_1h = read_detail(value, b"ephemeral_1h_input_tokens")?;
                continue;
            }
            b"total_tokens" | b"output_tokens_details" => {
                f.responses_members = true;
                continue;
            }
            b"usage" => return None,
            _ => continue,
        };
        *slot = Some(read_count(value)?);
    }
    Some((f, members.end()))
}

/// The count `wanted` of a details object: `Some(None)` when it has none (the
/// last member of a name counts, as in a parsed object), `None` to give up.
fn read_detail(details: &[u8], wanted: &[u8]) -> Option<Option<u64>> {
    let mut count = None;
    if let Some(mut members) = Members::of(details) {
        while let Some((name, value)) = members.next()? {
            if name == wanted {
                count = Some(read_count(value)?);
            }
        }
    }
    Some(count)
}

/// A count: a plain unsigned integer, or `null` (read as 0, as [`of_value`] reads it).
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

/// The usage of a response body (or a `usage` object) in any API's shape.
pub fn of_value(body: &Value) -> Option<Tokens> {
    let u = body.get("usage").filter(|u| u.is_object()).unwrap_or(body);
    let count = |v: Option<&Value>| v.map(n);
    let has = |name: &str| u.get(name).is_some();
    UsageFields {
        prompt_tokens: count(u.get("prompt_tokens")),
        completion_tokens: count(u.get("completion_tokens")),
        cached_tokens: count(
            u.get("prompt_tokens_details")
                .and_then(|d| d.get("cached_tokens")),
        ),
        input_tokens: count(u.get("input_tokens")),
        output_tokens: count(u.get("output_tokens")),
        input_cached_tokens: count(
            u.get("input_tokens_details")
                .and_then(|d| d.get("cached_tokens")),
        ),
        cache_read_input_tokens: count(u.get("cache_read_input_tokens")),
        cache_creation_input_tokens: count(u.get("cache_creation_input_tokens")),
        cache_write_1h: count(
            u.get("cache_creation")
                .and_then(|d| d.get("ephemeral_1h_input_tokens")),
        ),
        responses_members: has("total_tokens")
            || has("input_tokens_details")
            || has("output_tokens_details"),
    }
    .tokens()
}

/// The usage of a `usage` object given as its JSON text (as a stream's usage chunk
/// holds it): read member by member, or parsed when that gives up.
pub(crate) fn of_raw(raw: &RawValue) -> Option<Tokens> {
    read_usage(raw.get().as_bytes())
        .and_then(|(fields, _)| fields.tokens())
        .or_else(|| of_value(&serde_json::from_str::<Value>(raw.get()).ok()?))
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

#[cfg(test)]
mod tests;
