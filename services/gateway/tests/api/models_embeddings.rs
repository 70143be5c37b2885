use base64::Engine;
use mock_upstream::fixtures;
use serde_json::{Value, json};

use crate::helpers::{json as parse, spawn_app};

#[tokio::test]
async fn models_lists_aliases_and_provider_models_in_openai_shape() {
    let app = spawn_app().await;
    let response = app.get("/v1/models").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["claude", "demo", "gpt4", "mock/gpt-4o", "mock/gpt-4o-mini"]
    );
    for m in body["data"].as_array().unwrap() {
        assert_eq!(m["object"], "model");
        assert!(m["created"].is_u64() && m["owned_by"].is_string());
    }
    let one: Value = app
        .get("/v1/models/mock/gpt-4o")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], "mock/gpt-4o");
    assert_eq!(one["owned_by"], "mock");
    assert_eq!(app.get("/v1/models/unknown").await.status(), 404);
}

#[tokio::test]
async fn embeddings_pass_through_with_only_model_rewritten() {
    let app = spawn_app().await;
    let request = parse(include_str!(
        "../../../../fixtures/openai/embeddings_request.json"
    ));
    let mut aliased = request.clone();
    aliased["model"] = "mock/text-embedding-3-small".into();
    let response = app.post_embeddings(&aliased).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, parse(fixtures::openai::EMBEDDINGS_RESPONSE));
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/embeddings");
    assert_eq!(sent.body, request);
}

#[tokio::test]
async fn the_demo_provider_embeds_deterministically_in_both_encodings() {
    let app = spawn_app().await;
    let float: Value = app
        .post_embeddings(&json!({"model": "demo", "input": ["a", "b", "a"], "dimensions": 8}))
        .await
        .json()
        .await
        .unwrap();
    let vectors: Vec<Vec<f64>> = float["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vectors.len(), 3);
    assert_eq!(vectors[0].len(), 8);
    assert_eq!(vectors[0], vectors[2]);
    assert_ne!(vectors[0], vectors[1]);
    let norm: f64 = vectors[0].iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);

    let b64: Value = app
        .post_embeddings(
            &json!({"model": "demo", "input": "a", "dimensions": 8, "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
        .collect();
    for (x, y) in decoded.iter().zip(&vectors[0]) {
        assert!((x - y).abs() < 1e-6);
    }
}

#[tokio::test]
async fn floats_from_a_server_that_ignores_encoding_format_reach_the_client_as_base64() {
    let app = spawn_app().await;
    app.mock.set_behavior(mock_upstream::Behavior {
        ignore_encoding_format: true,
        ..mock_upstream::Behavior::default()
    });
    let asked = json!({"model": "gpt4", "input": ["Hello, world!"], "encoding_format": "base64"});
    let body: Value = app.post_embeddings(&asked).await.json().await.unwrap();
    let encoded = body["data"][0]["embedding"]
        .as_str()
        .unwrap_or_else(|| panic!("not base64: {body}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let floats: Value = parse(fixtures::openai::EMBEDDINGS_RESPONSE_FLOAT);
    let expected = floats["data"][0]["embedding"].as_array().unwrap();
    assert_eq!(bytes.len(), expected.len() * 4);
    let first = f32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!((f64::from(first) - expected[0].as_f64().unwrap()).abs() < 1e-6);
    // A client that asked for floats gets them untouched.
    let floats_asked = json!({"model": "gpt4", "input": ["Hello, world!"]});
    let body: Value = app
        .post_embeddings(&floats_asked)
        .await
        .json()
        .await
        .unwrap();
    assert!(body["data"][0]["embedding"].is_array());
}
