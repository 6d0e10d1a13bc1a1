//! One attempt of a job on the agent, from its slot to its report.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ffrtmp_core::{
    Assignment, CancelSignal, EnergyReport, ErrorKind, ExecOutcome, Job, JobError, JobEvent, JobReport, NodeId,
    TransportError,
};

use super::slots::{claim_slot, Claimed, LatestProgress};
use super::{lock, measure, send_report, Shared};

pub(super) fn start_job(shared: &Arc<Shared>, node_id: NodeId, assignment: Assignment) {
    let job = assignment.job;
    let key = job.attempt_key();
    let Some(claimed) = claim_slot(shared, key) else {
        tracing::warn!(attempt = %key, "assignment already running here; not starting it twice");
        return;
    };
    tokio::spawn(run_attempt(claimed, node_id, job));
}

/// One attempt from start to report. The work itself runs in a task of its own, so that a
/// panic there (executor, meter) ends as a `failed` (`internal`) report: dropping the
/// panicked work kills its process group (the supervisor's guard) and the slot guard frees
/// the slot whatever happens here.
async fn run_attempt(claimed: Claimed, node_id: NodeId, job: Job) {
    let Claimed {
        guard,
        signal,
        progress,
        reporting,
        older,
    } = claimed;
    let shared = guard.shared().clone();
    let key = guard.key;
    let report = |event| JobReport {
        job_id: key.job,
        node_id,
        attempt: key.attempt,
        event,
    };
    tracing::info!(attempt = %key, scenario = %job.spec.scenario, "starting job");
    let slot = AttemptSlot {
        signal,
        progress,
        reporting,
        older,
    };
    let work = tokio::spawn(execute_attempt(shared.clone(), node_id, job.clone(), slot));
    let outcome = match work.await {
        Ok(outcome) => outcome,
        Err(e) => {
            let message = panic_message(e);
            tracing::error!(attempt = %key, error = %message, "job task failed; its processes were killed");
            let error = JobError::new(ErrorKind::Internal, format!("the agent's job task failed: {message}"));
            // The meter may be what panicked: it must not take the report with it.
            let failed = ExecOutcome::Failed { error: error.clone() };
            let measured = std::panic::catch_unwind(AssertUnwindSafe(|| measure(&shared.energy, &job, failed)));
            Some(measured.unwrap_or((ExecOutcome::Failed { error }, None)))
        }
    };
    guard.workload_ended();
    let (outcome, energy) = outcome.unzip();
    let energy = energy.flatten();
    shared.stats.count(outcome.as_ref());
    let event = match outcome {
        Some(ExecOutcome::Completed { result }) => Some(JobEvent::Completed { result }),
        Some(ExecOutcome::Failed { error }) => Some(JobEvent::Failed {
            error: JobError { energy, ..error },
        }),
        Some(ExecOutcome::TimedOut { message }) => Some(JobEvent::TimedOut { message, energy }),
        Some(ExecOutcome::Canceled) | None => {
            if let Some(joules) = energy.and_then(|e| e.energy_joules) {
                // The master no longer holds the job, so there is no report to carry it.
                tracing::info!(attempt = %key, joules, "stopped job's energy not reported");
            }
            None
        }
    };
    match event {
        Some(event) => {
            let accepted = send_report(&shared, report(event)).await;
            let mut s = lock(&shared.summary);
            if accepted {
                s.reported += 1;
            } else {
                s.stopped += 1;
            }
        }
        None => lock(&shared.summary).stopped += 1,
    }
    drop(guard);
}

/// What the work of an attempt takes from its slot.
struct AttemptSlot {
    signal: CancelSignal,
    progress: Arc<LatestProgress>,
    reporting: Arc<AtomicBool>,
    older: Vec<CancelSignal>,
}

/// Waits until older attempts of the job are gone, says `started`, runs and measures the job.
/// `None`: the master no longer assigns this attempt to us.
async fn execute_attempt(
    shared: Arc<Shared>,
    node_id: NodeId,
    job: Job,
    slot: AttemptSlot,
) -> Option<(ExecOutcome, Option<EnergyReport>)> {
    // Never two encodes of one job at once: a stale attempt was told to stop when this one
    // took its slot, and its process goes within its grace period.
    for mut ended in slot.older {
        ended.canceled().await;
    }
    let started = JobReport {
        job_id: job.id,
        node_id,
        attempt: job.attempt,
        event: JobEvent::Started,
    };
    match shared.transport.report(&started).await {
        Err(TransportError::Fenced(msg)) | Err(TransportError::Rejected { message: msg, .. }) => {
            tracing::warn!(attempt = %job.attempt_key(), reason = %msg, "master no longer assigns this job to us");
            None
        }
        // Unreachable: run anyway; the outcome report is retried patiently.
        _ => {
            if let Some(m) = &shared.energy {
                m.started(&job);
            }
            let outcome = shared.executor.execute(&job, slot.progress.as_ref(), slot.signal).await;
            slot.reporting.store(true, Ordering::SeqCst);
            Some(measure(&shared.energy, &job, outcome))
        }
    }
}

/// What a failed job task says about itself.
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return e.to_string();
    }
    let payload = e.into_panic();
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned());
    format!("panicked: {}", text.unwrap_or_else(|| "(no message)".into()))
}
