//! The fast usage reads of [`super`], checked against reading bodies through.

use serde_json::json;

use super::*;
use crate::fixtures::recorded_chunks;

/// A seeded xorshift: `next(n)` is a number below `n`, the same run to run.
fn random(mut seed: u64) -> impl FnMut(usize) -> usize {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    }
}

/// The full read, as a reference for the fast path: the top-level usage, else
/// (a Responses stream event) its response's.
fn usage_read_through(body: &[u8]) -> Option<Tokens> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let usage = match v.get("usage").filter(|u| !u.is_null()) {
        Some(usage) => usage,
        None => v.get("response")?.get("usage")?,
    };
    of_value(usage)
}

#[test]
fn the_fast_usage_read_agrees_with_reading_the_body_through() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures");
    let mut checked = 0;
    for sub in ["openai", "anthropic", "openai-responses"] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".json") || !name.contains("response") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let expected = usage_read_through(&body);
            assert_eq!(of_body(&body), expected, "{name}");
            checked += usize::from(expected.is_some());
        }
    }
    assert!(checked >= 15, "only {checked} fixtures with usage");
    let tricky: [&[u8]; 10] = [
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
        // Responses: objects after the usage, one holding a "usage" of its own.
        br#"{"usage":{"input_tokens":3,"output_tokens":1,"total_tokens":4},"metadata":{"k":[1,{"a":"}"}]},"user":null}"#,
        br#"{"usage":{"input_tokens":3,"output_tokens":1,"total_tokens":4},"metadata":{"usage":{"input_tokens":9}}}"#,
        // A Responses stream event: the usage is its response's.
        br#"{"type":"response.completed","response":{"usage":{"input_tokens":5,"input_tokens_details":{"cached_tokens":2},"output_tokens":1,"total_tokens":6},"metadata":{}},"sequence_number":3}"#,
        br#"{"type":"response.created","response":"nope"}"#,
    ];
    for body in tricky {
        let (fast, through) = (of_body(body), usage_read_through(body));
        assert_eq!(fast, through, "{}", String::from_utf8_lossy(body));
    }
}

/// Member names for random usage objects: the counted ones (some twice, so they
/// repeat), others the APIs send, a nested `usage` and an escaped name.
const NAMES: [&str; 21] = [
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
    "input_tokens_details",
    "output_tokens_details",
];

/// Member values besides random counts: a few counts, null, numbers the fast read
/// must not interpret, and strings and arrays holding brackets.
const SCALARS: [&str; 20] = [
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

/// A member's value: mostly counts; sometimes an object of members like
/// `prompt_tokens_details` holds; sometimes anything at all.
fn random_value(next: &mut dyn FnMut(usize) -> usize) -> String {
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
                SCALARS[next(SCALARS.len())].to_owned()
            };
            o += &format!("\"{}\":{v}", inner[next(inner.len())]);
        }
        o + "}"
    } else {
        SCALARS[next(SCALARS.len())].to_owned()
    }
}

/// A usage object of random members, values and spacing.
fn random_usage(next: &mut dyn FnMut(usize) -> usize) -> String {
    let space = [" ", "", "\n  ", ""];
    let mut usage = String::from("{");
    for i in 0..next(8) {
        if i > 0 {
            usage.push(',');
        }
        let sp = space[next(space.len())];
        let v = random_value(next);
        usage += &format!("{sp}\"{}\"{sp}:{sp}{v}", NAMES[next(NAMES.len())]);
    }
    usage.push('}');
    usage
}

/// Random usage objects, members and spacing: the fast read must agree with the
/// full one on every body (including those where it gives up and reads through).
#[test]
fn the_fast_usage_read_agrees_on_random_bodies() {
    let mut next = random(0x9E37_79B9_7F4A_7C15_u64);
    let (mut checked, mut fast_reads) = (0, 0);
    for _ in 0..5000 {
        let usage = random_usage(&mut next);
        let body = match next(3) {
            0 => format!(
                r#"{{"id":"x","choices":[{{"message":{{"content":"hi"}}}}],"usage":{usage}}}"#
            ),
            1 => format!(
                r#"{{"usage" : {usage} , "service_tier":"default","system_fingerprint":"fp","metadata":{{"k":[1,"]}}"]}}}}"#
            ),
            _ => format!(r#"{{"usage":{usage},"content":[{{"text":"x"}}]}}"#),
        };
        let (fast, through) = (
            of_body(body.as_bytes()),
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
        of_value(
            &json!({"usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}}})
        ),
        Some(Tokens {
            input: 10,
            output: 3,
            cached: 4,
            cache_write: 0,
            cache_write_1h: 0
        })
    );
    assert_eq!(
        of_value(
            &json!({"usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 1}})
        ),
        Some(Tokens {
            input: 15,
            output: 3,
            cached: 4,
            cache_write: 1,
            cache_write_1h: 0
        })
    );
    assert_eq!(
        of_value(
            &json!({"usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 3, "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 13}})
        ),
        Some(Tokens {
            input: 10,
            output: 3,
            cached: 4,
            cache_write: 0,
            cache_write_1h: 0
        })
    );
    assert_eq!(of_value(&json!({"id": "x"})), None);
}

/// Responses bodies (usage, then `user` and `metadata: {}`) and the terminal
/// event of a Responses stream.
#[test]
fn responses_usage_is_read_from_bodies_and_the_completed_event() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/openai-responses"
    );
    let body = std::fs::read(format!("{dir}/responses_response_reasoning.json")).unwrap();
    let expected = Some(Tokens {
        input: 34,
        output: 226,
        cached: 0,
        cache_write: 0,
        cache_write_1h: 0,
    });
    assert_eq!(of_body(&body), expected);
    // The fast read, not the fallback, answers it.
    let at = memchr::memmem::rfind(&body, b"\"usage\":").unwrap();
    assert_eq!(usage_at(&body[at + 8..]), expected);

    let stream = std::fs::read(format!("{dir}/responses_stream_text.sse")).unwrap();
    let events = crate::sse::Decoder::new().feed(&stream).unwrap();
    let completed = events.last().unwrap();
    assert_eq!(completed.event.as_deref(), Some("response.completed"));
    assert_eq!(
        of_body(completed.data.as_bytes()),
        Some(Tokens {
            input: 20,
            output: 10,
            cached: 0,
            cache_write: 0,
            cache_write_1h: 0
        })
    );
    assert_eq!(of_body(events[0].data.as_bytes()), None);

    // A Response aiprox writes puts its usage after the echoed tools, whose
    // schemas may hold a "usage" of their own: the fast read still finds it.
    let req = crate::responses::ResponsesRequest::parse(
        br#"{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"usage":{"type":"string"}}}}]}"#,
    )
    .unwrap();
    let completion = serde_json::from_value(json!({"id": "c", "object": "chat.completion",
        "created": 1, "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11,
            "prompt_tokens_details": {"cached_tokens": 3}}}))
    .unwrap();
    let meta = crate::responses::ResponseMeta {
        id: "resp_1".into(),
        created_at: 1,
        model: "m".into(),
    };
    let response =
        crate::translate::responses_to_chat::response(completion, &meta, req.echo()).unwrap();
    let body = serde_json::to_vec(&response).unwrap();
    let at = memchr::memmem::rfind(&body, b"\"usage\":").unwrap();
    let expected = Some(Tokens {
        input: 9,
        output: 2,
        cached: 3,
        cache_write: 0,
        cache_write_1h: 0,
    });
    assert_eq!(usage_at(&body[at + 8..]), expected);
    assert_eq!(of_body(&body), expected);
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
        serde_json::from_slice::<Probe>(c).is_ok_and(|p| p.choices.is_empty() && p.usage.is_some())
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

/// Anthropic's one-hour cache writes, read fast and parsed alike; an OpenAI
/// usage carrying `cache_creation_input_tokens` (aiprox's translation of an
/// Anthropic answer) keeps its writes.
#[test]
fn one_hour_cache_writes_and_writes_in_an_openai_usage() {
    let anthropic = br#"{"id":"msg_1","usage":{"input_tokens":10,"cache_creation_input_tokens":300,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},"output_tokens":5}}"#;
    let expected = Some(Tokens {
        input: 310,
        output: 5,
        cached: 0,
        cache_write: 300,
        cache_write_1h: 200,
    });
    assert_eq!(of_body(anthropic), expected);
    assert_eq!(
        of_value(&serde_json::from_slice(anthropic).unwrap()),
        expected
    );
    let openai = br#"{"id":"chatcmpl-1","usage":{"prompt_tokens":310,"completion_tokens":5,"total_tokens":315,"prompt_tokens_details":{"cached_tokens":0},"cache_creation_input_tokens":300}}"#;
    let tokens = of_body(openai).unwrap();
    assert_eq!((tokens.input, tokens.cache_write), (310, 300));
}
