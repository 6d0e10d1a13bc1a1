//! What the master knows in memory only: the latest progress of each active attempt and
//! each node's name, slots, running count and power. Bounded: an attempt's entry goes when
//! its job leaves the node (or is not heard of for [`STALE_AFTER`]); nodes are as many as
//! registered.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ffrtmp_core::{AttemptKey, Job, JobId, Node, NodeId, NodeStatus, Progress};

/// An attempt not mentioned by a tick, claim or report for this long is forgotten (a sweep or
/// another master moved its job); the next tick that lists it looks the job up again.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// A current attempt is checked against the store again after this long, so a cancel made
/// through another master sharing the store (or its sweep) reaches the node within about
/// this time instead of a heartbeat interval. Costs one store read per running attempt per
/// period.
pub const REVERIFY_AFTER: Duration = Duration::from_secs(5);

/// One active attempt.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    pub attempt: u32,
    pub node: NodeId,
    pub progress: Option<Progress>,
    /// Canceled through this master: the next tick that lists it is told to stop.
    pub canceled: bool,
    touched: Instant,
    /// When the store last confirmed it.
    verified: Instant,
}

/// A node as live views show it.
#[derive(Clone, Debug)]
pub(crate) struct NodeInfo {
    pub name: String,
    pub slots: u32,
    pub status: NodeStatus,
    pub running: u32,
    pub watts: Option<f64>,
}

/// What a tick's listed attempt is, as far as memory knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// This node's current attempt: its progress counts.
    Current,
    /// Canceled, or no longer this node's attempt: stop it.
    Stop,
    /// Not known here: look the job up.
    Unknown,
}

#[derive(Default)]
pub(crate) struct Live {
    attempts: Mutex<HashMap<JobId, Attempt>>,
    nodes: Mutex<HashMap<NodeId, NodeInfo>>,
    last_prune: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Live {
    /// Records the job as the store now has it: active attempts are kept (their progress
    /// too while the attempt is the same), anything else forgotten.
    pub fn track(&self, job: &Job) {
        let mut attempts = lock(&self.attempts);
        match (job.state.is_active(), job.node_id) {
            (true, Some(node)) => {
                let entry = attempts.entry(job.id).or_insert_with(|| Attempt {
                    attempt: job.attempt,
                    node,
                    progress: None,
                    canceled: false,
                    touched: Instant::now(),
                    verified: Instant::now(),
                });
                if entry.attempt != job.attempt || entry.node != node {
                    *entry = Attempt {
                        attempt: job.attempt,
                        node,
                        progress: None,
                        canceled: false,
                        touched: Instant::now(),
                        verified: Instant::now(),
                    };
                }
                entry.touched = Instant::now();
                entry.verified = Instant::now();
            }
            _ => {
                attempts.remove(&job.id);
            }
        }
    }

    /// The job was canceled: a tick still listing its attempt is told to stop.
    pub fn cancel(&self, job: JobId) {
        if let Some(a) = lock(&self.attempts).get_mut(&job) {
            a.canceled = true;
            a.touched = Instant::now();
        }
    }

    /// What `key`, listed by `node`, is.
    pub fn verdict(&self, node: NodeId, key: AttemptKey) -> Verdict {
        match lock(&self.attempts).get_mut(&key.job) {
            None => Verdict::Unknown,
            Some(a) if a.attempt < key.attempt => Verdict::Unknown,
            Some(a) if a.attempt > key.attempt || a.node != node || a.canceled => Verdict::Stop,
            Some(a) if a.verified.elapsed() >= REVERIFY_AFTER => Verdict::Unknown,
            Some(a) => {
                a.touched = Instant::now();
                Verdict::Current
            }
        }
    }

    /// Stores the progress of a current attempt.
    pub fn set_progress(&self, key: AttemptKey, progress: Progress) {
        if let Some(a) = lock(&self.attempts).get_mut(&key.job) {
            if a.attempt == key.attempt {
                a.progress = Some(progress);
            }
        }
    }

    /// The latest progress of the job's active attempt.
    pub fn progress(&self, job: JobId) -> Option<Progress> {
        lock(&self.attempts).get(&job).and_then(|a| a.progress.clone())
    }

    /// The jobs whose active attempt is on a node offline here.
    pub fn jobs_on_offline_nodes(&self) -> Vec<JobId> {
        let nodes = lock(&self.nodes);
        lock(&self.attempts)
            .iter()
            .filter(|(_, a)| nodes.get(&a.node).is_some_and(|n| n.status == NodeStatus::Offline))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets attempts not heard of for [`STALE_AFTER`], at most once a second.
    pub fn prune(&self) {
        let now = Instant::now();
        {
            let mut last = lock(&self.last_prune);
            if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
                return;
            }
            *last = Some(now);
        }
        lock(&self.attempts).retain(|_, a| now.duration_since(a.touched) < STALE_AFTER);
    }

    /// Records a node as the store returned it.
    pub fn node_seen(&self, node: &Node) -> NodeInfo {
        let mut nodes = lock(&self.nodes);
        let entry = nodes.entry(node.id).or_insert_with(|| NodeInfo {
            name: node.registration.name.clone(),
            slots: node.registration.max_concurrent_jobs,
            status: node.status,
            running: node.active_jobs,
            watts: None,
        });
        entry.name = node.registration.name.clone();
        entry.slots = node.registration.max_concurrent_jobs;
        entry.status = node.status;
        if let Some(w) = node.power.as_ref().and_then(|p| p.watts) {
            entry.watts = Some(w);
        }
        entry.clone()
    }

    /// Updates a known node from a heartbeat or tick; `None` when the node is not known here.
    /// Returns the info and whether anything live views show changed.
    pub fn node_update(
        &self,
        id: NodeId,
        running: u32,
        watts: Option<f64>,
        status: NodeStatus,
    ) -> Option<(NodeInfo, bool)> {
        let mut nodes = lock(&self.nodes);
        let info = nodes.get_mut(&id)?;
        let changed = info.running != running || info.watts != watts || info.status != status;
        info.running = running;
        info.watts = watts;
        info.status = status;
        Some((info.clone(), changed))
    }

    /// The node's name and power, when known here.
    pub fn node(&self, id: NodeId) -> Option<NodeInfo> {
        lock(&self.nodes).get(&id).cloned()
    }

    /// Every known node id with its info.
    pub fn nodes(&self) -> Vec<(NodeId, NodeInfo)> {
        lock(&self.nodes).iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Forgets a node the store no longer has.
    pub fn forget_node(&self, id: NodeId) {
        lock(&self.nodes).remove(&id);
    }
}
