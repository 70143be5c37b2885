//! OpenAI's Responses API: translated for a chat-completions upstream and for
//! Anthropic, passed through to a server that has the API; conversations
//! continued by `previous_response_id`, read back and deleted; built-in tools a
//! chat upstream cannot run left out; the WebSocket transport and its 426.

use serde_json::{Value, json};

use crate::helpers::{TestApp, json as parse, openai_provider, spawn_app, spawn_app_with};

/// `mock_native`: the mock upstream as a server with the Responses API.
async fn app() -> TestApp {
    spawn_app_with(|c| {
        let base = match &c.providers["mock"] {
            config_model::ProviderConfig::Openai(o) => o.base_url.to_string(),
            _ => unreachable!(),
        };
        let mut native = openai_provider(&base);
        if let config_model::ProviderConfig::Openai(o) = &mut native {
            o.responses_api = Some(true);
        }
        c.providers.insert("mock_native".into(), native);
        c.mappings.insert(
            "native".into(),
            config_model::Mapping::fallback(vec![config_model::Target::new(
                "mock_native",
                "gpt-5.2",
            )]),
        );
    })
    .await
}

async fn post(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app.post_raw("/v1/responses", body.to_string()).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A Responses stream's events, `(event name, data)`.
async fn events(app: &TestApp, body: &Value) -> Vec<(String, Value)> {
    let response = app.post_raw("/v1/responses", body.to_string()).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("[DONE]"));
    llm::sse::Decoder::new()
        .feed(text.as_bytes())
        .unwrap()
        .into_iter()
        .map(|e| (e.event.unwrap_or_default(), parse(&e.data)))
        .collect()
}

/// A chat message's text, whether its content is a string or text parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

fn output_text(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().clone())
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_chat_upstream_answers_a_responses_request() {
    let app = app().await;
    let (status, body) = post(
        &app,
        &json!({"model": "gpt4", "instructions": "Answer directly.", "input": "What is the capital of France?",
                "max_output_tokens": 50, "metadata": {"team": "a"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert!(body["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(output_text(&body), "The capital of France is Paris.");
    assert_eq!(body["usage"]["input_tokens"], 24);
    assert_eq!(body["usage"]["output_tokens"], 8);
    assert_eq!(body["usage"]["total_tokens"], 32);
    assert_eq!(body["metadata"], json!({"team": "a"}));
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["max_completion_tokens"], 50);
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "system", "content": "Answer directly."},
               {"role": "user", "content": "What is the capital of France?"}])
    );
}

#[tokio::test]
async fn a_translated_stream_is_the_responses_event_sequence() {
    let app = app().await;
    let events = events(
        &app,
        &json!({"model": "gpt4", "input": "Hi", "stream": true}),
    )
    .await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..4],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added"
        ]
    );
    assert_eq!(names.last(), Some(&"response.completed"));
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], *name);
        assert_eq!(data["sequence_number"], i as u64);
    }
    let deltas: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    let done = &events
        .iter()
        .find(|(n, _)| n == "response.output_text.done")
        .unwrap()
        .1;
    assert_eq!(done["text"], deltas);
    let completed = &events.last().unwrap().1["response"];
    assert_eq!(output_text(completed), deltas);
    assert!(completed["usage"]["output_tokens"].as_u64().unwrap() > 0);
    // The upstream was asked for the usage the completed event carries.
    assert_eq!(
        app.mock.last_request().unwrap().body["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn an_anthropic_upstream_answers_through_its_chat_translation() {
    let app = app().await;
    let (status, body) = post(
        &app,
        &json!({"model": "claude", "input": "What is the capital of France?"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert!(!output_text(&body).is_empty());
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["model"], "claude-haiku-4-5");
    assert!(app.mock.invalid_reasons().is_empty());
}

#[tokio::test]
async fn a_server_with_the_api_gets_the_body_with_only_model_rewritten() {
    let app = app().await;
    let request = json!({"model": "native", "input": "Hi", "store": true,
                         "reasoning": {"effort": "none"}, "vendor_extra": {"kept": 1}});
    let (status, body) = post(&app, &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("resp_mock"));
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/responses");
    let mut expected = request.clone();
    expected["model"] = "gpt-5.2".into();
    assert_eq!(sent.body, expected);
    // Streamed: the upstream's events, as they came.
    let events = events(
        &app,
        &json!({"model": "native", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(events.first().unwrap().0, "response.created");
    assert_eq!(events.last().unwrap().0, "response.completed");
    assert!(events.iter().all(|(n, d)| d["type"] == *n));
}

#[tokio::test]
async fn previous_response_id_continues_a_conversation_across_providers() {
    let app = app().await;
    let (_, first) = post(&app, &json!({"model": "gpt4", "input": "Hello"})).await;
    let id = first["id"].as_str().unwrap();
    let (status, second) = post(
        &app,
        &json!({"model": "gpt4", "input": "And again?", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let messages = app.mock.last_request().unwrap().body["messages"].clone();
    let turns: Vec<(String, String)> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                text_of(&m["content"]),
            )
        })
        .collect();
    assert_eq!(
        turns,
        [
            ("user".to_owned(), "Hello".to_owned()),
            (
                "assistant".to_owned(),
                "The capital of France is Paris.".to_owned()
            ),
            ("user".to_owned(), "And again?".to_owned())
        ]
    );
    // Continued on a server with the API, which never saw it: inlined.
    let (status, third) = post(
        &app,
        &json!({"model": "native", "input": "Once more", "previous_response_id": second["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{third}");
    let sent = app.mock.last_request().unwrap().body;
    assert!(sent.get("previous_response_id").is_none());
    let input = sent["input"].as_array().unwrap();
    assert_eq!(input.len(), 5);
    assert_eq!(input[4]["content"], "Once more");
    // Then on the same server again: named there, only the new input sent.
    let (status, _) = post(
        &app,
        &json!({"model": "native", "input": "Last", "previous_response_id": third["id"]}),
    )
    .await;
    assert_eq!(status, 200);
    let sent = app.mock.last_request().unwrap().body;
    assert_eq!(sent["previous_response_id"], third["id"]);
    assert_eq!(sent["input"], "Last");
}

#[tokio::test]
async fn stored_responses_are_read_listed_and_deleted() {
    let app = app().await;
    let (_, created) = post(&app, &json!({"model": "gpt4", "input": "Hello"})).await;
    let id = created["id"].as_str().unwrap();
    let got: Value = app
        .get(&format!("/v1/responses/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);
    let items: Value = app
        .get(&format!("/v1/responses/{id}/input_items"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"][0]["type"], "message");
    assert_eq!(items["data"][0]["role"], "user");
    assert_eq!(items["data"][0]["status"], "completed");
    assert_eq!(
        items["data"][0]["content"],
        json!([{"type": "input_text", "text": "Hello"}])
    );
    assert!(items["data"][0]["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(items["has_more"], false);
    let deleted: Value = app
        .client
        .delete(app.url(&format!("/v1/responses/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "response.deleted", "deleted": true})
    );
    let gone = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(gone.status(), 404);
    let (status, body) = post(
        &app,
        &json!({"model": "gpt4", "input": "x", "previous_response_id": id}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "previous_response_id");
    // Not stored: nothing to read.
    let (_, unstored) = post(
        &app,
        &json!({"model": "gpt4", "input": "x", "store": false}),
    )
    .await;
    let id = unstored["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/responses/{id}")).await.status(), 404);
}

#[tokio::test]
async fn built_in_tools_a_chat_upstream_cannot_run_are_left_out() {
    let app = app().await;
    let tools = json!([{"type": "web_search"},
                       {"type": "function", "name": "get_weather", "description": "Weather",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let (status, body) = post(
        &app,
        &json!({"model": "gpt4", "input": "Weather in Paris?", "tools": tools}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let sent = app.mock.last_request().unwrap().body;
    let sent_tools = sent["tools"].as_array().unwrap();
    assert_eq!(sent_tools.len(), 1);
    assert_eq!(sent_tools[0]["function"]["name"], "get_weather");
    assert!(
        body["output"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"] == "function_call")
    );
    // Forcing one is refused, in the Responses API's shape.
    let (status, body) = post(
        &app,
        &json!({"model": "gpt4", "input": "x", "tools": tools, "tool_choice": {"type": "web_search"}}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search")
    );
}

#[tokio::test]
async fn errors_answer_in_the_responses_shape() {
    let app = app().await;
    let (status, body) = post(&app, &json!({"model": "no-such-model", "input": "x"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "model");
    let (status, body) = post(&app, &json!({"model": "gpt4"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&app, &json!({"model": "gpt4", "input": 5})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "input");
}

#[tokio::test]
async fn a_get_that_is_no_upgrade_is_answered_426_at_once() {
    let app = spawn_app().await;
    let response = app.get("/v1/responses").await;
    assert_eq!(response.status(), 426);
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends one text frame; the events answered, up to the terminal one.
async fn ws_turn(socket: &mut Socket, body: Value) -> Vec<Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    socket
        .send(Message::Text(body.to_string().into()))
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(Ok(Message::Text(text))) = socket.next().await {
        let event: Value = serde_json::from_str(&text).unwrap();
        let end = matches!(
            event["type"].as_str(),
            Some("response.completed" | "response.failed" | "error")
        );
        events.push(event);
        if end {
            break;
        }
    }
    events
}

#[tokio::test]
async fn the_websocket_transport_serves_two_turns() {
    let app = app().await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/responses", app.addr))
            .await
            .unwrap();
    // Codex's warm-up: nothing generated, no upstream call, kept for the turn.
    let before = app.mock.requests().len();
    let warm = ws_turn(&mut socket, json!({"type": "response.create", "model": "gpt4", "store": false,
                            "generate": false, "tools": [],
                            "input": [{"role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]}]}))
    .await;
    let names: Vec<&str> = warm.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(names, ["response.created", "response.completed"]);
    assert_eq!(warm[1]["response"]["output"], json!([]));
    assert_eq!(app.mock.requests().len(), before);
    // Codex's shape: store false, the continuation sending only the new item.
    let first = ws_turn(&mut socket, json!({"type": "response.create", "model": "gpt4", "store": false,
                            "previous_response_id": warm[1]["response"]["id"],
                            "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}]}))
    .await;
    assert_eq!(first[0]["type"], "response.created");
    let done = first.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    let id = done["response"]["id"].clone();
    let second = ws_turn(
        &mut socket,
        json!({"type": "response.create", "model": "gpt4", "store": false,
                             "previous_response_id": id, "input": "And again?"}),
    )
    .await;
    assert_eq!(
        second.last().unwrap()["type"],
        "response.completed",
        "{second:?}"
    );
    let messages = &app.mock.last_request().unwrap().body["messages"];
    assert_eq!(messages.as_array().unwrap().len(), 4, "{messages}");
    assert_eq!(
        messages[0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(text_of(&messages[1]["content"]), "Hello");
    // A bad frame is an error event; the connection stays.
    let bad = ws_turn(&mut socket, json!({"type": "nonsense"})).await;
    assert_eq!(bad[0]["type"], "error");
    assert_eq!(bad[0]["status"], 400);
    // Not stored for other connections.
    assert_eq!(
        app.get(&format!("/v1/responses/{}", id.as_str().unwrap()))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn count_tokens_passes_through_to_anthropic_and_is_estimated_elsewhere() {
    let app = app().await;
    let request = json!({"model": "claude", "messages": [{"role": "user", "content": "The quick brown fox jumps over the lazy dog."}]});
    let response = app
        .post_messages_path("/v1/messages/count_tokens", &request)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"input_tokens": 19})
    );
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/messages/count_tokens");
    assert_eq!(sent.body["model"], "claude-haiku-4-5");
    let before = app.mock.requests().len();
    let mut request = request.clone();
    request["model"] = "gpt4".into();
    let response = app
        .post_messages_path("/v1/messages/count_tokens", &request)
        .await;
    assert_eq!(response.status(), 200);
    let counted = response.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    assert!((12..=20).contains(&counted), "{counted}");
    assert_eq!(app.mock.requests().len(), before, "no upstream call");
    // Anthropic's own error shape for a bad body.
    let response = app
        .post_messages_path("/v1/messages/count_tokens", &json!({"messages": []}))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["type"], "error");
}

#[tokio::test]
async fn legacy_completions_pass_through_and_stream() {
    let app = app().await;
    let request = json!({"model": "gpt4", "prompt": "Say this is a test", "max_tokens": 7});
    let response = app.post_raw("/v1/completions", request.to_string()).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "This is a test.");
    let sent = app.mock.last_request().unwrap();
    assert_eq!(sent.path, "/v1/completions");
    assert_eq!(sent.body["model"], "gpt-4o");
    assert_eq!(sent.body["prompt"], "Say this is a test");
    let response = app
        .post_raw(
            "/v1/completions",
            json!({"model": "gpt4", "prompt": "x", "stream": true}).to_string(),
        )
        .await;
    let payloads = crate::helpers::sse_payloads(response).await;
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    let text: String = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| {
            parse(p)["choices"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "This is a test.");
    // A provider without the API: a clear 400.
    let response = app
        .post_raw(
            "/v1/completions",
            json!({"model": "claude", "prompt": "x"}).to_string(),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_endpoint");
    let response = app
        .post_raw("/v1/completions", json!({"model": "gpt4"}).to_string())
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_log_holds_each_response_its_tokens_and_the_tools_left_out() {
    use events::memory::InProcessBus;
    let bus = InProcessBus::new();
    let spill = tempfile::tempdir().unwrap();
    let app = crate::logging::logged_app(&bus, spill.path()).await;
    let tools = json!([{"type": "web_search"}, {"type": "namespace", "name": "ns", "tools": []},
                       {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]);
    let plain = app
        .post_raw(
            "/v1/responses",
            json!({"model": "gpt4", "input": "Hi", "tools": tools}).to_string(),
        )
        .await;
    let plain_id = plain.headers()["x-request-id"].to_str().unwrap().to_owned();
    let plain: Value = plain.json().await.unwrap();
    let streamed = app
        .post_raw(
            "/v1/responses",
            json!({"model": "gpt4", "input": "Hi", "stream": true}).to_string(),
        )
        .await;
    let streamed_id = streamed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = streamed.text().await.unwrap();
    let logged = crate::logging::logged_events(&bus, 2, std::time::Duration::from_secs(10)).await;
    let (event, times) = &logged[&plain_id];
    assert_eq!(*times, 1);
    assert_eq!(event.endpoint, "/v1/responses");
    assert_eq!(event.omitted_tools, ["web_search", "namespace"]);
    assert_eq!(
        event.input_tokens,
        plain["usage"]["input_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        event.output_tokens,
        plain["usage"]["output_tokens"].as_u64().unwrap()
    );
    assert!(event.cost_usd > 0.0);
    assert_eq!(
        parse(std::str::from_utf8(&event.response_body).unwrap()),
        plain
    );
    let (event, _) = &logged[&streamed_id];
    assert!(event.stream);
    assert!(event.omitted_tools.is_empty());
    assert!(event.ttft_us > 0);
    assert!(event.output_tokens > 0);
    let body = parse(std::str::from_utf8(&event.response_body).unwrap());
    assert_eq!(body["status"], "completed");
    assert_eq!(body["object"], "response");
}
