//! Throw-away servers for tests: each a real PostgreSQL (`initdb` + `postgres`) or
//! `nats-server -js` from Debian's packages, on a free loopback port, in its own
//! temporary directory, stopped and removed on drop. No test depends on a server
//! left running on the machine.
//!
//! Both can be stopped and started again on the same port and data, for fault
//! tests.
//!
//! Tests that only need a database of their own, not a server, take a
//! [`SharedPostgres`] lease instead: one server for all the test processes of a
//! test binary in one run (cargo-nextest runs each test in a process of its own,
//! and `initdb` costs more than most tests), each test in a fresh database.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
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
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
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
/// test binary share during one run, for tests that need a database of their
/// own but not a server of their own (fault tests, which stop and start the
/// server, take a [`Postgres`]). [`SharedPostgres::fresh_database`] gives each
/// test an empty database.
///
/// cargo-nextest runs each test in a process of its own, so a server per
/// process means an `initdb` per test (2–4 s a test on a busy 2-core machine,
/// far more than the tests themselves). Instead:
///
/// - The processes meet in one directory, `$TMPDIR/aiprox-pg-shared-<test
///   binary's file name>-<runner's pid>`; the runner is the parent process (the
///   cargo-nextest or cargo that runs the binary), so two runs, or two
///   binaries, never share a server.
/// - `lock` (an exclusive `flock`) serialises starting and stopping. The first
///   process to find no server (no `port` file, or nothing listening on its
///   port) runs `initdb` in `pg/`, starts the server on a free loopback port
///   (never the machine's own PostgreSQL on 5432) with `fsync` off, and writes
///   `port`.
/// - Every lease holds a shared `flock` on `users` while it lives. The kernel
///   drops it when the lease drops or its process dies (a panic, a timeout's
///   `SIGKILL`), so the count of users is never wrong.
/// - A keeper, `flock` and `sh` (util-linux, like `runuser`) in a process group
///   of its own (a test's timeout signals do not reach it), one per directory
///   (it holds `keeper`), stops the server through its `postmaster.pid`
///   (`pg_ctl stop`, never by a process name), removes the directory and exits
///   once nobody uses the server and either the runner has exited (the end of
///   the run) or 5 s have passed without users (a run that moved on to other
///   binaries, or a runner that lives on, like a shell). It decides under
///   `lock`, so nobody joins a server being stopped; a later lease starts a new
///   server and keeper.
///
/// Only a killed keeper (or a machine reset) leaves a server or files behind.
#[derive(Debug)]
pub struct SharedPostgres {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    /// Holds a shared lock on `users` while the lease lives.
    _user: File,
}

/// How long the keeper lets a server stay without users while its runner runs.
const SHARED_IDLE: Duration = Duration::from_secs(5);
/// How often the keeper looks.
const KEEPER_TICK: Duration = Duration::from_millis(250);

/// The keeper: `sh -c KEEPER sh RUNNER_PID DIR TICK_S IDLE_TICKS STOP_COMMAND...`,
/// run under `flock -n DIR/keeper`.
const KEEPER: &str = r#"
runner=$1 dir=$2 tick=$3 idle_ticks=$4
shift 4
idle=0
while sleep "$tick"; do
    if flock -n -x "$dir/users" true; then idle=$((idle + 1)); else idle=0; continue; fi
    if kill -0 "$runner" 2>/dev/null && [ "$idle" -lt "$idle_ticks" ]; then continue; fi
    flock -x "$dir/lock" flock -n -x -E 75 "$dir/users" sh -c '
        dir=$1
        shift
        "$@" >/dev/null 2>&1
        rm -rf "$dir"
    ' sh "$dir" "$@" && exit 0
done
"#;

impl SharedPostgres {
    /// A lease on this run's shared server, started if it is not running.
    /// Panics when it cannot be (a test harness, not product code).
    #[allow(clippy::expect_used)]
    pub fn get() -> Self {
        let dir = shared_dir();
        let lock = lock_in(&dir);
        // First the keeper, so that even a failed start is cleaned up.
        spawn_keeper(&dir);
        let running = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|&p| listens(p));
        let port = running.unwrap_or_else(|| start_shared(&dir));
        let user = File::options()
            .create(true)
            .append(true)
            .open(dir.join("users"))
            .expect("users file");
        user.lock_shared().expect("lock users");
        drop(lock);
        Self { port, _user: user }
    }

    /// A new, empty database and its URL. Its name is `hint` (a test's name, say)
    /// made a valid identifier, and unique on the shared server with this
    /// process's id and a counter.
    pub fn fresh_database(&self, hint: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut name: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            name.insert(0, 't');
        }
        let name = format!(
            "{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.create_database(&name)
    }

    /// A new, empty database named `name` (which must be new on the shared
    /// server: prefer [`fresh_database`](Self::fresh_database)) and its URL.
    pub fn create_database(&self, name: &str) -> String {
        create_database(self.port, name);
        self.url(name)
    }

    /// The URL of a database on the shared server.
    pub fn url(&self, database: &str) -> String {
        url(self.port, database)
    }
}

fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// This run's meeting directory (see [`SharedPostgres`]).
fn shared_dir() -> PathBuf {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_owned());
    std::env::temp_dir().join(format!(
        "aiprox-pg-shared-{exe}-{}",
        std::os::unix::process::parent_id()
    ))
}

/// Takes `dir/lock`, creating `dir` if need be. Tries again when the keeper
/// removed the directory meanwhile (the lock taken would be a deleted file's).
#[allow(clippy::expect_used, clippy::panic)]
fn lock_in(dir: &Path) -> File {
    let path = dir.join("lock");
    for _ in 0..100 {
        let opened = std::fs::create_dir_all(dir)
            .and_then(|()| File::options().create(true).append(true).open(&path));
        let Ok(file) = opened else {
            continue;
        };
        file.lock().expect("lock");
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(held), Ok(now)) => held.ino() == now.ino() && held.dev() == now.dev(),
            _ => false,
        };
        if same {
            return file;
        }
    }
    panic!("cannot lock {}", path.display());
}

/// Runs `initdb` in `dir/pg` and starts the server; writes and returns its port.
/// Called under `dir/lock`.
#[allow(clippy::expect_used)]
fn start_shared(dir: &Path) -> u16 {
    let pg = dir.join("pg");
    let _ = std::fs::remove_dir_all(&pg);
    std::fs::create_dir(&pg).expect("shared postgres directory");
    init_cluster(&pg);
    let port = free_port();
    start_server(&pg, port, false, 500);
    std::fs::write(dir.join("port"), port.to_string()).expect("port file");
    port
}

/// Starts the keeper of `dir` unless one runs (it holds `dir/keeper`). Two
/// started at once are harmless: the second finds `keeper` taken and exits.
#[allow(clippy::expect_used)]
fn spawn_keeper(dir: &Path) {
    let keeper = dir.join("keeper");
    let probe = File::options()
        .create(true)
        .append(true)
        .open(&keeper)
        .expect("keeper file");
    if probe.try_lock().is_err() {
        return;
    }
    drop(probe);
    let stop = stop_command(&dir.join("pg"));
    let tick = KEEPER_TICK.as_secs_f64();
    let idle_ticks = SHARED_IDLE.as_millis() / KEEPER_TICK.as_millis();
    // Started in the background by a shell that exits at once: the keeper is
    // not our child (init reaps it) and outlives this process.
    let status = Command::new("sh")
        .args([
            "-c",
            r#"file=$1; shift; flock -n "$file" sh -c "$@" &"#,
            "sh",
        ])
        .arg(&keeper)
        .args([KEEPER, "sh"])
        .arg(std::os::unix::process::parent_id().to_string())
        .arg(dir)
        .arg(tick.to_string())
        .arg(idle_ticks.to_string())
        .arg(stop.get_program())
        .args(stop.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .status()
        .expect("sh");
    assert!(status.success(), "starting the keeper failed");
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
