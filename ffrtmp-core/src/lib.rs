//! Core of ffrtmp: domain types, the job state machine, and the four seams of the system.
//!
//! - [`JobStore`]: durable jobs, nodes, claims and history (SQLite and PostgreSQL in
//!   `ffrtmp-sched`).
//! - [`Executor`]: run one job to an outcome (FFmpeg in `ffrtmp-exec`).
//! - [`PowerSource`]: cumulative energy counters (RAPL in `ffrtmp-power`).
//! - [`Transport`]: what an agent says to a master (HTTPS in `ffrtmp-http`).
//!
//! Each is a small object-safe trait, so a researcher can implement one and swap it into
//! the reference master or agent. This crate has no runtime, no SQL and no HTTP.
//!
//! ```
//! use ffrtmp_core::{JobSpec, JobState};
//! let spec: JobSpec = serde_json::from_str(r#"{"scenario":"720p-h264","parameters":{"duration":2}}"#).unwrap();
//! assert_eq!(spec.validate().unwrap().width, 1280);
//! assert!(JobState::Queued.can_become(JobState::Assigned));
//! ```
#![warn(missing_docs)]

pub mod attempts;
pub mod bounds;
pub mod cgroup;
pub mod efficiency;
pub mod executor;
pub mod ids;
pub mod job;
pub mod live;
pub mod live_progress;
pub mod matching;
pub mod node;
pub mod placement;
pub mod power;
pub mod progress;
pub mod quality;
pub mod retry;
pub mod scenario;
pub mod sla;
pub mod spec;
pub mod state;
pub mod store;
pub mod transport;
pub mod valid_spec;

pub use attempts::{AttemptEnergy, AttemptsEnergy};
pub use bounds::FieldError;
pub use cgroup::{CgroupObserver, CgroupPaths};
pub use executor::{cancel_pair, CancelHandle, CancelSignal, ExecOutcome, Executor, NoProgress, ProgressSink};
pub use ids::{AttemptKey, JobId, NodeId, ParseAttemptKeyError};
pub use job::{EnergyReport, ErrorKind, HistoryEntry, Job, JobError, JobResult, Progress};
pub use live::LiveQoe;
pub use live_progress::LiveProgress;
pub use matching::{Mismatch, Requirements};
pub use node::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, JobEvent, JobReport, Node, NodePower, NodeRegistration,
    NodeStatus, RunningJob,
};
pub use placement::{DefaultPlacement, Placement, PlacementCandidate, PlacementNeeds, PlacementNode, PlacementPeer};
pub use power::{EnergySample, JobEnergyMeter, PowerError, PowerSource, ZoneEnergy};
pub use progress::{ProgressReply, ProgressTick};
pub use retry::Backoff;
pub use scenario::{Codec, Scenario, ScenarioError};
pub use spec::{
    Classification, Enforcement, EngineChoice, JobSpec, OutputMode, Parameters, Priority, Queue, ResourceLimits,
    SpecError,
};
pub use state::{InvalidTransition, JobState};
pub use store::{JobPage, JobQuery, JobStore, NodePage, NodeQuery, StoreError, SweepSummary};
pub use transport::{Transport, TransportError};
pub use valid_spec::ValidSpec;

/// Milliseconds since the Unix epoch, the time unit of every stored timestamp.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
