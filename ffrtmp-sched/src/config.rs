//! Scheduling parameters shared by every store.

use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{Backoff, DefaultPlacement, Placement};

/// Source of "now" in milliseconds since the Unix epoch; replaceable in tests.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Timing and durability settings of a store.
#[derive(Clone)]
pub struct SchedConfig {
    /// How often agents heartbeat.
    pub heartbeat_interval: Duration,
    /// A node silent for this many intervals is lost and its jobs are retried.
    pub dead_after_intervals: u32,
    /// Backoff between attempts of a job after a transient failure.
    pub job_backoff: Backoff,
    /// When true, a write is acknowledged only after the WAL holding it was flushed to disk
    /// (durable on power loss); when false, after COMMIT (`synchronous=NORMAL`).
    pub durable: bool,
    /// Largest number of write requests committed in one transaction.
    pub max_batch: usize,
    /// A queued job rises one rank (queue × priority level) per interval waited, so that
    /// nothing starves under a constant stream of higher-priority work.
    pub aging_interval: Duration,
    /// Completed jobs older than this are deleted with their history; `None` keeps all.
    pub retention: Option<Duration>,
    /// Most jobs deleted by one sweep, so retention never holds the writer for long.
    pub prune_batch: u32,
    /// Offline nodes silent for longer than this are deleted (an agent that comes back
    /// registers again); `None` keeps all.
    pub node_retention: Option<Duration>,
    /// Time source.
    pub clock: Clock,
    /// Which of the jobs a claiming node could take it takes now
    /// ([`ffrtmp_core::placement`]); [`DefaultPlacement`] keeps the claim order.
    pub placement: Arc<dyn Placement>,
}

impl SchedConfig {
    /// Time after which a silent node is lost.
    pub fn dead_after(&self) -> Duration {
        self.heartbeat_interval * self.dead_after_intervals
    }

    /// Current time from the configured clock.
    pub fn now(&self) -> u64 {
        (self.clock)()
    }
}

impl Default for SchedConfig {
    fn default() -> Self {
        SchedConfig {
            heartbeat_interval: Duration::from_secs(30),
            dead_after_intervals: 3,
            job_backoff: Backoff::JOB,
            durable: true,
            max_batch: 512,
            aging_interval: Duration::from_secs(300),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_batch: 500,
            node_retention: Some(Duration::from_secs(7 * 24 * 3600)),
            clock: Arc::new(ffrtmp_core::now_ms),
            placement: Arc::new(DefaultPlacement),
        }
    }
}

impl std::fmt::Debug for SchedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedConfig")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("dead_after_intervals", &self.dead_after_intervals)
            .field("job_backoff", &self.job_backoff)
            .field("durable", &self.durable)
            .field("max_batch", &self.max_batch)
            .field("aging_interval", &self.aging_interval)
            .field("retention", &self.retention)
            .field("prune_batch", &self.prune_batch)
            .field("node_retention", &self.node_retention)
            .field("placement", &self.placement.name())
            .finish_non_exhaustive()
    }
}
