//! Helpers the conformance tests share; public so that a store's own tests can use them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{
    Assignment, ClaimRequest, ErrorKind, JobError, JobEvent, JobReport, JobResult, JobSpec, JobStore, Node,
    NodeRegistration,
};

use crate::SchedConfig;

/// A node registration with `slots` job slots, the usual software encoders and ffmpeg.
pub fn registration(name: &str, slots: u32) -> NodeRegistration {
    NodeRegistration {
        name: name.into(),
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: slots,
        encoders: ["libx264", "libx265", "libsvtav1", "libvpx-vp9"]
            .map(String::from)
            .to_vec(),
        engines: vec!["ffmpeg".into()],
        version: "test".into(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicU64>);

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock at a fixed instant in 2023.
    pub fn new() -> Self {
        ManualClock(Arc::new(AtomicU64::new(1_700_000_000_000)))
    }
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
    }
    /// A default config (30 s heartbeats) that reads this clock.
    pub fn config(&self) -> SchedConfig {
        let c = self.0.clone();
        SchedConfig {
            heartbeat_interval: Duration::from_secs(30),
            clock: Arc::new(move || c.load(Ordering::SeqCst)),
            ..SchedConfig::default()
        }
    }
}

/// Claims up to `max` jobs for `node` with a fresh claim id; panics on error.
pub async fn claim(store: &dyn JobStore, node: &Node, max: u32) -> Vec<Assignment> {
    store
        .claim(&ClaimRequest {
            node_id: node.id,
            claim_id: uuid::Uuid::new_v4().to_string(),
            max_jobs: max,
            wait_ms: 0,
        })
        .await
        .expect("claim")
}

/// A completion report of `frames` frames for the assignment's attempt.
pub fn completed(a: &Assignment, node: &Node, frames: u64) -> JobReport {
    JobReport {
        job_id: a.job.id,
        node_id: node.id,
        attempt: a.job.attempt,
        event: JobEvent::Completed {
            result: JobResult {
                frames,
                ..Default::default()
            },
        },
    }
}

/// A default spec for `scenario`.
pub fn spec(scenario: &str) -> JobSpec {
    JobSpec::new(scenario)
}

/// A transient-or-not failure report (`kind`, message "boom") for the assignment's attempt.
pub fn failed(a: &Assignment, node: &ffrtmp_core::Node, kind: ErrorKind) -> JobReport {
    JobReport {
        job_id: a.job.id,
        node_id: node.id,
        attempt: a.job.attempt,
        event: JobEvent::Failed {
            error: JobError::new(kind, "boom"),
        },
    }
}

/// A claim request for `node` with an explicit claim id.
pub fn claim_request(node: &ffrtmp_core::Node, claim_id: &str, max_jobs: u32) -> ClaimRequest {
    ClaimRequest {
        node_id: node.id,
        claim_id: claim_id.into(),
        max_jobs,
        wait_ms: 0,
    }
}

/// The (job, attempt) pairs of assignments, in order.
pub fn ids(v: &[Assignment]) -> Vec<(ffrtmp_core::JobId, u32)> {
    v.iter().map(|a| (a.job.id, a.job.attempt)).collect()
}
