//! Client keys over HTTP: the secret shown once and published as its hash,
//! listed by prefix, a blank name refused, revoked (leaving the snapshot, auto
//! mode closed), a missing key not found.

use serde_json::{Value, json};

use crate::{Api, hex, with_key};
use config_model::key_hash;

pub async fn a_client_key_is_shown_once_and_published_as_its_hash(api: &Api) {
    let (status, created) = api
        .call("POST", "/api/v1/keys", Some(json!({"name": "team-a"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-aiprox-") && secret.len() > 40);
    assert!(created["key"]["id"].is_string());
    assert!(secret.starts_with(created["key"]["prefix"].as_str().unwrap()));
    let snap = api.snapshot().await;
    assert_eq!(snap.keys.len(), 1);
    assert_eq!(snap.keys[0].sha256, hex(&key_hash(&secret)));
}

pub async fn listed_keys_show_only_their_prefix(api: &Api) {
    let (id, secret) = with_key(api).await;
    let (_, list) = api.call("GET", "/api/v1/keys", None).await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(
        !list.to_string().contains(&secret),
        "a listed key shows only its prefix"
    );
    assert_eq!(list["data"][0]["revoked_at_ms"], Value::Null);
}

pub async fn blank_key_names_are_refused(api: &Api) {
    let (status, err) = api
        .call("POST", "/api/v1/keys", Some(json!({"name": "  "})))
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
}

pub async fn a_revoked_key_leaves_the_snapshot_and_auto_mode_stays_closed(api: &Api) {
    let (id, _) = with_key(api).await;
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
}

pub async fn revoking_a_missing_key_is_not_found(api: &Api) {
    assert_eq!(
        api.call("DELETE", "/api/v1/keys/key_missing", None).await.0,
        404
    );
}

pub async fn a_keys_limits_are_set_on_create_replaced_and_published(api: &Api) {
    let (status, created) = api
        .call(
            "POST",
            "/api/v1/keys",
            Some(json!({"name": "team-b",
            "limits": {"requests_per_minute": 60, "models": ["gpt4"]}})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["key"]["limits"]["requests_per_minute"], 60);
    let id = created["key"]["id"].as_str().unwrap().to_owned();
    let published = |snap: &config_model::ConfigSnapshot| {
        snap.keys
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.limits.clone())
    };
    let limits = published(&api.snapshot().await).unwrap();
    assert_eq!(
        (limits.requests_per_minute, limits.models.len()),
        (Some(60), 1)
    );

    let (status, updated) = api
        .call(
            "PUT",
            &format!("/api/v1/keys/{id}/limits"),
            Some(json!({"tokens_per_minute": 100000, "expires_at_ms": 4102444800000_i64})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["limits"]["tokens_per_minute"], 100000);
    assert!(updated["limits"].get("requests_per_minute").is_none());
    let limits = published(&api.snapshot().await).unwrap();
    assert_eq!(
        (limits.requests_per_minute, limits.expires_at_ms),
        (None, Some(4102444800000))
    );

    for body in [json!({"requests_per_minute": 0}), json!({"models": [""]})] {
        let (status, err) = api
            .call("PUT", &format!("/api/v1/keys/{id}/limits"), Some(body))
            .await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_limits")),
            "{err}"
        );
    }
    let (status, _) = api
        .call("PUT", "/api/v1/keys/nope/limits", Some(json!({})))
        .await;
    assert_eq!(status, 404);
}
