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
