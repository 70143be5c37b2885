//! Throw-away servers for tests: each a real PostgreSQL (`initdb` + `postgres`) or
//! `nats-server -js` from Debian's packages, on a free loopback port, in its own
//! temporary directory, stopped and removed on drop. No test depends on a server
//! left running on the machine.
//!
//! Both can be stopped and started again on the same port and data, for fault
//! tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL's binaries: Debian keeps them in /usr/lib/postgresql/<version>/bin.
fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .last()
        .map_or_else(|| PathBuf::from(name), |v| v.join("bin").join(name))
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb and
/// postgres refuse to run as root).
fn pg_command(tool: &str, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(pg_bin(tool))
            .args(args);
        c
    } else {
        let mut c = Command::new(pg_bin(tool));
        c.args(args);
        c
    }
}

/// A PostgreSQL server of its own.
#[derive(Debug)]
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    /// Tests run without fsync (fast, nothing to keep); benchmarks with it.
    durable: bool,
}

impl Postgres {
    /// Initialises a cluster and starts it. Panics with the server log when it
    /// cannot (a test harness, not product code).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server with fsync on, as production runs, for benchmarks.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    #[allow(clippy::expect_used, clippy::panic)]
    fn start_with(durable: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aiprox-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown failed");
        }
        let data = dir.path().join("data");
        let out = pg_command(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        .output()
        .expect("initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Self {
            port: free_port(),
            dir,
            durable,
        };
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server (again) on the same port and data.
    #[allow(clippy::expect_used, clippy::panic)]
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=200{}",
            self.port,
            self.dir.path().display(),
            if self.durable { "" } else { " -c fsync=off" }
        );
        let log = self.dir.path().join("log");
        let out = pg_command(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-o",
                &opts,
                "-l",
                &log.to_string_lossy(),
                "-w",
                "start",
            ],
        )
        .output()
        .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "postgres did not listen"
        );
    }

    /// Stops the server at once (`-m immediate`: like a crash, recovered on start).
    pub fn stop(&self) {
        let _ = pg_command(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    }

    /// A new, empty database and its URL.
    #[allow(clippy::expect_used)]
    pub fn create_database(&self, name: &str) -> String {
        let out = pg_command(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        )
        .output()
        .expect("createdb");
        assert!(
            out.status.success(),
            "createdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

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
