//! A `nats-server -js` of its own, for the tests of the bus and the pipeline.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_for_port};

/// A `nats-server -js` of its own.
#[derive(Debug)]
pub struct Nats {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    #[allow(clippy::expect_used)]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aiprox-nats-")
            .tempdir()
            .expect("temp dir");
        let mut nats = Self {
            port: free_port(),
            dir,
            child: None,
        };
        nats.start_again();
        nats
    }

    /// Starts the server (again) on the same port and store directory.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn start_again(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian package nats-server)");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "nats-server did not listen"
        );
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn store_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
