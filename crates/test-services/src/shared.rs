//! One throw-away server that the test processes of one test binary share
//! during one run, for tests that need a database of their own but not a server
//! of their own: [`SharedPostgres`](crate::SharedPostgres) and
//! [`SharedMariaDb`](crate::SharedMariaDb) are each a [`Lease`] on a [`Server`].
//!
//! cargo-nextest runs each test in a process of its own, so a server per
//! process means an `initdb` or `mariadb-install-db` per test (2–4 s a test on a
//! busy 2-core machine, far more than the tests themselves). Instead:
//!
//! - The processes meet in one directory, `$TMPDIR/aiprox-<tag>-shared-<test
//!   binary's file name>-<runner's pid>`; the runner is the parent process (the
//!   cargo-nextest or cargo that runs the binary), so two runs, or two
//!   binaries, never share a server.
//! - `lock` (an exclusive `flock`) serialises starting and stopping. The first
//!   process to find no server (no `port` file, or nothing listening on its
//!   port) sets one up in `<tag>/` and starts it on a free loopback port (never
//!   the machine's own server on its standard port), and writes `port`.
//! - Every lease holds a shared `flock` on `users` while it lives. The kernel
//!   drops it when the lease drops or its process dies (a panic, a timeout's
//!   `SIGKILL`), so the count of users is never wrong.
//! - A keeper, `flock` and `sh` (util-linux, like `runuser`) in a process group
//!   of its own (a test's timeout signals do not reach it), one per directory
//!   (it holds `keeper`), stops the server through its own pid file (never by a
//!   process name), removes the directory and exits once nobody uses the server
//!   and either the runner has exited (the end of the run) or 5 s have passed
//!   without users (a run that moved on to other binaries, or a runner that
//!   lives on, like a shell). It decides under `lock`, so nobody joins a server
//!   being stopped; a later lease starts a new server and keeper.
//!
//! Only a killed keeper (or a machine reset) leaves a server or files behind.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// A kind of server that tests share.
#[derive(Debug)]
pub(crate) struct Server {
    /// `pg`, `mariadb`: names the meeting directory and the server's
    /// directory inside it.
    pub tag: &'static str,
    /// Sets up a server in the (new, empty) directory and starts it; returns its
    /// port. Panics when it cannot (a test harness, not product code).
    pub start: fn(&Path) -> u16,
    /// The command that stops the server of that directory.
    pub stop: fn(&Path) -> Command,
    /// Creates a database on the server of a port.
    pub create_database: fn(u16, &str),
    /// The URL of a database on the server of a port.
    pub url: fn(u16, &str) -> String,
}

/// A lease on a shared server, which a [`SharedPostgres`](crate::SharedPostgres)
/// or [`SharedMariaDb`](crate::SharedMariaDb) is: the server's port and its
/// databases.
#[derive(Debug)]
pub struct Lease {
    /// The server's port on 127.0.0.1.
    pub port: u16,
    server: &'static Server,
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

impl Lease {
    /// A lease on this run's shared server of `server`'s kind, started if it is
    /// not running. Panics when it cannot be (a test harness, not product code).
    #[allow(clippy::expect_used)]
    pub(crate) fn get(server: &'static Server) -> Self {
        let dir = shared_dir(server.tag);
        let lock = lock_in(&dir);
        // First the keeper, so that even a failed start is cleaned up.
        spawn_keeper(&dir, (server.stop)(&dir.join(server.tag)));
        let running = std::fs::read_to_string(dir.join("port"))
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            .filter(|&p| crate::listens(p));
        let port = running.unwrap_or_else(|| start_shared(&dir, server));
        let user = File::options()
            .create(true)
            .append(true)
            .open(dir.join("users"))
            .expect("users file");
        user.lock_shared().expect("lock users");
        drop(lock);
        Self {
            port,
            server,
            _user: user,
        }
    }

    /// A new, empty database and its URL. Its name is `hint` (a test's name,
    /// say) made a valid identifier, and unique on the shared server with this
    /// process's id and a counter.
    pub fn fresh_database(&self, hint: &str) -> String {
        self.create_database(&database_name(hint))
    }

    /// A new, empty database named `name` (which must be new on the shared
    /// server: prefer [`fresh_database`](Self::fresh_database)) and its URL.
    pub fn create_database(&self, name: &str) -> String {
        (self.server.create_database)(self.port, name);
        self.url(name)
    }

    /// The URL of a database on the shared server.
    pub fn url(&self, database: &str) -> String {
        (self.server.url)(self.port, database)
    }
}

/// A new database's name: see [`Lease::fresh_database`].
fn database_name(hint: &str) -> String {
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
    format!(
        "{name}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// This run's meeting directory for servers of `tag`.
fn shared_dir(tag: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".to_owned());
    std::env::temp_dir().join(format!(
        "aiprox-{tag}-shared-{exe}-{}",
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

/// Starts a server in `dir/<tag>`; writes and returns its port. Called under
/// `dir/lock`.
#[allow(clippy::expect_used)]
fn start_shared(dir: &Path, server: &Server) -> u16 {
    let own = dir.join(server.tag);
    let _ = std::fs::remove_dir_all(&own);
    std::fs::create_dir(&own).expect("shared server directory");
    let port = (server.start)(&own);
    std::fs::write(dir.join("port"), port.to_string()).expect("port file");
    port
}

/// Starts the keeper of `dir` unless one runs (it holds `dir/keeper`). Two
/// started at once are harmless: the second finds `keeper` taken and exits.
#[allow(clippy::expect_used)]
fn spawn_keeper(dir: &Path, stop: Command) {
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
