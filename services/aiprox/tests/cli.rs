//! The `aiprox` binary as an operator meets it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn aiprox(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_aiprox"))
        .args(args)
        .current_dir(dir)
        .env_remove("AIPROX_CONFIG")
        .output()
        .expect("run aiprox")
}

#[test]
fn a_bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "providers: {p: {kind: openai, base_url: 'http://h/v1'}}\nmappings: {a: {provider: q, model: m}}\n",
    )
    .unwrap();
    for command in ["check-config", "gateway", "all"] {
        let out = aiprox(&[command, "--config", "bad.yaml"], dir.path());
        assert!(!out.status.success(), "{command} started with a bad config");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mappings.a.provider"),
            "{command}: {stderr}"
        );
    }
    let out = aiprox(&["gateway", "--config", "missing.yaml"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.yaml"));
}

#[test]
fn the_example_configuration_is_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = aiprox(
        &["check-config", "--config", "aiprox.example.yaml"],
        std::path::Path::new(root),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `aiprox all` whose admin API cannot bind its port ends at once with that error,
/// instead of serving without it until shutdown.
#[test]
fn aiprox_all_ends_at_once_when_a_component_fails_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap().to_string();
    let gateway_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aiprox"))
        .arg("all")
        .current_dir(dir.path())
        .env_remove("AIPROX_CONFIG")
        .env_remove("AIPROX_NATS_URL")
        .env_remove("AIPROX_DATABASE_URL")
        .env("AIPROX_ADMIN_TOKEN", "admin-token-for-the-fail-fast-test")
        .env("AIPROX_ADMIN__LISTEN", &admin)
        .env(
            "AIPROX_GATEWAY__LISTEN",
            format!("127.0.0.1:{gateway_port}"),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("aiprox all kept running with its admin API down");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("admin") && stderr.contains(&admin),
        "the error names the component and its address: {stderr}"
    );
    drop(taken);
}

/// Without `AIPROX_ADMIN_TOKEN`, `aiprox all` generates a token only for a
/// loopback admin: one reachable from other machines refuses to start.
#[test]
fn aiprox_all_refuses_an_open_admin_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aiprox"))
        .arg("all")
        .current_dir(dir.path())
        .env_remove("AIPROX_CONFIG")
        .env_remove("AIPROX_NATS_URL")
        .env_remove("AIPROX_DATABASE_URL")
        .env_remove("AIPROX_ADMIN_TOKEN")
        .env("AIPROX_ADMIN__LISTEN", "0.0.0.0:0")
        .env("AIPROX_GATEWAY__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AIPROX_ADMIN_TOKEN"), "{stderr}");
    assert!(!dir.path().join("data/admin.token").exists());
}

/// `aiprox all` in `dir` with its built-in demo set-up, serving on `port`, its
/// log in `dir/all.log`.
fn start_all(dir: &std::path::Path, port: u16, admin_port: u16) -> std::process::Child {
    let log = std::fs::File::create(dir.join("all.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_aiprox"))
        .arg("all")
        .current_dir(dir)
        .env_remove("AIPROX_CONFIG")
        .env_remove("AIPROX_NATS_URL")
        .env_remove("AIPROX_DATABASE_URL")
        .env(
            "AIPROX_ADMIN_TOKEN",
            "admin-token-for-the-stored-responses-test",
        )
        .env("AIPROX_ADMIN__LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("AIPROX_GATEWAY__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str, dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "aiprox all not ready:\n{}",
        std::fs::read_to_string(dir.join("all.log")).unwrap_or_default()
    );
}

/// SIGTERM to the child (not yet reaped, so its own pid), then its exit.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap()
}

/// `aiprox all` keeps stored responses in its database: after a restart on the
/// same data directory, a response is still read by its id and continued.
#[tokio::test]
async fn aiprox_all_keeps_stored_responses_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin_port) = (test_services::free_port(), test_services::free_port());
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut all = KillOnDrop(start_all(dir.path(), port, admin_port));
    wait_ready(&client, &base, dir.path()).await;
    let created = client
        .post(format!("{base}/v1/responses"))
        .json(&serde_json::json!({"model": "demo", "input": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(terminate(&mut all.0).success());

    let _all = KillOnDrop(start_all(dir.path(), port, admin_port));
    wait_ready(&client, &base, dir.path()).await;
    let read = client
        .get(format!("{base}/v1/responses/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: serde_json::Value = read.json().await.unwrap();
    assert_eq!(read["id"], id.as_str());
    assert_eq!(read["output"], created["output"], "{read}");
    let continued = client
        .post(format!("{base}/v1/responses"))
        .json(&serde_json::json!({"model": "demo", "input": "Again", "previous_response_id": id}))
        .send()
        .await
        .unwrap();
    let status = continued.status();
    let body = continued.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
}

/// A child process killed when the test ends, passed or not (a child already
/// waited for is not signalled again).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
