//! Live configuration end to end: `aiprox admin` and two `aiprox gateway`
//! processes over one NATS (and Postgres); then `aiprox all` on SQLite. Changes
//! made through the admin API reach every gateway within a second.

use std::time::{Duration, Instant};

use mock_upstream::{Behavior, Failure};
use serde_json::{Value, json};
use test_services::free_port;

use crate::harness::Stack;

const ADMIN_TOKEN: &str = "admin-token-live-config-test";
const SECRET: &str = "live-config-test-master-secret-0123456789abcdef";
const UPSTREAM_KEY: &str = "sk-upstream-key-set-through-the-admin-api-42";

struct Admin {
    base: String,
    client: reqwest::Client,
}

impl Admin {
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(!text.contains(UPSTREAM_KEY), "the provider key came back");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("{}/api/v1/keys", self.base))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("admin not up");
    }
}

async fn chat(client: &reqwest::Client, port: u16, model: &str, key: Option<&str>) -> u16 {
    let mut req = client
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap().status().as_u16()
}

/// How long until every gateway answers `model` with `status`; panics past 1 s.
async fn all_within_a_second(
    client: &reqwest::Client,
    ports: &[u16],
    model: &str,
    key: Option<&str>,
    status: u16,
) -> Duration {
    let start = Instant::now();
    for &port in ports {
        loop {
            if chat(client, port, model, key).await == status {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "gateway :{port} did not answer {model} with {status} within 1 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    start.elapsed()
}

#[tokio::test]
async fn admin_changes_reach_two_gateways_over_nats_within_a_second() {
    let stack = Stack::start().await;
    stack.mock.set_behavior(Behavior::default());
    let admin_port = free_port();
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let common = [
        ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("AIPROX_SECRET_KEY", SECRET),
        ("AIPROX_GATEWAY__AUTH", "required"),
    ];
    let mut admin_env = common.to_vec();
    admin_env.push(("AIPROX_ADMIN__LISTEN", admin_listen.as_str()));
    let _admin = stack.spawn("admin", &admin_env);
    let admin = Admin {
        base: format!("http://{admin_listen}"),
        client: reqwest::Client::new(),
    };
    admin.wait_up().await;
    let _logger = stack.spawn("logger", &[]);

    let ports = [free_port(), free_port()];
    let listens: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut gateways = Vec::new();
    for (i, listen) in listens.iter().enumerate() {
        let mut env = common.to_vec();
        env.push(("AIPROX_GATEWAY__LISTEN", listen.as_str()));
        gateways.push(stack.spawn_named(&format!("gateway{i}"), "gateway", &env));
    }
    for port in ports {
        stack.wait_ready_at(port).await;
    }
    let client = &stack.client;

    // Keys are required: the seeded alias answers 401 until a key exists.
    for port in ports {
        assert_eq!(chat(client, port, "gpt4", None).await, 401);
    }
    let (status, created) = admin
        .call("POST", "/api/v1/keys", Some(json!({"name": "e2e"})))
        .await;
    assert_eq!(status, 201);
    let key = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["key"]["id"].as_str().unwrap().to_owned();
    let key_took = all_within_a_second(client, &ports, "gpt4", Some(&key), 200).await;

    // A provider whose key is set through the admin API (sealed at rest), and an
    // alias on it: both gateways route it, sending the key upstream.
    let (status, body) = admin
        .call("POST", "/api/v1/providers", Some(json!({
            "name": "managed", "kind": "openai", "base_url": stack.mock.base_url(), "api_key": UPSTREAM_KEY
        })))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin
        .call("POST", "/api/v1/mappings", Some(json!({"alias": "hot", "targets": [{"provider": "managed", "model": "gpt-4o-mini"}]})))
        .await;
    assert_eq!(status, 201, "{body}");
    let add_took = all_within_a_second(client, &ports, "hot", Some(&key), 200).await;
    let upstream = stack.mock.last_request().unwrap();
    assert_eq!(upstream.body["model"], "gpt-4o-mini");
    assert_eq!(
        upstream.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );

    // A pool of two keys for it, through the admin API (sealed whole): once
    // published, a gateway uses them in turn.
    let second = "sk-upstream-second-key-of-the-pool-4242";
    let (status, body) = admin
        .call("PUT", "/api/v1/providers/managed", Some(json!({
            "kind": "openai", "base_url": stack.mock.base_url(), "api_keys": [UPSTREAM_KEY, second]
        })))
        .await;
    assert_eq!(
        (status, body["api_key_count"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    assert!(!body.to_string().contains(second));
    let bearer = |k: &str| format!("Bearer {k}");
    let sent_key = || {
        stack
            .mock
            .last_request()
            .and_then(|r| r.headers.get("authorization").cloned())
    };
    let start = Instant::now();
    while sent_key() != Some(bearer(second)) {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the pool was not published"
        );
        chat(client, ports[0], "hot", Some(&key)).await;
    }
    let mut turns = Vec::new();
    for _ in 0..4 {
        assert_eq!(chat(client, ports[0], "hot", Some(&key)).await, 200);
        turns.extend(sent_key());
    }
    assert_eq!(
        turns,
        [
            bearer(UPSTREAM_KEY),
            bearer(second),
            bearer(UPSTREAM_KEY),
            bearer(second)
        ]
    );

    // Delete the alias: 404 on both.
    assert_eq!(
        admin.call("DELETE", "/api/v1/mappings/hot", None).await.0,
        204
    );
    let delete_took = all_within_a_second(client, &ports, "hot", Some(&key), 404).await;

    // Revoke the key: 401 on both.
    let (status, _) = admin
        .call("DELETE", &format!("/api/v1/keys/{key_id}"), None)
        .await;
    assert_eq!(status, 200);
    let revoke_took = all_within_a_second(client, &ports, "gpt4", Some(&key), 401).await;
    eprintln!(
        "propagation to both gateways: key {key_took:?}, add {add_took:?}, delete {delete_took:?}, revoke {revoke_took:?}"
    );

    // A gateway started after the revocation never accepts the key.
    let late_port = free_port();
    let late_listen = format!("127.0.0.1:{late_port}");
    let mut env = common.to_vec();
    env.push(("AIPROX_GATEWAY__LISTEN", late_listen.as_str()));
    let _late = stack.spawn_named("gateway-late", "gateway", &env);
    stack.wait_ready_at(late_port).await;
    assert_eq!(chat(client, late_port, "gpt4", Some(&key)).await, 401);

    // The key id is in the logged rows of the requests it made.
    let deadline = Instant::now() + Duration::from_secs(10);
    let filter = store::LogFilter {
        client_key_id: Some(key_id.clone()),
        ..store::LogFilter::default()
    };
    let mut logged = 0;
    while Instant::now() < deadline {
        logged = stack
            .store()
            .await
            .list_logs(&filter, None, 500)
            .await
            .unwrap()
            .0
            .len();
        if logged >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged >= 3, "rows with the key id: {logged}");
    for (i, _) in gateways.iter().enumerate() {
        let log = stack.log(&format!("gateway{i}"));
        assert!(
            !log.contains(UPSTREAM_KEY) && !log.contains(&key),
            "a secret in gateway{i}'s log"
        );
    }
    assert!(!stack.log("admin").contains(UPSTREAM_KEY));
}

#[tokio::test]
async fn aiprox_all_on_sqlite_turns_keys_on_with_the_first_key_and_keeps_config_across_restarts() {
    let stack = Stack::start().await;
    let db = stack.dir.path().join("data/aiprox.db");
    let url = format!("sqlite://{}", db.display());
    let admin_port = free_port();
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let env = [
        ("AIPROX_DATABASE_URL", url.as_str()),
        ("AIPROX_NATS_URL", ""),
        ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("AIPROX_ADMIN__LISTEN", admin_listen.as_str()),
        ("AIPROX_GATEWAY__AUTH", "auto"),
    ];
    let all = stack.spawn("all", &env);
    stack.wait_ready().await;
    let admin = Admin {
        base: format!("http://{admin_listen}"),
        client: reqwest::Client::new(),
    };
    admin.wait_up().await;
    let port = [stack.gateway_port];
    let client = &stack.client;

    // Open on loopback while no key exists.
    assert_eq!(chat(client, stack.gateway_port, "gpt4", None).await, 200);
    let (_, created) = admin
        .call("POST", "/api/v1/keys", Some(json!({"name": "local"})))
        .await;
    let key = created["secret"].as_str().unwrap().to_owned();
    all_within_a_second(client, &port, "gpt4", None, 401).await;
    assert_eq!(
        chat(client, stack.gateway_port, "gpt4", Some(&key)).await,
        200
    );
    // A provider key needs no set-up: `all` made itself a secret file.
    let (status, body) = admin
        .call("POST", "/api/v1/providers", Some(json!({"name": "managed", "kind": "openai", "base_url": stack.mock.base_url(), "api_key": UPSTREAM_KEY})))
        .await;
    assert_eq!(status, 201, "{body}");
    admin
        .call(
            "POST",
            "/api/v1/mappings",
            Some(json!({"alias": "hot", "targets": [{"provider": "managed", "model": "gpt-4o"}]})),
        )
        .await;
    all_within_a_second(client, &port, "hot", Some(&key), 200).await;
    assert!(all.terminate().success(), "{}", stack.log("all"));

    // Restart: the database, not the file, is the configuration now.
    let mut _all = stack.spawn("all", &env);
    stack.wait_ready().await;
    assert_eq!(chat(client, stack.gateway_port, "gpt4", None).await, 401);
    assert_eq!(
        chat(client, stack.gateway_port, "hot", Some(&key)).await,
        200
    );
    let store = store::Store::connect(&url).await.unwrap();
    let sealed = store.provider("managed").await.unwrap().unwrap();
    assert!(!sealed.spec.contains(UPSTREAM_KEY));
    assert!(!sealed.api_key_sealed.unwrap().contains(UPSTREAM_KEY));
    // Next to the media root (`data/` by default).
    assert!(stack.dir.path().join("secret.key").exists());

    // A budget holds across restarts: the in-process bus starts its spend
    // counters at the logged spend.
    let (_, created) = admin
        .call(
            "POST",
            "/api/v1/keys",
            Some(json!({"name": "spender",
            "limits": {"budget": {"usd": 1.0, "period": "total"}}})),
        )
        .await;
    let spender = created["secret"].as_str().unwrap().to_owned();
    let spender_id = created["key"]["id"].as_str().unwrap().to_owned();
    let small = |key: &str| {
        client
            .post(format!(
                "http://127.0.0.1:{}/v1/chat/completions",
                stack.gateway_port
            ))
            .bearer_auth(key.to_owned())
            .json(&json!({"model": "gpt4", "max_tokens": 1,
                "messages": [{"role": "user", "content": "hi"}]}))
            .send()
    };
    // The new key reaches the gateway within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    while small(&spender).await.unwrap().status() == 401 {
        assert!(
            Instant::now() < deadline,
            "the key did not reach the gateway"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..2 {
        assert_eq!(small(&spender).await.unwrap().status(), 200);
    }
    let spent = |keys: &Value| {
        keys["data"]
            .as_array()
            .and_then(|ks| ks.iter().find(|k| k["id"] == spender_id.as_str()))
            .and_then(|k| k["spend_usd"].as_f64())
            .unwrap_or(0.0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut logged = 0.0;
    while logged == 0.0 {
        assert!(Instant::now() < deadline, "the spend was not logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
        logged = spent(&admin.call("GET", "/api/v1/keys", None).await.1);
    }
    // Room left for less than one more call's reservation (its body at the
    // input price and a token of output: 0.0002 $ and more).
    let (status, _) = admin
        .call(
            "PUT",
            &format!("/api/v1/keys/{spender_id}/limits"),
            Some(json!({"budget": {"usd": logged + 0.0001, "period": "total"}})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(_all.terminate().success(), "{}", stack.log("all"));
    let _all = stack.spawn("all", &env);
    stack.wait_ready().await;
    let refused = small(&spender).await.unwrap();
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    // Raised, it serves: the refusal was the spend carried over.
    admin.wait_up().await;
    admin
        .call(
            "PUT",
            &format!("/api/v1/keys/{spender_id}/limits"),
            Some(json!({"budget": {"usd": logged + 1.0, "period": "total"}})),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while small(&spender).await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "a raised budget did not hold");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /api/v1/provider-health` until `done` holds of it (within 5 s).
async fn health_until(admin: &Admin, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, health) = admin.call("GET", "/api/v1/provider-health", None).await;
        assert_eq!(status, 200, "{health}");
        if done(&health) {
            return health;
        }
        assert!(Instant::now() < deadline, "{what}: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn target<'a>(health: &'a Value, provider: &str) -> &'a Value {
    health["targets"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["provider"] == provider))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn the_admin_shows_each_gateways_ejections_and_resting_keys() {
    let stack = Stack::start().await;
    let admin_port = free_port();
    let admin_listen = format!("127.0.0.1:{admin_port}");
    let common = [
        ("AIPROX_ADMIN_TOKEN", ADMIN_TOKEN),
        ("AIPROX_SECRET_KEY", SECRET),
        ("AIPROX_GATEWAY__HEALTH_REPORT_INTERVAL", "200ms"),
        ("AIPROX_GATEWAY__EJECTION__CONSECUTIVE_FAILURES", "2"),
        ("AIPROX_GATEWAY__RETRY__BACKOFF_BASE", "1ms"),
    ];
    let mut admin_env = common.to_vec();
    admin_env.push(("AIPROX_ADMIN__LISTEN", admin_listen.as_str()));
    let _admin = stack.spawn("admin", &admin_env);
    let admin = Admin {
        base: format!("http://{admin_listen}"),
        client: reqwest::Client::new(),
    };
    admin.wait_up().await;
    let ports = [free_port(), free_port()];
    let listens: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut gateways = Vec::new();
    for (i, listen) in listens.iter().enumerate() {
        let mut env = common.to_vec();
        env.push(("AIPROX_GATEWAY__LISTEN", listen.as_str()));
        gateways.push(stack.spawn_named(&format!("gateway{i}"), "gateway", &env));
    }
    for port in ports {
        stack.wait_ready_at(port).await;
    }
    let second = "sk-upstream-second-key-of-the-pool-4242";
    let (status, body) = admin
        .call(
            "POST",
            "/api/v1/providers",
            Some(json!({
                "name": "pooled", "kind": "openai", "base_url": stack.mock.base_url(),
                "api_keys": [UPSTREAM_KEY, second]
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin
        .call(
            "POST",
            "/api/v1/mappings",
            Some(
                json!({"alias": "pooled", "targets": [{"provider": "pooled", "model": "gpt-4o"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let client = &stack.client;
    all_within_a_second(client, &ports, "pooled", None, 200).await;

    let health = health_until(&admin, "both gateways report both targets, healthy", |h| {
        h["gateways"] == 2
            && ["mock", "pooled"]
                .iter()
                .all(|p| target(h, p)["reported_by"] == 2 && target(h, p)["status"] == "healthy")
    })
    .await;
    assert!(
        target(&health, "pooled")["latency_ms"].as_f64().is_some(),
        "{health}"
    );

    // Gateway 0 only: both keys of the pool answered 429 (they rest), and the
    // seeded target fails until ejected.
    stack.mock.fail_with(Failure::RateLimited {
        retry_after_ms: 60_000,
    });
    assert_eq!(chat(client, ports[0], "pooled", None).await, 429);
    stack.mock.fail_with(Failure::Status {
        status: 503,
        body: None,
    });
    assert_eq!(chat(client, ports[0], "gpt4", None).await, 503);

    let health = health_until(&admin, "gateway 0's ejection and rests", |h| {
        target(h, "mock")["ejected_on"] == 1
            && h["resting_keys"].as_array().is_some_and(|k| k.len() == 2)
    })
    .await;
    let mock = target(&health, "mock");
    assert_eq!(
        (mock["status"].as_str(), mock["reported_by"].as_u64()),
        (Some("partly_ejected"), Some(2))
    );
    assert!(mock["ejected_until_ms"].as_u64().is_some());
    let keys = health["resting_keys"].as_array().unwrap();
    assert_eq!(
        keys.iter()
            .map(|k| (
                k["provider"].as_str(),
                k["key"].as_u64(),
                k["resting_on"].as_u64()
            ))
            .collect::<Vec<_>>(),
        [
            (Some("pooled"), Some(1), Some(1)),
            (Some("pooled"), Some(2), Some(1))
        ]
    );
    assert_eq!(keys[1]["masked"], "…4242");
    assert!(
        !health.to_string().contains(second),
        "a key in the health view"
    );
}
