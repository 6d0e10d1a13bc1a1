//! Where a conformance test gets its stores from.

use std::sync::Arc;

use crate::{SchedConfig, SqliteStore};
use async_trait::async_trait;
use ffrtmp_core::JobStore;

/// Durable storage that stores can be opened on, several times (a restart, or two masters
/// sharing it).
#[async_trait]
pub trait Backend: Send + Sync {
    /// Opens a store on this backend's storage with `config`.
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore>;
    /// A short name for messages.
    fn name(&self) -> &'static str;
}

/// One SQLite file in a temporary directory, deleted when this is dropped.
pub struct SqliteBackend {
    dir: tempfile::TempDir,
}

impl Default for SqliteBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl SqliteBackend {
    /// A fresh temporary directory; panics when none can be made.
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
