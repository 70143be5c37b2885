//! A throw-away PostgreSQL (`initdb` + `postgres`, Debian's package): a server
//! of its own ([`Postgres`], for fault tests that stop and start it) or a lease
//! on the one a test binary's processes share ([`SharedPostgres`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::shared::{Lease, Server};
use crate::{free_port, is_root, wait_for_port};

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
    /// The server's port on 127.0.0.1.
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

    #[allow(clippy::expect_used)]
    fn start_with(durable: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aiprox-pg-")
            .tempdir()
            .expect("temp dir");
        init_cluster(dir.path());
        let pg = Self {
            port: free_port(),
            dir,
            durable,
        };
        pg.start_again();
        pg
    }

    /// Starts the server (again) on the same port and data.
    pub fn start_again(&self) {
        start_server(self.dir.path(), self.port, self.durable, 200);
    }

    /// Stops the server at once (`-m immediate`: like a crash, recovered on start).
    pub fn stop(&self) {
        let _ = stop_command(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// A new, empty database and its URL.
    pub fn create_database(&self, name: &str) -> String {
        create_database(self.port, name);
        self.url(name)
    }

    /// The URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        url(self.port, database)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes `dir` (owned by `postgres` when we are root) hold a new cluster in
/// `dir/data`; the server's socket and log go in `dir` too.
#[allow(clippy::expect_used)]
fn init_cluster(dir: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .expect("chown");
        assert!(status.success(), "chown failed");
    }
    let out = pg_command(
        "initdb",
        &[
            "-D",
            &dir.join("data").to_string_lossy(),
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
}

/// Starts the cluster of [`init_cluster`] on `port` and waits until it listens.
#[allow(clippy::expect_used)]
fn start_server(dir: &Path, port: u16, durable: bool, max_connections: u32) {
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections={max_connections}{}",
        dir.display(),
        if durable { "" } else { " -c fsync=off" }
    );
    let log = dir.join("log");
    let out = pg_command(
        "pg_ctl",
        &[
            "-D",
            &dir.join("data").to_string_lossy(),
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
        wait_for_port(port, Duration::from_secs(20)),
        "postgres did not listen"
    );
}

/// `pg_ctl stop -m immediate` of the cluster of [`init_cluster`]: the server is
/// found through its own `postmaster.pid`.
fn stop_command(dir: &Path) -> Command {
    pg_command(
        "pg_ctl",
        &[
            "-D",
            &dir.join("data").to_string_lossy(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ],
    )
}

#[allow(clippy::expect_used)]
fn create_database(port: u16, name: &str) {
    let out = pg_command(
        "createdb",
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
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
}

fn url(port: u16, database: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/{database}")
}

/// A lease on the throw-away PostgreSQL server that the test processes of one
/// test binary share during one run (see the `shared` module), for tests that
/// need a database of their own but not a server of their own (fault tests,
/// which stop and start the server, take a [`Postgres`]). Its
/// [`fresh_database`](Lease::fresh_database) gives each test an empty database.
#[derive(Debug)]
pub struct SharedPostgres(Lease);

/// The shared server: `initdb` in its directory, started with `fsync` off.
static SHARED: Server = Server {
    tag: "pg",
    start: start_shared,
    stop: stop_command,
    create_database,
    url,
};

fn start_shared(dir: &Path) -> u16 {
    init_cluster(dir);
    let port = free_port();
    start_server(dir, port, false, 500);
    port
}

impl SharedPostgres {
    /// A lease on this run's shared server, started if it is not running.
    /// Panics when it cannot be (a test harness, not product code).
    pub fn get() -> Self {
        Self(Lease::get(&SHARED))
    }
}

impl std::ops::Deref for SharedPostgres {
    type Target = Lease;

    fn deref(&self) -> &Lease {
        &self.0
    }
}
