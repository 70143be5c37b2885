use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use config_model::{
    AnthropicConfig, DemoConfig, Mapping, OpenAiConfig, ProviderConfig, Target, TimeoutOverrides,
};
use gateway::Application;
use gateway::config::{AuthMode, Config, Settings};
use mock_upstream::MockUpstream;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const PROVIDER_KEY: &str = "sk-test-provider-key-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub mock: MockUpstream,
    pub shutdown: CancellationToken,
    pub server: JoinHandle<std::io::Result<()>>,
}

pub fn openai_provider(base_url: &str) -> ProviderConfig {
    ProviderConfig::Openai(OpenAiConfig {
        base_url: base_url.parse().unwrap(),
        api_key_env: Some("AIPROX_TEST_PROVIDER_KEY".into()),
        api_key_sealed: None,
        headers: BTreeMap::from([("x-tenant".to_owned(), "team-a".to_owned())]),
        models: vec!["gpt-4o".into(), "gpt-4o-mini".into()],
        timeouts: TimeoutOverrides::default(),
        responses_api: None,
    })
}

pub fn anthropic_provider(base_url: &str) -> ProviderConfig {
    ProviderConfig::Anthropic(AnthropicConfig {
        base_url: Some(base_url.parse().unwrap()),
        api_key_env: Some("AIPROX_TEST_PROVIDER_KEY".into()),
        api_key_sealed: None,
        anthropic_version: "2023-06-01".into(),
        default_max_tokens: 2048,
        headers: BTreeMap::new(),
        models: vec![],
        timeouts: TimeoutOverrides::default(),
    })
}

/// The default test set-up: providers `mock` (the mock upstream, OpenAI API),
/// `claude` (the same mock, Anthropic API) and `demo`; aliases `gpt4` →
/// mock/gpt-4o, `claude` → claude/claude-haiku-4-5 and `demo` → demo/echo.
pub fn base_config(mock: &MockUpstream) -> Config {
    Config {
        settings: Settings {
            listen: "127.0.0.1:0".parse().unwrap(),
            shutdown_grace: Duration::from_secs(10),
            auth: Some(AuthMode::Open),
            ..Settings::default()
        },
        providers: BTreeMap::from([
            ("mock".to_owned(), openai_provider(&mock.base_url())),
            (
                "demo".to_owned(),
                ProviderConfig::Demo(DemoConfig::default()),
            ),
            (
                "claude".to_owned(),
                anthropic_provider(&mock.anthropic_base_url()),
            ),
        ]),
        mappings: BTreeMap::from([
            (
                "gpt4".to_owned(),
                Mapping::fallback(vec![Target::new("mock", "gpt-4o")]),
            ),
            (
                "demo".to_owned(),
                Mapping::fallback(vec![Target::new("demo", "echo")]),
            ),
            (
                "claude".to_owned(),
                Mapping::fallback(vec![Target::new("claude", "claude-haiku-4-5")]),
            ),
        ]),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(None, customise).await
}

/// A gateway publishing on (and taking its live configuration from) `bus`.
pub async fn spawn_app_on(
    bus: Option<events::Bus>,
    customise: impl FnOnce(&mut Config),
) -> TestApp {
    let mock = MockUpstream::start().await.unwrap();
    let mut config = base_config(&mock);
    customise(&mut config);
    let app = Application::build(config, bus).await.unwrap();
    let addr = app.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        mock,
        shutdown,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post_chat(&self, body: &Value) -> reqwest::Response {
        self.post_raw("/v1/chat/completions", body.to_string())
            .await
    }

    /// `POST /v1/messages` as the Anthropic SDK sends it.
    pub async fn post_messages(&self, body: &Value) -> reqwest::Response {
        self.post_messages_path("/v1/messages", body).await
    }

    /// A `POST` to an Anthropic API path, as the Anthropic SDK sends it.
    pub async fn post_messages_path(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("x-api-key", "sk-ant-client-key-must-not-travel")
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "tools-2024-04-04")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn post_embeddings(&self, body: &Value) -> reqwest::Response {
        self.post_raw("/v1/embeddings", body.to_string()).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-client-key-must-not-travel")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST` a JSON body as either SDK would (both APIs' headers, no key): the
    /// request id, the status and the body text the client got.
    pub async fn send_json(&self, path: &str, body: &Value) -> (String, u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .header("anthropic-version", "2023-06-01")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let status = response.status().as_u16();
        (id, status, response.text().await.unwrap())
    }

    /// A counter or gauge of `GET /metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics: {text}"))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// The `data:` payloads of an OpenAI event stream, `[DONE]` included.
pub async fn sse_payloads(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    let mut decoder = llm_sse_decoder();
    let mut out: Vec<String> = decoder
        .feed(text.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert!(!decoder.is_mid_event(), "stream ended mid-event: {text:?}");
    out.shrink_to_fit();
    out
}

fn llm_sse_decoder() -> llm::sse::Decoder {
    llm::sse::Decoder::new()
}

pub fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// The chunks of a recorded fixture stream, as the mock sends them.
pub fn fixture_chunks(sse: &str) -> Vec<Value> {
    let mut d = llm::sse::Decoder::new();
    d.feed(sse.as_bytes())
        .unwrap()
        .into_iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| json(&e.data))
        .collect()
}

/// The `event:` names and parsed `data:` of an Anthropic event stream.
pub async fn sse_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.unwrap();
    let mut decoder = llm::sse::Decoder::new();
    let events = decoder.feed(text.as_bytes()).unwrap();
    assert!(!decoder.is_mid_event(), "stream ended mid-event: {text:?}");
    events
        .into_iter()
        .map(|e| (e.event.expect("a named event"), json(&e.data)))
        .collect()
}

/// An error body in Anthropic's shape, checked field by field.
pub async fn anthropic_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["type"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    (status, body)
}

/// An error body in OpenAI's shape, checked field by field.
pub async fn openai_error(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().expect("an `error` object");
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.contains_key("param") && error.contains_key("code"),
        "{body}"
    );
    (status, body)
}
