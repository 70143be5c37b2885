//! Throw-away servers for tests, each a real one from Debian's packages on a
//! free loopback port, in its own temporary directory, stopped and removed on
//! drop. No test depends on a server left running on the machine.
//!
//! - `postgres`: PostgreSQL (`initdb` + `postgres`): [`Postgres`], a server of
//!   its own, and [`SharedPostgres`], a fresh database on a server shared.
//! - `mariadb`: MariaDB (`mariadb-install-db` + `mariadbd`), for the store's
//!   MySQL backend: [`MariaDb`] and [`SharedMariaDb`], likewise.
//! - `shared`: how the test processes of one test binary share one server
//!   during a run (cargo-nextest runs each test in a process of its own, and
//!   setting up a server costs more than most tests): a [`Lease`] on it.
//! - `nats`: `nats-server -js`: [`Nats`].
//!
//! The servers of their own can be stopped and started again on the same port
//! and data, for fault tests.

mod mariadb;
mod nats;
mod postgres;
mod shared;

pub use mariadb::{MariaDb, SharedMariaDb};
pub use nats::Nats;
pub use postgres::{Postgres, SharedPostgres};
pub use shared::Lease;

use std::net::TcpListener;
use std::process::Command;
use std::sync::OnceLock;
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
        if listens(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn listens(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
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
