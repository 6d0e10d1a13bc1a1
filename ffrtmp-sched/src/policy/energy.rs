//! How a report's energy joins the job's per-attempt energy (`Job::attempts_energy`).

use ffrtmp_core::{AttemptEnergy, EnergyReport, HistoryEntry, Job, JobEvent, JobReport, JobState, NodeId};

/// Adds the energy of the reported attempt, if the report carried any, to the job's
/// per-attempt list, with the state the attempt left the job in.
pub fn keep_energy(job: &mut Job, r: &JobReport, outcome: JobState, energy: Option<&EnergyReport>) {
    if let Some(energy) = energy {
        job.attempts_energy.record(AttemptEnergy {
            attempt: r.attempt,
            node_id: r.node_id,
            outcome,
            energy: energy.clone(),
        });
    }
}

/// Keeps the energy a final report (completed, failed, timed out) carried, once the report's
/// decision has been applied: the attempt's outcome is the state it left the job in
/// (`retrying` or `failed` for a failure, `timed_out` for a timeout).
pub fn keep_reported_energy(job: &mut Job, r: &JobReport) {
    match &r.event {
        JobEvent::Completed { result } => keep_energy(job, r, JobState::Completed, Some(&result.energy)),
        JobEvent::Failed { error } => {
            let outcome = job.state;
            keep_energy(job, r, outcome, error.energy.as_ref());
        }
        JobEvent::TimedOut { energy, .. } => keep_energy(job, r, JobState::TimedOut, energy.as_ref()),
        JobEvent::Started | JobEvent::Progress { .. } | JobEvent::Energy { .. } => {}
    }
}

/// The state the attempt `attempt` of `node` left the job in, from the job's history:
/// `None` when that node never held that attempt, so its `energy` report is refused. (The
/// SQL stores ask their history table the same question.)
pub fn attempt_outcome(history: &[HistoryEntry], attempt: u32, node: NodeId) -> Option<JobState> {
    history
        .iter()
        .rev()
        .find(|h| h.attempt == attempt && h.node_id == Some(node) && h.to != JobState::Queued)
        .map(|h| h.to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attempt: u32, node: Option<NodeId>, to: JobState) -> HistoryEntry {
        HistoryEntry {
            at_ms: 0,
            from: None,
            to,
            attempt,
            node_id: node,
            reason: String::new(),
        }
    }

    #[test]
    fn only_the_node_that_held_an_attempt_has_an_outcome_for_it() {
        let (a, b) = (NodeId::new(), NodeId::new());
        let history = [
            entry(0, None, JobState::Queued),
            entry(1, Some(a), JobState::Assigned),
            entry(1, Some(a), JobState::Running),
            entry(1, Some(a), JobState::Retrying),
            entry(1, Some(a), JobState::Queued),
            entry(2, Some(b), JobState::Assigned),
            entry(2, Some(b), JobState::Canceled),
        ];
        assert_eq!(attempt_outcome(&history, 1, a), Some(JobState::Retrying));
        assert_eq!(attempt_outcome(&history, 2, b), Some(JobState::Canceled));
        assert_eq!(attempt_outcome(&history, 2, a), None);
        assert_eq!(attempt_outcome(&history, 3, b), None);
    }
}
