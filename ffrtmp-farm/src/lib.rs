//! The reference ffrtmp master and agent, composed from the library crates.
//!
//! `ffrtmp-http`, `ffrtmp-exec`, `ffrtmp-power` and `ffrtmp-sched` each depend only on
//! `ffrtmp-core`; what needs several of them lives here, above all of them:
//!
//! - [`MasterBuilder`] composes a whole master: a [`JobStore`](ffrtmp_core::JobStore) behind
//!   the HTTPS [`Server`](ffrtmp_http::Server) plus the sweeper (`ffrtmp_sched::spawn_sweeper`).
//! - [`AgentProbe`] is the reference agent's [`StatusProbe`](ffrtmp_http::StatusProbe):
//!   readiness (engine, scratch disk, master reachable) and metrics (jobs, limits, CPU and GPU
//!   energy) for its [`StatusServer`](ffrtmp_http::StatusServer).
//!
//! The agent itself is built with `ffrtmp_exec::AgentBuilder`.

#![warn(missing_docs)]

pub mod master;
mod probe;

pub use master::{Master, MasterBuilder};
pub use probe::{AgentProbe, DISK_NOT_READY_PERCENT};
