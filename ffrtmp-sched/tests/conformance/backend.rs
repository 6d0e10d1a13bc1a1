//! Where a conformance test gets its stores from.

use std::sync::Arc;

use async_trait::async_trait;
use ffrtmp_core::JobStore;
use ffrtmp_sched::{SchedConfig, SqliteStore};

/// Durable storage that stores can be opened on, several times (a restart, or two masters
/// sharing it).
#[async_trait]
pub trait Backend: Send + Sync {
    /// Opens a store on this backend's storage with `config`.
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore>;
    /// A short name for messages.
    fn name(&self) -> &'static str;
}

/// One SQLite file in a temporary directory.
pub struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl SqliteBackend {
    pub fn new() -> Self {
        SqliteBackend {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore> {
        Arc::new(SqliteStore::open_with(&self.dir.path().join("jobs.db"), config).expect("open SQLite store"))
    }
    fn name(&self) -> &'static str {
        "sqlite"
    }
}
