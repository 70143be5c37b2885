//! The OpenAPI document: behind the admin token, every path, the provider key
//! write-only in its schemas, the log filters, the tools a log left out.

use serde_json::Value;

use crate::Api;

/// The document, through the token: a 200 and OpenAPI 3.
async fn document(api: &Api) -> Value {
    let (status, doc) = api.call("GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    doc
}

pub async fn the_openapi_document_needs_the_admin_token(api: &Api) {
    let anonymous = api
        .client
        .get(format!("{}/api/v1/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    document(api).await;
}

pub async fn the_openapi_document_lists_every_path(api: &Api) {
    let doc = document(api).await;
    for path in [
        "/api/v1/logs",
        "/api/v1/logs/{id}",
        "/api/v1/media/{sha256}",
        "/api/v1/stats/summary",
        "/api/v1/stats/series",
        "/api/v1/providers",
        "/api/v1/providers/{name}",
        "/api/v1/mappings",
        "/api/v1/mappings/{alias}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
}

pub async fn the_openapi_document_shows_the_provider_key_write_only(api: &Api) {
    let doc = document(api).await;
    let provider = &doc["components"]["schemas"]["Provider"]["properties"];
    assert!(provider.get("api_key_masked").is_some());
    assert!(provider.get("api_key").is_none(), "the key is write-only");
    assert!(
        doc["components"]["schemas"]["ProviderInput"]["properties"]
            .get("api_key")
            .is_some()
    );
}

/// The log detail names the tools left out of the upstream request (the web
/// UI's `LogDetail` reads it).
pub async fn the_openapi_document_shows_the_tools_a_log_left_out(api: &Api) {
    let doc = document(api).await;
    let detail = &doc["components"]["schemas"]["LogDetail"];
    let tools = &detail["properties"]["omitted_tools"];
    assert_eq!(tools["type"], "array");
    assert_eq!(tools["items"]["type"], "string");
    assert!(
        detail["required"]
            .as_array()
            .unwrap()
            .contains(&Value::from("omitted_tools"))
    );
}

pub async fn the_openapi_document_lists_the_log_filters(api: &Api) {
    let doc = document(api).await;
    assert!(
        doc["paths"]["/api/v1/logs"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .len()
            >= 10
    );
}
