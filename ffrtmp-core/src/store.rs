//! The [`JobStore`] trait: durable jobs, nodes, claims and history.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ids::{JobId, NodeId};
use crate::job::Job;
use crate::node::{Assignment, ClaimRequest, Heartbeat, HeartbeatReply, JobReport, Node, NodeRegistration};
use crate::spec::{JobSpec, Queue, SpecError};
use crate::state::{InvalidTransition, JobState};

/// Errors of a [`JobStore`]. Each maps to one HTTP status at the API boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such job or node (404).
    #[error("{what} {id} not found")]
    NotFound {
        /// `job` or `node`.
        what: &'static str,
        /// The identifier asked for.
        id: String,
    },
    /// The spec was refused (400).
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// The state machine refused the change (409).
    #[error(transparent)]
    InvalidTransition(#[from] InvalidTransition),
    /// A report for an attempt or node that no longer holds the job (409).
    #[error("stale report for job {job_id}: attempt {attempt} from node {node_id} is not the current holder (job is {state}, attempt {current_attempt})")]
    Fenced {
        /// The job.
        job_id: JobId,
        /// Attempt in the report.
        attempt: u32,
        /// Node in the report.
        node_id: NodeId,
        /// The job's state now.
        state: JobState,
        /// The job's current attempt.
        current_attempt: u32,
    },
    /// The request itself is malformed for this store (400).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend failed (500); the operation did not happen.
    #[error("store backend error: {0}")]
    Backend(String),
}

impl From<crate::bounds::FieldError> for StoreError {
    fn from(e: crate::bounds::FieldError) -> Self {
        StoreError::InvalidRequest(e.to_string())
    }
}

/// Which jobs to list. Lists are pages ordered by `seq`, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobQuery {
    /// Only jobs in this state.
    #[serde(default)]
    pub state: Option<JobState>,
    /// Only jobs in this queue.
    #[serde(default)]
    pub queue: Option<Queue>,
    /// Only jobs held by this node.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Only jobs with `seq` below this (the `next_cursor` of the previous page).
    #[serde(default)]
    pub before_seq: Option<u64>,
    /// Page size; stores cap it at [`JobQuery::MAX_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
}

impl JobQuery {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 1000;

    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobPage {
    /// Jobs, newest first, without history.
    pub jobs: Vec<Job>,
    /// Pass as `before_seq` to get the next page; `None` on the last page.
    pub next_cursor: Option<u64>,
}

/// Which nodes to list. Lists are pages ordered by node id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeQuery {
    /// Only nodes with an id after this one (the `next_cursor` of the previous page).
    #[serde(default)]
    pub after: Option<NodeId>,
    /// Page size; stores cap it at [`NodeQuery::MAX_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
}

impl NodeQuery {
    /// Default page size.
    pub const DEFAULT_LIMIT: u32 = 100;
    /// Largest page size.
    pub const MAX_LIMIT: u32 = 1000;

    /// The page size to use.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(Self::DEFAULT_LIMIT).clamp(1, Self::MAX_LIMIT)
    }
}

/// One page of nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodePage {
    /// Nodes in id order.
    pub nodes: Vec<Node>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next_cursor: Option<NodeId>,
}

impl NodePage {
    /// The page `query` asks for out of `nodes` (any order): what stores without a paged
    /// query of their own answer.
    ///
    /// ```
    /// use ffrtmp_core::{NodePage, NodeQuery};
    /// let page = NodePage::from_all(Vec::new(), &NodeQuery::default());
    /// assert!(page.nodes.is_empty() && page.next_cursor.is_none());
    /// ```
    pub fn from_all(mut nodes: Vec<Node>, query: &NodeQuery) -> NodePage {
        nodes.sort_by_key(|n| n.id);
        nodes.retain(|n| query.after.is_none_or(|after| n.id > after));
        NodePage::from_rows(nodes, query.effective_limit())
    }

    /// A page from up to `limit + 1` nodes in id order: the extra one only tells that
    /// there is a next page.
    pub fn from_rows(mut nodes: Vec<Node>, limit: u32) -> NodePage {
        let next_cursor = if nodes.len() > limit as usize {
            nodes.truncate(limit as usize);
            nodes.last().map(|n| n.id)
        } else {
            None
        };
        NodePage { nodes, next_cursor }
    }
}

/// What one failure-detection pass changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// Nodes newly marked offline.
    pub nodes_lost: u32,
    /// Jobs taken from lost nodes.
    pub jobs_requeued: u32,
    /// Retrying jobs whose backoff ended and went back to the queue.
    pub jobs_released: u32,
    /// Jobs that ran out of retries.
    pub jobs_failed: u32,
    /// Queued jobs whose stored rank a sweep rewrote to age them. The built-in stores age
    /// ranks when a claim compares jobs and rewrite none, so they report 0.
    #[serde(default)]
    pub jobs_aged: u32,
    /// Completed jobs deleted by retention.
    #[serde(default)]
    pub jobs_pruned: u32,
    /// Offline nodes deleted by node retention.
    #[serde(default)]
    pub nodes_pruned: u32,
}

/// Durable storage of jobs and nodes, with the scheduling decisions that must be atomic.
///
/// Every state change goes through the store, which validates it with
/// [`JobState::transition`] and appends it to the job's history. Implementations:
/// SQLite and PostgreSQL in `ffrtmp-sched`.
///
/// The trait is object safe, so a master can hold an `Arc<dyn JobStore>`:
///
/// ```
/// use std::sync::Arc;
/// use ffrtmp_core::JobStore;
/// fn serve(store: Arc<dyn JobStore>) -> Arc<dyn JobStore> { store }
/// ```
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Validates and queues a job.
    async fn submit(&self, spec: JobSpec) -> Result<Job, StoreError>;

    /// One job with its full history.
    async fn get(&self, id: JobId) -> Result<Job, StoreError>;

    /// A page of jobs.
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError>;

    /// Cancels a job in any non-terminal state. A node holding it is told on its next
    /// heartbeat.
    async fn cancel(&self, id: JobId, reason: &str) -> Result<Job, StoreError>;

    /// Queues a failed or canceled job again; the next claim starts a new attempt.
    async fn retry(&self, id: JobId) -> Result<Job, StoreError>;

    /// Registers a node and returns it with its new identifier.
    async fn register_node(&self, registration: NodeRegistration) -> Result<Node, StoreError>;

    /// Records a heartbeat: marks the node alive, stores progress of its jobs, and answers
    /// which of the listed jobs the node must stop.
    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, StoreError>;

    /// All known nodes.
    async fn list_nodes(&self) -> Result<Vec<Node>, StoreError>;

    /// A page of nodes in id order. The default pages [`JobStore::list_nodes`] in memory;
    /// stores override it with a query that reads only the page.
    async fn list_nodes_page(&self, query: &NodeQuery) -> Result<NodePage, StoreError> {
        Ok(NodePage::from_all(self.list_nodes().await?, query))
    }

    /// Atomically assigns up to `max_jobs` queued jobs to the node (never beyond its
    /// advertised concurrency). Each assigned job's attempt is bumped. Idempotent per
    /// `claim_id`.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, StoreError>;

    /// Applies a node's report about an attempt. Fails with [`StoreError::Fenced`] and
    /// changes nothing unless the node holds that attempt of the job.
    async fn report(&self, report: &JobReport) -> Result<Job, StoreError>;

    /// Failure detection and backoff: nodes silent past the threshold go offline and their
    /// jobs to `retrying` (or `failed` when out of retries); retrying jobs whose backoff
    /// ended go back to `queued`; offline nodes and completed jobs past their retention are
    /// deleted.
    async fn sweep(&self) -> Result<SweepSummary, StoreError>;
}
