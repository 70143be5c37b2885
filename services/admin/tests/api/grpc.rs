//! Logs, media and the usage summary through gRPC (the generated tonic
//! client): the admin token, pages of a window, filters, an invalid status
//! class refused, one log (its media, the tools left out), a missing log, the
//! summary.

use admin::proto::admin_service_client::AdminServiceClient;
use admin::proto::{GetLogRequest, GetMediaRequest, ListLogsRequest, UsageSummaryRequest};
use events::proto::LogEvent;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::{Api, NOW_MS, TOKEN, event, with_logs};

type Bearer = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

async fn channel(api: &Api) -> Channel {
    tonic::transport::Endpoint::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A client that sends the admin token.
async fn client(api: &Api) -> AdminServiceClient<InterceptedService<Channel, Bearer>> {
    fn bearer(mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        Ok(r)
    }
    AdminServiceClient::with_interceptor(channel(api).await, bearer as Bearer)
}

pub async fn grpc_needs_the_admin_token(api: &Api) {
    let mut anonymous = AdminServiceClient::new(channel(api).await);
    let refused = anonymous
        .list_logs(ListLogsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
}

pub async fn grpc_pages_through_the_logs_of_a_window(api: &Api) {
    with_logs(api).await;
    let mut client = client(api).await;
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .list_logs(ListLogsRequest {
                cursor: cursor.clone(),
                limit: 9,
                to_ms: Some(NOW_MS + 31_000),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.data.into_iter().map(|r| r.request_id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(ids.len(), 30);
}

pub async fn grpc_filters_by_model_and_status_class(api: &Api) {
    with_logs(api).await;
    let claude = client(api)
        .await
        .list_logs(ListLogsRequest {
            model: Some("claude".into()),
            status_class: Some(2),
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        claude
            .data
            .iter()
            .all(|r| r.model == "claude" && (200..300).contains(&r.status))
    );
}

pub async fn grpc_refuses_an_invalid_status_class(api: &Api) {
    let bad = client(api)
        .await
        .list_logs(ListLogsRequest {
            status_class: Some(7),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}

pub async fn grpc_shows_a_log_and_serves_its_media(api: &Api) {
    with_logs(api).await;
    let mut client = client(api).await;
    let detail = client
        .get_log(GetLogRequest {
            request_id: event(3).request_id,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.row.unwrap().output_tokens, 3);
    assert!(detail.request_body.contains("hello"));
    assert!(detail.omitted_tools.is_empty());
    let blob = client
        .get_media(GetMediaRequest {
            sha256: detail.media[0].sha256.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (blob.mime.as_str(), &blob.data[..]),
        ("image/png", &b"\x89PNG"[..])
    );
    // The tools the gateway left out of the upstream request, in order.
    let codex = LogEvent {
        omitted_tools: vec!["web_search".into(), "namespace".into()],
        ..event(41)
    };
    let request_id = codex.request_id.clone();
    api.store.insert_batch(&[codex]).await.unwrap();
    let detail = client
        .get_log(GetLogRequest { request_id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.omitted_tools, ["web_search", "namespace"]);
}

pub async fn grpc_a_missing_log_is_not_found(api: &Api) {
    with_logs(api).await;
    let missing = client(api)
        .await
        .get_log(GetLogRequest {
            request_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}

pub async fn grpc_the_summary_agrees_with_the_rows_of_its_window(api: &Api) {
    with_logs(api).await;
    let summary = client(api)
        .await
        .get_usage_summary(UsageSummaryRequest {
            from_ms: NOW_MS - 60_000,
            to_ms: NOW_MS + 31_000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (summary.requests, summary.errors, summary.input_tokens),
        (30, 3, 300)
    );
}
