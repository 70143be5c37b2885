//! The web UI, embedded at build time (`build.rs`): assets by path, client
//! routes answered with `index.html`, hashed assets cached for a year, the rest
//! revalidated. A Content-Security-Policy allows only this origin's scripts.

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/ui_assets.rs"));
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>aiprox</title>\
<p>The aiprox web UI was not built into this binary: building it needs Node.js 20 and npm \
(<code>apt install nodejs npm</code>), then build aiprox again. The admin API at \
<code>/api/v1</code> works without it.</p>";

/// An asset: its bytes, and its gzipped bytes (empty when not worth it).
struct Asset {
    bytes: &'static [u8],
    gzipped: &'static [u8],
}

fn asset(path: &str) -> Option<Asset> {
    assets::ASSETS
        .binary_search_by(|(p, _, _)| (*p).cmp(path))
        .ok()
        .map(|i| Asset {
            bytes: assets::ASSETS[i].1,
            gzipped: assets::ASSETS[i].2,
        })
}

/// Whether the UI was built into this binary.
pub fn built() -> bool {
    asset("/index.html").is_some()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn respond(path: &str, asset: &Asset, gzip: bool, immutable: bool) -> Response {
    let gzip = gzip && !asset.gzipped.is_empty();
    let mut response = Response::new(Body::from(if gzip { asset.gzipped } else { asset.bytes }));
    let h = response.headers_mut();
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if !asset.gzipped.is_empty() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A GET outside `/api`: the asset (gzipped when `accepts_gzip` and worth it), or
/// `index.html` for a client route. `None` when the request is not the UI's to
/// answer.
pub fn serve(method: &Method, path: &str, accepts_gzip: bool) -> Option<Response> {
    if !(method == Method::GET || method == Method::HEAD)
        || path.starts_with("/api/")
        || path == "/api"
    {
        return None;
    }
    if let Some(found) = asset(path) {
        return Some(respond(
            path,
            &found,
            accepts_gzip,
            path.starts_with("/assets/"),
        ));
    }
    // A missing hashed asset is a 404, not the app: a stale page must not get HTML
    // for its script.
    if path.starts_with("/assets/") {
        return Some(StatusCode::NOT_FOUND.into_response());
    }
    let not_built = Asset {
        bytes: NOT_BUILT.as_bytes(),
        gzipped: &[],
    };
    let index = asset("/index.html").unwrap_or(not_built);
    Some(respond("/index.html", &index, accepts_gzip, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_and_writes_are_not_the_uis() {
        assert!(serve(&Method::GET, "/api/v1/logs", true).is_none());
        assert!(serve(&Method::POST, "/logs", true).is_none());
    }

    #[test]
    fn a_client_route_gets_the_app_uncached_and_a_missing_asset_is_404() {
        let r = serve(&Method::GET, "/logs/abc", false).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert_eq!(
            serve(&Method::GET, "/assets/gone-1234.js", true)
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn assets_are_sorted_for_the_lookup() {
        assert!(assets::ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn scripts_go_gzipped_to_browsers_that_take_it() {
        let Some((path, bytes, gz)) = assets::ASSETS.iter().find(|(p, _, _)| p.ends_with(".js"))
        else {
            return; // built without the UI
        };
        let plain = serve(&Method::GET, path, false).unwrap();
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let packed = serve(&Method::GET, path, true).unwrap();
        assert_eq!(packed.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(packed.headers()[header::VARY], "accept-encoding");
        assert!(gz.len() < bytes.len() / 2);
    }
}
