//! The event pipeline with real processes: `aiprox gateway`, `aiprox logger` and
//! `aiprox media` (or `aiprox all`), a throw-away PostgreSQL (or MariaDB, for
//! the MySQL store) and `nats-server -js`, and the mock upstream. Fault tests
//! assert exactly N rows for N answered requests, no duplicates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod faults;
mod happy_path;
mod harness;
mod limits;
mod live_config;
mod mariadb;
