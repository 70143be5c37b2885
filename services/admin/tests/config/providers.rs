//! Providers over HTTP: the admin token, the key (write-only, published sealed,
//! kept, replaced or removed on update), every refusal, each kind's defaults,
//! listing and reading.

use serde_json::{Value, json};

use crate::{
    Api, PROVIDER_KEY, ROTATED_KEY, TEMP_KEY, openai, refuse_provider, with_openai, with_providers,
};

pub async fn providers_need_the_admin_token(api: &Api) {
    let anonymous = api
        .client
        .get(format!("{}/api/v1/providers", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

pub async fn a_provider_key_is_write_only_and_published_sealed(api: &Api) {
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
}

pub async fn a_provider_name_is_taken_once(api: &Api) {
    with_openai(api).await;
    refuse_provider(api, openai("openai", None), 409, "provider_exists").await;
}

pub async fn openai_providers_need_a_valid_http_base_url(api: &Api) {
    for body in [
        json!({"name": "x", "kind": "openai", "base_url": "not a url"}),
        json!({"name": "x", "kind": "openai", "base_url": "ftp://h/v1"}),
        json!({"name": "x", "kind": "openai"}),
    ] {
        refuse_provider(api, body, 400, "invalid_provider").await;
    }
}

pub async fn unknown_provider_kinds_are_refused(api: &Api) {
    refuse_provider(
        api,
        json!({"name": "x", "kind": "gemini", "base_url": "http://h"}),
        400,
        "invalid_provider",
    )
    .await;
}

pub async fn invalid_provider_names_are_refused(api: &Api) {
    for body in [
        json!({"name": "a/b", "kind": "demo"}),
        json!({"name": "", "kind": "demo"}),
    ] {
        refuse_provider(api, body, 400, "invalid_name").await;
    }
}

pub async fn invalid_header_names_are_refused(api: &Api) {
    refuse_provider(
        api,
        json!({"name": "x", "kind": "openai", "base_url": "http://h/v1", "headers": {"bad header": "v"}}),
        400,
        "invalid_provider",
    )
    .await;
}

pub async fn unknown_fields_and_missing_bodies_are_refused(api: &Api) {
    refuse_provider(
        api,
        json!({"name": "x", "kind": "demo", "surprise": 1}),
        400,
        "invalid_body",
    )
    .await;
    let (status, body) = api.call("POST", "/api/v1/providers", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_body"))
    );
}

pub async fn an_update_without_a_key_keeps_the_key(api: &Api) {
    with_openai(api).await;
    let config_model::ProviderConfig::Openai(p) = &api.snapshot().await.providers["openai"] else {
        panic!("openai kind")
    };
    let sealed = p.api_key_sealed.clone().expect("sealed key");

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
}

pub async fn an_update_with_a_key_replaces_it(api: &Api) {
    with_openai(api).await;
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
}

pub async fn an_update_with_an_empty_key_removes_it(api: &Api) {
    let (status, _) = api
        .call("POST", "/api/v1/providers", Some(json!({"name": "keyless", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": TEMP_KEY})))
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
}

pub async fn a_provider_cannot_be_renamed(api: &Api) {
    with_openai(api).await;
    let (_, renamed) = api
        .call(
            "PUT",
            "/api/v1/providers/openai",
            Some(openai("other", None)),
        )
        .await;
    assert_eq!(renamed["error"]["code"], "invalid_name");
}

pub async fn updating_a_missing_provider_is_not_found(api: &Api) {
    let (status, _) = api
        .call("PUT", "/api/v1/providers/nope", Some(openai("nope", None)))
        .await;
    assert_eq!(status, 404);
}

pub async fn demo_providers_keep_their_word_delay(api: &Api) {
    let (status, demo) = api
        .call(
            "POST",
            "/api/v1/providers",
            Some(json!({"name": "demo", "kind": "demo", "word_delay_ms": 5})),
        )
        .await;
    assert_eq!((status, demo["word_delay_ms"].as_u64()), (201, Some(5)));
}

pub async fn anthropic_providers_default_their_version(api: &Api) {
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
}

pub async fn providers_are_listed_by_name(api: &Api) {
    with_providers(api).await;
    let (_, list) = api.call("GET", "/api/v1/providers", None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["claude", "demo", "keyless", "openai"]);
}

pub async fn providers_are_read_by_name(api: &Api) {
    with_providers(api).await;
    let (status, one) = api.call("GET", "/api/v1/providers/openai", None).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("openai")));
    let (status, _) = api.call("GET", "/api/v1/providers/missing", None).await;
    assert_eq!(status, 404);
}

pub async fn an_anthropic_version_with_a_line_break_is_refused(api: &Api) {
    let (status, error) = api
        .call(
            "POST",
            "/api/v1/providers",
            Some(json!({"name": "claude", "kind": "anthropic", "anthropic_version": "2023-06-01\r\nx-a: 1"})),
        )
        .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "invalid_provider");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anthropic_version")
    );
}

pub async fn a_pool_of_keys_is_sealed_whole_and_shown_masked(api: &Api) {
    let mut pool = openai("pooled", None);
    pool["api_keys"] = json!([PROVIDER_KEY, ROTATED_KEY]);
    let (status, created) = api.call("POST", "/api/v1/providers", Some(pool)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["api_key_count"], 2);
    assert_eq!(created["api_key_masked"], "…8e7d, …2b3c");
    let config_model::ProviderConfig::Openai(p) = &api.snapshot().await.providers["pooled"] else {
        panic!("openai kind")
    };
    let sealed = p.api_key_sealed.clone().expect("sealed pool");
    assert!(!sealed.contains(PROVIDER_KEY) && !sealed.contains(ROTATED_KEY));
    let opened = crate::test_secret().open("pooled", &sealed).unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        opened.expose_secret(),
        format!("{PROVIDER_KEY}\n{ROTATED_KEY}")
    );

    let mut both = openai("both", Some(PROVIDER_KEY));
    both["api_keys"] = json!([ROTATED_KEY]);
    refuse_provider(api, both, 400, "invalid_provider").await;
    let mut spaced = openai("spaced", None);
    spaced["api_keys"] = json!([PROVIDER_KEY, "sk two words"]);
    refuse_provider(api, spaced, 400, "invalid_provider").await;
    let mut broken = openai("broken", None);
    broken["api_keys"] = json!(["sk-line\nbreak"]);
    refuse_provider(api, broken, 400, "invalid_provider").await;
}
