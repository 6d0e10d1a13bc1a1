//! Where a conformance test gets its stores from.

use std::sync::Arc;

use crate::{SchedConfig, SqliteStore};
use async_trait::async_trait;
use ffrtmp_core::{JobStore, Placement};

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

/// A backend whose stores all claim under `placement`, whatever configuration a test
/// opens them with: runs the whole suite under another placement policy.
pub struct WithPlacement<B> {
    inner: B,
    placement: Arc<dyn Placement>,
}

impl<B: Backend> WithPlacement<B> {
    /// `inner`, its stores claiming under `placement`.
    pub fn new(inner: B, placement: Arc<dyn Placement>) -> Self {
        WithPlacement { inner, placement }
    }

    /// `inner` under the energy-aware policy (default settings, an efficiency table that
    /// starts empty): the policy asks the store for scenarios, peers and a lookahead.
    pub fn energy_aware(inner: B) -> Self {
        let policy = crate::placement::EnergyAware::new(Default::default(), crate::placement::SharedEfficiency::new());
        Self::new(inner, Arc::new(policy))
    }
}

#[async_trait]
impl<B: Backend> Backend for WithPlacement<B> {
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore> {
        self.inner
            .open(SchedConfig {
                placement: self.placement.clone(),
                ..config
            })
            .await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}
