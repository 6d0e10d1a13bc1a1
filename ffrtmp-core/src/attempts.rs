//! The energy of every attempt of a job, kept on the job whatever each attempt's outcome.
//!
//! A job's `result` and `error` describe its last attempt only; a failed attempt's energy
//! would be lost when a retry completes, and a canceled attempt has no report to carry it.
//! [`AttemptsEnergy`] keeps one [`AttemptEnergy`] per attempt that reported energy, and their
//! total, so that no measured joule is left out of the job records.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::job::EnergyReport;
use crate::state::JobState;

/// The energy one attempt of a job used, as measured by the node that ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptEnergy {
    /// The attempt number (the job's fencing token when the attempt ran).
    pub attempt: u32,
    /// The node that ran the attempt.
    pub node_id: NodeId,
    /// The state the attempt left the job in: `completed`, `failed`, `timed_out`,
    /// `canceled`, or `retrying` (a transient failure, an interrupted agent). An attempt
    /// whose energy arrived while it still held the job says `running`.
    pub outcome: JobState,
    /// The energy report.
    pub energy: EnergyReport,
}

/// Every attempt's energy, in attempt order, and the total across them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptsEnergy {
    /// One record per attempt that reported energy.
    #[serde(default)]
    pub attempts: Vec<AttemptEnergy>,
    /// Sum of the attempts' `energy_joules`; `None` when no attempt measured any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_joules: Option<f64>,
}

impl AttemptsEnergy {
    /// Whether no attempt reported energy.
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// Records `record`, replacing an earlier record of the same attempt (a report sent
    /// again), keeping attempt order and updating the total.
    ///
    /// ```
    /// use ffrtmp_core::{AttemptEnergy, AttemptsEnergy, EnergyReport, JobState, NodeId};
    /// let joules = |j: f64| EnergyReport { source: "rapl".into(), energy_joules: Some(j), ..Default::default() };
    /// let node = NodeId::new();
    /// let mut all = AttemptsEnergy::default();
    /// all.record(AttemptEnergy { attempt: 2, node_id: node, outcome: JobState::Completed, energy: joules(5.0) });
    /// all.record(AttemptEnergy { attempt: 1, node_id: node, outcome: JobState::Retrying, energy: joules(3.0) });
    /// all.record(AttemptEnergy { attempt: 1, node_id: node, outcome: JobState::Retrying, energy: joules(4.0) });
    /// assert_eq!(all.attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(all.total_joules, Some(9.0));
    /// ```
    pub fn record(&mut self, record: AttemptEnergy) {
        match self.attempts.iter_mut().find(|a| a.attempt == record.attempt) {
            Some(old) => *old = record,
            None => {
                self.attempts.push(record);
                self.attempts.sort_by_key(|a| a.attempt);
            }
        }
        self.total_joules = self
            .attempts
            .iter()
            .filter_map(|a| a.energy.energy_joules)
            .fold(None, |sum, j| Some(sum.unwrap_or(0.0) + j));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_attempts_are_listed_but_not_summed() {
        let mut all = AttemptsEnergy::default();
        let node = NodeId::new();
        all.record(AttemptEnergy {
            attempt: 1,
            node_id: node,
            outcome: JobState::Canceled,
            energy: crate::power::unavailable_energy("no powercap"),
        });
        assert_eq!((all.attempts.len(), all.total_joules), (1, None));
        let text = serde_json::to_string(&all).unwrap();
        assert!(!text.contains("total_joules"), "{text}");
        assert_eq!(serde_json::from_str::<AttemptsEnergy>(&text).unwrap(), all);
        assert_eq!(
            serde_json::from_str::<AttemptsEnergy>("{}").unwrap(),
            AttemptsEnergy::default()
        );
    }
}
