//! "Test connection": the admin calls a provider's model list the way a gateway
//! would call it (its base URL, key and headers), and reports the latency, or the
//! upstream's status and message. Nothing of the key reaches the answer.

use std::time::{Duration, Instant};

use config_model::ProviderConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

use crate::core::{AdminCore, ApiError};
use crate::providers::{provider_not_found, stored_config};

/// What a connection test found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTest {
    pub ok: bool,
    pub latency_ms: f64,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// `ok`, or what went wrong: the upstream's error message, or why it could
    /// not be reached.
    pub message: String,
    /// The model ids it listed (first 50).
    pub models: Vec<String>,
}

const TIMEOUT: Duration = Duration::from_secs(10);

/// The upstream's error message from an OpenAI or Anthropic error body.
fn message_of(body: &serde_json::Value, fallback: &str) -> String {
    body.pointer("/error/message")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| fallback.chars().take(300).collect(), str::to_owned)
}

impl AdminCore {
    fn api_key(&self, name: &str, config: &ProviderConfig) -> Option<SecretString> {
        let (env, sealed) = config.api_key_source();
        if let (Some(sealed), Some(secret)) = (sealed, &self.secret) {
            return secret.open(name, sealed).ok();
        }
        env.and_then(|v| std::env::var(v).ok())
            .map(SecretString::from)
    }

    pub async fn test_provider(&self, name: &str) -> Result<ConnectionTest, ApiError> {
        let row = self
            .store
            .provider(name)
            .await?
            .ok_or_else(|| provider_not_found(name))?;
        let config = stored_config(&row)?;
        let key = self.api_key(name, &config);
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| {
                ApiError::new(crate::core::Kind::Unavailable, "http_client", e.to_string())
            })?;
        let request = match &config {
            ProviderConfig::Demo(_) => {
                return Ok(ConnectionTest {
                    ok: true,
                    latency_ms: 0.0,
                    status: None,
                    message: "ok: the demo provider answers by itself".into(),
                    models: config.models().to_vec(),
                });
            }
            ProviderConfig::Openai(p) => {
                let url = format!("{}/models", p.base_url.as_str().trim_end_matches('/'));
                let mut r = client.get(url);
                if let Some(k) = &key {
                    r = r.bearer_auth(k.expose_secret());
                }
                for (h, v) in &p.headers {
                    r = r.header(h, v);
                }
                r
            }
            ProviderConfig::Anthropic(p) => {
                let base = p
                    .base_url
                    .as_ref()
                    .map_or("https://api.anthropic.com", |u| u.as_str())
                    .trim_end_matches('/')
                    .to_owned();
                let mut r = client
                    .get(format!("{base}/v1/models"))
                    .header("anthropic-version", &p.anthropic_version);
                if let Some(k) = &key {
                    r = r.header("x-api-key", k.expose_secret());
                }
                for (h, v) in &p.headers {
                    r = r.header(h, v);
                }
                r
            }
        };
        let started = Instant::now();
        let sent = request.send().await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                // reqwest's text names the URL, never headers: no key in it.
                let why = if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.to_string()
                };
                return Ok(ConnectionTest {
                    ok: false,
                    latency_ms,
                    status: None,
                    message: why,
                    models: Vec::new(),
                });
            }
        };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !status.is_success() {
            return Ok(ConnectionTest {
                ok: false,
                latency_ms,
                status: Some(status.as_u16()),
                message: message_of(&body, &text),
                models: Vec::new(),
            });
        }
        let models = body
            .get("data")
            .and_then(serde_json::Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|m| m.get("id").and_then(serde_json::Value::as_str))
                    .take(50)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(ConnectionTest {
            ok: true,
            latency_ms,
            status: Some(status.as_u16()),
            message: "ok".into(),
            models,
        })
    }
}
