//! The progress tick: while jobs run, every [`AgentConfig::progress_interval`] the agent
//! sends all running attempts' latest progress and the node's power in one request, and
//! stops the attempts the answer names. Cancels thus reach an encode within a tick, not a
//! heartbeat interval.
//!
//! [`AgentConfig::progress_interval`]: super::AgentConfig::progress_interval

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{ProgressTick, RunningJob, TransportError};

use super::{current_node, lock, node_power, Shared};

pub(super) async fn progress_loop(shared: Arc<Shared>) {
    // A zero period would make `interval` panic; a tick every 50 ms is already plenty.
    let mut tick = tokio::time::interval(shared.config.progress_interval.max(Duration::from_millis(50)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tick.tick().await;
        let running: Vec<RunningJob> = lock(&shared.slots)
            .iter()
            .filter(|(_, s)| !s.reporting.load(Ordering::SeqCst))
            .map(|(key, s)| RunningJob {
                job_id: key.job,
                attempt: key.attempt,
                progress: s.progress.get(),
            })
            .collect();
        // An idle node has nothing to say more often than its heartbeats.
        if running.is_empty() {
            continue;
        }
        let Some(node_id) = current_node(&shared) else { continue };
        let power = node_power(shared.energy.as_deref());
        match shared
            .transport
            .progress(node_id, &ProgressTick { running, power })
            .await
        {
            Ok(reply) => {
                warned = false;
                let slots = lock(&shared.slots);
                for key in reply.cancel_attempts {
                    if let Some(slot) = slots.get(&key) {
                        tracing::info!(attempt = %key, "master says stop (progress tick): canceled or fenced");
                        slot.cancel.cancel();
                    }
                }
            }
            Err(TransportError::Rejected { status: 501, .. }) => {
                tracing::info!("the transport carries no progress ticks; heartbeats carry progress");
                return;
            }
            Err(TransportError::Rejected { status: 404, kind, .. }) if kind == "not_found" && !warned => {
                // A master that predates ticks (or a node it forgot: heartbeats handle that).
                tracing::warn!("the master did not take a progress tick (404); heartbeats still carry progress");
                warned = true;
            }
            Err(e) if !warned => {
                tracing::warn!(error = %e, "progress tick failed");
                warned = true;
            }
            Err(e) => tracing::debug!(error = %e, "progress tick failed"),
        }
    }
}
