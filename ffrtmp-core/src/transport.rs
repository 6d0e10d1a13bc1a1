//! The [`Transport`] trait: what an agent says to a master.

use async_trait::async_trait;

use crate::ids::NodeId;
use crate::job::Job;
use crate::node::{Assignment, ClaimRequest, Heartbeat, HeartbeatReply, JobReport, Node, NodeRegistration};
use crate::progress::{ProgressReply, ProgressTick};

/// Failures of a transport.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The master refused the request (4xx other than 429); retrying will not help.
    #[error("master refused the request ({status} {kind}): {message}")]
    Rejected {
        /// HTTP status or equivalent.
        status: u16,
        /// Error kind from the master's error body.
        kind: String,
        /// Message from the master.
        message: String,
    },
    /// The report was for an attempt the master no longer recognises (409): stop the job.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Connection failure, timeout, 429 or 5xx, after the retries were used up.
    #[error("master unreachable: {0}")]
    Unreachable(String),
}

impl TransportError {
    /// Whether a later retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TransportError::Unreachable(_))
    }
}

/// The agent's view of a master.
///
/// Implementations: the HTTPS client in `ffrtmp-http`, and an in-process transport over a
/// [`JobStore`](crate::JobStore) in `ffrtmp-sched`. Retries of transient failures happen
/// inside the implementation.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Registers this node.
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError>;
    /// Sends a heartbeat.
    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, TransportError>;
    /// Claims work.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError>;
    /// Reports about an attempt.
    async fn report(&self, report: &JobReport) -> Result<Job, TransportError>;
    /// Sends a progress tick (about once a second while jobs run) and learns which listed
    /// attempts to stop. The default answers 501 `unsupported`: such a transport carries
    /// progress and cancels in heartbeats only, and the agent stops sending ticks.
    async fn progress(&self, node_id: NodeId, tick: &ProgressTick) -> Result<ProgressReply, TransportError> {
        let _ = (node_id, tick);
        Err(TransportError::Rejected {
            status: 501,
            kind: "unsupported".into(),
            message: "this transport carries progress in heartbeats only".into(),
        })
    }
}
