//! What a request asked for and what its answer says of itself, by the names the
//! OpenTelemetry GenAI conventions give them (`gen_ai.request.temperature`,
//! `gen_ai.response.finish_reasons`…), for the spans of a traced request.
//!
//! Read for every traced request, from bodies that may be large, of which only a
//! few members are wanted: the bodies are walked ([`crate::walk`]) and searched,
//! not parsed (parsing them was a third of what tracing cost the gateway), and a
//! read that gives up falls back to a full parse, which answers the same (the
//! tests check both on the recorded bodies).
//!
//! Either API's shape: OpenAI's `choices[].finish_reason`, Anthropic's
//! `stop_reason`.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use serde_json::value::RawValue;

use crate::raw::RawObject;
use crate::walk::{Members, skip_space, value_end};

/// The sampling parameters a request asked for.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Asked {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    /// `max_completion_tokens`, else `max_tokens`.
    pub max_tokens: Option<i64>,
}

/// What an answer says of itself.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answered<'a> {
    pub id: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub finish_reasons: Vec<Cow<'a, str>>,
}

/// The sampling parameters of a request, from its top-level members as the
/// request path parsed them (the body is not read again; values of the wrong
/// type are left out).
pub fn asked(body: &RawObject) -> Asked {
    // One pass over the few members: cheaper than hashing four names.
    let number = |v: &RawValue| serde_json::from_slice::<f64>(v.get().as_bytes()).ok();
    let integer = |v: &RawValue| serde_json::from_slice::<i64>(v.get().as_bytes()).ok();
    let mut asked = Asked::default();
    let mut max_completion_tokens = None;
    for (name, value) in body {
        match name.as_str() {
            "temperature" => asked.temperature = number(value),
            "top_p" => asked.top_p = number(value),
            "max_tokens" => asked.max_tokens = integer(value),
            "max_completion_tokens" => max_completion_tokens = integer(value),
            _ => {}
        }
    }
    asked.max_tokens = max_completion_tokens.or(asked.max_tokens);
    asked
}

/// What a response body (a whole one, or a stream assembled) says of itself.
pub fn answered(body: &[u8]) -> Answered<'_> {
    walk_answered(body).unwrap_or_else(|| parse_answered(body))
}

/// `id` and `model` from the first members (where both APIs put them: the walk
/// stops once it has them), the reasons found by a byte search: every `"finish_reason":`
/// (OpenAI's choices), else the last `"stop_reason":` (Anthropic's, after the
/// content). A quote inside a JSON string is escaped, so an unescaped match is a
/// member's name; no other member of these bodies bears those names except in a
/// tool's `input` object, which Anthropic puts before `stop_reason`. `None` when
/// the walk gives up (a name with an escape, malformed JSON): the body is then
/// parsed.
fn walk_answered(body: &[u8]) -> Option<Answered<'_>> {
    static FINISH: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"finish_reason\":"));
    // Forward searches (vectorised, unlike the reverse one, which cost more
    // than the rest of the read).
    static STOP: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"stop_reason\":"));
    let mut members = Members::of(body)?;
    let mut answered = Answered::default();
    while answered.id.is_none() || answered.model.is_none() {
        let Some((name, value)) = members.next()? else {
            break;
        };
        match name {
            b"id" => answered.id = string(value)?,
            b"model" => answered.model = string(value)?,
            _ => {}
        }
    }
    let value_after = |at: usize, name_len: usize| -> Option<Option<Cow<'_, str>>> {
        if at == 0 || body[at - 1] == b'\\' {
            return Some(None);
        }
        let start = skip_space(body, at + name_len);
        string(&body[start..value_end(body, start)?])
    };
    for at in FINISH.find_iter(body) {
        answered
            .finish_reasons
            .extend(value_after(at, FINISH.needle().len())?);
    }
    if answered.finish_reasons.is_empty()
        && let Some(at) = STOP.find_iter(body).last()
    {
        answered
            .finish_reasons
            .extend(value_after(at, STOP.needle().len())?);
    }
    Some(answered)
}

/// A JSON string (borrowed unless it holds escapes) or `null`; `None` (give up)
/// for anything else.
fn string(raw: &[u8]) -> Option<Option<Cow<'_, str>>> {
    match raw {
        b"null" => Some(None),
        [b'"', text @ .., b'"'] if !text.contains(&b'\\') => std::str::from_utf8(text)
            .ok()
            .map(|s| Some(Cow::Borrowed(s))),
        [b'"', ..] => serde_json::from_slice::<String>(raw)
            .ok()
            .map(|s| Some(Cow::Owned(s))),
        _ => None,
    }
}

fn parse_answered(body: &[u8]) -> Answered<'static> {
    #[derive(Deserialize, Default)]
    struct Parsed {
        id: Option<String>,
        model: Option<String>,
        #[serde(default)]
        choices: Option<Vec<Choice>>,
        stop_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct Choice {
        finish_reason: Option<String>,
        #[serde(default)]
        #[allow(dead_code)]
        message: IgnoredAny,
    }
    let parsed: Parsed = serde_json::from_slice(body).unwrap_or_default();
    Answered {
        id: parsed.id.map(Cow::Owned),
        model: parsed.model.map(Cow::Owned),
        finish_reasons: parsed
            .choices
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.finish_reason)
            .chain(parsed.stop_reason)
            .map(Cow::Owned)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(dir: &str) -> Vec<(String, Vec<u8>)> {
        let dir = format!("{}/../../fixtures/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_walk_answers_as_the_parse_on_every_recorded_body() {
        let mut with_reasons = 0;
        for dir in ["openai", "anthropic", "openai-responses"] {
            for (name, body) in recorded(dir) {
                let walked = walk_answered(&body);
                if name.contains("response") {
                    assert!(walked.is_some(), "{name}: the walk gave up");
                }
                if let Some(walked) = walked {
                    assert_eq!(walked, parse_answered(&body), "{name}");
                }
                with_reasons += usize::from(!answered(&body).finish_reasons.is_empty());
            }
        }
        assert!(with_reasons >= 7, "only {with_reasons} bodies had a reason");
    }

    #[test]
    fn reads_both_apis() {
        let openai = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o",
            "choices":[{"index":0,"message":{"role":"assistant","content":"{\"finish_reason\":1}"},"finish_reason":"stop"},
                       {"index":1,"message":{"content":"x"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":1}}"#;
        let a = answered(openai);
        assert_eq!(a.id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(a.model.as_deref(), Some("gpt-4o"));
        assert_eq!(a.finish_reasons, ["stop", "length"]);
        let anthropic = br#"{"id":"msg_1","type":"message","model":"claude","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn"}"#;
        let a = answered(anthropic);
        assert_eq!(a.finish_reasons, ["end_turn"]);
        assert_eq!(a.id.as_deref(), Some("msg_1"));
    }

    #[test]
    fn request_parameters() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"t\"emperature"}],
            "temperature":0.5,"top_p":1,"max_tokens":10,"max_completion_tokens":20}"#;
        let object = crate::raw::parse_object(body).unwrap();
        assert_eq!(
            asked(&object),
            Asked {
                temperature: Some(0.5),
                top_p: Some(1.0),
                max_tokens: Some(20)
            }
        );
        let odd = crate::raw::parse_object(br#"{"max_tokens":null,"temperature":"hot"}"#).unwrap();
        assert_eq!(asked(&odd), Asked::default());
    }

    #[test]
    fn escapes_and_odd_values_fall_back_to_the_parse() {
        let body = br#"{"id":"a\u0062c","model":"m","choices":null,"stop_reason":"end_turn"}"#;
        let a = answered(body);
        assert_eq!(a.id.as_deref(), Some("abc"));
        assert_eq!(a.finish_reasons, ["end_turn"]);
        // A name with an escape makes the walk give up; the parse still reads it.
        let body = br#"{"\u0069d":"x","model":"m"}"#;
        assert_eq!(walk_answered(body), None);
        assert_eq!(answered(body).id.as_deref(), Some("x"));
        // `id` after the content, and a nested one before it.
        let body = br#"{"model":"m","content":[{"type":"tool_use","id":"toolu_1","input":{}}],"id":"msg_2","stop_reason":"tool_use"}"#;
        assert_eq!(walk_answered(body).unwrap().id.as_deref(), Some("msg_2"));
        assert_eq!(answered(body).finish_reasons, ["tool_use"]);
        // A number where a string belongs: both read nothing.
        assert_eq!(answered(br#"{"id":5}"#), Answered::default());
        assert_eq!(answered(b"[1]"), Answered::default());
    }
}
