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
