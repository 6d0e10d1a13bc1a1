//! A fresh PostgreSQL database per test, on the server named by `FFRTMP_TEST_PG_URL`.

use std::sync::Arc;

use crate::{PgStore, SchedConfig};
use async_trait::async_trait;
use ffrtmp_core::JobStore;

use super::backend::Backend;

/// The server every PostgreSQL test uses; `scripts/test.sh` starts a private one.
pub const URL_VAR: &str = "FFRTMP_TEST_PG_URL";
/// Set to `1` to skip the PostgreSQL tests (they fail without a server otherwise).
pub const SKIP_VAR: &str = "FFRTMP_SKIP_PG";

/// A database `t_<random>` created for one test and dropped (best effort) when this is
/// dropped, even when the test panics.
pub struct PgBackend {
    admin_url: String,
    db: String,
    url: String,
}

/// The admin URL, or `None` (with a message) when the tests are to be skipped. Panics when
/// no server is configured: a silent skip would hide breakage.
pub fn admin_url() -> Option<String> {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("skipping PostgreSQL test: {SKIP_VAR}=1");
        return None;
    }
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => panic!(
            "{URL_VAR} is not set: the PostgreSQL store tests need a server. scripts/test.sh starts a private \
             one and sets {URL_VAR}; or point it at a server where the user may CREATE DATABASE \
             (e.g. postgres://ffrtmp@127.0.0.1:5432/postgres), or set {SKIP_VAR}=1 to skip these tests"
        ),
    }
}

/// `url` with its database replaced by `db` (URL or `key=value` form).
pub fn with_database(url: &str, db: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (url, None),
        };
        let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
        let authority_end = base[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(base.len());
        let mut out = format!("{}/{db}", &base[..authority_end]);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        out
    } else {
        format!("{url} dbname={db}")
    }
}

async fn admin_execute(admin_url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {URL_VAR}: {e} ({:?})", e.as_db_error()))?;
    let conn = tokio::spawn(connection);
    let out = client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {e} ({:?})", e.as_db_error()));
    drop(client);
    let _ = conn.await;
    out
}

impl PgBackend {
    /// Creates the test's database; `None` when PostgreSQL tests are skipped.
    pub async fn create() -> Option<PgBackend> {
        let admin_url = admin_url()?;
        let db = format!("t_{}", uuid::Uuid::new_v4().simple());
        admin_execute(&admin_url, &format!("CREATE DATABASE {db}"))
            .await
            .unwrap_or_else(|e| panic!("creating the test database: {e}"));
        let url = with_database(&admin_url, &db);
        Some(PgBackend { admin_url, db, url })
    }

    /// The test database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the server's admin database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        let (admin, sql) = (
            self.admin_url.clone(),
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db),
        );
        // Its own thread and runtime: this may run inside (or outside) any runtime.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(admin_execute(&admin, &sql)).err()
        })
        .join();
        if let Ok(Some(e)) = done {
            eprintln!("could not drop test database: {e}");
        }
    }
}

#[async_trait]
impl Backend for PgBackend {
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore> {
        Arc::new(
            PgStore::connect(&self.url, config)
                .await
                .unwrap_or_else(|e| panic!("open PostgreSQL store: {e}")),
        )
    }
    fn name(&self) -> &'static str {
        "postgres"
    }
}
