//! Inputs that crashed a fuzz target (`fuzz/`, run by `scripts/fuzz.sh`), each fed
//! exactly as it was found through the function that failed. See `fuzz/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::sse::Decoder;
use llm::translate::chat_to_messages::StreamTranslator;
use llm::usage::{Tokens, of_body};

/// The `data:` payloads of an event stream.
fn payloads(stream: &[u8]) -> Vec<String> {
    let mut d = Decoder::new();
    let mut events = d.feed(stream).unwrap();
    events.extend(d.finish().unwrap());
    events.into_iter().map(|e| e.data).collect()
}

/// sse_frames: token counts that add up past `u64::MAX` (an Anthropic upstream's
/// `input_tokens` plus its cache reads) overflowed the OpenAI usage; counts now
/// saturate.
#[test]
fn anthropic_counts_past_u64_max_saturate_in_the_openai_usage() {
    let stream = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"x\",\"content\":[],\"usage\":{\"input_tokens\":18446744073709551615,\"cache_read_input_tokens\":1,\"output_tokens\":0}}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let mut t = StreamTranslator::new(true, 0);
    let mut chunks = Vec::new();
    for data in payloads(stream) {
        chunks.extend(t.event(&data).unwrap());
    }
    assert!(t.is_done());
    let usage = chunks.last().unwrap().usage.as_ref().unwrap();
    assert_eq!(usage.prompt_tokens, u64::MAX);
    assert_eq!(usage.total_tokens, u64::MAX);
    assert_eq!(
        usage.prompt_tokens_details.as_ref().unwrap().cached_tokens,
        1
    );
}

/// sse_frames: the same sum in the usage read of a body or chunk (the log's and
/// pricing's) overflowed too.
#[test]
fn usage_counts_past_u64_max_saturate_when_read() {
    let stream =
        b"data: {\"usage\":{\"input_tokens\":18446744073709551615,\"cache_read_input_tokens\":1}}\n\n";
    let [data] = &payloads(stream)[..] else {
        panic!("one event")
    };
    assert_eq!(
        of_body(data.as_bytes()),
        Some(Tokens {
            input: u64::MAX,
            output: 0,
            cached: 1,
            cache_write: 0,
            cache_write_1h: 0,
        })
    );
}
