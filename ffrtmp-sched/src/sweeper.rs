//! The failure-detection loop of a master.

use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::JobStore;
use tokio::task::JoinHandle;

/// Runs [`JobStore::sweep`] every `every` until the task is aborted. Errors are logged and
/// the loop goes on: a transient database error must not stop failure detection.
pub fn spawn_sweeper(store: Arc<dyn JobStore>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.sweep().await {
                Ok(s) if s != Default::default() => tracing::info!(
                    nodes_lost = s.nodes_lost,
                    jobs_requeued = s.jobs_requeued,
                    jobs_released = s.jobs_released,
                    jobs_failed = s.jobs_failed,
                    jobs_pruned = s.jobs_pruned,
                    nodes_pruned = s.nodes_pruned,
                    "sweep"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed"),
            }
        }
    })
}
