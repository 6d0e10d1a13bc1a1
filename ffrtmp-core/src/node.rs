//! Worker nodes, their heartbeats and claims.

use serde::{Deserialize, Serialize};

use crate::ids::{JobId, NodeId};
use crate::job::{Job, JobError, JobResult, Progress};

/// What an agent tells the master when it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// Host name or operator-chosen name.
    pub name: String,
    /// Logical CPU cores.
    pub cpu_cores: u32,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// How many jobs the node runs at once; the master never assigns more.
    pub max_concurrent_jobs: u32,
    /// Encoders validated on the node (e.g. `libx264`, `h264_nvenc`).
    #[serde(default)]
    pub encoders: Vec<String>,
    /// Engines installed (`ffmpeg`, `gstreamer`).
    #[serde(default)]
    pub engines: Vec<String>,
    /// Agent version.
    #[serde(default)]
    pub version: String,
}

/// Liveness of a node as judged by the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Heartbeating.
    Online,
    /// Silent for longer than the dead-node threshold; its jobs were requeued.
    Offline,
}

/// A registered node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Identifier given at registration.
    pub id: NodeId,
    /// What the node said about itself.
    pub registration: NodeRegistration,
    /// Liveness.
    pub status: NodeStatus,
    /// Jobs the master believes the node holds.
    pub active_jobs: u32,
    /// Registration time (ms since epoch).
    pub registered_at_ms: u64,
    /// Last heartbeat, claim or report (ms since epoch).
    pub last_seen_ms: u64,
}

/// A job the agent is running, as listed in a heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    /// The job.
    pub job_id: JobId,
    /// The attempt the agent runs.
    pub attempt: u32,
    /// Its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// Periodic liveness report from an agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Everything the agent is running right now.
    #[serde(default)]
    pub running: Vec<RunningJob>,
}

/// The master's answer to a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Jobs the agent must stop: canceled, or fenced (no longer this node's attempt).
    pub cancel: Vec<JobId>,
}

/// A request for work. Repeating a request with the same `claim_id` returns the same
/// assignments, so a lost response never orphans a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The claiming node.
    pub node_id: NodeId,
    /// Chosen by the client, unique per claim.
    pub claim_id: String,
    /// At most this many jobs (the agent's free slots).
    pub max_jobs: u32,
    /// How long the master may hold the request open waiting for work, in milliseconds.
    #[serde(default)]
    pub wait_ms: u64,
}

/// A job handed to a node. `job.attempt` is the fencing token for every later report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The job, in state `assigned`.
    pub job: Job,
}

/// What happened to an assigned job, as told by its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// Events are built, sent once and dropped; boxing the completed result would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum JobEvent {
    /// The workload started.
    Started,
    /// Progress update.
    Progress {
        /// The progress.
        progress: Progress,
    },
    /// Finished successfully.
    Completed {
        /// The outcome.
        result: JobResult,
    },
    /// Finished unsuccessfully; the error kind decides about retries.
    Failed {
        /// The failure.
        error: JobError,
    },
    /// Ran past its own `timeout_sec` and was stopped.
    TimedOut {
        /// Details.
        message: String,
    },
}

/// A report about one attempt of one job. Refused unless `(job_id, attempt, node_id)` is
/// the job's current holder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job.
    pub job_id: JobId,
    /// The reporting node.
    pub node_id: NodeId,
    /// The attempt the node was given.
    pub attempt: u32,
    /// What happened.
    #[serde(flatten)]
    pub event: JobEvent,
}
