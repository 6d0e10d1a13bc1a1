//! Scheduling for ffrtmp: durable [`JobStore`](ffrtmp_core::JobStore) implementations and
//! the pieces a master composes around them.
//!
//! - [`SqliteStore`]: the default store, one SQLite file in WAL mode with durable commits.
//!   Writes go through one writer thread that groups concurrent requests into a single
//!   transaction, so `synchronous=FULL` stays fast.
//! - `PgStore` (cargo feature `postgres`): the same behaviour in PostgreSQL, for several
//!   masters sharing one database (`FOR UPDATE SKIP LOCKED` claims, advisory-lock sweeps).
//! - [`StoreTransport`]: an in-process [`Transport`](ffrtmp_core::Transport) over any store,
//!   for embedding an agent beside the master, tests and benches.
//! - [`spawn_sweeper`]: the failure-detection loop (dead nodes, retry backoff).
//! - [`policy`]: the scheduling decisions every store makes (fencing, transitions, retries,
//!   capacity, sweep outcomes), as pure functions a third-party store can call too.
//! - `conformance` (cargo feature `conformance`): the behaviour every store must show, as a
//!   public test suite (`conformance_tests!`) that a third-party store can run.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use ffrtmp_core::{JobSpec, JobStore, JobState};
//! let dir = tempfile::tempdir().unwrap();
//! let store = ffrtmp_sched::SqliteStore::open(&dir.path().join("jobs.db")).unwrap();
//! let job = store.submit(JobSpec::new("720p-h264")).await.unwrap();
//! assert_eq!(job.state, JobState::Queued);
//! assert_eq!(store.get(job.id).await.unwrap().history.len(), 1);
//! # });
//! ```
#![warn(missing_docs)]

pub mod baseline;
mod classes;
mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod matching;
mod order;
pub mod placement;
pub mod policy;
#[cfg(feature = "postgres")]
mod postgres;
mod power;
mod sqlite;
mod sweeper;
mod transport;

pub use classes::ClaimStats;
pub use config::{Clock, SchedConfig};
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use sweeper::spawn_sweeper;
pub use transport::StoreTransport;
