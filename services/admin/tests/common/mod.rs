//! What the admin suites share: the backends each behaviour runs on, and the
//! macro that generates one test per behaviour per backend.
//!
//! `sqlite::…` runs on a fresh file in a temporary directory; `postgres::…` on a
//! fresh database (`CREATE DATABASE`) of the throw-away PostgreSQL server that
//! the test processes of one run share (`test_services::SharedPostgres`). Adding
//! a backend (MySQL) is one more line in `backends!` and one more `fresh_*_store`
//! function here.

use store::Store;

/// Generates, for each behaviour `module::name` (an `async fn name(api: &Api)`
/// in `module`), one `#[tokio::test] name` in each backend's module, each given
/// an `Api` (the suite's own, `crate::Api::start(store)`) over a fresh, empty
/// store of its own. A backend is one line in the first arm: `module =>
/// connect`, where `async fn connect(test_name: &str) -> Fresh`.
macro_rules! backends {
    ($($module:ident :: $test:ident),* $(,)?) => {
        $crate::common::backends!(@backend sqlite => fresh_sqlite_store; $($module::$test),*);
        $crate::common::backends!(@backend postgres => fresh_postgres_store; $($module::$test),*);
    };
    (@backend $backend:ident => $connect:ident; $($module:ident :: $test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let fresh = $crate::common::$connect(stringify!($test)).await;
                    let api = $crate::Api::start(fresh.store.clone()).await;
                    $crate::$module::$test(&api).await;
                    drop(api);
                    drop(fresh);
                }
            )*
        }
    };
}
pub(crate) use backends;

/// A fresh store of one test and what keeps its database alive until the test
/// ends (a temporary directory, a server lease).
pub struct Fresh {
    pub store: Store,
    _keep: Box<dyn std::any::Any>,
}

pub async fn fresh_sqlite_store(_test: &str) -> Fresh {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aiprox.db").display());
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _keep: Box::new(dir),
    }
}

pub async fn fresh_postgres_store(test: &str) -> Fresh {
    let pg = test_services::SharedPostgres::get();
    let url = pg.fresh_database(test);
    Fresh {
        store: Store::connect(&url).await.unwrap(),
        _keep: Box::new(pg),
    }
}
