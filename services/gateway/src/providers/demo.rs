//! The built-in `demo` provider: answers with no upstream by echoing the last user
//! message, streamed word by word when asked, with plausible usage. A newcomer's
//! first request works without any vendor key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use llm::openai::{ChatRequest, EmbeddingsRequest, Usage};
use serde_json::json;

use super::{Completion, LlmProvider, StreamError, StreamStart};
use crate::error::Error;
use config_model::DemoConfig;

#[derive(Debug)]
pub struct Demo {
    word_delay: Duration,
    pub(super) peer: std::sync::Arc<super::Peer>,
}

impl Demo {
    pub fn new(config: &DemoConfig) -> Self {
        Self {
            word_delay: config.word_delay.unwrap_or_default(),
            peer: std::sync::Arc::new(super::Peer {
                system: "aiprox.demo",
                address: None,
                port: None,
            }),
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A rough token count: words and punctuation runs.
fn tokens(text: &str) -> u64 {
    u64::try_from(text.split_whitespace().count()).unwrap_or(u64::MAX)
}

fn reply(req: &ChatRequest) -> String {
    match req.last_user_text() {
        Some(text) if !text.trim().is_empty() => text,
        _ => "Hello from the aiprox demo provider! Send a user message and I will echo it."
            .to_owned(),
    }
}

fn usage(req: &ChatRequest, reply: &str) -> Usage {
    // The prompt is everything the client sent, counted roughly.
    let prompt = req
        .body
        .get("messages")
        .map_or(0, |m| tokens(m.get()))
        .max(1);
    let completion = tokens(reply).max(1);
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
    }
}

fn completion_id() -> String {
    format!("chatcmpl-demo{}", uuid::Uuid::now_v7().simple())
}

impl LlmProvider for Demo {
    async fn chat(&self, req: &ChatRequest, model: &str) -> Result<Completion, Error> {
        let text = reply(req);
        let body = json!({
            "id": completion_id(),
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": usage(req, &text),
        });
        Ok(Completion {
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        })
    }

    async fn chat_stream(&self, req: &ChatRequest, model: &str) -> Result<StreamStart, Error> {
        let text = reply(req);
        let id = completion_id();
        let created = now();
        let chunk = |delta: serde_json::Value, finish: Option<&str>| {
            json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            })
        };
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        for word in text.split_inclusive(' ') {
            chunks.push(chunk(json!({"content": word}), None));
        }
        chunks.push(chunk(json!({}), Some("stop")));
        if req.include_usage {
            chunks.push(json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": usage(req, &text),
            }));
        }
        let delay = self.word_delay;
        let stream = futures_util::stream::iter(chunks.into_iter().enumerate()).then(
            move |(i, c)| async move {
                if i > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok::<_, StreamError>(Bytes::from(c.to_string()))
            },
        );
        Ok(StreamStart {
            headers: HeaderMap::new(),
            chunks: Box::pin(stream),
        })
    }

    async fn embeddings(&self, req: &EmbeddingsRequest, model: &str) -> Result<Completion, Error> {
        let items = req.input()?.items();
        let dims = req.dimensions().unwrap_or(16).clamp(1, 4096);
        let base64 = req.base64();
        let mut prompt_tokens = 0;
        let data: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(index, text)| {
                prompt_tokens += tokens(text).max(1);
                let vector = pseudo_embedding(text, dims);
                let embedding = if base64 {
                    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                } else {
                    json!(vector)
                };
                json!({"object": "embedding", "index": index, "embedding": embedding})
            })
            .collect();
        let body = json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        });
        Ok(Completion {
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        })
    }
}

/// A deterministic unit vector derived from the text (FNV-1a seeded xorshift):
/// equal texts get equal vectors.
fn pseudo_embedding(text: &str, dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        seed ^= u64::from(b);
        seed = seed.wrapping_mul(0x0100_0000_01b3);
    }
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            #[allow(clippy::cast_precision_loss)]
            let unit = (seed >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    for x in &mut v {
        *x /= norm;
    }
    v
}
