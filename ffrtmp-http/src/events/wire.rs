//! The JSON of each event-stream message (see the `events` module for the stream itself).

use ffrtmp_core::{JobId, JobState, NodeId, NodeStatus};
use serde::{Deserialize, Serialize};

/// `event: job`: a job changed state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobChange {
    /// The job.
    pub job_id: JobId,
    /// Its new state.
    pub state: JobState,
    /// Its attempt (0 before the first claim).
    pub attempt: u32,
    /// The name of the node holding it, if any.
    pub node: Option<String>,
    /// That node's id, if any.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// When the master saw the change (RFC 3339, UTC).
    pub at: String,
}

/// `event: progress`: the latest progress of a running attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressUpdate {
    /// The job.
    pub job_id: JobId,
    /// The attempt the progress belongs to.
    pub attempt: u32,
    /// The name of the node running it.
    pub node: String,
    /// That node's id.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Frames encoded so far.
    pub frame: u64,
    /// Frames per second now.
    pub fps: f64,
    /// Speed relative to real time.
    pub speed: f64,
    /// Percent done, when the total is known.
    pub percent: Option<f64>,
    /// Seconds of output written.
    pub out_time_s: f64,
    /// The node's current power draw, when it measures one.
    pub watts: Option<f64>,
    /// When the master received it (RFC 3339, UTC).
    pub at: String,
    /// A live stream's QoE so far; absent for file encodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<ffrtmp_core::LiveProgress>,
}

/// `event: node`: a node registered, heartbeated, changed status or reported power.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeUpdate {
    /// The node's name.
    pub node: String,
    /// Its id.
    #[serde(default)]
    pub node_id: Option<NodeId>,
    /// Online or offline.
    pub status: NodeStatus,
    /// Jobs it runs now (as of its last heartbeat or progress tick).
    pub running: u32,
    /// How many jobs it runs at once.
    pub slots: u32,
    /// Its current power draw, when it measures one.
    pub watts: Option<f64>,
    /// When the master saw it (RFC 3339, UTC).
    pub at: String,
}

/// One decoded message of the stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// A state change.
    Job(JobChange),
    /// Progress of a running attempt.
    Progress(ProgressUpdate),
    /// A node's status and power.
    Node(NodeUpdate),
}

impl StreamEvent {
    /// Decodes a message from its `event:` name and `data:` JSON; `None` for an event type
    /// this client does not know (a newer master) or data that does not parse.
    ///
    /// ```
    /// use ffrtmp_http::events::StreamEvent;
    /// let data = r#"{"node":"n1","status":"online","running":1,"slots":2,"watts":null,"at":"2026-01-01T00:00:00Z"}"#;
    /// assert!(matches!(StreamEvent::parse("node", data), Some(StreamEvent::Node(n)) if n.slots == 2));
    /// assert_eq!(StreamEvent::parse("weather", "{}"), None);
    /// ```
    pub fn parse(event: &str, data: &str) -> Option<StreamEvent> {
        match event {
            "job" => serde_json::from_str(data).ok().map(StreamEvent::Job),
            "progress" => serde_json::from_str(data).ok().map(StreamEvent::Progress),
            "node" => serde_json::from_str(data).ok().map(StreamEvent::Node),
            _ => None,
        }
    }

    /// The job the message is about, if any.
    pub fn job_id(&self) -> Option<JobId> {
        match self {
            StreamEvent::Job(j) => Some(j.job_id),
            StreamEvent::Progress(p) => Some(p.job_id),
            StreamEvent::Node(_) => None,
        }
    }
}

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds.
///
/// ```
/// assert_eq!(ffrtmp_http::events::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
/// ```
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}
