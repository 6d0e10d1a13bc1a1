//! The job state machine: every legal transition is listed here and nowhere else.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a job.
///
/// ```text
/// queued    -> assigned | canceled | rejected
/// assigned  -> running | retrying | failed | canceled | timed_out
/// running   -> completed | failed | timed_out | retrying | canceled
/// retrying  -> queued | failed | canceled
/// timed_out -> retrying | failed
/// completed, failed, canceled, rejected: terminal
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a node.
    Queued,
    /// Claimed by a node, not yet started.
    Assigned,
    /// The node reported that the workload runs.
    Running,
    /// A transient failure happened; the job waits for its backoff to end.
    Retrying,
    /// The job ran past its own `timeout_sec`.
    TimedOut,
    /// Finished successfully.
    Completed,
    /// Finished unsuccessfully; no further attempt will be made.
    Failed,
    /// Canceled by a user.
    Canceled,
    /// Refused by the master before it was ever queued for work.
    Rejected,
}

/// All states, in lifecycle order.
pub const ALL_STATES: [JobState; 9] = [
    JobState::Queued,
    JobState::Assigned,
    JobState::Running,
    JobState::Retrying,
    JobState::TimedOut,
    JobState::Completed,
    JobState::Failed,
    JobState::Canceled,
    JobState::Rejected,
];

/// A transition that the state machine does not allow.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid job state transition: {from} -> {to}")]
pub struct InvalidTransition {
    /// The current state.
    pub from: JobState,
    /// The requested state.
    pub to: JobState,
}

impl JobState {
    /// Whether the machine allows going from `self` to `next`.
    ///
    /// ```
    /// use ffrtmp_core::JobState;
    /// assert!(JobState::Queued.can_become(JobState::Assigned));
    /// assert!(!JobState::Completed.can_become(JobState::Queued));
    /// ```
    pub fn can_become(self, next: JobState) -> bool {
        use JobState::*;
        matches!(
            (self, next),
            (Queued, Assigned | Canceled | Rejected)
                | (Assigned, Running | Retrying | Failed | Canceled | TimedOut)
                | (Running, Completed | Failed | TimedOut | Retrying | Canceled)
                | (Retrying, Queued | Failed | Canceled)
                | (TimedOut, Retrying | Failed)
        )
    }

    /// Checks a transition, returning a typed error when it is not allowed.
    ///
    /// ```
    /// use ffrtmp_core::JobState;
    /// assert!(JobState::Running.transition(JobState::Completed).is_ok());
    /// let err = JobState::Failed.transition(JobState::Running).unwrap_err();
    /// assert_eq!(err.to_string(), "invalid job state transition: failed -> running");
    /// ```
    pub fn transition(self, next: JobState) -> Result<JobState, InvalidTransition> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(InvalidTransition { from: self, to: next })
        }
    }

    /// Whether an operator may queue the job again (`POST /jobs/{id}/retry`): the one
    /// deliberate way out of `failed` and `canceled`, recorded in history like any other
    /// transition and starting a fresh retry budget.
    ///
    /// ```
    /// use ffrtmp_core::JobState;
    /// assert!(JobState::Failed.can_requeue());
    /// assert!(!JobState::Completed.can_requeue());
    /// ```
    pub fn can_requeue(self) -> bool {
        matches!(self, JobState::Failed | JobState::Canceled)
    }

    /// No transition leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Failed | JobState::Canceled | JobState::Rejected
        )
    }

    /// A job held by a node: it counts against the node's concurrency.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Assigned | JobState::Running)
    }

    /// The name used in JSON, SQL and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Assigned => "assigned",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::TimedOut => "timed_out",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
            JobState::Rejected => "rejected",
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parse error for [`JobState`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_STATES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn terminal_states_have_no_exit() {
        for from in ALL_STATES.iter().filter(|s| s.is_terminal()) {
            for to in ALL_STATES {
                assert!(!from.can_become(to), "{from} -> {to} must be refused");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert!("bogus".parse::<JobState>().is_err());
    }

    #[test]
    fn every_non_terminal_state_can_finish() {
        // From every live state some path reaches a terminal state.
        for start in ALL_STATES.iter().filter(|s| !s.is_terminal()) {
            let mut frontier = vec![*start];
            let mut seen = vec![*start];
            let mut reached = false;
            while let Some(s) = frontier.pop() {
                for n in ALL_STATES {
                    if s.can_become(n) && !seen.contains(&n) {
                        reached |= n.is_terminal();
                        seen.push(n);
                        frontier.push(n);
                    }
                }
            }
            assert!(reached, "{start} cannot reach a terminal state");
        }
    }

    proptest! {
        #[test]
        fn transition_agrees_with_can_become(a in 0usize..9, b in 0usize..9) {
            let (from, to) = (ALL_STATES[a], ALL_STATES[b]);
            prop_assert_eq!(from.transition(to).is_ok(), from.can_become(to));
        }
    }
}
