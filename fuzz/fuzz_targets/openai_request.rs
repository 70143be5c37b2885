//! An OpenAI client's request body, through everything the gateway does to it
//! before it goes upstream: the raw-preserving chat and embeddings parses (and
//! what is done with a parsed body: the `model` rewrite, `include_usage`, the last
//! user text), the inline media check, the media cut out for the log, and the
//! strict typed read with its translation to an Anthropic Messages request.
//!
//! Invariants: nothing panics; the upstream body is the client's with only `model`
//! changed; asking for usage keeps the body a chat request; a translated request
//! serialises; a body with media cut out is still JSON.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm::openai::types::ChatCompletionRequest;
use llm::openai::{ChatRequest, EmbeddingsRequest};
use serde_json::Value;

/// The upstream body must be the client's, member for member, with `model` set.
fn check_upstream_body(client: &[u8], upstream: &[u8]) {
    llm::raw::parse_object(upstream).expect("the upstream body is a JSON object");
    // A number past f64's range is valid JSON text that a `Value` cannot hold.
    let Ok(mut expected) = serde_json::from_slice::<Value>(client) else {
        return;
    };
    expected["model"] = "upstream-x".into();
    let out: Value = serde_json::from_slice(upstream).expect("the upstream body reads");
    assert_eq!(out, expected, "the upstream body changed more than model");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ChatRequest::parse(data) {
        check_upstream_body(data, &req.upstream_body("upstream-x"));
        let _ = req.last_user_text();
        let mut asked = req.clone();
        asked.request_usage();
        assert!(asked.include_usage);
        let again = ChatRequest::parse(&asked.upstream_body("m"))
            .expect("a chat request asked for usage is still one");
        assert!(again.include_usage);
    }
    if let Ok(req) = EmbeddingsRequest::parse(data) {
        check_upstream_body(data, &req.upstream_body("upstream-x"));
        if let Ok(input) = req.input() {
            let _ = input.items();
        }
        let _ = req.base64();
        let _ = req.dimensions();
    }
    let _ = llm::inline_media::check(data);
    let body = Bytes::copy_from_slice(data);
    let (logged, media) = llm::media::extract(&body);
    if !media.is_empty() {
        serde_json::from_slice::<Value>(&logged).expect("a body with media cut out is JSON");
    }
    if let Ok(typed) = llm::typed_body::from_slice::<ChatCompletionRequest>(data)
        && let Ok(messages) = llm::translate::chat_to_messages::request(typed, "claude-x", 1024)
    {
        serde_json::to_vec(&messages).expect("a translated request serialises");
    }
});
