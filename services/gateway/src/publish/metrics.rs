//! The gateway's metrics: the log pipeline's counters, shared by the request path
//! (queued, dropped when full) and the publisher (published, spilled, replayed),
//! and the requests themselves, recorded by the publisher from each prepared log
//! event (tokens and cost are known only there), off the request path. Names
//! follow the OpenTelemetry GenAI conventions where they define one
//! (`gen_ai.client.*`, dots as underscores), with their buckets.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use events::proto::LogEvent;

/// `gen_ai.client.operation.duration` (s), as the conventions specify.
const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// `gen_ai.client.token.usage` ({token}), as the conventions specify.
const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// `gen_ai.server.time_to_first_token` (s), as the conventions specify.
const TTFT_BUCKETS: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// The gateway's own time (s): small by design, so fine buckets.
const OVERHEAD_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// One request's labels: never a key, a body or anything a client typed but the
/// model name (at most 256 bytes, and the same one the logs show).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Call {
    pub endpoint: String,
    pub model: String,
    pub provider: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenAi {
    pub gen_ai_operation_name: &'static str,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Tokens {
    pub gen_ai_operation_name: &'static str,
    pub gen_ai_provider_name: String,
    pub gen_ai_request_model: String,
    pub gen_ai_token_type: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Model {
    pub model: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn histograms<L: Clone + std::hash::Hash + Eq>(make: fn() -> Histogram) -> Histograms<L> {
    Family::new_with_constructor(make)
}

/// The gateway's metrics, exported on `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    pub recorded: Counter,
    pub published: Counter,
    pub spilled: Counter,
    pub replayed: Counter,
    pub dropped: Counter,
    pub publish_failures: Counter,
    pub spill_bytes: Gauge,
    pub queue_depth: Gauge,
    pub requests: Family<Call, Counter>,
    pub duration: Histograms<GenAi>,
    pub ttft: Histograms<GenAi>,
    pub time_per_output_token: Histograms<GenAi>,
    pub tokens: Histograms<Tokens>,
    pub overhead: Histograms<Call>,
    pub cost: Family<Model, Counter<f64, std::sync::atomic::AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            recorded: Counter::default(),
            published: Counter::default(),
            spilled: Counter::default(),
            replayed: Counter::default(),
            dropped: Counter::default(),
            publish_failures: Counter::default(),
            spill_bytes: Gauge::default(),
            queue_depth: Gauge::default(),
            requests: Family::default(),
            duration: histograms(|| Histogram::new(DURATION_BUCKETS)),
            ttft: histograms(|| Histogram::new(TTFT_BUCKETS)),
            time_per_output_token: histograms(|| Histogram::new(TTFT_BUCKETS)),
            tokens: histograms(|| Histogram::new(TOKEN_BUCKETS)),
            overhead: histograms(|| Histogram::new(OVERHEAD_BUCKETS)),
            cost: Family::default(),
        }
    }
}

fn seconds(us: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let s = us as f64 / 1e6;
    s
}

impl Metrics {
    /// Registers every metric in `registry` (clones share the same values).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("aiprox");
        r.register(
            "events_recorded",
            "Log events queued",
            self.recorded.clone(),
        );
        r.register(
            "events_published",
            "Log events published to the bus",
            self.published.clone(),
        );
        r.register(
            "events_spilled",
            "Log events written to the spill",
            self.spilled.clone(),
        );
        r.register(
            "events_replayed",
            "Log events replayed from the spill",
            self.replayed.clone(),
        );
        r.register(
            "events_dropped",
            "Log events lost (queue and spill full)",
            self.dropped.clone(),
        );
        r.register(
            "event_publish_failures",
            "Failed publish attempts",
            self.publish_failures.clone(),
        );
        r.register_with_unit(
            "event_spill",
            "Bytes in the spill",
            Unit::Bytes,
            self.spill_bytes.clone(),
        );
        r.register(
            "event_queue_depth",
            "Log events waiting in the queue",
            self.queue_depth.clone(),
        );
        r.register(
            "gateway_requests",
            "Requests by endpoint, model, provider and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "gateway_overhead",
            "Time spent in the gateway, outside the upstream call",
            Unit::Seconds,
            self.overhead.clone(),
        );
        r.register(
            "gateway_cost_usd",
            "Cost in US dollars by model",
            self.cost.clone(),
        );
        let g = registry.sub_registry_with_prefix("gen_ai");
        g.register_with_unit(
            "client_operation_duration",
            "GenAI operation duration",
            Unit::Seconds,
            self.duration.clone(),
        );
        g.register(
            "client_token_usage",
            "Tokens used per operation",
            self.tokens.clone(),
        );
        g.register_with_unit(
            "server_time_to_first_token",
            "Time to the first token of a stream",
            Unit::Seconds,
            self.ttft.clone(),
        );
        g.register_with_unit(
            "server_time_per_output_token",
            "Time per output token after the first",
            Unit::Seconds,
            self.time_per_output_token.clone(),
        );
    }

    /// Counts one finished request from its log event.
    pub fn observe(&self, e: &LogEvent) {
        let status = u16::try_from(e.status).unwrap_or(0);
        let call = Call {
            endpoint: e.endpoint.clone(),
            model: e.requested_model.clone(),
            provider: e.provider.clone(),
            status,
        };
        self.requests.get_or_create(&call).inc();
        self.overhead
            .get_or_create(&call)
            .observe(seconds(e.latency_us.saturating_sub(e.upstream_latency_us)));
        if e.provider.is_empty() {
            return;
        }
        let operation = if e.endpoint.ends_with("embeddings") {
            "embeddings"
        } else {
            "chat"
        };
        let genai = GenAi {
            gen_ai_operation_name: operation,
            gen_ai_provider_name: e.provider.clone(),
            gen_ai_request_model: e.requested_model.clone(),
        };
        self.duration
            .get_or_create(&genai)
            .observe(seconds(e.latency_us));
        if e.ttft_us > 0 {
            self.ttft.get_or_create(&genai).observe(seconds(e.ttft_us));
            if e.output_tokens > 1 && e.latency_us > e.ttft_us {
                #[allow(clippy::cast_precision_loss)]
                let per = seconds(e.latency_us - e.ttft_us) / (e.output_tokens - 1) as f64;
                self.time_per_output_token
                    .get_or_create(&genai)
                    .observe(per);
            }
        }
        for (kind, n) in [("input", e.input_tokens), ("output", e.output_tokens)] {
            if n > 0 {
                #[allow(clippy::cast_precision_loss)]
                let n = n as f64;
                self.tokens
                    .get_or_create(&Tokens {
                        gen_ai_operation_name: operation,
                        gen_ai_provider_name: e.provider.clone(),
                        gen_ai_request_model: e.requested_model.clone(),
                        gen_ai_token_type: kind,
                    })
                    .observe(n);
            }
        }
        if e.cost_usd > 0.0 {
            self.cost
                .get_or_create(&Model {
                    model: e.requested_model.clone(),
                })
                .inc_by(e.cost_usd);
        }
    }
}
