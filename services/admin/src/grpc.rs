//! The gRPC face: `aiprox.v1.AdminService`, on the same core.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};

use config_model::Strategy;

use crate::core::{AdminCore, ApiError, Kind, LogQuery, invalid, media_url};
use crate::keys::KeyInput;
use crate::mappings::{MappingInput, Target};
use crate::proto::admin_service_server::AdminService;
use crate::proto::{self as pb};
use crate::providers::{KindName, ProviderInput};

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = format!("{}: {}", e.code, e.message);
        match e.kind {
            Kind::Invalid => Status::invalid_argument(message),
            Kind::NotFound => Status::not_found(message),
            Kind::Conflict => Status::already_exists(message),
            Kind::Unauthorized => Status::unauthenticated(message),
            Kind::Forbidden => Status::permission_denied(message),
            Kind::Unavailable => Status::unavailable(message),
        }
    }
}

/// Refuses calls without the admin token.
pub fn check_token(
    token: Arc<SecretString>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if crate::core::constant_time_eq(given.as_bytes(), token.expose_secret().as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "unauthorized: a valid admin token is required",
            ))
        }
    }
}

fn row(r: &store::LogSummary) -> pb::LogRow {
    pb::LogRow {
        request_id: r.request_id.clone(),
        received_at_ms: r.received_at_us / 1000,
        endpoint: r.endpoint.clone(),
        model: r.requested_model.clone(),
        provider: r.provider.clone(),
        stream: r.stream,
        status: r.status,
        error_kind: r.error_kind.clone(),
        input_tokens: r.input_tokens,
        output_tokens: r.output_tokens,
        latency_ms: r.latency_us as f64 / 1000.0,
        ttft_ms: r.ttft_us as f64 / 1000.0,
    }
}

#[derive(Debug, Clone)]
pub struct Grpc(pub Arc<AdminCore>);

#[tonic::async_trait]
impl AdminService for Grpc {
    async fn list_logs(
        &self,
        request: Request<pb::ListLogsRequest>,
    ) -> Result<Response<pb::ListLogsResponse>, Status> {
        let r = request.into_inner();
        let query = LogQuery {
            filter: store::LogFilter {
                from_us: r.from_ms.map(|ms| ms * 1000),
                to_us: r.to_ms.map(|ms| ms * 1000),
                model: r.model,
                provider: r.provider,
                status_class: r.status_class.map(|c| u16::try_from(c).unwrap_or(u16::MAX)),
                error_kind: r.error_kind,
                client_key_id: r.client_key_id,
                stream: r.stream,
                min_latency_us: r.min_latency_ms.map(|ms| ms * 1000),
                text: r.text.filter(|t| !t.is_empty()),
                source: None,
            },
            cursor: Some(r.cursor),
            limit: Some(r.limit),
        };
        let (rows, next) = self.0.list_logs(&query).await?;
        Ok(Response::new(pb::ListLogsResponse {
            data: rows.iter().map(row).collect(),
            next_cursor: next.map(|c| c.encode()).unwrap_or_default(),
        }))
    }

    async fn get_log(
        &self,
        request: Request<pb::GetLogRequest>,
    ) -> Result<Response<pb::LogDetail>, Status> {
        let l = self.0.get_log(&request.into_inner().request_id).await?;
        let summary = store::LogSummary {
            request_id: l.request_id.clone(),
            received_at_us: l.received_at_us,
            endpoint: l.endpoint.clone(),
            requested_model: l.requested_model.clone(),
            provider: l.provider.clone(),
            upstream_model: l.upstream_model.clone(),
            client_key_id: l.client_key_id.clone(),
            source: l.source.clone(),
            stream: l.stream,
            status: l.status,
            error_kind: l.error_kind.clone(),
            input_tokens: l.input_tokens,
            output_tokens: l.output_tokens,
            cost_usd: l.cost_usd,
            latency_us: l.latency_us,
            ttft_us: l.ttft_us,
        };
        Ok(Response::new(pb::LogDetail {
            row: Some(row(&summary)),
            upstream_model: l.upstream_model,
            cached_tokens: l.cached_tokens,
            cache_write_tokens: l.cache_write_tokens,
            cost_usd: l.cost_usd,
            upstream_latency_ms: l.upstream_latency_us as f64 / 1000.0,
            failed_attempts: l
                .failed_attempts
                .iter()
                .map(|a| pb::FailedAttempt {
                    provider: a.provider.clone(),
                    upstream_model: a.upstream_model.clone(),
                    status: a.status,
                    error_kind: a.error_kind.clone(),
                    latency_ms: a.latency_us as f64 / 1000.0,
                    key: a.key,
                })
                .collect(),
            omitted_tools: l.omitted_tools,
            request_body: l.request_body,
            response_body: l.response_body,
            media: l
                .media
                .iter()
                .map(|(sha, _)| pb::MediaLink {
                    sha256: sha.clone(),
                    url: media_url(sha),
                })
                .collect(),
        }))
    }

    async fn get_media(
        &self,
        request: Request<pb::GetMediaRequest>,
    ) -> Result<Response<pb::MediaBlob>, Status> {
        let (mime, data) = self.0.media(&request.into_inner().sha256).await?;
        Ok(Response::new(pb::MediaBlob { mime, data }))
    }

    async fn get_usage_summary(
        &self,
        request: Request<pb::UsageSummaryRequest>,
    ) -> Result<Response<pb::UsageSummary>, Status> {
        let r = request.into_inner();
        let s = self.0.summary(r.from_ms, r.to_ms).await?;
        Ok(Response::new(usage(&s)))
    }

    async fn list_providers(
        &self,
        _: Request<pb::ListProvidersRequest>,
    ) -> Reply<pb::ListProvidersResponse> {
        let providers = self.0.list_providers().await?;
        Ok(Response::new(pb::ListProvidersResponse {
            providers: providers.into_iter().map(provider).collect(),
        }))
    }

    async fn get_provider_health(
        &self,
        _: Request<pb::GetProviderHealthRequest>,
    ) -> Reply<pb::ProviderHealth> {
        let h = self.0.provider_health().await?;
        Ok(Response::new(pb::ProviderHealth {
            gateways: h.gateways,
            targets: h
                .targets
                .into_iter()
                .map(|t| pb::TargetState {
                    provider: t.provider,
                    model: t.model,
                    status: t.status,
                    reported_by: t.reported_by,
                    ejected_on: t.ejected_on,
                    ejected_until_ms: t.ejected_until_ms,
                    failures_in_a_row: t.failures_in_a_row,
                    in_flight: t.in_flight,
                    latency_ms: t.latency_ms,
                })
                .collect(),
            resting_keys: h
                .resting_keys
                .into_iter()
                .map(|k| pb::KeyState {
                    provider: k.provider,
                    key: k.key,
                    masked: k.masked,
                    resting_on: k.resting_on,
                    until_ms: k.until_ms,
                })
                .collect(),
        }))
    }

    async fn list_prices(
        &self,
        _: Request<pb::ListPricesRequest>,
    ) -> Reply<pb::ListPricesResponse> {
        let prices = self.0.list_prices().await?;
        Ok(Response::new(pb::ListPricesResponse {
            overrides: prices.overrides.into_iter().map(price_override).collect(),
            bundled: prices
                .bundled
                .into_iter()
                .map(|(vendor, v)| pb::BundledPrices {
                    vendor,
                    source: v.source,
                    taken: v.taken,
                    models: v.models.into_iter().map(|(m, p)| (m, price(p))).collect(),
                })
                .collect(),
        }))
    }

    async fn set_price(&self, request: Request<pb::PriceOverride>) -> Reply<pb::PriceOverride> {
        let r = request.into_inner();
        let p = r.price.unwrap_or_default();
        let set = config_model::prices::Price {
            input: p.input,
            output: p.output,
            cached_input: p.cached_input,
            cache_write: p.cache_write,
            cache_write_1h: p.cache_write_1h,
        };
        Ok(Response::new(price_override(
            self.0.set_price(&r.key, &set).await?,
        )))
    }

    async fn delete_price(&self, request: Request<pb::DeletePriceRequest>) -> Reply<pb::Deleted> {
        let key = request.into_inner().key;
        self.0.delete_price(&key).await?;
        Ok(Response::new(pb::Deleted { name: key }))
    }

    async fn get_provider(&self, request: Request<pb::GetProviderRequest>) -> Reply<pb::Provider> {
        let p = self.0.get_provider(&request.into_inner().name).await?;
        Ok(Response::new(provider(p)))
    }

    async fn create_provider(&self, request: Request<pb::Provider>) -> Reply<pb::Provider> {
        let input = provider_input(request.into_inner());
        Ok(Response::new(provider(
            self.0.create_provider(&input).await?,
        )))
    }

    async fn update_provider(&self, request: Request<pb::Provider>) -> Reply<pb::Provider> {
        let input = provider_input(request.into_inner());
        let name = input.name.clone();
        Ok(Response::new(provider(
            self.0.update_provider(&name, &input).await?,
        )))
    }

    async fn delete_provider(
        &self,
        request: Request<pb::DeleteProviderRequest>,
    ) -> Reply<pb::Deleted> {
        let name = request.into_inner().name;
        self.0.delete_provider(&name).await?;
        Ok(Response::new(pb::Deleted { name }))
    }

    async fn list_mappings(
        &self,
        _: Request<pb::ListMappingsRequest>,
    ) -> Reply<pb::ListMappingsResponse> {
        let mappings = self.0.list_mappings().await?;
        Ok(Response::new(pb::ListMappingsResponse {
            mappings: mappings.into_iter().map(mapping).collect(),
        }))
    }

    async fn get_mapping(&self, request: Request<pb::GetMappingRequest>) -> Reply<pb::Mapping> {
        let m = self.0.get_mapping(&request.into_inner().alias).await?;
        Ok(Response::new(mapping(m)))
    }

    async fn create_mapping(&self, request: Request<pb::Mapping>) -> Reply<pb::Mapping> {
        let input = mapping_input(request.into_inner())?;
        Ok(Response::new(mapping(self.0.create_mapping(&input).await?)))
    }

    async fn update_mapping(&self, request: Request<pb::Mapping>) -> Reply<pb::Mapping> {
        let input = mapping_input(request.into_inner())?;
        let alias = input.alias.clone();
        Ok(Response::new(mapping(
            self.0.update_mapping(&alias, &input).await?,
        )))
    }

    async fn delete_mapping(
        &self,
        request: Request<pb::DeleteMappingRequest>,
    ) -> Reply<pb::Deleted> {
        let alias = request.into_inner().alias;
        self.0.delete_mapping(&alias).await?;
        Ok(Response::new(pb::Deleted { name: alias }))
    }

    async fn create_key(&self, request: Request<pb::CreateKeyRequest>) -> Reply<pb::CreatedKey> {
        let r = request.into_inner();
        let input = KeyInput {
            name: r.name,
            limits: r.limits.map(limits_input).transpose()?.unwrap_or_default(),
        };
        let created = self.0.create_key(&input).await?;
        Ok(Response::new(pb::CreatedKey {
            key: Some(key(created.key)),
            secret: created.secret,
        }))
    }

    async fn list_keys(&self, _: Request<pb::ListKeysRequest>) -> Reply<pb::ListKeysResponse> {
        let keys = self.0.list_keys().await?;
        Ok(Response::new(pb::ListKeysResponse {
            keys: keys.into_iter().map(key).collect(),
        }))
    }

    async fn set_key_limits(
        &self,
        request: Request<pb::SetKeyLimitsRequest>,
    ) -> Reply<pb::ClientKey> {
        let r = request.into_inner();
        let limits = r.limits.map(limits_input).transpose()?.unwrap_or_default();
        Ok(Response::new(key(self
            .0
            .set_key_limits(&r.id, &limits)
            .await?)))
    }

    async fn revoke_key(&self, request: Request<pb::RevokeKeyRequest>) -> Reply<pb::ClientKey> {
        let k = self.0.revoke_key(&request.into_inner().id).await?;
        Ok(Response::new(key(k)))
    }

    async fn get_usage_series(
        &self,
        request: Request<pb::UsageSeriesRequest>,
    ) -> Result<Response<pb::UsageSeries>, Status> {
        let r = request.into_inner();
        let points = self
            .0
            .series(r.from_ms, r.to_ms, r.step_s, &r.split, true)
            .await?;
        Ok(Response::new(pb::UsageSeries {
            points: points
                .iter()
                .map(|p| pb::UsagePoint {
                    start_ms: p.start_us / 1000,
                    group: p.group.clone(),
                    usage: Some(usage(&p.usage)),
                })
                .collect(),
        }))
    }
}

fn provider(p: crate::providers::Provider) -> pb::Provider {
    pb::Provider {
        name: p.name,
        kind: p.kind,
        base_url: p.base_url,
        api_key: None,
        api_key_env: p.api_key_env,
        api_key_masked: p.api_key_masked,
        has_api_key: p.has_api_key,
        headers: p.headers.into_iter().collect(),
        models: p.models,
        anthropic_version: p.anthropic_version,
        default_max_tokens: p.default_max_tokens,
        timeouts: Some(pb::Timeouts {
            connect_ms: p.timeouts.connect_ms,
            first_byte_ms: p.timeouts.first_byte_ms,
            idle_ms: p.timeouts.idle_ms,
        }),
        word_delay_ms: p.word_delay_ms,
        created_at_ms: p.created_at_ms,
        updated_at_ms: p.updated_at_ms,
        api_keys: Vec::new(),
        api_key_count: p.api_key_count,
        responses_api: p.responses_api,
    }
}

fn provider_input(p: pb::Provider) -> ProviderInput {
    ProviderInput {
        name: p.name,
        kind: KindName::from(p.kind),
        base_url: p.base_url,
        api_key: p.api_key,
        // Repeated fields have no absence: none given keeps the stored keys.
        api_keys: Some(p.api_keys).filter(|k| !k.is_empty()),
        api_key_env: p.api_key_env,
        headers: p.headers.into_iter().collect(),
        models: p.models,
        anthropic_version: p.anthropic_version,
        default_max_tokens: p.default_max_tokens,
        timeouts: p.timeouts.map(|t| crate::providers::Timeouts {
            connect_ms: t.connect_ms,
            first_byte_ms: t.first_byte_ms,
            idle_ms: t.idle_ms,
        }),
        word_delay_ms: p.word_delay_ms,
        responses_api: p.responses_api,
    }
}

fn mapping(m: crate::mappings::Mapping) -> pb::Mapping {
    pb::Mapping {
        alias: m.alias,
        targets: m
            .targets
            .into_iter()
            .map(|t| pb::MappingTarget {
                provider: t.provider,
                model: t.model,
                weight: Some(t.weight),
                timeout_ms: t.timeout_ms,
            })
            .collect(),
        created_at_ms: m.created_at_ms,
        updated_at_ms: m.updated_at_ms,
        strategy: m.strategy.as_str().to_owned(),
    }
}

fn mapping_input(m: pb::Mapping) -> Result<MappingInput, ApiError> {
    let strategy = if m.strategy.is_empty() {
        Strategy::Fallback
    } else {
        Strategy::parse(&m.strategy).ok_or_else(|| {
            invalid(
                "invalid_strategy",
                format!(
                    "unknown strategy '{}': one of {}",
                    m.strategy,
                    Strategy::NAMES.join(", ")
                ),
            )
            .at("strategy")
        })?
    };
    Ok(MappingInput {
        alias: m.alias,
        targets: m
            .targets
            .into_iter()
            .map(|t| Target {
                provider: t.provider,
                model: t.model,
                weight: t.weight.unwrap_or(1),
                timeout_ms: t.timeout_ms,
            })
            .collect(),
        strategy,
    })
}

fn key(k: crate::keys::Key) -> pb::ClientKey {
    pb::ClientKey {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        created_at_ms: k.created_at_ms,
        revoked_at_ms: k.revoked_at_ms,
        limits: Some(pb::KeyLimits {
            requests_per_minute: k.limits.requests_per_minute,
            tokens_per_minute: k.limits.tokens_per_minute,
            max_concurrent: k.limits.max_concurrent,
            models: k.limits.models,
            expires_at_ms: k.limits.expires_at_ms,
            budget: k.limits.budget.map(|b| pb::Budget {
                usd: b.usd,
                period: match b.period {
                    config_model::BudgetPeriod::Day => "day",
                    config_model::BudgetPeriod::Month => "month",
                    config_model::BudgetPeriod::Total => "total",
                }
                .to_owned(),
            }),
        }),
    }
}

fn price(p: config_model::prices::Price) -> pb::Price {
    pb::Price {
        input: p.input,
        output: p.output,
        cached_input: p.cached_input,
        cache_write: p.cache_write,
        cache_write_1h: p.cache_write_1h,
    }
}

fn price_override(o: crate::prices::PriceOverride) -> pb::PriceOverride {
    pb::PriceOverride {
        key: o.key,
        price: Some(price(o.price)),
        updated_at_ms: o.updated_at_ms,
    }
}

fn limits_input(l: pb::KeyLimits) -> Result<config_model::KeyLimits, ApiError> {
    let budget = match l.budget {
        None => None,
        Some(b) => Some(config_model::Budget {
            usd: b.usd,
            period: match b.period.as_str() {
                "day" => config_model::BudgetPeriod::Day,
                "month" | "" => config_model::BudgetPeriod::Month,
                "total" => config_model::BudgetPeriod::Total,
                other => {
                    return Err(invalid(
                        "invalid_limits",
                        format!("limits.budget.period '{other}': one of day, month, total"),
                    )
                    .at("limits"));
                }
            },
        }),
    };
    Ok(config_model::KeyLimits {
        requests_per_minute: l.requests_per_minute,
        tokens_per_minute: l.tokens_per_minute,
        max_concurrent: l.max_concurrent,
        models: l.models,
        expires_at_ms: l.expires_at_ms,
        budget,
    })
}

type Reply<T> = Result<Response<T>, Status>;

fn usage(s: &store::UsageSummary) -> pb::UsageSummary {
    let q = |h, p| store::UsageSummary::quantile_ms(h, p);
    pb::UsageSummary {
        requests: s.requests,
        errors: s.errors,
        input_tokens: s.input_tokens,
        output_tokens: s.output_tokens,
        cost_usd: s.cost_usd,
        latency_ms: Some(pb::Percentiles {
            p50: q(&s.latency_hist, 0.5),
            p95: q(&s.latency_hist, 0.95),
            p99: q(&s.latency_hist, 0.99),
        }),
        ttft_ms: Some(pb::Percentiles {
            p50: q(&s.ttft_hist, 0.5),
            p95: q(&s.ttft_hist, 0.95),
            p99: q(&s.ttft_hist, 0.99),
        }),
    }
}
