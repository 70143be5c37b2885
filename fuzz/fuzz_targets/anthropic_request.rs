//! An Anthropic client's `POST /v1/messages` body, through what the gateway does
//! to it: the routing parse (`RawRequest`), the inline media check, the media cut
//! out for the log, and, for a provider that is not Anthropic, the strict typed
//! read, its translation to an OpenAI chat request and that request's own parse.
//!
//! Invariants: nothing panics; a translated request serialises and is a chat
//! request the gateway accepts (it parses it again before sending it upstream);
//! a body with media cut out is still JSON.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use llm::anthropic::{MessagesRequest, RawRequest};
use llm::openai::ChatRequest;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = RawRequest::parse(data) {
        assert!(!req.model.is_empty());
    }
    let _ = llm::inline_media::check(data);
    let body = Bytes::copy_from_slice(data);
    let (logged, media) = llm::media::extract(&body);
    if !media.is_empty() {
        serde_json::from_slice::<Value>(&logged).expect("a body with media cut out is JSON");
    }
    if let Ok(typed) = llm::typed_body::from_slice::<MessagesRequest>(data)
        && let Ok(chat) = llm::translate::messages_to_chat::request(typed, "gpt-x")
    {
        let bytes = serde_json::to_vec(&chat).expect("a translated request serialises");
        let parsed = ChatRequest::parse(&bytes)
            .unwrap_or_else(|e| panic!("a translated request is refused: {e}"));
        assert_eq!(parsed.model, "gpt-x");
        assert_eq!(parsed.stream, chat.stream == Some(true));
    }
});
