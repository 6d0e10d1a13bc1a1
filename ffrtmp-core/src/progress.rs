//! The agent's frequent progress tick: every running attempt's latest [`Progress`](crate::Progress) and the
//! node's power, sent about once a second independently of heartbeats, answered with the
//! attempts to stop. Unlike a heartbeat it changes nothing durable at the master.

use serde::{Deserialize, Serialize};

use crate::ids::AttemptKey;
use crate::node::{NodePower, RunningJob};

/// One progress tick of a node (`POST /nodes/{id}/progress`).
///
/// ```
/// use ffrtmp_core::{ProgressTick, RunningJob, JobId};
/// let tick = ProgressTick { running: vec![RunningJob { job_id: JobId::new(), attempt: 1, progress: None }], power: None };
/// let json = serde_json::to_string(&tick).unwrap();
/// assert_eq!(serde_json::from_str::<ProgressTick>(&json).unwrap(), tick);
/// assert!(serde_json::from_str::<ProgressTick>(r#"{"running":[],"colour":1}"#).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressTick {
    /// The attempts the agent runs now, each with its latest progress.
    #[serde(default)]
    pub running: Vec<RunningJob>,
    /// The node's energy meter now (its `watts` is what live views show).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<NodePower>,
}

impl ProgressTick {
    /// Most attempts one tick may list: far above any node's slots, it bounds the master's
    /// work per request.
    pub const MAX_RUNNING: usize = 1024;
}

/// The master's answer to a [`ProgressTick`]: the listed attempts to stop now (canceled, or
/// no longer this node's attempt). Progress of those attempts was ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReply {
    /// Attempts the agent must stop.
    #[serde(default)]
    pub cancel_attempts: Vec<AttemptKey>,
}
