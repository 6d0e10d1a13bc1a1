//! What a node's report does to its job.

use std::time::Duration;

use ffrtmp_core::{Backoff, ErrorKind, Job, JobError, JobEvent, JobReport, JobResult, JobState, Progress, StoreError};

use super::{holds, Step};

/// Refuses a report unless its node holds the reported attempt ([`holds`]).
pub fn fence(job: &Job, r: &JobReport) -> Result<(), StoreError> {
    if holds(job, r.node_id, r.attempt) {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            job_id: r.job_id,
            attempt: r.attempt,
            node_id: r.node_id,
            state: job.state,
            current_attempt: job.attempt,
        })
    }
}

/// What an accepted report does.
#[derive(Clone, Debug, PartialEq)]
pub enum ReportDecision {
    /// Apply `steps` in order, then `record`.
    Advance {
        /// State changes, each recorded in the history.
        steps: Vec<Step>,
        /// What the job keeps from the report once the steps are applied.
        record: Record,
    },
    /// The attempt failed: end it as [`end_attempt`] decides.
    EndAttempt(JobError),
}

/// What a job keeps from an accepted report.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// Nothing besides the state.
    Nothing,
    /// The latest progress (and `updated_at_ms = now`).
    Progress(Progress),
    /// The result; any earlier error is cleared.
    Result(JobResult),
    /// The error the job ended with.
    Error(JobError),
}

impl Record {
    /// Applies the record to `job` at `now`.
    pub fn apply(self, job: &mut Job, now: u64) {
        match self {
            Record::Nothing => {}
            Record::Progress(p) => {
                job.progress = Some(p);
                job.updated_at_ms = now;
            }
            Record::Result(r) => {
                job.result = Some(r);
                job.error = None;
            }
            Record::Error(e) => job.error = Some(e),
        }
    }
}

/// The decision for `event` reported on a job in `state` (already [`fence`]d, so active).
/// A job still `assigned` is first moved to `running`: the start report may have been lost.
/// A timed-out job is not retried: it would outrun its own limit again.
pub fn decide(state: JobState, event: &JobEvent) -> ReportDecision {
    let start = |why: &str| -> Vec<Step> {
        if state == JobState::Assigned {
            vec![Step::new(JobState::Running, why)]
        } else {
            Vec::new()
        }
    };
    match event {
        JobEvent::Started => ReportDecision::Advance {
            steps: start("workload started"),
            record: Record::Nothing,
        },
        JobEvent::Progress { progress } => ReportDecision::Advance {
            steps: start("progress reported"),
            record: Record::Progress(progress.clone()),
        },
        JobEvent::Completed { result } => {
            let mut steps = start("workload started");
            steps.push(Step::new(JobState::Completed, "completed"));
            ReportDecision::Advance {
                steps,
                record: Record::Result(result.clone()),
            }
        }
        JobEvent::Failed { error } => ReportDecision::EndAttempt(error.clone()),
        // An ended attempt's energy is no state change: stores record it before fencing,
        // against the attempt's holder in history, and never reach this decision with it.
        JobEvent::Energy { .. } => ReportDecision::Advance {
            steps: Vec::new(),
            record: Record::Nothing,
        },
        JobEvent::TimedOut { message, energy } => ReportDecision::Advance {
            steps: vec![
                Step::new(JobState::TimedOut, message.clone()),
                Step::new(JobState::Failed, "timed out; not retried"),
            ],
            record: Record::Error(JobError {
                energy: energy.clone(),
                ..JobError::new(ErrorKind::Timeout, message.clone())
            }),
        },
    }
}

/// How an attempt that failed with an error ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEnd {
    /// The job's new attempt base (retries are counted from it): one higher after an
    /// interruption, which costs no retry.
    pub attempt_base: u32,
    /// Retry at `retry_at_ms` (state `retrying`), or fail.
    pub outcome: AttemptOutcome,
}

/// Whether a failed attempt is retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// `retrying` until `at_ms`, when the sweep releases it to the queue.
    Retry {
        /// When the backoff ends (ms since the epoch).
        at_ms: u64,
        /// The history entry's reason.
        reason: String,
    },
    /// `failed`: the error is not transient, or retries are exhausted.
    Fail {
        /// The history entry's reason.
        reason: String,
    },
}

impl AttemptOutcome {
    /// The state change this outcome makes.
    pub fn step(&self) -> Step {
        match self {
            AttemptOutcome::Retry { reason, .. } => Step::new(JobState::Retrying, reason.clone()),
            AttemptOutcome::Fail { reason } => Step::new(JobState::Failed, reason.clone()),
        }
    }

    /// When the retry is due; `None` when the job fails.
    pub fn retry_at_ms(&self) -> Option<u64> {
        match self {
            AttemptOutcome::Retry { at_ms, .. } => Some(*at_ms),
            AttemptOutcome::Fail { .. } => None,
        }
    }
}

/// Ends attempt `attempt` of a job whose retries are counted from `attempt_base` and which
/// allows `max_retries`: a transient error with retries left is retried after `backoff`'s
/// delay for this retry; anything else fails the job. An [`ErrorKind::Interrupted`] attempt
/// (a graceful hand-back: agent drain, dropped job) is not the job's failure and costs no
/// retry.
pub fn end_attempt(
    attempt: u32,
    attempt_base: u32,
    max_retries: u32,
    error: &JobError,
    backoff: &Backoff,
    now: u64,
) -> AttemptEnd {
    let attempt_base = if error.kind == ErrorKind::Interrupted {
        attempt_base.saturating_add(1)
    } else {
        attempt_base
    };
    let used = attempt.saturating_sub(attempt_base);
    let reason = format!("{:?}: {}", error.kind, error.message);
    let outcome = if error.kind.is_transient() && used <= max_retries {
        let delay = backoff.delay(used.saturating_sub(1));
        AttemptOutcome::Retry {
            at_ms: now + millis(delay),
            reason,
        }
    } else if error.kind.is_transient() {
        AttemptOutcome::Fail {
            reason: format!("retries exhausted; {reason}"),
        }
    } else {
        AttemptOutcome::Fail { reason }
    };
    AttemptEnd { attempt_base, outcome }
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, NodeId};

    fn job(state: JobState, node: Option<NodeId>, attempt: u32) -> Job {
        let mut j = Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0);
        j.state = state;
        j.node_id = node;
        j.attempt = attempt;
        j
    }

    fn report(j: &Job, node: NodeId, attempt: u32) -> JobReport {
        JobReport {
            job_id: j.id,
            node_id: node,
            attempt,
            event: JobEvent::Started,
        }
    }

    #[test]
    fn only_the_holder_of_the_current_attempt_may_report() {
        let (n, other) = (NodeId::new(), NodeId::new());
        let cases = [
            (job(JobState::Assigned, Some(n), 2), n, 2, true),
            (job(JobState::Running, Some(n), 2), n, 2, true),
            (job(JobState::Running, Some(n), 2), n, 1, false),
            (job(JobState::Running, Some(n), 2), other, 2, false),
            (job(JobState::Canceled, Some(n), 2), n, 2, false),
            (job(JobState::Retrying, Some(n), 2), n, 2, false),
            (job(JobState::Queued, None, 0), n, 0, false),
        ];
        for (j, node, attempt, ok) in cases {
            let r = fence(&j, &report(&j, node, attempt));
            assert_eq!(r.is_ok(), ok, "{:?} attempt {attempt}", j.state);
            if let Err(StoreError::Fenced {
                state, current_attempt, ..
            }) = r
            {
                assert_eq!(
                    (state, current_attempt),
                    (j.state, j.attempt),
                    "the refusal says what the job is at"
                );
            } else {
                assert!(ok, "a refusal is Fenced: {r:?}");
            }
        }
    }

    fn states(d: &ReportDecision) -> Vec<JobState> {
        match d {
            ReportDecision::Advance { steps, .. } => steps.iter().map(|s| s.to).collect(),
            ReportDecision::EndAttempt(_) => panic!("not an advance: {d:?}"),
        }
    }

    #[test]
    fn events_cause_these_transitions() {
        use JobState::*;
        let done = JobEvent::Completed {
            result: JobResult::default(),
        };
        let timed_out = JobEvent::TimedOut {
            message: "late".into(),
            energy: None,
        };
        let cases: [(JobState, &JobEvent, Vec<JobState>); 6] = [
            (Assigned, &JobEvent::Started, vec![Running]),
            (Running, &JobEvent::Started, vec![]),
            (Assigned, &done, vec![Running, Completed]),
            (Running, &done, vec![Completed]),
            (Assigned, &timed_out, vec![TimedOut, Failed]),
            (Running, &timed_out, vec![TimedOut, Failed]),
        ];
        for (from, event, want) in cases {
            assert_eq!(states(&decide(from, event)), want, "{from:?} {event:?}");
        }
        let failed = JobEvent::Failed {
            error: JobError::new(ErrorKind::Internal, "x"),
        };
        assert!(matches!(decide(Running, &failed), ReportDecision::EndAttempt(e) if e.kind == ErrorKind::Internal));
    }

    #[test]
    fn a_timeout_keeps_its_energy_and_a_result_clears_the_error() {
        let mut j = job(JobState::Running, None, 1);
        j.error = Some(JobError::new(ErrorKind::Internal, "old"));
        let ReportDecision::Advance { record, .. } = decide(
            JobState::Running,
            &JobEvent::Completed {
                result: JobResult {
                    frames: 7,
                    ..Default::default()
                },
            },
        ) else {
            panic!()
        };
        record.apply(&mut j, 5);
        assert_eq!(
            (j.result.as_ref().map(|r| r.frames), j.error.is_none()),
            (Some(7), true)
        );
        let ReportDecision::Advance {
            record: Record::Error(e),
            ..
        } = decide(
            JobState::Running,
            &JobEvent::TimedOut {
                message: "late".into(),
                energy: None,
            },
        )
        else {
            panic!()
        };
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Timeout, "late"));
    }

    #[test]
    fn transient_failures_retry_until_exhausted() {
        let none = Backoff {
            base: Duration::ZERO,
            ..Backoff::JOB
        };
        let t = JobError::new(ErrorKind::Internal, "boom");
        // (attempt, base, max_retries, error kind) -> (retried?, new base, reason prefix)
        let cases = [
            (1, 0, 2, ErrorKind::Internal, true, 0),
            (3, 0, 2, ErrorKind::Internal, false, 0),
            (4, 3, 0, ErrorKind::Internal, false, 3),
            (4, 3, 1, ErrorKind::Internal, true, 3),
            (1, 0, 5, ErrorKind::EncodeError, false, 0),
            (5, 0, 2, ErrorKind::Interrupted, false, 1),
            (3, 0, 2, ErrorKind::Interrupted, true, 1),
        ];
        for (attempt, base, max, kind, retried, new_base) in cases {
            let e = JobError { kind, ..t.clone() };
            let end = end_attempt(attempt, base, max, &e, &none, 1000);
            assert_eq!(end.attempt_base, new_base, "{attempt} {base} {max} {kind:?}");
            assert_eq!(
                end.outcome.retry_at_ms().is_some(),
                retried,
                "{attempt} {base} {max} {kind:?}"
            );
            let step = end.outcome.step();
            assert_eq!(step.to, if retried { JobState::Retrying } else { JobState::Failed });
            let exhausted = !retried && kind.is_transient();
            assert_eq!(
                step.reason.starts_with("retries exhausted"),
                exhausted,
                "{}",
                step.reason
            );
        }
    }

    #[test]
    fn the_retry_waits_for_the_backoff_of_its_retry_number() {
        let b = Backoff::JOB;
        let e = JobError::new(ErrorKind::Internal, "boom");
        for (attempt, n) in [(1u32, 0u32), (2, 1), (3, 2)] {
            let at = end_attempt(attempt, 0, 10, &e, &b, 1000).outcome.retry_at_ms().unwrap();
            let nominal = millis(b.nominal(n));
            assert!((1000 + nominal / 2..=1000 + nominal).contains(&at), "retry {n}: {at}");
        }
    }
}
