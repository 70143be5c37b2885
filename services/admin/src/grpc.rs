//! The gRPC face: `aiprox.v1.AdminService`, on the same core.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tonic::{Request, Response, Status};

use crate::core::{AdminCore, ApiError, Kind, LogQuery, media_url};
use crate::proto::admin_service_server::AdminService;
use crate::proto::{self as pb};

impl From<ApiError> for Status {
    fn from(e: ApiError) -> Self {
        let message = format!("{}: {}", e.code, e.message);
        match e.kind {
            Kind::Invalid => Status::invalid_argument(message),
            Kind::NotFound => Status::not_found(message),
            Kind::Unauthorized => Status::unauthenticated(message),
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
            stream: l.stream,
            status: l.status,
            error_kind: l.error_kind.clone(),
            input_tokens: l.input_tokens,
            output_tokens: l.output_tokens,
            latency_us: l.latency_us,
            ttft_us: l.ttft_us,
        };
        Ok(Response::new(pb::LogDetail {
            row: Some(row(&summary)),
            upstream_model: l.upstream_model,
            cached_tokens: l.cached_tokens,
            cost_usd: l.cost_usd,
            upstream_latency_ms: l.upstream_latency_us as f64 / 1000.0,
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

    async fn get_usage_series(
        &self,
        request: Request<pb::UsageSeriesRequest>,
    ) -> Result<Response<pb::UsageSeries>, Status> {
        let r = request.into_inner();
        let points = self
            .0
            .series(r.from_ms, r.to_ms, r.step_s, &r.split)
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
