//! An upstream's event stream, through everything the gateway does with it: the
//! SSE decoder, each `data:` payload through both stream translators (Anthropic
//! events → OpenAI chunks, OpenAI chunks → Anthropic events), the usage reads
//! and the assembly of the stream into the one body the log keeps.
//!
//! The input is the stream's bytes; its first byte also says where to split it
//! in two (and its lowest bit whether the OpenAI client asked for usage), so a
//! recorded `.sse` file is a seed as it is.
//!
//! Invariants: nothing panics; the decoder gives the same events (and the same
//! error) fed whole, in two chunks, or a byte at a time; the fast usage reads agree
//! with reading the JSON through; a translated stream serialises, and what one
//! translator writes the other reads (a tool input that is not JSON aside); the
//! usage chunk of a translated stream is found and read as it was written.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm::sse::{Decoder, Event, SseError};
use llm::translate::{chat_to_messages, messages_to_chat};
use serde_json::Value;

/// What a decoder makes of `chunks` fed one after the other, then ended: the
/// events up to the first error, whether an event was pending at the end of the
/// input, and the error.
#[derive(Debug, PartialEq)]
struct Decoded {
    events: Vec<Event>,
    mid_event: bool,
    error: Option<SseError>,
}

fn decode<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut d = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = d.feed_with(chunk, |e| events.push(e)) {
            return Decoded {
                events,
                mid_event: true,
                error: Some(e),
            };
        }
    }
    let mid_event = d.is_mid_event();
    let error = match d.finish() {
        Ok(last) => {
            events.extend(last);
            None
        }
        Err(e) => Some(e),
    };
    Decoded {
        events,
        mid_event,
        error,
    }
}

/// The usage read through, as the reference for the fast read (as the crate's
/// own tests define it).
fn usage_read_through(body: &Value) -> Option<llm::usage::Tokens> {
    llm::usage::of_value(body.get("usage")?)
}

/// Whether a chunk parses as a usage chunk (the screen's reference).
fn parses_as_usage_chunk(payload: &[u8]) -> bool {
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

fn check_usage_reads(payload: &[u8]) {
    let fast = llm::usage::of_body(payload);
    // The fast read promises to agree on JSON; on anything else it may answer.
    if let Ok(body) = serde_json::from_slice::<Value>(payload) {
        assert_eq!(fast, usage_read_through(&body), "of_body disagrees");
    }
    assert_eq!(
        llm::usage::is_usage_chunk(payload),
        parses_as_usage_chunk(payload),
        "is_usage_chunk disagrees"
    );
}

/// Anthropic events → OpenAI chunk payloads, as the gateway serves them: up to
/// the first failure, nothing after `message_stop`.
fn anthropic_to_openai(
    datas: &[&str],
    include_usage: bool,
) -> (
    Vec<Bytes>,
    chat_to_messages::StreamTranslator,
    Option<String>,
) {
    let mut t = chat_to_messages::StreamTranslator::new(include_usage, 1_700_000_000);
    let mut out = Vec::new();
    let mut failure = None;
    for data in datas {
        match t.event(data) {
            Ok(chunks) => {
                out.extend(chunks.iter().map(|c| {
                    Bytes::from(serde_json::to_vec(c).expect("an OpenAI chunk serialises"))
                }))
            }
            Err(e) => {
                failure = Some(format!("{e:?}"));
                break;
            }
        }
        if t.is_done() {
            break;
        }
    }
    if failure.is_none() {
        let _ = t.finish();
    }
    (out, t, failure)
}

/// OpenAI chunk payloads → Anthropic event payloads: up to `[DONE]` or the first
/// failure; the closing events when the stream ended without one.
fn openai_to_anthropic(datas: &[&str]) -> Vec<Bytes> {
    let mut t = messages_to_chat::StreamTranslator::new();
    let mut out = Vec::new();
    let serialise = |e: &llm::anthropic::StreamEvent| {
        Bytes::from(serde_json::to_vec(e).expect("an Anthropic event serialises"))
    };
    for data in datas {
        if *data == "[DONE]" {
            break;
        }
        match t.chunk(data) {
            Ok(events) => out.extend(events.iter().map(serialise)),
            Err(_) => return out,
        }
    }
    out.extend(t.finish().iter().map(serialise));
    let _ = t.usage();
    out
}

fuzz_target!(|data: &[u8]| {
    let Some(&first) = data.first() else {
        return;
    };
    let split = usize::from(first) * data.len() / 256;
    let whole = decode([data]);
    let (a, b) = data.split_at(split);
    assert_eq!(decode([a, b]), whole, "split at {split}");
    if data.len() <= 4096 {
        assert_eq!(decode(data.chunks(1)), whole, "fed a byte at a time");
    }

    let datas: Vec<&str> = whole.events.iter().map(|e| e.data.as_str()).collect();
    let payloads: Vec<Bytes> = datas
        .iter()
        .map(|d| Bytes::copy_from_slice(d.as_bytes()))
        .collect();
    for payload in &payloads {
        check_usage_reads(payload);
    }
    let _ = llm::assemble::openai(&payloads);
    let _ = llm::assemble::anthropic(&payloads);

    // Anthropic upstream, OpenAI client.
    let include_usage = first & 1 == 1;
    let (chunks, translator, failure) = anthropic_to_openai(&datas, include_usage);
    let (_, tokens) = llm::assemble::openai(&chunks);
    if include_usage && translator.is_done() && failure.is_none() {
        let last = chunks
            .last()
            .expect("a finished stream has its usage chunk");
        assert!(
            llm::usage::is_usage_chunk(last),
            "the usage chunk is not found"
        );
        let u = translator.usage();
        let cached = u
            .prompt_tokens_details
            .as_ref()
            .map_or(0, |d| d.cached_tokens);
        assert_eq!(
            tokens,
            Some(llm::usage::Tokens {
                input: u.prompt_tokens,
                output: u.completion_tokens,
                cached,
                cache_write: u
                    .extra
                    .get("cache_creation_input_tokens")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0),
                cache_write_1h: 0,
            }),
            "the assembled usage is not the one written"
        );
    }
    let chunk_texts: Vec<&str> = chunks
        .iter()
        .map(|c| std::str::from_utf8(c).expect("a chunk is UTF-8"))
        .collect();
    let _ = openai_to_anthropic(&chunk_texts);

    // OpenAI upstream, Anthropic client; then what it wrote, read back.
    let events = openai_to_anthropic(&datas);
    let _ = llm::assemble::anthropic(&events);
    let event_texts: Vec<&str> = events
        .iter()
        .map(|e| std::str::from_utf8(e).expect("an event is UTF-8"))
        .collect();
    let (_, _, failure) = anthropic_to_openai(&event_texts, true);
    if let Some(failure) = failure {
        assert!(
            failure.contains("is not valid JSON"),
            "an Anthropic stream we wrote is refused: {failure}"
        );
    }
});
