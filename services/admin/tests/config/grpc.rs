//! Providers, mappings and client keys through gRPC (the generated tonic
//! client): the admin token, the provider key write-only, each refusal as a
//! status code, mappings created, updated, read, listed and deleted, a provider
//! in use kept, keys listed without their secret and revoked.

use admin::proto::admin_service_client::AdminServiceClient;
use admin::proto::{self as pb};

use crate::{Api, GrpcClient, PROVIDER_KEY, grpc_channel, grpc_client};

/// The provider `grpc-openai`, with the key `PROVIDER_KEY`, through gRPC.
async fn with_grpc_openai(client: &mut GrpcClient) -> pb::Provider {
    client
        .create_provider(pb::Provider {
            name: "grpc-openai".into(),
            kind: "openai".into(),
            base_url: Some("http://127.0.0.1:9/v1".into()),
            api_key: Some(PROVIDER_KEY.into()),
            ..pb::Provider::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The alias `grpc-alias` → `grpc-openai/gpt-4o` (after [`with_grpc_openai`]).
async fn with_grpc_alias(client: &mut GrpcClient) -> pb::Mapping {
    client
        .create_mapping(pb::Mapping {
            alias: "grpc-alias".into(),
            targets: vec![pb::MappingTarget {
                provider: "grpc-openai".into(),
                model: "gpt-4o".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

pub async fn grpc_needs_the_admin_token(api: &Api) {
    let refused = AdminServiceClient::new(grpc_channel(api).await)
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

pub async fn grpc_provider_keys_are_write_only(api: &Api) {
    let mut client = grpc_client(api).await;
    let created = with_grpc_openai(&mut client).await;
    assert_eq!((created.api_key, created.has_api_key), (None, true));
    let listed = client
        .list_providers(pb::ListProvidersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .providers
            .iter()
            .any(|p| p.name == "grpc-openai" && p.api_key.is_none())
    );
}

pub async fn grpc_a_provider_name_is_taken_once(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    let err = client
        .create_provider(pb::Provider {
            name: "grpc-openai".into(),
            kind: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
}

pub async fn grpc_invalid_base_urls_are_invalid_arguments(api: &Api) {
    let mut client = grpc_client(api).await;
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
}

pub async fn grpc_a_mapping_is_created_with_its_targets(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    let mapping = with_grpc_alias(&mut client).await;
    assert_eq!(mapping.targets.len(), 1);
}

pub async fn grpc_mappings_to_unknown_providers_are_invalid_arguments(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    let err = client
        .create_mapping(pb::Mapping {
            alias: "x".into(),
            targets: vec![pb::MappingTarget {
                provider: "ghost".into(),
                model: "m".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("unknown_provider"));
}

pub async fn grpc_an_update_replaces_the_targets(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    with_grpc_alias(&mut client).await;
    let updated = client
        .update_mapping(pb::Mapping {
            alias: "grpc-alias".into(),
            targets: vec![pb::MappingTarget {
                provider: "grpc-openai".into(),
                model: "gpt-4o-mini".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.targets[0].model, "gpt-4o-mini");
}

pub async fn grpc_mappings_are_read_and_listed(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    with_grpc_alias(&mut client).await;
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
}

pub async fn grpc_a_provider_in_use_cannot_be_deleted(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    with_grpc_alias(&mut client).await;
    let err = client
        .delete_provider(pb::DeleteProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
}

pub async fn grpc_a_deleted_mapping_is_not_found(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    with_grpc_alias(&mut client).await;
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
}

pub async fn grpc_a_provider_is_read_updated_and_deleted(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    client
        .get_provider(pb::GetProviderRequest {
            name: "grpc-openai".into(),
        })
        .await
        .unwrap();
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
}

pub async fn grpc_client_keys_are_listed_without_their_secret(api: &Api) {
    let mut client = grpc_client(api).await;
    let created = client
        .create_key(pb::CreateKeyRequest {
            name: "grpc".into(),
            limits: None,
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
}

pub async fn grpc_a_revoked_key_has_its_revocation_time(api: &Api) {
    let mut client = grpc_client(api).await;
    let created = client
        .create_key(pb::CreateKeyRequest {
            name: "grpc".into(),
            limits: None,
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.key.unwrap();
    let revoked = client
        .revoke_key(pb::RevokeKeyRequest { id: key.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_at_ms.is_some());
}

pub async fn grpc_revoking_a_missing_key_is_not_found(api: &Api) {
    let mut client = grpc_client(api).await;
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
}

pub async fn grpc_a_mapping_keeps_its_strategy_and_weights(api: &Api) {
    let mut client = grpc_client(api).await;
    with_grpc_openai(&mut client).await;
    let created = client
        .create_mapping(pb::Mapping {
            alias: "spread".into(),
            strategy: "least_latency".into(),
            targets: vec![
                pb::MappingTarget {
                    provider: "grpc-openai".into(),
                    model: "gpt-4o".into(),
                    weight: Some(2),
                    timeout_ms: Some(9000),
                },
                pb::MappingTarget {
                    provider: "grpc-openai".into(),
                    model: "gpt-4o-mini".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.strategy, "least_latency");
    assert_eq!(
        (created.targets[0].weight, created.targets[0].timeout_ms),
        (Some(2), Some(9000))
    );
    // Unset, a weight is 1.
    assert_eq!(created.targets[1].weight, Some(1));
    let err = client
        .create_mapping(pb::Mapping {
            alias: "odd".into(),
            strategy: "fastest".into(),
            targets: created.targets.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("least_busy"), "{}", err.message());
}

pub async fn provider_health_gathers_every_gateways_report_on_both_faces(api: &Api) {
    let report = |gateway: &str, ejected: Option<u64>| config_model::HealthReport {
        gateway: gateway.into(),
        at_ms: 1,
        targets: vec![config_model::TargetHealth {
            provider: "grpc-openai".into(),
            model: "gpt-4o".into(),
            ejected_until_ms: ejected,
            failures_in_a_row: 5,
            in_flight: 1,
            latency_ms: 80.0,
        }],
        resting_keys: vec![],
    };
    for (gateway, ejected) in [("g1", Some(4_000_000_000_000)), ("g2", None)] {
        api.bus
            .put_health(gateway, report(gateway, ejected).to_bytes().unwrap())
            .await
            .unwrap();
    }
    let (status, health) = api.call("GET", "/api/v1/provider-health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["gateways"], 2);
    assert_eq!(health["targets"][0]["status"], "partly_ejected");
    assert_eq!(health["targets"][0]["in_flight"], 2);

    let mut client = grpc_client(api).await;
    let health = client
        .get_provider_health(pb::GetProviderHealthRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.gateways, 2);
    let t = &health.targets[0];
    assert_eq!(
        (t.status.as_str(), t.ejected_on, t.reported_by, t.latency_ms),
        ("partly_ejected", 1, 2, Some(80.0))
    );
}

pub async fn grpc_a_keys_limits_are_set_and_read(api: &Api) {
    let mut client = grpc_client(api).await;
    let created = client
        .create_key(pb::CreateKeyRequest {
            name: "grpc-limited".into(),
            limits: Some(pb::KeyLimits {
                requests_per_minute: Some(30),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let key = created.key.unwrap();
    assert_eq!(key.limits.unwrap().requests_per_minute, Some(30));
    let updated = client
        .set_key_limits(pb::SetKeyLimitsRequest {
            id: key.id.clone(),
            limits: Some(pb::KeyLimits {
                max_concurrent: Some(4),
                models: vec!["gpt4".into()],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let limits = updated.limits.unwrap();
    assert_eq!(
        (limits.requests_per_minute, limits.max_concurrent),
        (None, Some(4))
    );
    assert_eq!(limits.models, ["gpt4"]);
    let err = client
        .set_key_limits(pb::SetKeyLimitsRequest {
            id: key.id,
            limits: Some(pb::KeyLimits {
                tokens_per_minute: Some(0),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client
        .set_key_limits(pb::SetKeyLimitsRequest {
            id: updated.id.clone(),
            limits: Some(pb::KeyLimits {
                budget: Some(pb::Budget {
                    usd: 5.0,
                    period: "weekly".into(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("weekly"), "{}", err.message());
}

pub async fn grpc_prices_are_set_listed_and_removed(api: &Api) {
    let mut client = grpc_client(api).await;
    let set = client
        .set_price(pb::PriceOverride {
            key: "gpt4".into(),
            price: Some(pb::Price {
                input: 2.0,
                output: 8.0,
                cached_input: Some(0.5),
                cache_write: None,
                cache_write_1h: Some(4.0),
            }),
            updated_at_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let price = set.price.unwrap();
    assert_eq!(
        (price.cached_input, price.cache_write_1h),
        (Some(0.5), Some(4.0))
    );
    let listed = client
        .list_prices(pb::ListPricesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.overrides[0].key, "gpt4");
    let anthropic = listed
        .bundled
        .iter()
        .find(|b| b.vendor == "anthropic")
        .unwrap();
    assert!(anthropic.models["claude-haiku-4-5"].cache_write.is_some());
    let err = client
        .set_price(pb::PriceOverride {
            key: "gpt4".into(),
            price: Some(pb::Price {
                input: -1.0,
                ..Default::default()
            }),
            updated_at_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    client
        .delete_price(pb::DeletePriceRequest { key: "gpt4".into() })
        .await
        .unwrap();
    let err = client
        .delete_price(pb::DeletePriceRequest { key: "gpt4".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
}
