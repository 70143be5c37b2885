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
