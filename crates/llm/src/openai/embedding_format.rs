//! Embeddings in the encoding the client asked for. The official SDKs ask for
//! `encoding_format: "base64"` (little-endian `f32`s, base64) by default, and some
//! OpenAI-compatible servers ignore it and answer floats: the TypeScript SDK then
//! decodes an array as base64 and gets an empty vector, without an error. So an
//! answer whose vectors are not in the asked-for encoding is converted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

/// The response body with every `data[].embedding` in the asked-for encoding
/// (`base64` or floats); `None` when it already is (or is not an embeddings list).
pub fn in_asked_encoding(body: &[u8], base64: bool) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    let data = value.get_mut("data")?.as_array_mut()?;
    let mut changed = false;
    for item in data {
        let Some(embedding) = item.get_mut("embedding") else {
            continue;
        };
        let converted = match (&*embedding, base64) {
            (Value::Array(floats), true) => to_base64(floats),
            (Value::String(encoded), false) => to_floats(encoded),
            _ => None,
        };
        if let Some(converted) = converted {
            *embedding = converted;
            changed = true;
        }
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&value).ok()
}

fn to_base64(floats: &[Value]) -> Option<Value> {
    let mut bytes = Vec::with_capacity(floats.len() * 4);
    for f in floats {
        #[allow(clippy::cast_possible_truncation)]
        let f = f.as_f64()? as f32;
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    Some(Value::String(STANDARD.encode(bytes)))
}

fn to_floats(encoded: &str) -> Option<Value> {
    let bytes = STANDARD.decode(encoded).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    let floats = bytes
        .chunks_exact(4)
        .map(|b| {
            let f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            serde_json::Number::from_f64(f64::from(f)).map(Value::Number)
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Value::Array(floats))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn floats_become_base64_when_asked_and_back() {
        let floats = json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0, 0.25]}], "model": "m"});
        let converted = in_asked_encoding(floats.to_string().as_bytes(), true).unwrap();
        let converted: Value = serde_json::from_slice(&converted).unwrap();
        let encoded = converted["data"][0]["embedding"].as_str().unwrap();
        let bytes = STANDARD.decode(encoded).unwrap();
        assert_eq!(bytes.len(), 12);
        assert_eq!(f32::from_le_bytes(bytes[4..8].try_into().unwrap()), -1.0);
        assert_eq!(converted["model"], "m", "the rest stays");
        // Already in the asked encoding: untouched.
        assert!(in_asked_encoding(converted.to_string().as_bytes(), true).is_none());
        assert!(in_asked_encoding(floats.to_string().as_bytes(), false).is_none());
        // And back, for a client that asked for floats.
        let back = in_asked_encoding(converted.to_string().as_bytes(), false).unwrap();
        let back: Value = serde_json::from_slice(&back).unwrap();
        assert_eq!(back["data"][0]["embedding"], json!([0.5, -1.0, 0.25]));
    }
}
