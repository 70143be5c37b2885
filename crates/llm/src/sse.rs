//! Server-Sent Events: an incremental decoder for upstream streams and the frames
//! aiprox writes to its clients.
//!
//! The decoder follows the WHATWG event-stream rules that matter for LLM APIs: lines
//! end in `\n`, `\r\n` or `\r`; `data:` lines of one event are joined with `\n`; a
//! blank line dispatches the event; lines starting with `:` are comments. Input may be
//! split anywhere, even inside a UTF-8 character.

use bytes::{Bytes, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field, when the stream names its events (Anthropic does, OpenAI
    /// does not).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Errors a stream can have that are the stream's fault, not ours.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SseError {
    #[error("event stream line is not valid UTF-8")]
    InvalidUtf8,
    #[error("event stream line longer than {0} bytes")]
    LineTooLong(usize),
}

/// Incremental decoder: feed it bytes as they arrive, take events out.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    /// How far `buf` has already been scanned for a line end.
    scanned: usize,
    /// A `\r` ended the previous line; a `\n` right after it belongs to that line end.
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    max_line: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder that refuses lines over 16 MiB (a base64 image in one chunk fits).
    pub fn new() -> Self {
        Self::with_max_line(16 * 1024 * 1024)
    }

    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            scanned: 0,
            skip_lf: false,
            event: None,
            data: String::new(),
            has_data: false,
            max_line,
        }
    }

    /// Appends bytes and returns the events they complete.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, SseError> {
        let mut out = Vec::new();
        self.feed_with(chunk, |e| out.push(e))?;
        Ok(out)
    }

    /// Appends bytes and calls `emit` for each event they complete.
    pub fn feed_with(
        &mut self,
        mut chunk: &[u8],
        mut emit: impl FnMut(Event),
    ) -> Result<(), SseError> {
        if self.skip_lf && !chunk.is_empty() {
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(chunk);
        loop {
            let Some(pos) = self.buf[self.scanned..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|p| p + self.scanned)
            else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_line {
                    return Err(SseError::LineTooLong(self.max_line));
                }
                return Ok(());
            };
            let line = self.buf.split_to(pos + 1);
            self.scanned = 0;
            let line_end = line[pos];
            let line = &line[..pos];
            if line_end == b'\r' {
                match self.buf.first() {
                    Some(b'\n') => {
                        let _ = self.buf.split_to(1);
                    }
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            if let Some(event) = self.line(line)? {
                emit(event);
            }
        }
    }

    /// Ends the input. An event not closed by a blank line is dispatched, as a
    /// lenient reading of streams cut right after their last `data:` line.
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        if !self.buf.is_empty() {
            let rest = self.buf.split();
            self.scanned = 0;
            if let Some(event) = self.line(&rest)? {
                return Ok(Some(event));
            }
        }
        Ok(self.dispatch())
    }

    /// Whether bytes of an unfinished event are pending.
    pub fn is_mid_event(&self) -> bool {
        !self.buf.is_empty() || self.has_data || self.event.is_some()
    }

    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, SseError> {
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        let (field, value) = match line.find(':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` mean nothing to LLM streams.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<Event> {
        if !self.has_data {
            self.event = None;
            return None;
        }
        self.has_data = false;
        Some(Event {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
        })
    }
}

/// `data: <payload>\n\n`, the OpenAI frame.
pub fn data_frame(payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `event: <name>\ndata: <payload>\n\n`, the Anthropic frame.
pub fn event_frame(name: &str, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + name.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The OpenAI end-of-stream frame.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn decodes_split_anywhere_identically() {
        let input = "event: a\r\ndata: {\"x\": 1 }\r\n\r\n: comment\n\ndata:  two\ndata:three\n\ndata: é\r\rdata: [DONE]\n\n";
        let whole = Decoder::new().feed(input.as_bytes()).unwrap();
        assert_eq!(
            whole,
            vec![
                ev(Some("a"), "{\"x\": 1 }"),
                ev(None, " two\nthree"),
                ev(None, "é"),
                ev(None, "[DONE]"),
            ]
        );
        for split in 1..input.len() {
            let (a, b) = input.as_bytes().split_at(split);
            let mut d = Decoder::new();
            let mut got = d.feed(a).unwrap();
            got.extend(d.feed(b).unwrap());
            assert_eq!(got, whole, "split at {split}");
            assert!(!d.is_mid_event());
        }
        // Byte at a time.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in input.as_bytes() {
            got.extend(d.feed(std::slice::from_ref(b)).unwrap());
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn finish_flushes_an_unterminated_event() {
        let mut d = Decoder::new();
        assert!(d.feed(b"data: {\"a\":1}").unwrap().is_empty());
        assert!(d.is_mid_event());
        assert_eq!(d.finish().unwrap(), Some(ev(None, "{\"a\":1}")));
    }

    #[test]
    fn refuses_invalid_utf8_and_overlong_lines() {
        assert_eq!(
            Decoder::new().feed(b"data: \xff\n\n"),
            Err(SseError::InvalidUtf8)
        );
        assert_eq!(
            Decoder::with_max_line(8).feed(b"data: 0123456789"),
            Err(SseError::LineTooLong(8))
        );
    }

    #[test]
    fn frames() {
        assert_eq!(&data_frame(b"{}")[..], b"data: {}\n\n");
        assert_eq!(
            &event_frame("ping", b"{}")[..],
            b"event: ping\ndata: {}\n\n"
        );
    }
}
