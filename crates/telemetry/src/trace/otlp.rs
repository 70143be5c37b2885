//! OTLP trace protobuf, written straight into a buffer: how the gateway encodes its
//! request spans from what it records anyway, without building span objects first
//! (the SDK's path cost a third of the gateway's throughput; `bench/RESULTS.md`).
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto` and `collector/trace/v1/trace_service.proto`; the
//! tests decode what this writes with the generated types of `opentelemetry-proto`.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use prost::encoding::{WireType, encoded_len_varint};

/// `Span.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

/// Who, when and what a span is, before its attributes.
#[derive(Debug, Clone)]
pub struct Head<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// The name, in parts written one after the other (`["chat", " ", model]`):
    /// no string is built for it.
    pub name: &'a [&'a str],
    pub kind: Kind,
    /// Start and end, in nanoseconds since the Unix epoch ([`unix_nanos`]).
    pub start: u64,
    pub end: u64,
}

/// Encoded spans, each a `ScopeSpans.spans` field (tag 2), ready to be wrapped
/// into one export request ([`Request`]).
#[derive(Debug, Default)]
pub struct Spans {
    buf: Vec<u8>,
    count: usize,
    /// Where the open span's length goes, once it is known.
    open: usize,
}

/// Bytes a span's length takes: written in place when the span ends, as a
/// varint padded to this width (protobuf readers accept redundant varint
/// bytes), so a span is written once, not built aside and copied in. Four
/// bytes hold lengths up to 256 MiB.
const LENGTH_WIDTH: usize = 4;

impl Spans {
    /// Spans written into `buf` (emptied first): a buffer an earlier batch used,
    /// whose memory is already mapped.
    pub fn reusing(mut buf: Vec<u8>) -> Self {
        buf.clear();
        Self {
            buf,
            count: 0,
            open: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Room for about `bytes` more of spans, reserved at once.
    pub fn reserve(&mut self, bytes: usize) {
        self.buf.reserve(bytes);
    }

    /// Starts a span; its attributes follow, and [`SpanWriter::end`] closes it.
    pub fn span(&mut self, head: &Head<'_>) -> SpanWriter<'_> {
        let out = &mut self.buf;
        self.open = out.len() + 1;
        // The fixed start, written at once: the field's key, room for its length,
        // `trace_id` (1) and `span_id` (2).
        let mut start = [0; 1 + LENGTH_WIDTH + 2 + 16 + 2 + 8];
        start[0] = 2 << 3 | WireType::LengthDelimited as u8;
        start[5..7].copy_from_slice(&[1 << 3 | 2, 16]);
        start[7..23].copy_from_slice(&head.trace_id.to_bytes());
        start[23..25].copy_from_slice(&[2 << 3 | 2, 8]);
        start[25..33].copy_from_slice(&head.span_id.to_bytes());
        out.extend_from_slice(&start);
        if let Some(parent) = head.parent {
            bytes_field(out, 4, &parent.to_bytes());
        }
        field_key(out, 5, WireType::LengthDelimited);
        varint(out, head.name.iter().map(|p| p.len()).sum::<usize>() as u64);
        for part in head.name {
            out.extend_from_slice(part.as_bytes());
        }
        field_key(out, 6, WireType::Varint);
        varint(out, head.kind as u64);
        fixed64_field(out, 7, head.start);
        fixed64_field(out, 8, head.end.max(head.start));
        SpanWriter { spans: self }
    }
}

/// A time as spans hold it: nanoseconds since the Unix epoch. Taken once a span
/// and added to (a traced request's times cost hundreds of instructions as
/// `SystemTime` arithmetic).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, nanos)
}

/// A duration in nanoseconds, as span times add them.
pub fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A varint, a byte at a time: most of a span's are one byte (tags, lengths of
/// names), which prost's generic writer pays a buffer call for each.
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A field's key: its tag and wire type.
fn field_key(out: &mut Vec<u8>, tag: u32, wire_type: WireType) {
    varint(out, (u64::from(tag) << 3) | wire_type as u64);
}

fn bytes_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    field_key(out, tag, WireType::LengthDelimited);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn fixed64_field(out: &mut Vec<u8>, tag: u32, value: u64) {
    field_key(out, tag, WireType::SixtyFourBit);
    out.extend_from_slice(&value.to_le_bytes());
}

/// A length-delimited field's whole size: key, length, content.
fn field_len(tag: u32, len: usize) -> usize {
    prost::encoding::key_len(tag) + encoded_len_varint(len as u64) + len
}

/// An attribute's value (`AnyValue`).
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Float(f64),
    Strs(&'a [&'a str]),
}

impl Value<'_> {
    /// The encoded `AnyValue`'s length.
    fn len(&self) -> usize {
        match self {
            Self::Str(s) => field_len(1, s.len()),
            Self::Bool(_) => 2,
            Self::Int(i) => 1 + encoded_len_varint(*i as u64),
            Self::Float(_) => 9,
            Self::Strs(items) => field_len(5, array_len(items)),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Str(s) => bytes_field(out, 1, s.as_bytes()),
            Self::Bool(b) => {
                field_key(out, 2, WireType::Varint);
                varint(out, u64::from(*b));
            }
            Self::Int(i) => {
                field_key(out, 3, WireType::Varint);
                varint(out, *i as u64);
            }
            Self::Float(f) => fixed64_field(out, 4, f.to_bits()),
            Self::Strs(items) => {
                field_key(out, 5, WireType::LengthDelimited);
                varint(out, array_len(items) as u64);
                for s in *items {
                    // ArrayValue.values: AnyValue { string_value }.
                    field_key(out, 1, WireType::LengthDelimited);
                    varint(out, field_len(1, s.len()) as u64);
                    bytes_field(out, 1, s.as_bytes());
                }
            }
        }
    }
}

/// The most bytes of key and encoded value a [`key_value`] writes with one-byte
/// lengths (its `KeyValue` then holds at most 127).
const SHORT: usize = 127 - 4;

fn array_len(items: &[&str]) -> usize {
    items
        .iter()
        .map(|s| field_len(1, field_len(1, s.len())))
        .sum()
}

/// A `KeyValue` as field `tag` (9 in a span, 1 in a resource).
fn key_value(out: &mut Vec<u8>, tag: u32, key: &str, value: Value<'_>) {
    let any = value.len();
    // Most attributes are a short key and a short value: every length then takes
    // one byte, and the key's framing is written at once (the general path below
    // cost a traced request a tenth of what tracing adds, per the instruction
    // counts).
    if tag < 16 && key.len() + any <= SHORT {
        let len = 2 + key.len() + 2 + any;
        out.reserve(2 + len);
        out.extend_from_slice(&[(tag << 3) as u8 | 2, len as u8, 0x0a, key.len() as u8]);
        out.extend_from_slice(key.as_bytes());
        if let Value::Str(s) = value {
            // The string's framing at once too.
            out.extend_from_slice(&[0x12, any as u8, 0x0a, s.len() as u8]);
            out.extend_from_slice(s.as_bytes());
        } else {
            out.extend_from_slice(&[0x12, any as u8]);
            value.write(out);
        }
        return;
    }
    let len = field_len(1, key.len()) + field_len(2, any);
    field_key(out, tag, WireType::LengthDelimited);
    varint(out, len as u64);
    bytes_field(out, 1, key.as_bytes());
    field_key(out, 2, WireType::LengthDelimited);
    varint(out, any as u64);
    value.write(out);
}

/// One span being written: attributes, links and status, then [`Self::end`].
#[derive(Debug)]
pub struct SpanWriter<'a> {
    spans: &'a mut Spans,
}

/// Writes span attributes (`Span.attributes`): into a span, or ahead of it.
pub trait WriteAttributes {
    /// Where the attributes go.
    fn out(&mut self) -> &mut Vec<u8>;

    fn attr(&mut self, key: &str, value: Value<'_>) -> &mut Self {
        key_value(self.out(), 9, key, value);
        self
    }

    fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.attr(key, Value::Str(value))
    }

    fn int(&mut self, key: &str, value: i64) -> &mut Self {
        self.attr(key, Value::Int(value))
    }
}

/// Attributes encoded ahead, copied into any number of spans at once
/// ([`SpanWriter::attributes`]): those every span of a kind shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(Vec<u8>);

impl WriteAttributes for Attributes {
    fn out(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl WriteAttributes for SpanWriter<'_> {
    fn out(&mut self) -> &mut Vec<u8> {
        &mut self.spans.buf
    }
}

impl SpanWriter<'_> {
    /// Attributes encoded ahead.
    pub fn attributes(&mut self, attributes: &Attributes) -> &mut Self {
        self.spans.buf.extend_from_slice(&attributes.0);
        self
    }

    /// A link to another span (`Span.links`).
    pub fn link(&mut self, to: &SpanContext) -> &mut Self {
        let out = &mut self.spans.buf;
        field_key(out, 13, WireType::LengthDelimited);
        varint(out, (field_len(1, 16) + field_len(2, 8)) as u64);
        bytes_field(out, 1, &to.trace_id().to_bytes());
        bytes_field(out, 2, &to.span_id().to_bytes());
        self
    }

    /// Status `ERROR` with its description.
    pub fn error(&mut self, message: &str) -> &mut Self {
        let out = &mut self.spans.buf;
        field_key(out, 15, WireType::LengthDelimited);
        varint(out, (field_len(2, message.len()) + 2) as u64);
        bytes_field(out, 2, message.as_bytes());
        field_key(out, 3, WireType::Varint);
        varint(out, 2);
        self
    }

    /// Closes the span into its batch.
    pub fn end(self) {
        let Spans { buf, count, open } = self.spans;
        let start = *open + LENGTH_WIDTH;
        let mut len = buf.len() - start;
        for (i, byte) in buf[*open..start].iter_mut().enumerate() {
            let more = if i + 1 < LENGTH_WIDTH { 0x80 } else { 0 };
            *byte = (len & 0x7f) as u8 | more;
            len >>= 7;
        }
        *count += 1;
    }
}

/// An encoded `Resource` (or `InstrumentationScope` attributes) from key-values.
pub fn resource<'a>(attributes: impl Iterator<Item = (&'a str, Value<'a>)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in attributes {
        key_value(&mut out, 1, key, value);
    }
    out
}

/// An encoded `InstrumentationScope` named `name`.
pub fn scope(name: &str, version: &str) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(&mut out, 1, name.as_bytes());
    bytes_field(&mut out, 2, version.as_bytes());
    out
}

/// One `ExportTraceServiceRequest`, as the chunks its body is sent in: the spans of
/// every batch under one resource and one scope, after `prefix` (gRPC's frame
/// header, or nothing). The batches are sent as they were written, not copied
/// into one buffer: a buffer of a thousand requests' spans, fresh for each export,
/// cost the gateway a page fault every few requests.
#[derive(Debug)]
pub struct Request {
    /// The prefix and the message's envelope, up to its first span.
    pub head: Vec<u8>,
    pub batches: Vec<Vec<u8>>,
}

impl Request {
    pub fn new(prefix: &[u8], resource: &[u8], scope: &[u8], batches: Vec<Spans>) -> Self {
        let spans: usize = batches.iter().map(|b| b.buf.len()).sum();
        let scope_spans = field_len(1, scope.len()) + spans;
        let resource_spans = field_len(1, resource.len()) + field_len(2, scope_spans);
        let mut head = Vec::with_capacity(prefix.len() + field_len(1, resource_spans) - spans);
        head.extend_from_slice(prefix);
        field_key(&mut head, 1, WireType::LengthDelimited);
        varint(&mut head, resource_spans as u64);
        bytes_field(&mut head, 1, resource);
        field_key(&mut head, 2, WireType::LengthDelimited);
        varint(&mut head, scope_spans as u64);
        bytes_field(&mut head, 1, scope);
        Self {
            head,
            batches: batches.into_iter().map(|b| b.buf).collect(),
        }
    }

    /// The body's length, prefix included.
    pub fn len(&self) -> usize {
        self.head.len() + self.batches.iter().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {

    use opentelemetry::trace::{TraceFlags, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use prost::Message;

    use super::*;

    #[test]
    fn what_is_written_decodes_as_the_collector_reads_it() {
        let start = 1_700_000_000_000_000_000;
        let mut spans = Spans::default();
        let trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
        let linked = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let mut span = spans.span(&Head {
            trace_id,
            span_id: SpanId::from_hex("b7ad6b7169203331").unwrap(),
            parent: Some(SpanId::from_hex("0000000000000001").unwrap()),
            name: &["chat", " ", "gpt-4o"],
            kind: Kind::Client,
            start,
            end: start + 1_500_000_000,
        });
        let long = "x".repeat(300);
        // The longest value written with one-byte lengths, and one byte more.
        let edge = "y".repeat(SHORT - "edge".len() - 2);
        let past = "z".repeat(SHORT - "past".len() - 1);
        let mut shared = Attributes::default();
        shared.str("gen_ai.request.model", "gpt-4o");
        span.attributes(&shared)
            .str("long", &long)
            .str("edge", &edge)
            .str("past", &past)
            .int("gen_ai.usage.input_tokens", 300)
            .int("negative", -5)
            .attr("t", Value::Float(0.25))
            .attr("stream", Value::Bool(true))
            .attr(
                "gen_ai.response.finish_reasons",
                Value::Strs(&["stop", "length"]),
            )
            .link(&linked)
            .error("upstream said no");
        span.end();
        spans
            .span(&Head {
                trace_id,
                span_id: SpanId::from_hex("0000000000000001").unwrap(),
                parent: None,
                name: &["POST /v1/chat/completions"],
                kind: Kind::Server,
                start,
                end: start,
            })
            .end();
        assert_eq!(spans.len(), 2);
        let resource = resource([("service.name", Value::Str("aiprox-gateway"))].into_iter());
        let request = Request::new(&[], &resource, &scope("aiprox", "0.1.0"), vec![spans]);
        let len = request.len();
        let bytes = [request.head, request.batches.concat()].concat();
        assert_eq!(bytes.len(), len);

        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let rs = &decoded.resource_spans[0];
        let service = &rs.resource.as_ref().unwrap().attributes[0];
        assert_eq!(service.key, "service.name");
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "aiprox");
        assert_eq!(ss.scope.as_ref().unwrap().version, "0.1.0");
        let [call, server] = ss.spans.as_slice() else {
            panic!("two spans");
        };
        assert_eq!(call.trace_id, trace_id.to_bytes());
        assert_eq!(call.parent_span_id, server.span_id);
        assert!(server.parent_span_id.is_empty());
        assert_eq!(call.name, "chat gpt-4o");
        assert_eq!(call.kind, 3);
        assert_eq!(
            call.end_time_unix_nano - call.start_time_unix_nano,
            1_500_000_000
        );
        let value = |key: &str| {
            call.attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| kv.value.clone())
                .and_then(|v| v.value)
                .unwrap()
        };
        assert_eq!(
            value("gen_ai.request.model"),
            any_value::Value::StringValue("gpt-4o".into())
        );
        assert_eq!(
            value("gen_ai.usage.input_tokens"),
            any_value::Value::IntValue(300)
        );
        assert_eq!(value("negative"), any_value::Value::IntValue(-5));
        assert_eq!(value("long"), any_value::Value::StringValue(long));
        assert_eq!(value("edge"), any_value::Value::StringValue(edge));
        assert_eq!(value("past"), any_value::Value::StringValue(past));
        assert_eq!(value("t"), any_value::Value::DoubleValue(0.25));
        assert_eq!(value("stream"), any_value::Value::BoolValue(true));
        let any_value::Value::ArrayValue(reasons) = value("gen_ai.response.finish_reasons") else {
            panic!("an array");
        };
        let reasons: Vec<_> = reasons.values.into_iter().filter_map(|v| v.value).collect();
        assert_eq!(
            reasons,
            [
                any_value::Value::StringValue("stop".into()),
                any_value::Value::StringValue("length".into())
            ]
        );
        assert_eq!(call.links[0].trace_id, linked.trace_id().to_bytes());
        assert_eq!(call.links[0].span_id, linked.span_id().to_bytes());
        let status = call.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (2, "upstream said no")
        );
        assert_eq!(server.kind, 2);
        assert!(server.status.is_none());
    }
}
