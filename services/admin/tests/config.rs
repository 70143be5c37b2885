//! Providers, mappings and client keys through the admin API (HTTP and gRPC) on
//! port 0, over SQLite and PostgreSQL, with the snapshots it publishes read back
//! from the bus the gateways watch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use config_model::ConfigSnapshot;
use config_model::key_hash;
use events::Bus;
use events::memory::InProcessBus;
use secrecy::SecretString;
use serde_json::{Value, json};
use store::Store;

const TOKEN: &str = "admin-token-for-config-tests";
const PROVIDER_KEY: &str = "sk-upstream-secret-key-DO-NOT-LEAK-9f8e7d";
const ROTATED_KEY: &str = "sk-upstream-rotated-key-DO-NOT-LEAK-1a2b3c";

struct Api {
    base: String,
    client: reqwest::Client,
    bus: Bus,
    /// Every response body the test saw, to search for secrets at the end.
    seen: std::sync::Mutex<String>,
}

impl Api {
    async fn start(store: Store) -> Self {
        store.migrate().await.unwrap();
        let bus = Bus::InProcess(InProcessBus::new());
        let secret = config_model::secret::SecretKey::new(&SecretString::from(
            "test-master-secret-0123456789abcdef0123456789".to_owned(),
        ))
        .unwrap();
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
        let app = admin::router(core, SecretString::from(TOKEN));
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
}

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

async fn providers(api: &Api) {
    // Auth first.
    let anonymous = api
        .client
        .get(format!("{}/api/v1/providers", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    let (status, created) = api
        .call(
            "POST",
            "/api/v1/providers",
            Some(openai("openai", Some(PROVIDER_KEY))),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "openai");
    assert_eq!(created["has_api_key"], true);
    assert_eq!(created["api_key_masked"], "…8e7d");
    assert!(created.get("api_key").is_none());
    assert_eq!(created["timeouts"]["connect_ms"], 1500);
    assert_eq!(created["headers"]["OpenAI-Organization"], "org-1");

    // The published snapshot carries the key sealed, never in clear.
    let snap = api.snapshot().await;
    let config_model::ProviderConfig::Openai(p) = &snap.providers["openai"] else {
        panic!("openai kind")
    };
    let sealed = p.api_key_sealed.clone().expect("sealed key");
    assert!(sealed.starts_with("v1."));

    for (body, code) in [
        (openai("openai", None), "provider_exists"),
        (
            json!({"name": "x", "kind": "openai", "base_url": "not a url"}),
            "invalid_provider",
        ),
        (
            json!({"name": "x", "kind": "openai", "base_url": "ftp://h/v1"}),
            "invalid_provider",
        ),
        (json!({"name": "x", "kind": "openai"}), "invalid_provider"),
        (
            json!({"name": "x", "kind": "gemini", "base_url": "http://h"}),
            "invalid_provider",
        ),
        (json!({"name": "a/b", "kind": "demo"}), "invalid_name"),
        (json!({"name": "", "kind": "demo"}), "invalid_name"),
        (
            json!({"name": "x", "kind": "openai", "base_url": "http://h/v1", "headers": {"bad header": "v"}}),
            "invalid_provider",
        ),
        (
            json!({"name": "x", "kind": "demo", "surprise": 1}),
            "invalid_body",
        ),
    ] {
        let (status, err) = api
            .call("POST", "/api/v1/providers", Some(body.clone()))
            .await;
        let expected = if code == "provider_exists" { 409 } else { 400 };
        assert_eq!(status, expected, "{body} → {err}");
        assert_eq!(err["error"]["code"], code, "{body} → {err}");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = api.call("POST", "/api/v1/providers", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );

    // Update without a key keeps it; with one replaces it; "" removes it.
    let mut update = openai("openai", None);
    update["models"] = json!(["gpt-4o", "gpt-4o-mini"]);
    let (status, updated) = api
        .call("PUT", "/api/v1/providers/openai", Some(update))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["has_api_key"], true);
    assert_eq!(updated["models"], json!(["gpt-4o", "gpt-4o-mini"]));
    let config_model::ProviderConfig::Openai(p) = &api.snapshot().await.providers["openai"] else {
        panic!()
    };
    assert_eq!(p.api_key_sealed.as_deref(), Some(sealed.as_str()));
    let (status, rotated) = api
        .call(
            "PUT",
            "/api/v1/providers/openai",
            Some(openai("openai", Some(ROTATED_KEY))),
        )
        .await;
    assert_eq!(
        (status, rotated["api_key_masked"].as_str()),
        (200, Some("…2b3c"))
    );
    let (_, renamed) = api
        .call(
            "PUT",
            "/api/v1/providers/openai",
            Some(openai("other", None)),
        )
        .await;
    assert_eq!(renamed["error"]["code"], "invalid_name");
    let (status, _) = api
        .call("PUT", "/api/v1/providers/nope", Some(openai("nope", None)))
        .await;
    assert_eq!(status, 404);

    let (status, _) = api
        .call("POST", "/api/v1/providers", Some(json!({"name": "keyless", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-temp-key-to-remove-000000"})))
        .await;
    assert_eq!(status, 201);
    let (_, removed) = api
        .call(
            "PUT",
            "/api/v1/providers/keyless",
            Some(json!({"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": ""})),
        )
        .await;
    assert_eq!(removed["has_api_key"], false);
    assert_eq!(removed["api_key_masked"], Value::Null);

    let (status, demo) = api
        .call(
            "POST",
            "/api/v1/providers",
            Some(json!({"name": "demo", "kind": "demo", "word_delay_ms": 5})),
        )
        .await;
    assert_eq!((status, demo["word_delay_ms"].as_u64()), (201, Some(5)));
    let (status, anthropic) = api
        .call(
            "POST",
            "/api/v1/providers",
            Some(
                json!({"name": "claude", "kind": "anthropic", "api_key_env": "ANTHROPIC_API_KEY"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{anthropic}");
    assert_eq!(anthropic["anthropic_version"], "2023-06-01");
    assert_eq!(anthropic["has_api_key"], false);

    let (_, list) = api.call("GET", "/api/v1/providers", None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["claude", "demo", "keyless", "openai"]);
    let (status, one) = api.call("GET", "/api/v1/providers/openai", None).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("openai")));
    let (status, _) = api.call("GET", "/api/v1/providers/missing", None).await;
    assert_eq!(status, 404);
}

async fn mappings(api: &Api) {
    let (status, m) = api
        .call("POST", "/api/v1/mappings", Some(json!({"alias": "gpt4", "targets": [
            {"provider": "openai", "model": "gpt-4o"}, {"provider": "claude", "model": "claude-haiku-4-5"}]})))
        .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["targets"][1]["provider"], "claude");
    let snap = api.snapshot().await;
    assert_eq!(snap.mappings["gpt4"].len(), 2);
    assert_eq!(snap.mappings["gpt4"][0].model, "gpt-4o");

    for (body, status, code) in [
        (
            json!({"alias": "gpt4", "targets": [{"provider": "openai", "model": "x"}]}),
            409,
            "alias_exists",
        ),
        (
            json!({"alias": "new", "targets": [{"provider": "ghost", "model": "x"}]}),
            400,
            "unknown_provider",
        ),
        (
            json!({"alias": "new", "targets": []}),
            400,
            "invalid_mapping",
        ),
        (
            json!({"alias": "new", "targets": [{"provider": "openai", "model": ""}]}),
            400,
            "invalid_mapping",
        ),
        (
            json!({"alias": "has space", "targets": [{"provider": "openai", "model": "x"}]}),
            400,
            "invalid_alias",
        ),
        (json!({"alias": "new"}), 400, "invalid_body"),
    ] {
        let (got, err) = api
            .call("POST", "/api/v1/mappings", Some(body.clone()))
            .await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{body} → {err}"
        );
    }
    let (status, err) = api.call("DELETE", "/api/v1/providers/claude", None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("provider_in_use"))
    );
    assert!(err["error"]["message"].as_str().unwrap().contains("gpt4"));

    let (status, m) = api
        .call(
            "PUT",
            "/api/v1/mappings/gpt4",
            Some(json!({"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]})),
        )
        .await;
    assert_eq!((status, m["targets"].as_array().unwrap().len()), (200, 1));
    assert_eq!(
        api.snapshot().await.mappings["gpt4"][0].model,
        "gpt-4o-mini"
    );
    let (_, list) = api.call("GET", "/api/v1/mappings", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (status, _) = api.call("GET", "/api/v1/mappings/gpt4", None).await;
    assert_eq!(status, 200);

    // Now claude is free to go; deleting twice is a 404.
    assert_eq!(
        api.call("DELETE", "/api/v1/providers/claude", None).await.0,
        204
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/providers/claude", None).await.0,
        404
    );
    assert!(!api.snapshot().await.providers.contains_key("claude"));
    assert_eq!(
        api.call("DELETE", "/api/v1/mappings/gpt4", None).await.0,
        204
    );
    assert_eq!(api.call("GET", "/api/v1/mappings/gpt4", None).await.0, 404);
    assert_eq!(
        api.call("DELETE", "/api/v1/mappings/gpt4", None).await.0,
        404
    );
    assert!(api.snapshot().await.mappings.is_empty());
}

async fn keys(api: &Api) -> String {
    let (status, created) = api
        .call("POST", "/api/v1/keys", Some(json!({"name": "team-a"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-aiprox-") && secret.len() > 40);
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(created["key"]["prefix"].as_str().unwrap()));
    let snap = api.snapshot().await;
    assert_eq!(snap.keys.len(), 1);
    assert_eq!(snap.keys[0].sha256, hex(&key_hash(&secret)));

    let (_, list) = api.call("GET", "/api/v1/keys", None).await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(
        !list.to_string().contains(&secret),
        "a listed key shows only its prefix"
    );
    assert_eq!(list["data"][0]["revoked_at_ms"], Value::Null);
    let (status, err) = api
        .call("POST", "/api/v1/keys", Some(json!({"name": "  "})))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );

    let (status, revoked) = api
        .call("DELETE", &format!("/api/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at_ms"].as_i64().unwrap() > 0);
    let snap = api.snapshot().await;
    assert!(snap.keys.is_empty(), "a revoked key leaves the snapshot");
    assert!(
        snap.keys_issued,
        "auto mode stays closed once keys were issued"
    );
    assert_eq!(
        api.call("DELETE", "/api/v1/keys/key_missing", None).await.0,
        404
    );
    secret
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same calls through gRPC.
async fn grpc(api: &Api) -> String {
    use admin::proto::admin_service_client::AdminServiceClient;
    use admin::proto::{self as pb};

    let channel = tonic::transport::Endpoint::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let refused = AdminServiceClient::new(channel.clone())
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut client = AdminServiceClient::with_interceptor(channel, |mut r: tonic::Request<()>| {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        Ok(r)
    });
    let created = client
        .create_provider(pb::Provider {
            name: "grpc-openai".into(),
            kind: "openai".into(),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            api_key: Some(PROVIDER_KEY.into()),
            ..pb::Provider::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((created.api_key, created.has_api_key), (None, true));
    let err = client
        .create_provider(pb::Provider {
            name: "grpc-openai".into(),
            kind: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = client
        .create_provider(pb::Provider {
            name: "bad".into(),
            kind: "openai".into(),
            base_url: Some("nope".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let listed = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut seen = format!("{listed:?}");
    assert!(
        listed
            .providers
            .iter()
            .any(|p| p.name == "grpc-openai" && p.api_key.is_none())
    );

    let mapping = client
        .create_mapping(pb::Mapping {
            alias: "grpc-alias".into(),
            targets: vec![pb::MappingTarget {
                provider: "grpc-openai".into(),
                model: "gpt-4o".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mapping.targets.len(), 1);
    let err = client
        .create_mapping(pb::Mapping {
            alias: "x".into(),
            targets: vec![pb::MappingTarget {
                provider: "ghost".into(),
                model: "m".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("unknown_provider"));
    let updated = client
        .update_mapping(pb::Mapping {
            alias: "grpc-alias".into(),
            targets: vec![pb::MappingTarget {
                provider: "grpc-openai".into(),
                model: "gpt-4o-mini".into(),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.targets[0].model, "gpt-4o-mini");
    assert_eq!(
        client
            .get_mapping(pb::GetMappingRequest {
                alias: "grpc-alias".into()
            })
            .await
            .unwrap()
            .into_inner()
            .alias,
        "grpc-alias"
    );
    assert_eq!(
        client
            .list_mappings(pb::ListMappingsRequest {})
            .await
            .unwrap()
            .into_inner()
            .mappings
            .len(),
        1
    );
    let err = client
        .delete_provider(pb::DeleteProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    client
        .delete_mapping(pb::DeleteMappingRequest {
            alias: "grpc-alias".into(),
        })
        .await
        .unwrap();
    let err = client
        .get_mapping(pb::GetMappingRequest {
            alias: "grpc-alias".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let p = client
        .get_provider(pb::GetProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap()
        .into_inner();
    seen.push_str(&format!("{p:?}"));
    client
        .update_provider(pb::Provider {
            name: "grpc-openai".into(),
            kind: "openai".into(),
            base_url: Some("http://127.0.0.1:8/v1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .delete_provider(pb::DeleteProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap();

    let created = client
        .create_key(pb::CreateKeyRequest {
            name: "grpc".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.key.unwrap();
    let listed = client
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .keys
            .iter()
            .any(|k| k.id == key.id && k.revoked_at_ms.is_none())
    );
    assert!(!format!("{listed:?}").contains(&created.secret));
    let revoked = client
        .revoke_key(pb::RevokeKeyRequest { id: key.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_at_ms.is_some());
    assert_eq!(
        client
            .revoke_key(pb::RevokeKeyRequest {
                id: "key_missing".into()
            })
            .await
            .unwrap_err()
            .code(),
        tonic::Code::NotFound
    );
    seen
}

async fn openapi(api: &Api) {
    let anonymous = api
        .client
        .get(format!("{}/api/v1/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/logs",
        "/api/v1/logs/{id}",
        "/api/v1/media/{sha256}",
        "/api/v1/stats/summary",
        "/api/v1/stats/series",
        "/api/v1/providers",
        "/api/v1/providers/{name}",
        "/api/v1/mappings",
        "/api/v1/mappings/{alias}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let provider = &doc["components"]["schemas"]["Provider"]["properties"];
    assert!(provider.get("api_key_masked").is_some());
    assert!(provider.get("api_key").is_none(), "the key is write-only");
    assert!(
        doc["components"]["schemas"]["ProviderInput"]["properties"]
            .get("api_key")
            .is_some()
    );
    assert!(
        doc["paths"]["/api/v1/logs"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .len()
            >= 10
    );
}

async fn exercise(store: Store) {
    let api = Api::start(store).await;
    providers(&api).await;
    mappings(&api).await;
    let client_key = keys(&api).await;
    let grpc_seen = grpc(&api).await;
    openapi(&api).await;
    // Give the publisher a moment, then search everything seen for secrets.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _ = api.snapshot().await;
    let seen = format!("{}{grpc_seen}", api.seen.lock().unwrap());
    for secret in [PROVIDER_KEY, ROTATED_KEY, "sk-temp-key-to-remove"] {
        assert!(
            !seen.contains(secret),
            "{secret} appeared in a response or snapshot"
        );
    }
    // The client key was shown once, in its creation answer, and nowhere else.
    assert_eq!(seen.matches(client_key.as_str()).count(), 1);
}

#[tokio::test]
async fn over_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(
        Store::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn over_postgres() {
    let pg = test_services::Postgres::start();
    exercise(Store::connect(&pg.create_database("config")).await.unwrap()).await;
}
