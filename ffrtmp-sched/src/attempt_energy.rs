//! How a report's energy joins the job's per-attempt energy, shared by every store.

use ffrtmp_core::{AttemptEnergy, EnergyReport, Job, JobEvent, JobReport, JobState};

/// Adds the energy of the reported attempt, if the report carried any, to the job's
/// per-attempt list, with the state the attempt left the job in.
pub(crate) fn keep_energy(job: &mut Job, r: &JobReport, outcome: JobState, energy: Option<&EnergyReport>) {
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
pub(crate) fn keep_reported_energy(job: &mut Job, r: &JobReport) {
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
