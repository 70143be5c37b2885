//! A throw-away MariaDB (`mariadb-install-db` + `mariadbd`, Debian's
//! `mariadb-server`), for the store's MySQL backend: a server of its own
//! ([`MariaDb`], for fault tests that stop and start it) or a lease on the one a
//! test binary's processes share ([`SharedMariaDb`]). Root with an empty
//! password, over TCP on a free loopback port; never the machine's own server.
//!
//! `--no-defaults` everywhere, so no `my.cnf` of the machine applies. That
//! leaves the server's default character set latin1: the store's migrations
//! must name utf8mb4 themselves, as they must on a server set up that way.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::shared::{Lease, Server};
use crate::{free_port, is_root, wait_for_port};

/// A MariaDB server of its own.
#[derive(Debug)]
pub struct MariaDb {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl MariaDb {
    /// Sets up a data directory and starts the server. Panics with the server
    /// log when it cannot (a test harness, not product code).
    #[allow(clippy::expect_used)]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aiprox-mariadb-")
            .tempdir()
            .expect("temp dir");
        install(dir.path());
        let mut db = Self {
            port: free_port(),
            dir,
            child: None,
        };
        db.start_again();
        db
    }

    /// Starts the server (again) on the same port and data.
    pub fn start_again(&mut self) {
        self.child = Some(spawn_server(self.dir.path(), self.port, 200, false));
    }

    /// Kills the server (SIGKILL: like a crash, recovered on start).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new, empty database and its URL.
    pub fn create_database(&self, name: &str) -> String {
        create_database(self.port, name);
        url(self.port, name)
    }

    /// The URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        url(self.port, database)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `program --no-defaults` (which must come first) on the data in `dir/data`,
/// as root when we are root (`mariadb-install-db` and `mariadbd` refuse to run
/// as root unless told so), with `dir/tmp` for temporary files: a server
/// removes every `#sql…` file in its temporary directory when it starts, so
/// servers sharing `/tmp` (tests running at once, the machine's own) would
/// delete each other's temporary tables.
#[allow(clippy::expect_used)]
fn server_command(program: &str, dir: &Path) -> Command {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("server temp dir");
    let mut c = Command::new(program);
    c.arg("--no-defaults");
    if is_root() {
        c.arg("--user=root");
    }
    c.arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", tmp.display()));
    c
}

/// Makes `dir/data` a new data directory: the system tables, root without a
/// password, no test database.
#[allow(clippy::expect_used)]
fn install(dir: &Path) {
    let out = server_command("mariadb-install-db", dir)
        .args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            // A small redo log: 8 MiB written instead of 96.
            "--innodb-log-file-size=8M",
        ])
        .output()
        .expect("mariadb-install-db (Debian package mariadb-server)");
    assert!(
        out.status.success(),
        "mariadb-install-db: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `mariadbd` on the data of [`install`] and waits until it answers. Its
/// socket, pid file and log go in `dir` too. A `shared` server runs in a
/// process group of its own, so that a test's timeout signals do not reach a
/// server other processes use.
#[allow(clippy::expect_used)]
fn spawn_server(dir: &Path, port: u16, max_connections: u32, shared: bool) -> Child {
    let mut command = server_command("mariadbd", dir);
    if shared {
        command.process_group(0);
    }
    let child = command
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", dir.join("sock").display()))
        .arg(format!("--pid-file={}", dir.join("pid").display()))
        .arg(format!("--log-error={}", dir.join("log").display()))
        .arg(format!("--max-connections={max_connections}"))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-log-bin",
            "--skip-name-resolve",
            "--innodb-log-file-size=8M",
            "--innodb-buffer-pool-size=64M",
            // Tests keep nothing: no flush per commit, no doublewrite.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mariadbd (Debian package mariadb-server)");
    let ready = wait_for_port(port, Duration::from_secs(30)) && answers(port);
    assert!(
        ready,
        "mariadbd did not start: {}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    child
}

/// Whether the server on `port` runs a query within 20 s (it listens a moment
/// before it is ready).
fn answers(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let ok = client(port)
            .args(["-e", "SELECT 1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The `mariadb` client, as root, to the server on `port`.
fn client(port: u16) -> Command {
    let mut c = Command::new("mariadb");
    c.args(["--no-defaults", "-h", "127.0.0.1", "-u", "root"])
        .arg(format!("--port={port}"));
    c
}

/// Stops the server of [`spawn_server`] through its pid file, after checking
/// that the pid is a `mariadbd`'s (a stale file's pid may be anyone's now),
/// with SIGKILL, and waits until it is gone (exited, or a zombie: nobody may
/// reap it).
fn stop_command(dir: &Path) -> Command {
    let mut c = Command::new("sh");
    c.args([
        "-c",
        r#"pid=$(cat "$1/pid" 2>/dev/null) || exit 0
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mariadbd ] || exit 0
kill -KILL "$pid"
for _ in $(seq 200); do
    state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || exit 0
    [ "$state" = Z ] && exit 0
    sleep 0.05
done"#,
        "sh",
    ])
    .arg(dir);
    c
}

#[allow(clippy::expect_used)]
fn create_database(port: u16, name: &str) {
    let out = client(port)
        .arg("-e")
        .arg(format!("CREATE DATABASE `{name}`"))
        .output()
        .expect("mariadb (Debian package mariadb-client)");
    assert!(
        out.status.success(),
        "CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn url(port: u16, database: &str) -> String {
    format!("mysql://root@127.0.0.1:{port}/{database}")
}

/// A lease on the throw-away MariaDB server that the test processes of one test
/// binary share during one run (see the `shared` module), for tests that need a
/// database of their own but not a server of their own. Its
/// [`fresh_database`](Lease::fresh_database) gives each test an empty database.
#[derive(Debug)]
pub struct SharedMariaDb(Lease);

/// The shared server. Not our child once this process exits: stopped through
/// its pid file by the keeper.
static SHARED: Server = Server {
    tag: "mariadb",
    start: start_shared,
    stop: stop_command,
    create_database,
    url,
};

fn start_shared(dir: &Path) -> u16 {
    install(dir);
    let port = free_port();
    // The child is let go: it outlives this process, the keeper stops it.
    drop(spawn_server(dir, port, 500, true));
    port
}

impl SharedMariaDb {
    /// A lease on this run's shared server, started if it is not running.
    /// Panics when it cannot be (a test harness, not product code).
    pub fn get() -> Self {
        Self(Lease::get(&SHARED))
    }
}

impl std::ops::Deref for SharedMariaDb {
    type Target = Lease;

    fn deref(&self) -> &Lease {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::MariaDb;

    /// A server of its own answers, survives a kill on its data and port, and
    /// leaves nothing running when dropped.
    #[test]
    fn starts_stops_and_starts_again() {
        let mut db = MariaDb::start();
        let url = db.create_database("before");
        assert_eq!(url, format!("mysql://root@127.0.0.1:{}/before", db.port));
        db.stop();
        assert!(!crate::listens(db.port));
        db.start_again();
        db.create_database("after");
        let port = db.port;
        drop(db);
        assert!(!crate::listens(port));
    }
}
