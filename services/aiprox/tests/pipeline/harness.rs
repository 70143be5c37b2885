//! The pipeline tests' harness: a [`Stack`] (the mock upstream, a database
//! server — PostgreSQL, or MariaDB for the MySQL store — and a `nats-server -js`
//! of its own, a configuration directory) that spawns `aiprox` subprocesses as
//! [`Proc`]s, and waits for readiness and rows; an [`Admin`] client for the
//! admin API of a spawned `aiprox admin` or `aiprox all`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mock_upstream::{Behavior, MockUpstream};
use serde_json::{Value, json};
use store::Store;
use test_services::{MariaDb, Nats, Postgres, free_port};

/// An `aiprox` subprocess, killed on drop. Signals go to this child's own pid
/// (not yet reaped while the handle lives, so never another process's).
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }

    /// SIGKILL, then wait for the exit.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// SIGKILL without consuming the handle (the exit is reaped on drop).
    pub fn kill_now(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid().to_string()])
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The database server a stack logs to, of its own (fault tests stop it).
pub enum Database {
    Postgres(Postgres),
    /// Only held: the server stops when the stack drops.
    MariaDb(#[allow(dead_code)] MariaDb),
}

/// Everything a pipeline test runs against.
pub struct Stack {
    pub mock: MockUpstream,
    pub db: Database,
    pub nats: Nats,
    pub dir: tempfile::TempDir,
    pub gateway_port: u16,
    pub database_url: String,
    pub client: reqwest::Client,
}

impl Stack {
    /// A stack on PostgreSQL.
    pub async fn start() -> Self {
        let pg = Postgres::start();
        let database_url = pg.create_database("aiprox");
        Self::start_on(Database::Postgres(pg), database_url).await
    }

    /// A stack on MariaDB (`AIPROX_DATABASE_URL=mysql://…`).
    pub async fn start_on_mariadb() -> Self {
        let db = MariaDb::start();
        let database_url = db.create_database("aiprox");
        Self::start_on(Database::MariaDb(db), database_url).await
    }

    async fn start_on(db: Database, database_url: String) -> Self {
        let mock = MockUpstream::start().await.unwrap();
        mock.set_behavior(Behavior {
            no_record: true,
            ..Behavior::default()
        });
        let nats = Nats::start();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("aiprox.yaml"),
            format!(
                "providers:\n  mock: {{kind: openai, base_url: '{}'}}\n\
                 mappings:\n  gpt4: {{provider: mock, model: gpt-4o}}\n\
                 gateway:\n  auth: open\n  shutdown_grace: 20s\n  prices: {{gpt-4o: {{input: 2.5, output: 10.0}}}}\n",
                mock.base_url()
            ),
        )
        .unwrap();
        Self {
            mock,
            db,
            nats,
            dir,
            gateway_port: free_port(),
            database_url,
            client: reqwest::Client::new(),
        }
    }

    /// The stack's PostgreSQL (a stack of [`Stack::start`]).
    pub fn pg(&self) -> &Postgres {
        match &self.db {
            Database::Postgres(pg) => pg,
            Database::MariaDb(_) => panic!("this stack runs on MariaDB"),
        }
    }

    pub fn media_root(&self) -> PathBuf {
        self.dir.path().join("media")
    }

    pub fn spawn(&self, command: &'static str, extra: &[(&str, &str)]) -> Proc {
        self.spawn_named(command, command, extra)
    }

    /// Like [`Stack::spawn`], logging to `<name>.log` (two processes of one kind).
    pub fn spawn_named(&self, name: &str, command: &'static str, extra: &[(&str, &str)]) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("{name}.log"))).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_aiprox"));
        c.arg(command)
            .arg("--config")
            .arg(self.dir.path().join("aiprox.yaml"))
            .current_dir(self.dir.path())
            .env(
                "AIPROX_GATEWAY__LISTEN",
                format!("127.0.0.1:{}", self.gateway_port),
            )
            .env("AIPROX_DATABASE_URL", &self.database_url)
            .env("AIPROX_NATS_URL", self.nats.url())
            .env("AIPROX_MEDIA_ROOT", self.media_root())
            .env(
                "AIPROX_GATEWAY__EVENTS__SPILL_DIR",
                self.dir.path().join("spill"),
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in extra {
            c.env(k, v);
        }
        Proc {
            child: c.spawn().unwrap(),
        }
    }

    pub fn log(&self, command: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{command}.log"))).unwrap_or_default()
    }

    pub async fn gateway(&self) -> Proc {
        let p = self.spawn("gateway", &[]);
        self.wait_ready().await;
        p
    }

    pub async fn wait_ready(&self) {
        self.wait_ready_at(self.gateway_port).await;
    }

    pub async fn wait_ready_at(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("http://127.0.0.1:{port}/readyz"))
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("gateway not ready:\n{}", self.log("gateway"));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_port)
    }

    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/chat/completions"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.database_url).await.unwrap()
    }

    /// Waits until the log has `n` rows (or the timeout), returns the count.
    pub async fn wait_rows(&self, n: i64, timeout: Duration) -> i64 {
        let deadline = Instant::now() + timeout;
        let mut count = 0;
        while Instant::now() < deadline {
            if let Ok(store) = Store::connect(&self.database_url).await
                && let Ok(c) = store.log_count().await
            {
                count = c;
                if c >= n {
                    // Settle: anything extra (a duplicate) would show now.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    return store.log_count().await.unwrap_or(c);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        count
    }

    /// Every logged request id appears once.
    pub async fn assert_no_duplicates(&self) {
        let ids = self.store().await.log_ids().await.unwrap();
        let dupes: Vec<_> = ids.iter().filter(|(_, n)| *n != 1).collect();
        assert!(dupes.is_empty(), "duplicated rows: {dupes:?}");
    }
}

pub fn plain(i: usize) -> Value {
    json!({"model": "gpt4", "messages": [{"role": "user", "content": format!("question {i}")}]})
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The admin API of a spawned `aiprox admin` or `aiprox all`, called with its
/// token.
pub struct Admin {
    pub base: String,
    pub token: &'static str,
    pub client: reqwest::Client,
}

impl Admin {
    /// The admin listening on `listen` (`127.0.0.1:PORT`).
    pub fn at(listen: &str, token: &'static str) -> Self {
        Self {
            base: format!("http://{listen}"),
            token,
            client: reqwest::Client::new(),
        }
    }

    /// The status and the JSON body (null when there is none).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET path`, which must answer 200: its body.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Waits until the admin answers (30 s).
    pub async fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = self
                .client
                .get(format!("{}/api/v1/keys", self.base))
                .bearer_auth(self.token)
                .send()
                .await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("admin at {} not up", self.base);
    }
}
