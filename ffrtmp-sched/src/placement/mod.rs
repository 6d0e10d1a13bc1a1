//! Placement policies ([`ffrtmp_core::placement`]) and what they read.
//!
//! - [`EnergyAware`]: nodes take the work they run efficiently and leave work to a clearly
//!   more efficient idle node for a bounded wait, from the efficiency table.
//! - [`SharedEfficiency`]: that table in memory, kept fresh from the job history by
//!   [`spawn_efficiency_refresher`].
//! - [`PlacementKind`]: the policies a master can be started with by name.
//!
//! A master composes them:
//!
//! ```no_run
//! # async fn run(store: std::sync::Arc<dyn ffrtmp_core::JobStore>) {
//! use std::time::Duration;
//! use ffrtmp_sched::placement::{spawn_efficiency_refresher, EnergyAware, EnergyAwareConfig, SharedEfficiency};
//! let table = SharedEfficiency::new();
//! let policy = EnergyAware::new(EnergyAwareConfig::default(), table.clone());
//! let config = ffrtmp_sched::SchedConfig { placement: std::sync::Arc::new(policy), ..Default::default() };
//! // ... open the store with `config`, then:
//! spawn_efficiency_refresher(store, table, Duration::from_secs(5), Duration::from_secs(24 * 3600));
//! # }
//! ```

mod energy_aware;
mod table;

use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{DefaultPlacement, JobStore, Placement};

pub use energy_aware::{EnergyAware, EnergyAwareConfig};
pub use table::{Efficiency, Figure, SharedEfficiency};

/// A placement policy a master can be started with (`--placement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementKind {
    /// The claim order ([`DefaultPlacement`]).
    Default,
    /// [`EnergyAware`].
    EnergyAware,
}

/// A `--placement` value that names no policy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown placement policy {0:?} (expected default or energy-aware)")]
pub struct UnknownPlacement(pub String);

impl std::str::FromStr for PlacementKind {
    type Err = UnknownPlacement;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" => Ok(PlacementKind::Default),
            "energy-aware" => Ok(PlacementKind::EnergyAware),
            other => Err(UnknownPlacement(other.to_string())),
        }
    }
}

impl PlacementKind {
    /// The policy's name, as `--placement` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementKind::Default => "default",
            PlacementKind::EnergyAware => "energy-aware",
        }
    }

    /// The policy, and the efficiency table it reads when it reads one (to be refreshed
    /// with [`spawn_efficiency_refresher`] once the store is open).
    pub fn build(self, config: EnergyAwareConfig) -> (Arc<dyn Placement>, Option<SharedEfficiency>) {
        match self {
            PlacementKind::Default => (Arc::new(DefaultPlacement), None),
            PlacementKind::EnergyAware => {
                let table = SharedEfficiency::new();
                (Arc::new(EnergyAware::new(config, table.clone())), Some(table))
            }
        }
    }
}

/// Rebuilds `table` from `store`'s job history every `every` (first at once), over the jobs
/// completed within `window` ([`ffrtmp_core::efficiency::collect`]: it reads the completed
/// jobs of the window page by page, so its cost grows with the history the window holds).
/// A failed read keeps the previous table and is logged. Runs until the task is aborted.
pub fn spawn_efficiency_refresher(
    store: Arc<dyn JobStore>,
    table: SharedEfficiency,
    every: Duration,
    window: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match ffrtmp_core::efficiency::collect(store.as_ref(), window, ffrtmp_core::now_ms()).await {
                Ok(t) => table.replace(&t),
                Err(e) => tracing::warn!(error = %e, "refreshing the efficiency table for placement"),
            }
        }
    })
}

#[cfg(test)]
mod tests;
