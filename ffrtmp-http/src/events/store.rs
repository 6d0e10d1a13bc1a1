//! [`EventedStore`]: the server's store, publishing every change it makes to the bus and
//! tracking active attempts in memory. Scheduling itself is untouched: each call is the
//! inner store's, and publishing never waits.

use std::sync::Arc;

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobEvent, JobId, JobPage, JobQuery, JobReport, JobSpec,
    JobStore, Node, NodeId, NodePage, NodeQuery, NodeRegistration, NodeStatus, StoreError, SweepSummary,
};

use super::Events;

pub(crate) struct EventedStore {
    inner: Arc<dyn JobStore>,
    events: Arc<Events>,
}

impl EventedStore {
    pub fn new(inner: Arc<dyn JobStore>, events: Arc<Events>) -> Self {
        EventedStore { inner, events }
    }

    /// The job with the latest in-memory progress of its active attempt.
    fn with_live_progress(&self, mut job: Job) -> Job {
        if job.state.is_active() {
            if let Some(p) = self.events.live.progress(job.id) {
                job.progress = Some(p);
            }
        }
        job
    }

    /// Learns the nodes from the store (a node this master has not seen since it started),
    /// publishing those whose status changed.
    async fn refresh_nodes(&self) {
        let Ok(nodes) = self.inner.list_nodes().await else {
            return;
        };
        let known: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
        for node in &nodes {
            let before = self.events.live.node(node.id).map(|n| n.status);
            let info = self.events.live.node_seen(node);
            if before != Some(node.status) {
                self.events.node_changed(node.id, &info);
            }
        }
        for (id, _) in self.events.live.nodes() {
            if !known.contains(&id) {
                self.events.live.forget_node(id);
            }
        }
    }

    /// Records what a tick or heartbeat says about a node and publishes it when `always` or
    /// when it changed.
    pub(crate) async fn node_activity(&self, id: NodeId, running: u32, watts: Option<f64>, always: bool) {
        if self.events.live.node(id).is_none() {
            self.refresh_nodes().await;
        }
        if let Some((info, changed)) = self.events.live.node_update(id, running, watts, NodeStatus::Online) {
            if always || changed {
                self.events.node_changed(id, &info);
            }
        }
    }

    /// The bus and live state.
    pub(crate) fn events(&self) -> &Events {
        &self.events
    }

    /// The inner store (for lookups that must not publish).
    pub(crate) fn inner(&self) -> &Arc<dyn JobStore> {
        &self.inner
    }
}

#[async_trait]
impl JobStore for EventedStore {
    async fn submit(&self, spec: JobSpec) -> Result<Job, StoreError> {
        let job = self.inner.submit(spec).await?;
        self.events.job_changed(&job);
        Ok(job)
    }

    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        Ok(self.with_live_progress(self.inner.get(id).await?))
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let mut page = self.inner.list(query).await?;
        page.jobs = page.jobs.into_iter().map(|j| self.with_live_progress(j)).collect();
        Ok(page)
    }

    async fn cancel(&self, id: JobId, reason: &str) -> Result<Job, StoreError> {
        let job = self.inner.cancel(id, reason).await?;
        // Kept in memory, marked: the node's next tick is told to stop it.
        self.events.live.cancel(id);
        self.events.job_changed(&job);
        Ok(job)
    }

    async fn retry(&self, id: JobId) -> Result<Job, StoreError> {
        let job = self.inner.retry(id).await?;
        self.events.live.track(&job);
        self.events.job_changed(&job);
        Ok(job)
    }

    async fn register_node(&self, registration: NodeRegistration) -> Result<Node, StoreError> {
        let node = self.inner.register_node(registration).await?;
        let info = self.events.live.node_seen(&node);
        self.events.node_changed(node.id, &info);
        Ok(node)
    }

    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let reply = self.inner.heartbeat(node_id, heartbeat).await?;
        let watts = heartbeat.power.as_ref().and_then(|p| p.watts);
        self.node_activity(node_id, heartbeat.running.len() as u32, watts, true)
            .await;
        Ok(reply)
    }

    async fn list_nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.inner.list_nodes().await
    }

    async fn list_nodes_page(&self, query: &NodeQuery) -> Result<NodePage, StoreError> {
        self.inner.list_nodes_page(query).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, StoreError> {
        let assignments = self.inner.claim(request).await?;
        if !assignments.is_empty() && self.events.live.node(request.node_id).is_none() {
            // A node this master has not heard of since it started: learn its name first.
            self.refresh_nodes().await;
        }
        for a in &assignments {
            self.events.live.track(&a.job);
            self.events.job_changed(&a.job);
        }
        Ok(assignments)
    }

    async fn report(&self, report: &JobReport) -> Result<Job, StoreError> {
        let job = self.inner.report(report).await?;
        self.events.live.track(&job);
        // Energy and progress reports change no state: nothing to announce.
        if !matches!(report.event, JobEvent::Energy { .. } | JobEvent::Progress { .. }) {
            self.events.job_changed(&job);
        }
        Ok(self.with_live_progress(job))
    }

    async fn sweep(&self) -> Result<SweepSummary, StoreError> {
        let summary = self.inner.sweep().await?;
        if summary.nodes_lost > 0 || summary.nodes_pruned > 0 {
            self.refresh_nodes().await;
            // The lost nodes' jobs moved on (retrying, failed): announce where they are now.
            for id in self.events.live.jobs_on_offline_nodes() {
                if let Ok(job) = self.inner.get(id).await {
                    self.events.live.track(&job);
                    self.events.job_changed(&job);
                }
            }
        }
        Ok(summary)
    }
}
