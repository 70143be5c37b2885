//! Checks of the media a client sends inline, before anything goes upstream: a
//! `data:` URL (OpenAI `image_url.url`, `file.file_data`), OpenAI
//! `input_audio.data`, or an Anthropic `{"type": "base64", "media_type", "data"}`
//! source must carry base64 that decodes, under a media type that is one printable
//! token. What the upstream would refuse, or worse pass on (a media type with a
//! line break becomes a header when the file is served), is refused here with the
//! message and part it is in.
//!
//! Only bodies that mention `base64` or `input_audio` are parsed, into views that
//! borrow the body; the base64 is decoded in small chunks into one buffer, so a
//! 30 MiB image costs no copy.

use std::borrow::Cow;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

/// A media part that cannot be used, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid image in {path}: {reason}.")]
pub struct InvalidMedia {
    /// `messages[0].content[1]` (a tool result's part: `…content[1].content[0]`).
    pub path: String,
    pub reason: &'static str,
}

/// The first unusable inline media part of a chat or messages request body.
pub fn check(body: &[u8]) -> Result<(), InvalidMedia> {
    static BASE64: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"base64"));
    static AUDIO: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"input_audio"));
    if BASE64.find(body).is_none() && AUDIO.find(body).is_none() {
        return Ok(());
    }
    // A body that is not JSON is refused by the request parser, with its own error.
    let Ok(body) = serde_json::from_slice::<Body<'_>>(body) else {
        return Ok(());
    };
    for (i, message) in body.messages.iter().enumerate() {
        if let Some(content) = message.content {
            check_parts(content, &format!("messages[{i}].content"))?;
        }
    }
    Ok(())
}

// Borrowed views of the body: the base64 text is checked where it lies, never
// copied (a 30 MiB image would otherwise be copied once more per request).

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    messages: Vec<Message<'a>>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    /// A string, or `{"url": …}`.
    #[serde(borrow, default)]
    image_url: Option<&'a RawValue>,
    #[serde(borrow, default)]
    file: Option<FileData<'a>>,
    #[serde(borrow, default)]
    input_audio: Option<Audio<'a>>,
    #[serde(borrow, default)]
    source: Option<Source<'a>>,
    /// Anthropic tool results carry parts of their own.
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Url<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
}

#[derive(Deserialize)]
struct FileData<'a> {
    #[serde(borrow, default)]
    file_data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Audio<'a> {
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    media_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<Cow<'a, str>>,
}

/// The parts of a content list (a string content has none to check).
fn check_parts(content: &RawValue, at: &str) -> Result<(), InvalidMedia> {
    let Ok(parts) = serde_json::from_str::<Vec<&RawValue>>(content.get()) else {
        return Ok(());
    };
    for (j, part) in parts.iter().enumerate() {
        let Ok(part) = serde_json::from_str::<Part<'_>>(part.get()) else {
            continue;
        };
        let path = format!("{at}[{j}]");
        check_part(&part).map_err(|reason| InvalidMedia {
            path: path.clone(),
            reason,
        })?;
        if let Some(inner) = part.content {
            check_parts(inner, &format!("{path}.content"))?;
        }
    }
    Ok(())
}

/// The reason a part's media cannot be used.
fn check_part(part: &Part<'_>) -> Result<(), &'static str> {
    let url = part.image_url.and_then(|raw| {
        serde_json::from_str::<Cow<'_, str>>(raw.get())
            .or_else(|_| serde_json::from_str::<Url<'_>>(raw.get()).map(|u| u.url))
            .ok()
    });
    let file = part.file.as_ref().and_then(|f| f.file_data.clone());
    for data_url in [url, file].into_iter().flatten() {
        if let Some(rest) = data_url.strip_prefix("data:") {
            check_data_url(rest)?;
        }
    }
    if let Some(data) = part.input_audio.as_ref().and_then(|a| a.data.as_deref()) {
        check_base64(data)?;
    }
    if let Some(source) = &part.source
        && source.kind.as_deref() == Some("base64")
    {
        check_media_type(source.media_type.as_deref().unwrap_or(""))?;
        check_base64(source.data.as_deref().unwrap_or(""))?;
    }
    Ok(())
}

/// `<media type>[;param…];base64,<data>` (a `data:` URL without base64 is left to
/// the upstream).
fn check_data_url(rest: &str) -> Result<(), &'static str> {
    let Some((meta, data)) = rest.split_once(',') else {
        return Err("the data: URL has no ',' before its data");
    };
    let Some(meta) = meta.strip_suffix(";base64") else {
        return Ok(());
    };
    check_media_type(meta.split(';').next().unwrap_or(""))?;
    check_base64(data)
}

fn check_media_type(media_type: &str) -> Result<(), &'static str> {
    let printable = |c: char| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\\');
    match media_type.split_once('/') {
        Some((kind, sub))
            if !kind.is_empty() && !sub.is_empty() && media_type.chars().all(printable) =>
        {
            Ok(())
        }
        _ => Err("the media type is not a type/subtype token"),
    }
}

/// Decodes `data` a chunk at a time, keeping nothing: as strict as decoding it
/// whole with the standard alphabet.
fn check_base64(data: &str) -> Result<(), &'static str> {
    const BAD: &str = "the base64 data does not decode";
    let data = data.trim().as_bytes();
    if data.is_empty() {
        return Err("the base64 data is empty");
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let mut buf = [0u8; 3 * 1024];
    let mut chunks = data.chunks(4 * 1024).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        // Whole chunks hold no padding; only the last may.
        if !last && chunk.contains(&b'=') {
            return Err(BAD);
        }
        engine.decode_slice(chunk, &mut buf).map_err(|_| BAD)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    fn openai(url: &str) -> Vec<u8> {
        json!({"model": "m", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "base64"}, {"type": "image_url", "image_url": {"url": url}}]}]})
        .to_string()
        .into_bytes()
    }

    fn anthropic(media_type: &str, data: &str) -> Vec<u8> {
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}]}]}]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn good_media_passes_in_both_apis() {
        assert_eq!(
            check(&openai(&format!("data:image/png;base64,{PNG}"))),
            Ok(())
        );
        assert_eq!(check(&openai("https://example.com/a.png")), Ok(()));
        assert_eq!(check(&anthropic("image/png", PNG)), Ok(()));
        // Long enough to span many chunks.
        let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 100_001]);
        assert_eq!(
            check(&openai(&format!("data:image/png;base64,{big}"))),
            Ok(())
        );
    }

    #[test]
    fn base64_that_does_not_decode_is_refused_naming_the_part() {
        let err = check(&openai("data:image/png;base64,not*base64!")).unwrap_err();
        assert_eq!(err.path, "messages[1].content[1]");
        assert_eq!(err.reason, "the base64 data does not decode");
        let err = check(&anthropic("image/png", "%%%")).unwrap_err();
        assert_eq!(err.path, "messages[0].content[0].content[0]");
        let padded_early = format!("{}={}", "A".repeat(4095), "A".repeat(5000));
        assert!(check(&openai(&format!("data:image/png;base64,{padded_early}"))).is_err());
        // The chunked check is exactly as strict as decoding whole.
        for data in [PNG, "AAA", "AA==", "AAA=", "A===", "QQ", "QR==", &PNG[1..]] {
            let whole = base64::engine::general_purpose::STANDARD
                .decode(data)
                .is_ok();
            assert_eq!(check_base64(data).is_ok(), whole, "{data}");
        }
    }

    #[test]
    fn a_media_type_with_a_line_break_is_refused() {
        let err = check(&openai(&format!("data:image/png\r\nx-a: 1;base64,{PNG}"))).unwrap_err();
        assert_eq!(err.reason, "the media type is not a type/subtype token");
        assert!(check(&anthropic("image/png\nx: y", PNG)).is_err());
        assert!(check(&anthropic("", PNG)).is_err());
    }
}
