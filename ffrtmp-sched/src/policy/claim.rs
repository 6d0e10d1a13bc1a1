//! What a claim decides: how many jobs a node may take and what taking one changes.

use ffrtmp_core::{Job, JobState, NodeId};

use super::Step;

pub use crate::order::rank;

/// Claims older than this are forgotten; a client retrying a claim later gets a new one.
pub const CLAIM_MEMORY_MS: u64 = 60 * 60 * 1000;

/// How many jobs a claim for at most `max_jobs` may assign to a node that runs at most
/// `max_concurrent` jobs and holds `active` now.
pub fn wanted(max_concurrent: u32, active: u32, max_jobs: u32) -> u32 {
    max_jobs.min(max_concurrent.saturating_sub(active))
}

/// Claims made at or after this instant are remembered at `now`: a repeat of one of them
/// returns what it assigned.
pub fn remembered_since(now: u64) -> u64 {
    now.saturating_sub(CLAIM_MEMORY_MS)
}

/// Hands `job` (queued) to `node` as a new attempt: the attempt number is the fencing
/// token that makes any earlier holder's reports stale. Returns the state change to apply.
pub fn assign(job: &mut Job, node: NodeId) -> Step {
    job.attempt += 1;
    job.node_id = Some(node);
    job.progress = None;
    job.retry_at_ms = None;
    Step::new(JobState::Assigned, "claimed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, Progress};

    #[test]
    fn a_claim_takes_at_most_the_free_slots() {
        // (max_concurrent, active, max_jobs) -> wanted
        for (slots, active, max, want) in [
            (2, 0, 5, 2),
            (2, 1, 5, 1),
            (2, 2, 5, 0),
            (2, 3, 5, 0),
            (4, 1, 2, 2),
            (4, 0, 0, 0),
        ] {
            assert_eq!(wanted(slots, active, max), want, "{slots} {active} {max}");
        }
    }

    #[test]
    fn assigning_starts_a_new_attempt_on_the_node() {
        let node = NodeId::new();
        let mut j = Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0);
        j.attempt = 2;
        j.progress = Some(Progress::default());
        j.retry_at_ms = Some(9);
        let step = assign(&mut j, node);
        assert_eq!((step.to, j.attempt, j.node_id), (JobState::Assigned, 3, Some(node)));
        assert!(j.progress.is_none() && j.retry_at_ms.is_none());
        assert_eq!(remembered_since(CLAIM_MEMORY_MS + 5), 5);
        assert_eq!(remembered_since(5), 0);
    }
}
