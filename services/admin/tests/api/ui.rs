//! The web UI's side of the admin: sessions (the token or a one-time code for an
//! HttpOnly cookie; writes by cookie need the CSRF header; logout), the pages
//! (client routes get the app, a strict Content-Security-Policy), and the
//! Playground's calls forwarded to a gateway (here a fake one that records what
//! it got and streams an answer back slowly).

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::{Api, LOGIN_CODE, TOKEN};

/// A gateway stand-in: records each request's path and headers, answers with a
/// three-event stream, 50 ms apart.
pub struct FakeGateway {
    pub url: String,
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

impl FakeGateway {
    pub async fn start() -> Self {
        let seen: Arc<Mutex<Vec<(String, HeaderMap)>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .push((request.uri().path().to_owned(), request.headers().clone()));
                let events = futures_util::stream::unfold(0, |i| async move {
                    (i < 3).then_some(())?;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some((
                        Ok::<_, std::io::Error>(format!("data: {{\"n\":{i}}}\n\n")),
                        i + 1,
                    ))
                });
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .header("x-request-id", "01900000-0000-7000-8000-000000000042")
                    .header("x-internal", "not for the browser")
                    .body(axum::body::Body::from_stream(events))
                    .unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/"),
            seen,
        }
    }
}

/// Logs in with `body`; the session cookie's `name=value`, or the status.
async fn login(api: &Api, body: Value) -> Result<String, u16> {
    let r = api
        .client
        .post(format!("{}/api/v1/session", api.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains(TOKEN), "the token is never the cookie");
    Ok(set.split(';').next().unwrap().to_owned())
}

fn with_cookie(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
) -> reqwest::RequestBuilder {
    api.client
        .request(method, format!("{}{path}", api.base))
        .header("cookie", cookie)
}

pub async fn a_session_cookie_opens_the_api_and_writes_need_the_csrf_header(api: &Api) {
    assert_eq!(login(api, json!({"token": "wrong"})).await, Err(401));
    let cookie = login(api, json!({"token": TOKEN})).await.unwrap();
    let r = with_cookie(api, reqwest::Method::GET, "/api/v1/logs", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session: Value = with_cookie(api, reqwest::Method::GET, "/api/v1/session", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["authenticated"], true);
    assert!(
        session["gateway_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    // A write by cookie without the header is what a cross-site form would send.
    let forged = with_cookie(api, reqwest::Method::POST, "/api/v1/keys", &cookie)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf");
    let meant = with_cookie(api, reqwest::Method::POST, "/api/v1/keys", &cookie)
        .header("x-aiprox-csrf", "1")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(meant.status(), 201);
    // A forged cookie opens nothing.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let forged_cookie = format!("{}{last}", &cookie[..cookie.len() - 1]);
    let r = with_cookie(api, reqwest::Method::GET, "/api/v1/logs", &forged_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

pub async fn a_login_code_works_once_and_logout_ends_the_session(api: &Api) {
    let cookie = login(api, json!({"code": LOGIN_CODE})).await.unwrap();
    assert_eq!(
        login(api, json!({"code": LOGIN_CODE})).await,
        Err(401),
        "a code works once"
    );
    let r = with_cookie(api, reqwest::Method::DELETE, "/api/v1/session", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The same cookie, kept by someone, no longer works.
    let r = with_cookie(api, reqwest::Method::GET, "/api/v1/logs", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

pub async fn the_ui_is_served_with_client_routes_and_a_strict_policy(api: &Api) {
    for path in ["/", "/logs", "/providers/anything"] {
        let r = api
            .client
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(r.text().await.unwrap().contains("<title>aiprox</title>"));
    }
    // API paths never get the app.
    let r = api
        .client
        .get(format!("{}/api/v1/nothing", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    // A hashed asset that is not there is a 404, not the app.
    let r = api
        .client
        .get(format!("{}/assets/gone-0000.js", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

pub async fn the_playground_reaches_the_gateway_marked_and_streamed(api: &Api) {
    let started = std::time::Instant::now();
    let r = api
        .client
        .post(format!(
            "{}/api/v1/playground/v1/chat/completions",
            api.base
        ))
        .bearer_auth(TOKEN)
        .header("x-aiprox-client-key", "sk-aiprox-client")
        .json(&json!({"model": "demo", "stream": true, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Headers arrive before the stream's end: forwarded as it goes, not buffered.
    assert!(
        started.elapsed() < Duration::from_millis(140),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(
        r.headers()["x-request-id"],
        "01900000-0000-7000-8000-000000000042"
    );
    assert!(!r.headers().contains_key("x-internal"));
    let body = r.text().await.unwrap();
    assert_eq!(body.matches("data: ").count(), 3);
    let seen = api.gateway.seen.lock();
    let (path, headers) = seen.last().unwrap();
    assert_eq!(path, "/v1/chat/completions");
    assert_eq!(headers["x-aiprox-source"], "playground");
    assert_eq!(headers["authorization"], "Bearer sk-aiprox-client");
}

pub async fn the_playground_calls_only_the_gateway_api(api: &Api) {
    for path in [
        "/api/v1/playground/metrics",
        "/api/v1/playground/v1/../admin",
    ] {
        let r = api
            .client
            .get(format!("{}{path}", api.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r = api
        .client
        .get(format!("{}/api/v1/playground/v1/models", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the Playground needs a session or the token"
    );
    assert!(api.gateway.seen.lock().is_empty());
}
