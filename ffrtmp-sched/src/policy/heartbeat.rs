//! What a heartbeat decides: which listed jobs the node must stop and which held jobs it
//! no longer lists are taken back.

use std::time::Duration;

use ffrtmp_core::{ErrorKind, Job, JobError, NodeId, RunningJob};

use super::holds;

pub use crate::power::replaces as power_replaces;

/// Whether a job the node lists as running (`listed`) is one it must stop: the job is
/// gone (`None`), or the node no longer holds that attempt ([`holds`]: canceled, failed,
/// or reassigned after a loss).
pub fn must_cancel(job: Option<&Job>, node: NodeId, listed: &RunningJob) -> bool {
    !job.is_some_and(|j| holds(j, node, listed.attempt))
}

/// Jobs claimed at or after this instant are spared when the node does not list them: the
/// claim's answer may still be on its way to the agent (two heartbeat intervals).
pub fn spared_since(now: u64, heartbeat_interval: Duration) -> u64 {
    now.saturating_sub(2 * heartbeat_interval.as_millis() as u64)
}

/// Whether a job the node holds (and claimed before [`spared_since`]) is taken back: the
/// node does not list its current attempt (listing an older one, still being stopped,
/// does not count).
pub fn dropped(job: &Job, running: &[RunningJob]) -> bool {
    !running.iter().any(|r| r.job_id == job.id && r.attempt == job.attempt)
}

/// The error that ends a dropped job's attempt: an interruption, which costs no retry.
pub fn dropped_error(node: NodeId) -> JobError {
    JobError::new(ErrorKind::Interrupted, format!("node {node} no longer runs the job"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, JobState};

    fn job(state: JobState, node: NodeId, attempt: u32) -> Job {
        let mut j = Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0);
        (j.state, j.node_id, j.attempt) = (state, Some(node), attempt);
        j
    }

    fn listed(j: &Job, attempt: u32) -> RunningJob {
        RunningJob {
            job_id: j.id,
            attempt,
            progress: None,
        }
    }

    #[test]
    fn listed_jobs_the_node_no_longer_holds_are_canceled() {
        let (n, other) = (NodeId::new(), NodeId::new());
        let cases = [
            (job(JobState::Running, n, 1), n, 1, false),
            (job(JobState::Assigned, n, 1), n, 1, false),
            (job(JobState::Running, n, 2), n, 1, true),
            (job(JobState::Running, other, 1), n, 1, true),
            (job(JobState::Canceled, n, 1), n, 1, true),
            (job(JobState::Completed, n, 1), n, 1, true),
        ];
        for (j, node, attempt, cancel) in cases {
            assert_eq!(
                must_cancel(Some(&j), node, &listed(&j, attempt)),
                cancel,
                "{:?} {attempt}",
                j.state
            );
        }
        let j = job(JobState::Running, n, 1);
        assert!(must_cancel(None, n, &listed(&j, 1)), "a job that is gone");
    }

    #[test]
    fn held_jobs_not_listed_at_their_attempt_are_dropped() {
        let n = NodeId::new();
        let j = job(JobState::Running, n, 2);
        assert!(!dropped(&j, &[listed(&j, 2)]));
        assert!(dropped(&j, &[listed(&j, 1)]), "an older attempt still stopping");
        assert!(dropped(&j, &[]));
        assert_eq!(spared_since(100_000, Duration::from_secs(30)), 40_000);
        assert_eq!(spared_since(1_000, Duration::from_secs(30)), 0);
        assert_eq!(dropped_error(n).kind, ErrorKind::Interrupted);
    }
}
