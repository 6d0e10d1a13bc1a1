//! What a sweep decides: lost nodes, the fate of their jobs, retry release, aging and
//! retention.

use std::time::Duration;

use ffrtmp_core::{ErrorKind, Job, JobError, JobState, SweepSummary};

use super::Step;

/// Nodes last seen before this instant are lost. After a master restart (`opened_at`)
/// every node looks silent, so none is declared lost until one full `dead_after` window
/// has passed (the result is then 0).
pub fn lost_before(now: u64, opened_at: u64, dead_after: Duration) -> u64 {
    let dead_after = dead_after.as_millis() as u64;
    if now.saturating_sub(opened_at) < dead_after {
        0
    } else {
        now.saturating_sub(dead_after)
    }
}

/// The error that ends the attempts a lost node held; a transient one, so the jobs are
/// retried while their budget lasts.
pub fn node_lost(node: &str, dead_after: Duration) -> JobError {
    let silent_s = dead_after.as_secs_f64();
    JobError::new(
        ErrorKind::NodeLost,
        format!("node {node} sent no heartbeat for {silent_s:.1} s"),
    )
}

/// Counts a lost node's job in the summary by the state its attempt ended in.
pub fn count_lost_job(summary: &mut SweepSummary, ended_in: JobState) {
    if ended_in == JobState::Retrying {
        summary.jobs_requeued += 1;
    } else {
        summary.jobs_failed += 1;
    }
}

/// Whether a `retrying` job is due back in the queue at `now`.
pub fn retry_due(job: &Job, now: u64) -> bool {
    job.state == JobState::Retrying && job.retry_at_ms.is_some_and(|at| at <= now)
}

/// Releases a due `retrying` job to the queue. The new attempt may land anywhere; the old
/// holder is fenced by the attempt bump of the next claim.
pub fn release(job: &mut Job) -> Step {
    job.retry_at_ms = None;
    Step::new(JobState::Queued, "backoff ended")
}

/// The aging step: a queued job rises one rank per this many milliseconds waited (at
/// least 1, so the division in [`aged_rank`] is defined).
pub fn aging_step_ms(aging_interval: Duration) -> i64 {
    (aging_interval.as_millis() as i64).max(1)
}

/// The rank of a job of `base_rank` queued since `queued_at_ms`, at `now`: one higher per
/// aging step waited, never above rank 0. The stores compute the same in SQL.
pub fn aged_rank(base_rank: i64, queued_at_ms: u64, now: u64, aging_interval: Duration) -> i64 {
    let waited = now as i64 - queued_at_ms as i64;
    (base_rank - waited / aging_step_ms(aging_interval)).max(0)
}

/// Rows (completed jobs, offline nodes) last changed before this instant are deleted;
/// `None` when `retention` keeps everything.
pub fn retention_cutoff(now: u64, retention: Option<Duration>) -> Option<u64> {
    retention.map(|r| now.saturating_sub(r.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec};

    const S: u64 = 1000;

    #[test]
    fn nodes_are_lost_after_the_window_but_not_right_after_a_restart() {
        let window = Duration::from_secs(90);
        // (now, opened_at) -> lost before
        for (now, opened, want) in [
            (1000 * S, 0, 910 * S),
            (1000 * S, 950 * S, 0),
            (1000 * S, 910 * S, 910 * S),
            (10 * S, 0, 0),
        ] {
            assert_eq!(lost_before(now, opened, window), want, "{now} {opened}");
        }
        let e = node_lost("n1", window);
        assert!(e.kind.is_transient());
        assert_eq!(e.message, "node n1 sent no heartbeat for 90.0 s");
    }

    #[test]
    fn lost_jobs_count_as_requeued_or_failed() {
        let mut s = SweepSummary::default();
        for st in [JobState::Retrying, JobState::Failed, JobState::Retrying] {
            count_lost_job(&mut s, st);
        }
        assert_eq!((s.jobs_requeued, s.jobs_failed), (2, 1));
    }

    #[test]
    fn retries_are_released_when_due() {
        let mut j = Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0);
        j.state = JobState::Retrying;
        j.retry_at_ms = Some(500);
        assert!(!retry_due(&j, 499));
        assert!(retry_due(&j, 500));
        let step = release(&mut j);
        assert_eq!((step.to, j.retry_at_ms), (JobState::Queued, None));
        j.state = JobState::Failed;
        j.retry_at_ms = Some(1);
        assert!(!retry_due(&j, 500), "only retrying jobs");
    }

    #[test]
    fn waiting_jobs_rise_one_rank_per_interval_down_to_zero() {
        let i = Duration::from_secs(300);
        // (base rank, waited seconds) -> rank
        for (base, waited, want) in [
            (8, 0, 8),
            (8, 299, 8),
            (8, 300, 7),
            (8, 900, 5),
            (8, 100_000, 0),
            (0, 600, 0),
        ] {
            assert_eq!(
                aged_rank(base, 1_000 * S, 1_000 * S + waited * S, i),
                want,
                "{base} {waited}"
            );
        }
        assert_eq!(aging_step_ms(Duration::ZERO), 1);
    }

    #[test]
    fn retention_cuts_off_at_its_age() {
        assert_eq!(retention_cutoff(10 * S, None), None);
        assert_eq!(retention_cutoff(10 * S, Some(Duration::from_secs(4))), Some(6 * S));
        assert_eq!(retention_cutoff(S, Some(Duration::from_secs(4))), Some(0));
    }
}
