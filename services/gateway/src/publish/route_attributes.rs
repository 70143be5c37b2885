//! The attributes a GenAI span shares with every other call of its route: its
//! operation, provider, models, stream flag and server. Encoded once per route and
//! thread, then copied into each span whole: written one by one, these eight were
//! a tenth of what tracing a request cost (`bench/RESULTS.md`, "Tracing").

use std::cell::RefCell;
use std::sync::Arc;

use telemetry::trace::otlp::{Attributes, Value, WriteAttributes};

use crate::providers::Peer;

/// One upstream call, as far as its shared attributes go.
pub(super) struct Route<'a> {
    pub operation: &'static str,
    pub peer: Option<&'a Arc<Peer>>,
    pub provider: &'a str,
    pub upstream_model: &'a str,
    pub requested_model: &'a str,
    pub stream: bool,
}

/// A route's attributes, and what they were made of. The peer is held, so its
/// address cannot be another provider's while it is cached.
struct Encoded {
    operation: &'static str,
    peer: Option<Arc<Peer>>,
    provider: String,
    upstream_model: String,
    requested_model: String,
    stream: bool,
    attributes: Attributes,
}

impl Encoded {
    fn is(&self, route: &Route<'_>) -> bool {
        let same_peer = match (&self.peer, route.peer) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_peer
            && self.stream == route.stream
            && self.operation == route.operation
            && self.upstream_model == route.upstream_model
            && self.requested_model == route.requested_model
            && self.provider == route.provider
    }
}

/// Routes remembered per thread, at most (then forgotten all at once).
const MOST_ROUTES: usize = 64;

thread_local! {
    static ENCODED: RefCell<Vec<Encoded>> = const { RefCell::new(Vec::new()) };
}

/// Calls `write` with the attributes of `route`, encoded now if this thread has
/// not seen it.
pub(super) fn with(route: &Route<'_>, write: impl FnOnce(&Attributes)) {
    ENCODED.with_borrow_mut(|known| {
        let at = match known.iter().position(|e| e.is(route)) {
            Some(at) => at,
            None => {
                if known.len() >= MOST_ROUTES {
                    known.clear();
                }
                known.push(encode(route));
                known.len() - 1
            }
        };
        write(&known[at].attributes);
    });
}

fn encode(route: &Route<'_>) -> Encoded {
    let mut attributes = Attributes::default();
    let system = route.peer.map_or("openai", |p| p.system);
    attributes
        .str("gen_ai.operation.name", route.operation)
        .str("gen_ai.provider.name", system)
        .str("gen_ai.request.model", route.upstream_model)
        .str("aiprox.provider", route.provider)
        .str("aiprox.requested_model", route.requested_model)
        .attr("aiprox.stream", Value::Bool(route.stream));
    if let Some(peer) = route.peer {
        if let Some(address) = &peer.address {
            attributes.str("server.address", address);
        }
        if let Some(port) = peer.port {
            attributes.int("server.port", i64::from(port));
        }
    }
    Encoded {
        operation: route.operation,
        peer: route.peer.cloned(),
        provider: route.provider.to_owned(),
        upstream_model: route.upstream_model.to_owned(),
        requested_model: route.requested_model.to_owned(),
        stream: route.stream,
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(url: &str) -> Arc<Peer> {
        Arc::new(Peer::of("openai", &url::Url::parse(url).unwrap()))
    }

    fn route<'a>(model: &'a str, peer: &'a Arc<Peer>) -> Route<'a> {
        Route {
            operation: "chat",
            peer: Some(peer),
            provider: "mock",
            upstream_model: model,
            requested_model: "gpt4",
            stream: false,
        }
    }

    fn seen(route: &Route<'_>) -> Attributes {
        let mut seen = None;
        with(route, |a| seen = Some(a.clone()));
        seen.unwrap()
    }

    #[test]
    fn each_route_is_given_its_own_attributes() {
        let here = peer("http://127.0.0.1:9/v1");
        let there = peer("http://10.0.0.1:9/v1");
        let first = seen(&route("gpt-4o", &here));
        assert_eq!(first, encode(&route("gpt-4o", &here)).attributes);
        assert_ne!(seen(&route("gpt-4o-mini", &here)), first);
        assert_eq!(seen(&route("gpt-4o", &here)), first, "remembered");
        // The same names on another server.
        assert_ne!(seen(&route("gpt-4o", &there)), first);
        let streamed = Route {
            stream: true,
            ..route("gpt-4o", &here)
        };
        assert_ne!(seen(&streamed), first);
        // More routes than a thread keeps: each still its own.
        for i in 0..MOST_ROUTES + 5 {
            let model = format!("model-{i}");
            let r = route(&model, &here);
            assert_eq!(seen(&r), encode(&r).attributes, "{model}");
        }
    }
}
