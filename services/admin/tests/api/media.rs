//! One log over HTTP: its request body and its media, served; a missing log
//! and missing media not found.

use events::proto::{LogEvent, MediaRef};

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

/// A client chooses the type in its `data:` URL: `text/html` with a script would be
/// stored XSS if served as it came.
pub async fn media_is_never_served_as_a_page(api: &Api) {
    let sha = "ef".repeat(32);
    let path = api.media.path().join(events::media_path(&sha, "text/html"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"<script>alert(1)</script>").unwrap();
    let logged = LogEvent {
        media: vec![MediaRef {
            sha256: sha.clone(),
            mime: "text/html".into(),
            size: 25,
        }],
        ..event(40)
    };
    api.store.insert_batch(&[logged]).await.unwrap();
    let served = api.get(&format!("/api/v1/media/{sha}")).await;
    assert_eq!(served.status(), 200);
    let headers = served.headers();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-disposition"], "attachment");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    // An image stays an image, shown inline, still sandboxed.
    with_logs(api).await;
    let image = api.get(&format!("/api/v1/media/{}", "cd".repeat(32))).await;
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.headers()["content-disposition"], "inline");
    assert_eq!(image.headers()["x-content-type-options"], "nosniff");
}

pub async fn paths_that_match_nothing_are_404_json_even_without_the_token(api: &Api) {
    for (method, path) in [
        ("GET", "/api/v1/nothing"),
        ("DELETE", "/api/v1/providerz/openai"),
        ("POST", "/aiprox.v1.AdminService/ListProviders"),
    ] {
        let response = api
            .client
            .request(method.parse().unwrap(), format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
}
