//! Legacy text completion chunks (`text_completion` payloads of
//! `POST /v1/completions`) → the `text_completion` body they add up to, and
//! its usage. Rarely streamed next to chat, so read plainly, chunk by chunk.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::usage::Tokens;

/// The whole completion a stream's chunks stand for.
pub fn completions(chunks: &[Bytes]) -> (Vec<u8>, Option<Tokens>) {
    let mut head: Option<Map<String, Value>> = None;
    // By choice index: the text so far and the finish reason.
    let mut choices: BTreeMap<u64, (String, Value)> = BTreeMap::new();
    let mut usage = None;
    for chunk in chunks {
        let Ok(Value::Object(mut c)) = serde_json::from_slice::<Value>(chunk) else {
            continue;
        };
        if let Some(u) = c.remove("usage").filter(|u| u.is_object()) {
            usage = Some(u);
        }
        let parts = match c.remove("choices") {
            Some(Value::Array(parts)) => parts,
            _ => Vec::new(),
        };
        for part in parts {
            let index = part.get("index").and_then(Value::as_u64).unwrap_or(0);
            let (text, finish) = choices.entry(index).or_insert((String::new(), Value::Null));
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
            if let Some(f) = part.get("finish_reason").filter(|f| !f.is_null()) {
                *finish = f.clone();
            }
        }
        if head.is_none() && c.contains_key("id") {
            head = Some(c);
        }
    }
    let tokens = usage.as_ref().and_then(crate::usage::of_value);
    let mut body = head.unwrap_or_default();
    body.insert("object".into(), "text_completion".into());
    body.insert(
        "choices".into(),
        choices
            .into_iter()
            .map(|(index, (text, finish))| {
                json!({"index": index, "text": text, "logprobs": null, "finish_reason": finish})
            })
            .collect(),
    );
    if let Some(u) = usage {
        body.insert("usage".into(), u);
    }
    (
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
        tokens,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_add_up_to_the_completion() {
        let chunks: Vec<Bytes> = [
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":"lo","logprobs":null,"finish_reason":"stop"}]}"#,
            r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
            "not json",
        ]
        .into_iter()
        .map(|s| Bytes::from_static(s.as_bytes()))
        .collect();
        let (body, tokens) = completions(&chunks);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["id"], "cmpl-1");
        assert_eq!(body["choices"][0]["text"], "Hello");
        assert_eq!(body["choices"][0]["finish_reason"], "stop");
        assert_eq!(body["usage"]["total_tokens"], 5);
        let tokens = tokens.unwrap();
        assert_eq!((tokens.input, tokens.output), (3, 2));
    }
}
