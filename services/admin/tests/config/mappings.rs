//! Mappings over HTTP: published with their targets in order, every refusal, a
//! provider in use kept until no mapping uses it, update, listing, delete.

use serde_json::{Value, json};

use crate::{Api, with_gpt4_mapping, with_providers};

/// A mapping that `POST /api/v1/mappings` must refuse with `status` and `code`.
async fn refuse_mapping(api: &Api, body: Value, status: u16, code: &str) {
    let (got, err) = api
        .call("POST", "/api/v1/mappings", Some(body.clone()))
        .await;
    assert_eq!(
        (got, err["error"]["code"].as_str()),
        (status, Some(code)),
        "{body} → {err}"
    );
}

pub async fn a_mapping_is_published_with_its_targets_in_order(api: &Api) {
    with_providers(api).await;
    let (status, m) = api
        .call("POST", "/api/v1/mappings", Some(json!({"alias": "gpt4", "targets": [
            {"provider": "openai", "model": "gpt-4o"}, {"provider": "claude", "model": "claude-haiku-4-5"}]})))
        .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["targets"][1]["provider"], "claude");
    let snap = api.snapshot().await;
    assert_eq!(snap.mappings["gpt4"].targets.len(), 2);
    assert_eq!(snap.mappings["gpt4"].targets[0].model, "gpt-4o");
}

pub async fn an_alias_is_mapped_once(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
    refuse_mapping(
        api,
        json!({"alias": "gpt4", "targets": [{"provider": "openai", "model": "x"}]}),
        409,
        "alias_exists",
    )
    .await;
}

pub async fn mappings_to_unknown_providers_are_refused(api: &Api) {
    with_providers(api).await;
    refuse_mapping(
        api,
        json!({"alias": "new", "targets": [{"provider": "ghost", "model": "x"}]}),
        400,
        "unknown_provider",
    )
    .await;
}

pub async fn mappings_need_targets_with_models(api: &Api) {
    with_providers(api).await;
    for body in [
        json!({"alias": "new", "targets": []}),
        json!({"alias": "new", "targets": [{"provider": "openai", "model": ""}]}),
    ] {
        refuse_mapping(api, body, 400, "invalid_mapping").await;
    }
}

pub async fn invalid_aliases_are_refused(api: &Api) {
    with_providers(api).await;
    refuse_mapping(
        api,
        json!({"alias": "has space", "targets": [{"provider": "openai", "model": "x"}]}),
        400,
        "invalid_alias",
    )
    .await;
}

pub async fn a_mapping_without_targets_is_an_invalid_body(api: &Api) {
    with_providers(api).await;
    refuse_mapping(api, json!({"alias": "new"}), 400, "invalid_body").await;
}

pub async fn a_provider_in_use_cannot_be_deleted(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
    let (status, err) = api.call("DELETE", "/api/v1/providers/claude", None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("provider_in_use"))
    );
    assert!(err["error"]["message"].as_str().unwrap().contains("gpt4"));
}

pub async fn an_update_publishes_the_new_targets(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
    let (status, m) = api
        .call(
            "PUT",
            "/api/v1/mappings/gpt4",
            Some(json!({"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]})),
        )
        .await;
    assert_eq!((status, m["targets"].as_array().unwrap().len()), (200, 1));
    assert_eq!(
        api.snapshot().await.mappings["gpt4"].targets[0].model,
        "gpt-4o-mini"
    );
}

pub async fn mappings_are_listed_and_read_by_alias(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
    let (_, list) = api.call("GET", "/api/v1/mappings", None).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (status, _) = api.call("GET", "/api/v1/mappings/gpt4", None).await;
    assert_eq!(status, 200);
}

pub async fn a_provider_is_deleted_once_no_mapping_uses_it(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
    // gpt4 lets go of claude.
    api.set_up(
        "PUT",
        "/api/v1/mappings/gpt4",
        json!({"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}),
        200,
    )
    .await;

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
}

pub async fn a_mapping_is_deleted_once(api: &Api) {
    with_providers(api).await;
    with_gpt4_mapping(api).await;
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

pub async fn a_mapping_keeps_its_strategy_weights_and_timeouts(api: &Api) {
    with_providers(api).await;
    let (status, m) = api
        .call(
            "POST",
            "/api/v1/mappings",
            Some(
                json!({"alias": "spread", "strategy": "weighted", "targets": [
            {"provider": "openai", "model": "gpt-4o", "weight": 3, "timeout_ms": 20000},
            {"provider": "claude", "model": "claude-haiku-4-5", "weight": 0}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["strategy"], "weighted");
    assert_eq!(m["targets"][0]["weight"], 3);
    assert_eq!(m["targets"][0]["timeout_ms"], 20000);
    assert_eq!(m["targets"][1]["weight"], 0);
    let snap = api.snapshot().await;
    let published = &snap.mappings["spread"];
    assert_eq!(published.strategy, config_model::Strategy::Weighted);
    assert_eq!(
        (published.targets[0].weight, published.targets[0].timeout_ms),
        (3, Some(20000))
    );
    // Unset, a weight is 1 and the strategy fallback.
    let (_, m) = api
        .call(
            "PUT",
            "/api/v1/mappings/spread",
            Some(json!({"targets": [
            {"provider": "openai", "model": "gpt-4o"}]})),
        )
        .await;
    assert_eq!(
        (m["strategy"].as_str(), m["targets"][0]["weight"].as_u64()),
        (Some("fallback"), Some(1))
    );
    assert_eq!(
        api.snapshot().await.mappings["spread"].strategy,
        config_model::Strategy::Fallback
    );
    for (body, code) in [
        (
            json!({"alias": "x", "strategy": "fastest", "targets": [{"provider": "openai", "model": "m"}]}),
            "invalid_body",
        ),
        (
            json!({"alias": "x", "strategy": "weighted", "targets": [{"provider": "openai", "model": "m", "weight": 0}]}),
            "invalid_mapping",
        ),
        (
            json!({"alias": "x", "targets": [{"provider": "openai", "model": "m", "timeout_ms": 0}]}),
            "invalid_mapping",
        ),
        (
            json!({"alias": "x", "targets": [{"provider": "openai", "model": "m", "weight": -1}]}),
            "invalid_body",
        ),
    ] {
        refuse_mapping(api, body, 400, code).await;
    }
}

pub async fn prices_are_set_listed_published_and_removed(api: &Api) {
    let (status, set) = api
        .call(
            "PUT",
            "/api/v1/prices/claude/claude-haiku-4-5",
            Some(json!({"input": 0.8, "output": 4.0, "cached_input": 0.08})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["key"], "claude/claude-haiku-4-5");
    let (_, listed) = api.call("GET", "/api/v1/prices", None).await;
    assert_eq!(listed["overrides"][0]["price"]["input"], 0.8);
    let openai = &listed["bundled"]["openai"];
    assert!(openai["source"].as_str().unwrap().contains("http"));
    assert!(openai["models"]["gpt-4o"]["input"].as_f64().unwrap() > 0.0);
    let snap = api.snapshot().await;
    assert_eq!(
        snap.prices["claude/claude-haiku-4-5"].cached_input,
        Some(0.08)
    );
    for body in [
        json!({"input": -1.0, "output": 1.0}),
        json!({"input": 1.0, "output": 1.0, "cache_write": -0.5}),
    ] {
        let (status, err) = api.call("PUT", "/api/v1/prices/gpt4", Some(body)).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some("invalid_price")),
            "{err}"
        );
    }
    let (status, _) = api
        .call("DELETE", "/api/v1/prices/claude/claude-haiku-4-5", None)
        .await;
    assert_eq!(status, 204);
    assert!(api.snapshot().await.prices.is_empty());
    let (status, _) = api
        .call("DELETE", "/api/v1/prices/claude/claude-haiku-4-5", None)
        .await;
    assert_eq!(status, 404);
}
