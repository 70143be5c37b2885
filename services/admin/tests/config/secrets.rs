//! No secret leaks: after every kind of call that takes or shows a provider key
//! or a client key (over HTTP and gRPC, each change's snapshot read back), the
//! provider keys appear in no answer and no snapshot, and the client key
//! exactly once, in its creation answer.

use std::fmt::Write as _;
use std::time::Duration;

use admin::proto::{self as pb};
use serde_json::json;

use crate::{
    Api, PROVIDER_KEY, ROTATED_KEY, grpc_client, openai, with_gpt4_mapping, with_key,
    with_providers,
};

pub async fn no_answer_or_snapshot_shows_a_secret(api: &Api) {
    // Providers over HTTP: created with keys, updated keeping, replacing and
    // removing them, listed, read, mapped.
    with_providers(api).await;
    let _ = api.snapshot().await;
    let mut update = openai("openai", None);
    update["models"] = json!(["gpt-4o", "gpt-4o-mini"]);
    api.set_up("PUT", "/api/v1/providers/openai", update, 200)
        .await;
    let _ = api.snapshot().await;
    api.set_up(
        "PUT",
        "/api/v1/providers/openai",
        openai("openai", Some(ROTATED_KEY)),
        200,
    )
    .await;
    let _ = api.snapshot().await;
    api.set_up(
        "PUT",
        "/api/v1/providers/keyless",
        json!({"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": ""}),
        200,
    )
    .await;
    let _ = api.snapshot().await;
    api.call("GET", "/api/v1/providers", None).await;
    api.call("GET", "/api/v1/providers/openai", None).await;
    api.call("GET", "/api/v1/providers/keyless", None).await;
    with_gpt4_mapping(api).await;
    let _ = api.snapshot().await;

    // A client key over HTTP: created, listed, revoked.
    let (id, client_key) = with_key(api).await;
    let _ = api.snapshot().await;
    api.call("GET", "/api/v1/keys", None).await;
    api.call("DELETE", &format!("/api/v1/keys/{id}"), None)
        .await;
    let _ = api.snapshot().await;

    // Providers and keys over gRPC.
    let mut grpc_seen = String::new();
    let mut client = grpc_client(api).await;
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
    write!(grpc_seen, "{created:?}").unwrap();
    let listed = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner();
    write!(grpc_seen, "{listed:?}").unwrap();
    let p = client
        .get_provider(pb::GetProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap()
        .into_inner();
    write!(grpc_seen, "{p:?}").unwrap();
    let keys = client
        .list_keys(pb::ListKeysRequest {})
        .await
        .unwrap()
        .into_inner();
    write!(grpc_seen, "{keys:?}").unwrap();
    let _ = api.snapshot().await;

    // And the OpenAPI document.
    api.call("GET", "/api/v1/openapi.json", None).await;

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
