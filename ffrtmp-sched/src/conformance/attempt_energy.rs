//! Every attempt's energy is kept on its job: canceled, failed then retried, interrupted,
//! and reported by the node after the job left it.

use std::time::Duration;

use ffrtmp_core::{
    AttemptEnergy, EnergyReport, ErrorKind, Job, JobError, JobEvent, JobId, JobReport, JobResult, JobState, Node,
    StoreError,
};

use super::support::*;
use super::Backend;
use crate::SchedConfig;

fn joules(j: f64) -> EnergyReport {
    EnergyReport {
        source: "rapl".into(),
        energy_joules: Some(j),
        attribution: Some("cgroup-cpu-share".into()),
        wall_s: Some(1.0),
        ..EnergyReport::default()
    }
}

fn energy_report(job: JobId, node: &Node, attempt: u32, j: f64) -> JobReport {
    JobReport {
        job_id: job,
        node_id: node.id,
        attempt,
        event: JobEvent::Energy { energy: joules(j) },
    }
}

fn event(job: JobId, node: &Node, attempt: u32, event: JobEvent) -> JobReport {
    JobReport {
        job_id: job,
        node_id: node.id,
        attempt,
        event,
    }
}

fn record(attempt: u32, node: &Node, outcome: JobState, j: f64) -> AttemptEnergy {
    AttemptEnergy {
        attempt,
        node_id: node.id,
        outcome,
        energy: joules(j),
    }
}

/// A canceled job's attempt reports its energy after the cancel: stored on the job, shown
/// by `get`, kept over a restart, and the job itself (state, history, times) is untouched.
pub async fn a_canceled_jobs_energy_is_stored(b: &dyn Backend) {
    let (id, node) = {
        let store = b.open(SchedConfig::default()).await;
        let node = store.register_node(registration("n1", 1)).await.unwrap();
        let job = store.submit(spec("720p-h264")).await.unwrap();
        let a = claim(&*store, &node, 1).await.remove(0);
        store.report(&event(job.id, &node, 1, JobEvent::Started)).await.unwrap();
        store.cancel(job.id, "canceled by user").await.unwrap();
        let before = store.get(job.id).await.unwrap();
        let after = store
            .report(&energy_report(job.id, &node, a.job.attempt, 7.5))
            .await
            .expect("the node that ran the canceled attempt reports its energy");
        assert_eq!(after.state, JobState::Canceled);
        let got = store.get(job.id).await.unwrap();
        assert_eq!(
            got.attempts_energy.attempts,
            [record(1, &node, JobState::Canceled, 7.5)]
        );
        assert_eq!(got.attempts_energy.total_joules, Some(7.5));
        assert_eq!(
            Job {
                attempts_energy: before.attempts_energy.clone(),
                ..got
            },
            before
        );
        (job.id, node)
    };
    let store = b.open(SchedConfig::default()).await;
    let got = store.get(id).await.unwrap();
    assert_eq!(
        got.attempts_energy.attempts,
        [record(1, &node, JobState::Canceled, 7.5)]
    );
}

/// A failed attempt's energy is not erased when a retry completes: both attempts, on their
/// nodes, and the total.
pub async fn a_job_that_failed_once_then_completed_keeps_both_attempts_energy(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let n1 = store.register_node(registration("n1", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    claim(&*store, &n1, 1).await;
    let error = JobError {
        energy: Some(joules(3.0)),
        ..JobError::new(ErrorKind::Internal, "encoder crashed")
    };
    let j = store
        .report(&event(job.id, &n1, 1, JobEvent::Failed { error }))
        .await
        .unwrap();
    assert_eq!(j.state, JobState::Retrying);
    clock.advance(Duration::from_secs(60));
    store.sweep().await.unwrap();
    let n2 = store.register_node(registration("n2", 1)).await.unwrap();
    let a = claim(&*store, &n2, 1).await.remove(0);
    assert_eq!(a.job.attempt, 2);
    let result = JobResult {
        frames: 60,
        energy: joules(5.0),
        ..JobResult::default()
    };
    let done = store
        .report(&event(job.id, &n2, 2, JobEvent::Completed { result }))
        .await
        .unwrap();
    assert_eq!((done.state, done.error), (JobState::Completed, None));
    let got = store.get(job.id).await.unwrap();
    assert_eq!(
        got.attempts_energy.attempts,
        [
            record(1, &n1, JobState::Retrying, 3.0),
            record(2, &n2, JobState::Completed, 5.0)
        ]
    );
    assert_eq!(got.attempts_energy.total_joules, Some(8.0));
}

/// An interrupted attempt's energy arrives after its `interrupted` report, while another
/// node runs the next attempt: it is recorded as its own attempt's and changes nothing else.
/// A node cannot report energy for an attempt it never held.
pub async fn a_stale_attempts_energy_alters_only_its_own_record(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let n1 = store.register_node(registration("n1", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    claim(&*store, &n1, 1).await;
    let interrupted = JobEvent::Failed {
        error: JobError::new(ErrorKind::Interrupted, "agent shut down before the job finished"),
    };
    store.report(&event(job.id, &n1, 1, interrupted)).await.unwrap();
    clock.advance(Duration::from_secs(60));
    store.sweep().await.unwrap();
    let n2 = store.register_node(registration("n2", 1)).await.unwrap();
    claim(&*store, &n2, 1).await;
    store.report(&event(job.id, &n2, 2, JobEvent::Started)).await.unwrap();
    let before = store.get(job.id).await.unwrap();

    store
        .report(&energy_report(job.id, &n1, 1, 9.0))
        .await
        .expect("the interrupted attempt's energy");
    let after = store.get(job.id).await.unwrap();
    assert_eq!(
        after.attempts_energy.attempts,
        [record(1, &n1, JobState::Retrying, 9.0)]
    );
    assert_eq!(
        Job {
            attempts_energy: before.attempts_energy.clone(),
            ..after.clone()
        },
        before,
        "state, holder, attempt, history and times are the running attempt's"
    );
    assert_eq!(
        (after.state, after.attempt, after.node_id),
        (JobState::Running, 2, Some(n2.id))
    );

    for (node, attempt) in [(&n2, 1), (&n1, 2), (&n1, 3)] {
        let err = store
            .report(&energy_report(job.id, node, attempt, 1000.0))
            .await
            .expect_err("an attempt the node never held");
        assert!(matches!(err, StoreError::Fenced { .. }), "{err}");
    }
    assert_eq!(
        store.get(job.id).await.unwrap(),
        after,
        "refused reports change nothing"
    );
    let err = store
        .report(&energy_report(JobId::new(), &n1, 1, 1.0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}
