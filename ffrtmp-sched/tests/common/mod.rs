//! Helpers of this crate's own store tests: the public conformance helpers, plus opening a
//! SQLite store in a temporary directory.
#![allow(dead_code)]

pub use ffrtmp_sched::conformance::support::*;
use ffrtmp_sched::{SchedConfig, SqliteStore};

pub fn open(dir: &tempfile::TempDir, config: SchedConfig) -> SqliteStore {
    SqliteStore::open_with(&dir.path().join("jobs.db"), config).expect("open store")
}
