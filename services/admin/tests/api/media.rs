//! One log over HTTP: its request body and its media, served; a missing log
//! and missing media not found.

use crate::{Api, event, with_logs};

pub async fn a_log_shows_its_request_and_serves_its_media(api: &Api) {
    with_logs(api).await;
    let detail = api
        .json(&format!("/api/v1/logs/{}", event(3).request_id))
        .await;
    assert_eq!(detail["request"]["messages"][0]["content"], "hello");
    let url = detail["media"][0]["url"].as_str().unwrap().to_owned();
    let media = api.get(&url).await;
    assert_eq!(media.status(), 200);
    assert_eq!(media.headers()["content-type"], "image/png");
    assert_eq!(&media.bytes().await.unwrap()[..], b"\x89PNG");
}

pub async fn a_missing_log_is_not_found(api: &Api) {
    with_logs(api).await;
    assert_eq!(
        api.get("/api/v1/logs/01900000-0000-7000-8000-999999999999")
            .await
            .status(),
        404
    );
}

pub async fn missing_media_is_not_found(api: &Api) {
    with_logs(api).await;
    assert_eq!(
        api.get(&format!("/api/v1/media/{}", "ee".repeat(32)))
            .await
            .status(),
        404
    );
}
