//! Messages ready to publish ([`Outbound`]) and the packing of log events into
//! `LogBatch` messages: one JetStream message, and one acknowledgement, for many
//! requests; each named by its first and last request so a re-publish is dropped.

use bytes::Bytes;
use events::proto::LogEvent;
use events::subjects;
use prost::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Subject {
    Log,
    Media,
}

impl Subject {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Log => subjects::LOG,
            Self::Media => subjects::MEDIA,
        }
    }

    /// The subject a name spells (a spill file names it).
    pub(super) fn of_name(name: &str) -> Option<Self> {
        [Self::Log, Self::Media]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// An event ready to publish (media still carrying its bytes; logs batched).
#[derive(Debug, Clone)]
pub(super) struct Outbound {
    pub subject: Subject,
    pub msg_id: String,
    pub traceparent: String,
    pub payload: Bytes,
    /// Log events carried (a batch carries several; media none).
    pub events: u32,
}

/// Most log events in one message: bounded so a batch stays far below the bus's
/// payload limit and a replay re-sends little.
const BATCH_EVENTS: usize = 64;

/// Packs log events into `LogBatch` messages, appended to `out`, each encoded once
/// straight into its message: the encoding of a `LogBatch` is its events'
/// encodings, each as field 1.
pub(super) fn batch_logs(logs: &[LogEvent], max_bytes: usize, out: &mut Vec<Outbound>) {
    let mut start = 0;
    let mut lens = Vec::with_capacity(BATCH_EVENTS);
    while start < logs.len() {
        // The batch: up to BATCH_EVENTS events, cut before the byte bound (one
        // event alone may pass it).
        let mut size = 0;
        let mut end = start;
        lens.clear();
        while end < logs.len() && end - start < BATCH_EVENTS {
            let len = logs[end].encoded_len();
            let framed = 1 + prost::encoding::encoded_len_varint(len as u64) + len;
            if end > start && size + framed > max_bytes {
                break;
            }
            size += framed;
            lens.push(len);
            end += 1;
        }
        let batch = &logs[start..end];
        // Sized once: growing it would copy the batch's bodies again and again.
        let mut payload = Vec::with_capacity(size);
        for (event, &len) in batch.iter().zip(&lens) {
            prost::encoding::encode_key(
                1,
                prost::encoding::WireType::LengthDelimited,
                &mut payload,
            );
            prost::encoding::encode_varint(len as u64, &mut payload);
            event.encode_raw(&mut payload);
        }
        let (first, last) = (&batch[0], &batch[batch.len() - 1]);
        let request_id = uuid::Uuid::try_parse(&first.request_id).unwrap_or_default();
        out.push(Outbound {
            subject: Subject::Log,
            msg_id: format!(
                "logs-{}-{}-{}",
                first.request_id,
                last.request_id,
                batch.len()
            ),
            // The first traced event's context, else the first request's.
            traceparent: batch
                .iter()
                .find(|e| !e.traceparent.is_empty())
                .map_or_else(|| traceparent(request_id), |e| e.traceparent.clone()),
            payload: Bytes::from(payload),
            events: u32::try_from(batch.len()).unwrap_or(u32::MAX),
        });
        start = end;
    }
}

/// The W3C trace context of a request that was not traced: its id as the trace id,
/// the second half as the parent span, flagged not sampled (no span of it exists,
/// so a consumer makes no link to it).
pub(super) fn traceparent(id: uuid::Uuid) -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    let simple = id.simple().encode_lower(&mut buf);
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    out.push_str(simple);
    out.push('-');
    out.push_str(&simple[16..]);
    out.push_str("-00");
    out
}

#[cfg(test)]
pub(super) mod tests {
    use events::proto::LogBatch;

    use super::*;

    pub fn media(i: usize) -> Outbound {
        Outbound {
            subject: Subject::Media,
            msg_id: format!("media-{i}"),
            traceparent: String::new(),
            payload: Bytes::from(vec![1, 2, 3]),
            events: 0,
        }
    }

    fn event(i: usize) -> LogEvent {
        LogEvent {
            request_id: uuid::Uuid::from_u128(i as u128).hyphenated().to_string(),
            request_body: Bytes::from(vec![b'x'; 100]),
            ..LogEvent::default()
        }
    }

    #[test]
    fn log_events_are_batched_and_decode_back_in_order() {
        let events: Vec<LogEvent> = (0..150).map(event).collect();
        let mut batched = vec![media(1)];
        batch_logs(&events, usize::MAX, &mut batched);
        let kinds: Vec<(Subject, u32)> = batched.iter().map(|r| (r.subject, r.events)).collect();
        assert_eq!(
            kinds,
            [
                (Subject::Media, 0),
                (Subject::Log, 64),
                (Subject::Log, 64),
                (Subject::Log, 22)
            ]
        );
        let decoded: Vec<LogEvent> = batched
            .iter()
            .filter(|r| r.subject == Subject::Log)
            .flat_map(|r| LogBatch::decode(r.payload.clone()).unwrap().events)
            .collect();
        assert_eq!(decoded, events);
        // Each batch is named by its first and last request and traced as the first.
        let first = &batched[1];
        assert_eq!(
            first.msg_id,
            format!("logs-{}-{}-64", events[0].request_id, events[63].request_id)
        );
        let trace = uuid::Uuid::from_u128(0).simple().to_string();
        assert_eq!(first.traceparent, format!("00-{trace}-{}-00", &trace[16..]));
        // The byte bound cuts batches too.
        let mut cut = Vec::new();
        batch_logs(&events[..10], 300, &mut cut);
        assert!(
            cut.iter().all(|r| r.payload.len() <= 300),
            "a batch past the byte bound"
        );
        assert!(cut.len() > 1);
        assert_eq!(cut.iter().map(|r| r.events).sum::<u32>(), 10);
    }
}
