//! The scheduling policy every store applies, as pure functions over plain values.
//!
//! A store loads rows, asks these functions what to do, and persists the answer; it makes
//! no scheduling decision of its own. So SQLite, PostgreSQL and a third-party
//! [`JobStore`](ffrtmp_core::JobStore) behave alike by construction, and the decisions are
//! tested here without a database:
//!
//! - [`report`]: the fencing check, which transitions a node's report causes, and how a
//!   failed attempt ends (retry with backoff, or failed once retries are exhausted).
//! - [`claim`]: free slots of a node, what a claim changes on a job, claim memory.
//! - [`sweep`]: when a node is lost, what happens to its jobs, retry release, aging and
//!   retention cutoffs.
//! - [`heartbeat`]: which listed jobs a node is told to cancel and which unlisted ones
//!   are taken back from it.
//! - [`place`]: which of the probed jobs a claim hands out under a placement policy.
//! - [`energy`]: how reports add to a job's per-attempt energy, and which node may report
//!   an ended attempt's energy.

pub mod claim;
pub mod energy;
pub mod heartbeat;
pub mod place;
pub mod report;
pub mod sweep;

use ffrtmp_core::{Job, JobState, NodeId};

/// One state change a decision asks for: the store applies it with
/// [`JobState::transition`] and records it in the job's history with `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The state to move to.
    pub to: JobState,
    /// The history entry's reason.
    pub reason: String,
}

impl Step {
    /// A step to `to` for `reason`.
    pub fn new(to: JobState, reason: impl Into<String>) -> Step {
        Step {
            to,
            reason: reason.into(),
        }
    }
}

/// The fencing rule: whether `node` holds `attempt` of `job`, i.e. the job is active
/// (assigned or running) on that node at that attempt. Reports and heartbeats from anyone
/// else are refused (or told to stop), which is what makes a stale agent harmless.
pub fn holds(job: &Job, node: NodeId, attempt: u32) -> bool {
    job.node_id == Some(node) && job.attempt == attempt && job.state.is_active()
}
