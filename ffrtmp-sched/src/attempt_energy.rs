//! How a report's energy joins the job's per-attempt energy, shared by every store.

use ffrtmp_core::{AttemptEnergy, EnergyReport, Job, JobReport, JobState};

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
