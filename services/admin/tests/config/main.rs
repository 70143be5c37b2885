//! Providers, mappings and client keys through the admin API (HTTP and gRPC) on
//! port 0, with the snapshots it publishes read back from the bus the gateways
//! watch. Each behaviour is its own test, run once per backend (see `common`):
//! a failure names the backend and the behaviour,
//! `postgres::unknown_provider_kinds_are_refused`.
//!
//! Covered: the admin token; providers (`providers.rs`: the key write-only and
//! published sealed, kept, replaced and removed on update; each refusal; listing
//! and reading); mappings (`mappings.rs`: published in order, each refusal, a
//! provider in use kept, update, delete); client keys (`keys.rs`: shown once,
//! published as a hash, listed by prefix, revoked); the same through gRPC
//! (`grpc.rs`); the OpenAPI document (`openapi.rs`); and that no answer or
//! snapshot ever shows a provider key, nor a client key outside its creation
//! answer (`secrets.rs`).
//!
//! Each test sets up the state it needs itself, with the fixtures below
//! (`with_openai`, `with_providers`, `with_gpt4_mapping`, `with_key`,
//! `grpc_client`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod grpc;
mod keys;
mod mappings;
mod openapi;
mod providers;
mod secrets;

use config_model::ConfigSnapshot;
use events::Bus;
use events::memory::InProcessBus;
use secrecy::SecretString;
use serde_json::{Value, json};
use store::Store;

const TOKEN: &str = "admin-token-for-config-tests";
const PROVIDER_KEY: &str = "sk-upstream-secret-key-DO-NOT-LEAK-9f8e7d";
const ROTATED_KEY: &str = "sk-upstream-rotated-key-DO-NOT-LEAK-1a2b3c";
const TEMP_KEY: &str = "sk-temp-key-to-remove-000000";

common::backends!(
    providers::providers_need_the_admin_token,
    providers::a_provider_key_is_write_only_and_published_sealed,
    providers::a_provider_name_is_taken_once,
    providers::openai_providers_need_a_valid_http_base_url,
    providers::unknown_provider_kinds_are_refused,
    providers::invalid_provider_names_are_refused,
    providers::invalid_header_names_are_refused,
    providers::unknown_fields_and_missing_bodies_are_refused,
    providers::an_update_without_a_key_keeps_the_key,
    providers::an_update_with_a_key_replaces_it,
    providers::an_update_with_an_empty_key_removes_it,
    providers::a_provider_cannot_be_renamed,
    providers::updating_a_missing_provider_is_not_found,
    providers::demo_providers_keep_their_word_delay,
    providers::anthropic_providers_default_their_version,
    providers::an_anthropic_version_with_a_line_break_is_refused,
    providers::providers_are_listed_by_name,
    providers::providers_are_read_by_name,
    providers::a_pool_of_keys_is_sealed_whole_and_shown_masked,
    mappings::a_mapping_is_published_with_its_targets_in_order,
    mappings::an_alias_is_mapped_once,
    mappings::mappings_to_unknown_providers_are_refused,
    mappings::mappings_need_targets_with_models,
    mappings::invalid_aliases_are_refused,
    mappings::a_mapping_without_targets_is_an_invalid_body,
    mappings::a_provider_in_use_cannot_be_deleted,
    mappings::an_update_publishes_the_new_targets,
    mappings::mappings_are_listed_and_read_by_alias,
    mappings::a_provider_is_deleted_once_no_mapping_uses_it,
    mappings::a_mapping_is_deleted_once,
    mappings::a_mapping_keeps_its_strategy_weights_and_timeouts,
    mappings::prices_are_set_listed_published_and_removed,
    keys::a_client_key_is_shown_once_and_published_as_its_hash,
    keys::listed_keys_show_only_their_prefix,
    keys::blank_key_names_are_refused,
    keys::a_revoked_key_leaves_the_snapshot_and_auto_mode_stays_closed,
    keys::revoking_a_missing_key_is_not_found,
    grpc::grpc_needs_the_admin_token,
    grpc::grpc_provider_keys_are_write_only,
    grpc::grpc_a_provider_name_is_taken_once,
    grpc::grpc_invalid_base_urls_are_invalid_arguments,
    grpc::grpc_a_mapping_is_created_with_its_targets,
    grpc::grpc_mappings_to_unknown_providers_are_invalid_arguments,
    grpc::grpc_an_update_replaces_the_targets,
    grpc::grpc_mappings_are_read_and_listed,
    grpc::grpc_a_provider_in_use_cannot_be_deleted,
    grpc::grpc_a_deleted_mapping_is_not_found,
    grpc::grpc_a_provider_is_read_updated_and_deleted,
    grpc::grpc_client_keys_are_listed_without_their_secret,
    grpc::grpc_a_revoked_key_has_its_revocation_time,
    grpc::grpc_revoking_a_missing_key_is_not_found,
    grpc::grpc_a_mapping_keeps_its_strategy_and_weights,
    grpc::provider_health_gathers_every_gateways_report_on_both_faces,
    grpc::grpc_a_keys_limits_are_set_and_read,
    grpc::grpc_prices_are_set_listed_and_removed,
    keys::a_keys_limits_are_set_on_create_replaced_and_published,
    openapi::the_openapi_document_needs_the_admin_token,
    openapi::the_openapi_document_lists_every_path,
    openapi::the_openapi_document_shows_the_provider_key_write_only,
    openapi::the_openapi_document_lists_the_log_filters,
    openapi::the_openapi_document_shows_the_tools_a_log_left_out,
    secrets::no_answer_or_snapshot_shows_a_secret,
);

// --- the API under test -----------------------------------------------------------

/// The secret the API under test seals provider keys with.
fn test_secret() -> config_model::secret::SecretKey {
    config_model::secret::SecretKey::new(&SecretString::from(
        "test-master-secret-0123456789abcdef0123456789".to_owned(),
    ))
    .unwrap()
}

pub struct Api {
    base: String,
    client: reqwest::Client,
    bus: Bus,
    /// Every response body and snapshot the test saw, to search for secrets.
    seen: std::sync::Mutex<String>,
}

impl Api {
    async fn start(store: Store) -> Self {
        store.migrate().await.unwrap();
        let bus = Bus::InProcess(InProcessBus::new());
        let secret = test_secret();
        let core = admin::core::AdminCore {
            store: store.clone(),
            media_root: std::env::temp_dir(),
            publisher: admin::publisher::Publisher::new(
                store,
                Some(bus.clone()),
                tokio_util::sync::CancellationToken::new(),
            ),
            secret: Some(secret),
        };
        let app = admin::router(
            core,
            SecretString::from(TOKEN),
            admin::RouterOptions::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            bus,
            seen: std::sync::Mutex::default(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    /// The snapshot gateways would receive now.
    async fn snapshot(&self) -> ConfigSnapshot {
        let bytes = self.bus.get_config().await.unwrap().expect("a snapshot");
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        self.seen.lock().unwrap().push_str(&text);
        serde_json::from_str(&text).unwrap()
    }

    /// A call that sets up a test's state: it must succeed with `status`.
    async fn set_up(&self, method: &str, path: &str, body: Value, status: u16) -> Value {
        let (got, answer) = self.call(method, path, Some(body)).await;
        assert_eq!(got, status, "set-up {method} {path}: {answer}");
        answer
    }
}

// --- fixtures ---------------------------------------------------------------------

fn openai(name: &str, key: Option<&str>) -> Value {
    let mut v = json!({
        "name": name, "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
        "headers": {"OpenAI-Organization": "org-1"}, "models": ["gpt-4o"],
        "timeouts": {"connect_ms": 1500}
    });
    if let Some(key) = key {
        v["api_key"] = json!(key);
    }
    v
}

/// The provider `openai`, with the key `PROVIDER_KEY`.
async fn with_openai(api: &Api) {
    api.set_up(
        "POST",
        "/api/v1/providers",
        openai("openai", Some(PROVIDER_KEY)),
        201,
    )
    .await;
}

/// The provider `keyless`, with the key `TEMP_KEY` (to be removed).
async fn with_keyless(api: &Api) {
    api.set_up(
        "POST",
        "/api/v1/providers",
        json!({"name": "keyless", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": TEMP_KEY}),
        201,
    )
    .await;
}

/// Four providers, created in this order: `openai` (with `PROVIDER_KEY`),
/// `keyless` (with `TEMP_KEY`), `demo`, and `claude` (anthropic, its key from
/// the environment).
async fn with_providers(api: &Api) {
    with_openai(api).await;
    with_keyless(api).await;
    api.set_up(
        "POST",
        "/api/v1/providers",
        json!({"name": "demo", "kind": "demo", "word_delay_ms": 5}),
        201,
    )
    .await;
    api.set_up(
        "POST",
        "/api/v1/providers",
        json!({"name": "claude", "kind": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"}),
        201,
    )
    .await;
}

/// The alias `gpt4` → `openai/gpt-4o`, then `claude/claude-haiku-4-5` (after
/// [`with_providers`]).
async fn with_gpt4_mapping(api: &Api) {
    api.set_up(
        "POST",
        "/api/v1/mappings",
        json!({"alias": "gpt4", "targets": [
            {"provider": "openai", "model": "gpt-4o"}, {"provider": "claude", "model": "claude-haiku-4-5"}]}),
        201,
    )
    .await;
}

/// The client key `team-a`: its id and its secret.
async fn with_key(api: &Api) -> (String, String) {
    let created = api
        .set_up("POST", "/api/v1/keys", json!({"name": "team-a"}), 201)
        .await;
    (
        created["key"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// A provider that `POST /api/v1/providers` must refuse with `status`, the
/// error `code` and a message.
async fn refuse_provider(api: &Api, body: Value, status: u16, code: &str) {
    let (got, err) = api
        .call("POST", "/api/v1/providers", Some(body.clone()))
        .await;
    assert_eq!(got, status, "{body} → {err}");
    assert_eq!(err["error"]["code"], code, "{body} → {err}");
    assert!(!err["error"]["message"].as_str().unwrap().is_empty());
}

/// A gRPC client that sends the admin token.
type GrpcClient = admin::proto::admin_service_client::AdminServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
>;
type Bearer = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// A channel to the API's gRPC service (on the HTTP port).
async fn grpc_channel(api: &Api) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn grpc_client(api: &Api) -> GrpcClient {
    fn bearer(mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        Ok(r)
    }
    admin::proto::admin_service_client::AdminServiceClient::with_interceptor(
        grpc_channel(api).await,
        bearer as Bearer,
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
