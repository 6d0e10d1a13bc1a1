//! What a claim decides: how many jobs a node may take and what taking one changes.

use std::time::Duration;

use ffrtmp_core::{Job, JobState, NodeId};

use super::sweep::aged_rank;
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

/// A queued job as a claim compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The job's `seq`.
    pub seq: u64,
    /// Its rank when it entered the queue ([`rank`] of its queue and priority).
    pub base_rank: i64,
    /// When it (last) entered the queue.
    pub queued_at_ms: u64,
}

/// Claim order at `now`, lowest first: the rank aged from the time the job entered the
/// queue ([`aged_rank`]), then that time, then `seq`. Aging is computed here, when the
/// claim compares jobs, so no row is ever rewritten to age it.
pub fn order_key(c: &Candidate, now: u64, aging_interval: Duration) -> (i64, u64, u64) {
    (
        aged_rank(c.base_rank, c.queued_at_ms, now, aging_interval),
        c.queued_at_ms,
        c.seq,
    )
}

/// The first `want` of `candidates` in claim order. A store passes the head of each
/// requirement class its node can run (at most `want` each, in queue-entry order): within a
/// class the earliest entry is also the most aged, so the best `want` overall are among them.
/// Stores claim through [`super::place::place`], which gives this order under the default
/// placement policy.
pub fn pick(mut candidates: Vec<Candidate>, want: usize, now: u64, aging_interval: Duration) -> Vec<Candidate> {
    candidates.sort_by_key(|c| order_key(c, now, aging_interval));
    candidates.truncate(want);
    candidates
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

    #[test]
    fn a_claim_picks_by_aged_rank_then_time_queued() {
        let step = Duration::from_secs(300);
        let s = 1000;
        let c = |seq, base_rank, queued_at_ms| Candidate {
            seq,
            base_rank,
            queued_at_ms,
        };
        let now = 10_000 * s;
        // A batch/low job (8) queued 40 minutes ago has aged to 0 and is older than a fresh
        // live/high one (0); a default/medium job (4) queued 10 minutes ago is at 2.
        let old_low = c(1, 8, now - 2400 * s);
        let fresh_high = c(9, 0, now);
        let mid = c(5, 4, now - 600 * s);
        let later_high = c(3, 0, now - s);
        let picked = pick(vec![mid, fresh_high, old_low, later_high], 3, now, step);
        assert_eq!(picked, vec![old_low, later_high, fresh_high]);
        assert_eq!(order_key(&mid, now, step), (2, now - 600 * s, 5));
        assert!(pick(vec![mid], 0, now, step).is_empty());
    }
}
