//! An in-process [`Transport`] that calls a store directly.

use std::sync::Arc;

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobReport, JobStore, Node, NodeId, NodeRegistration,
    StoreError, Transport, TransportError,
};

/// Lets an agent talk to a store in the same process, with the same error semantics as
/// the HTTPS transport (fenced reports are [`TransportError::Fenced`]).
#[derive(Clone)]
pub struct StoreTransport {
    store: Arc<dyn JobStore>,
}

impl StoreTransport {
    /// Wraps a store.
    pub fn new(store: Arc<dyn JobStore>) -> Self {
        StoreTransport { store }
    }
}

fn convert(e: StoreError) -> TransportError {
    match e {
        StoreError::Fenced { .. } | StoreError::InvalidTransition(_) => TransportError::Fenced(e.to_string()),
        StoreError::NotFound { .. } => TransportError::Rejected {
            status: 404,
            kind: "not_found".into(),
            message: e.to_string(),
        },
        StoreError::InvalidSpec(_) | StoreError::InvalidRequest(_) => TransportError::Rejected {
            status: 400,
            kind: "invalid_request".into(),
            message: e.to_string(),
        },
        StoreError::Backend(_) => TransportError::Unreachable(e.to_string()),
    }
}

#[async_trait]
impl Transport for StoreTransport {
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError> {
        self.store.register_node(registration.clone()).await.map_err(convert)
    }

    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, TransportError> {
        self.store.heartbeat(node_id, heartbeat).await.map_err(convert)
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError> {
        self.store.claim(request).await.map_err(convert)
    }

    async fn report(&self, report: &JobReport) -> Result<Job, TransportError> {
        self.store.report(report).await.map_err(convert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{EnergyReport, JobEvent, JobSpec, JobState};

    #[tokio::test]
    async fn a_canceled_attempts_energy_is_carried_and_absurd_joules_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JobStore> = Arc::new(crate::SqliteStore::open(&dir.path().join("jobs.db")).unwrap());
        let transport = StoreTransport::new(store.clone());
        let registration = NodeRegistration {
            name: "n1".into(),
            cpu_cores: 2,
            memory_mb: 1024,
            max_concurrent_jobs: 1,
            encoders: vec!["libx264".into()],
            engines: vec!["ffmpeg".into()],
            enforces_limits: false,
            quality_metrics: Vec::new(),
            version: String::new(),
        };
        let node = transport.register(&registration).await.unwrap();
        let job = store.submit(JobSpec::new("720p-h264")).await.unwrap();
        let claim = ClaimRequest {
            node_id: node.id,
            claim_id: "c1".into(),
            max_jobs: 1,
            wait_ms: 0,
        };
        assert_eq!(transport.claim(&claim).await.unwrap().len(), 1);
        store.cancel(job.id, "canceled by user").await.unwrap();
        let report = |joules: f64, node_id: NodeId| JobReport {
            job_id: job.id,
            node_id,
            attempt: 1,
            event: JobEvent::Energy {
                energy: EnergyReport {
                    source: "rapl".into(),
                    energy_joules: Some(joules),
                    ..Default::default()
                },
            },
        };
        let absurd = transport.report(&report(-1.0, node.id)).await.unwrap_err();
        assert!(
            matches!(absurd, TransportError::Rejected { status: 400, .. }),
            "{absurd}"
        );
        let stranger = transport.report(&report(2.0, NodeId::new())).await.unwrap_err();
        assert!(matches!(stranger, TransportError::Fenced(_)), "{stranger}");
        let job = transport.report(&report(2.0, node.id)).await.unwrap();
        assert_eq!(job.state, JobState::Canceled);
        assert_eq!(job.attempts_energy.total_joules, Some(2.0));
        assert_eq!(store.get(job.id).await.unwrap().attempts_energy, job.attempts_energy);
    }
}
