//! Base64 media cut out of request bodies before they are logged.
//!
//! Images, audio and files sent inline would be most of the request log's bytes,
//! and a conversation sends the same image again with every turn. So each part is
//! cut out of the body ([`extract`]) and handed back as a [`Media`] named by its
//! SHA-256, to be stored once, and the body keeps only an `aiprox-media://<sha256>`
//! reference ([`reference()`]) in its place. Both APIs' forms are recognised: OpenAI
//! `data:` URLs and `input_audio`, Anthropic `base64` sources.

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One media part cut out of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub sha256: String,
    pub mime: String,
    pub data: Bytes,
}

/// The reference that replaces a media part in a logged body.
pub fn reference(sha256: &str) -> String {
    format!("aiprox-media://{sha256}")
}

/// Cuts every base64 media part out of a JSON body: OpenAI `data:` URLs
/// (`image_url.url`, `file_data`), OpenAI `input_audio.data`, and Anthropic
/// `{"type": "base64", "media_type", "data"}` sources. Each is replaced by its
/// `aiprox-media://<sha256>` reference. A body with none comes back as it was,
/// without being re-serialised.
pub fn extract(body: &Bytes) -> (Bytes, Vec<Media>) {
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
    reference(&sha)
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
    use serde_json::json;

    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    #[test]
    fn media_is_cut_out_of_both_apis_and_deduplicated() {
        let openai = Bytes::from(
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]}]})
            .to_string(),
        );
        let (body, media) = extract(&openai);
        assert_eq!(media.len(), 1);
        assert_eq!(media[0].mime, "image/png");
        assert_eq!(media[0].data.len(), 70);
        let body: Value = serde_json::from_slice(&body).unwrap();
        let reference = reference(&media[0].sha256);
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
        let (body, media2) = extract(&anthropic);
        assert_eq!(media2, media);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["messages"][0]["content"][0]["source"]["data"],
            reference.as_str()
        );

        let plain = Bytes::from_static(br#"{"messages": [{"role": "user", "content": "hi"}]}"#);
        let (same, none) = extract(&plain);
        assert!(none.is_empty());
        assert_eq!(same, plain);
    }
}
