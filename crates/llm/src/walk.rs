//! A walk over JSON text by its structure: the members of an object and the
//! elements of an array as raw bytes, values passed over (strings, nesting) without
//! being interpreted, so picking the one or two members a reader needs costs
//! little more than finding them. Anything the walk would have to interpret (a name
//! with an escape, malformed text) ends it with `None`, and the caller reads the
//! JSON properly instead. The usage reader ([`crate::usage`]), stream assembly
//! ([`crate::assemble`]) and the trace facts ([`crate::trace_facts`]) walk with it.

/// The members of the JSON object at the start of a slice, one at a time, as raw
/// (name, value) bytes. Values are passed over by their structure (strings,
/// nesting), never interpreted, so picking the one or two members a reader needs
/// costs little more than finding them. A name holding an escape, or anything
/// malformed, ends the walk with `None`: the caller then reads the JSON properly.
pub(crate) struct Members<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Members<'a> {
    /// The object at the start of `b` (after any whitespace); `None` when `b` does
    /// not start with one.
    pub(crate) fn of(b: &'a [u8]) -> Option<Self> {
        let at = skip_space(b, 0);
        (b.get(at) == Some(&b'{')).then_some(Self { b, at: at + 1 })
    }

    /// The next member, or `Some(None)` once the object is closed.
    pub(crate) fn next(&mut self) -> Option<Option<(&'a [u8], &'a [u8])>> {
        let b = self.b;
        let mut i = skip_space(b, self.at);
        match *b.get(i)? {
            b'}' => {
                self.at = i + 1;
                return Some(None);
            }
            b',' => i = skip_space(b, i + 1),
            _ => {}
        }
        if *b.get(i)? != b'"' {
            return None;
        }
        let (end, escapes) = string_end(b, i + 1)?;
        if escapes {
            return None;
        }
        let name = &b[i + 1..end];
        i = skip_space(b, end + 1);
        if *b.get(i)? != b':' {
            return None;
        }
        let start = skip_space(b, i + 1);
        let stop = value_end(b, start)?;
        self.at = stop;
        Some(Some((name, &b[start..stop])))
    }

    /// Where the object ends, once [`Members::next`] has said it is closed.
    pub(crate) fn end(&self) -> usize {
        self.at
    }
}

/// Past the whitespace at `i`.
pub(crate) fn skip_space(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// The closing quote of the string whose text starts at `from`, and whether the
/// text holds escapes.
pub(crate) fn string_end(b: &[u8], from: usize) -> Option<(usize, bool)> {
    let mut i = from;
    let mut escapes = false;
    loop {
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b[i] == b'"' {
            return Some((i, escapes));
        }
        escapes = true;
        i += 2;
    }
}

/// The end of the value starting at `start`.
pub(crate) fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match *b.get(start)? {
        b'"' => string_end(b, start + 1).map(|(end, _)| end + 1),
        open @ (b'{' | b'[') => {
            // Only the value's own kind of bracket counts: in valid JSON the other
            // kind is balanced inside it. Found by a vectorised search.
            let close = if open == b'{' { b'}' } else { b']' };
            // Most values nest nothing: their end is the first closing bracket, if
            // no escape or nested bracket precedes it and it lies outside strings
            // (an even number of quotes before it).
            let body = b.get(start + 1..)?;
            if let Some(at) = memchr::memchr(close, body) {
                let inner = &body[..at];
                if memchr::memchr2(open, b'\\', inner).is_none()
                    && memchr::memchr_iter(b'"', inner).count().is_multiple_of(2)
                {
                    return Some(start + at + 2);
                }
            }
            let mut depth = 0usize;
            let mut i = start;
            loop {
                i += memchr::memchr3(b'"', open, close, b.get(i..)?)?;
                match b[i] {
                    b'"' => {
                        i = string_end(b, i + 1)?.0 + 1;
                        continue;
                    }
                    c if c == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                }
                i += 1;
            }
        }
        _ => {
            let len = b[start..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace())
                .unwrap_or(b.len() - start);
            (len > 0).then_some(start + len)
        }
    }
}
