//! Turns one captured [`Exchange`] into its `LogEvent` and `MediaEvent`s: media
//! cut out of the request, a stream assembled into the whole response, tokens read
//! and priced. The CPU-heavy half of the log pipeline, done off the request path.

use bytes::Bytes;
use events::proto::{LogEvent, MediaEvent, MediaRef};
use prost::Message;

use super::batch::{Outbound, Subject, traceparent};
use super::spans;
use crate::capture::Exchange;
use crate::stream::Dialect;
use telemetry::trace::otlp::Spans;

/// The price of the exchange's upstream call ([`config_model::prices::lookup`],
/// over the prices of the snapshot it was routed on).
fn price(x: &Exchange) -> Option<config_model::prices::Price> {
    config_model::prices::lookup(
        &x.prices,
        &x.provider,
        &x.requested_model,
        &x.upstream_model,
    )
}

/// Builds the log event of one exchange (media cut out of the request, a stream
/// assembled, tokens and cost computed); its media events go to `media`.
/// A sampled request's spans are encoded into `spans`.
pub(super) fn prepare(x: Exchange, media: &mut Vec<Outbound>, spans: &mut Spans) -> LogEvent {
    let (request_body, mut found) = llm::media::extract(&x.request_body);
    for m in &mut found {
        m.mime = events::stored_media_type(&m.mime);
    }
    let (response_body, tokens) = response_and_tokens(&x);
    let tokens = tokens.unwrap_or_default();
    let cost = price(&x).map_or(0.0, |p| {
        p.cost(config_model::prices::Usage {
            input: tokens.input,
            output: tokens.output,
            cached: tokens.cached,
            cache_write: tokens.cache_write,
            cache_write_1h: tokens.cache_write_1h,
        })
    });
    // Written straight, not through `fmt`: this runs for every request.
    let request_id = x
        .request_id
        .hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned();
    let refs = found
        .iter()
        .map(|m| MediaRef {
            sha256: m.sha256.clone(),
            mime: m.mime.clone(),
            size: m.data.len() as u64,
        })
        .collect();
    let facts = spans::Facts::of(&x);
    let mut log = LogEvent {
        request_id: request_id.clone(),
        received_at_us: x.received_at_us,
        endpoint: x.endpoint.to_owned(),
        client_key_id: x.key_id.as_deref().unwrap_or_default().to_owned(),
        source: x.source.to_owned(),
        requested_model: x.requested_model,
        provider: x.provider,
        upstream_model: x.upstream_model,
        stream: x.stream,
        status: u32::from(x.status),
        error_kind: x.error_kind,
        error_message: x.error_message,
        input_tokens: tokens.input,
        output_tokens: tokens.output,
        cached_tokens: tokens.cached,
        cache_write_tokens: tokens.cache_write,
        cost_usd: cost,
        latency_us: x.latency_us,
        ttft_us: x.ttft_us,
        upstream_latency_us: x.upstream_latency_us,
        request_body,
        response_body,
        media: refs,
        traceparent: String::new(),
        failed_attempts: x.failed_attempts,
        omitted_tools: x.omitted_tools,
    };
    if let (Some(facts), Some(requests)) = (facts, telemetry::trace::requests::requests()) {
        log.traceparent = spans::record(requests, spans, &facts, &log);
    }
    // The media's trace context: the request's, or made only when there is media.
    let media_traceparent = match (found.is_empty(), log.traceparent.is_empty()) {
        (true, _) => String::new(),
        (false, true) => traceparent(x.request_id),
        (false, false) => log.traceparent.clone(),
    };
    for m in found {
        media.push(Outbound {
            subject: Subject::Media,
            msg_id: format!("media-{}", m.sha256),
            traceparent: media_traceparent.clone(),
            payload: Bytes::from(
                MediaEvent {
                    sha256: m.sha256,
                    mime: m.mime,
                    size: m.data.len() as u64,
                    data: m.data,
                    object_name: String::new(),
                    request_id: request_id.clone(),
                }
                .encode_to_vec(),
            ),
            events: 0,
        });
    }
    log
}

/// The response as logged (a stream assembled whole) and its token counts.
fn response_and_tokens(x: &Exchange) -> (Bytes, Option<llm::usage::Tokens>) {
    if !x.streamed {
        return (
            x.response_body.clone(),
            llm::usage::of_body(&x.response_body),
        );
    }
    match x.dialect {
        Dialect::OpenAi if x.endpoint == "/v1/completions" => {
            let (whole, tokens) = llm::assemble::completions(&x.frames);
            (Bytes::from(whole), tokens)
        }
        Dialect::OpenAi => {
            let (whole, tokens) = llm::assemble::openai(&x.frames);
            (Bytes::from(whole), tokens)
        }
        Dialect::Responses => {
            let (whole, tokens) = llm::assemble::responses(&x.frames);
            (Bytes::from(whole), tokens)
        }
        Dialect::Anthropic => {
            let whole = llm::assemble::anthropic(&x.frames);
            let tokens = llm::usage::of_value(&whole);
            match serde_json::to_vec(&whole) {
                Ok(bytes) => (Bytes::from(bytes), tokens),
                Err(e) => {
                    tracing::error!(error = %e, "assembled stream not serialisable; logged without its body");
                    (Bytes::new(), tokens)
                }
            }
        }
    }
}
