//! `POST /nodes/{id}/progress`: an agent's tick. Progress of the node's current attempts is
//! kept in memory and published; canceled or fenced attempts are named in the answer. The
//! store is read only for an attempt memory does not know (after a master restart) or has
//! not confirmed for [`REVERIFY_AFTER`](super::REVERIFY_AFTER), and never written.

use ffrtmp_core::{AttemptKey, JobStore, NodeId, ProgressReply, ProgressTick, StoreError};
use http::StatusCode;

use super::live::Verdict;
use super::store::EventedStore;
use crate::body::json;
use crate::handlers::{node_id, Answer};
use crate::inputs;

pub(crate) async fn handle(store: &EventedStore, id: &str, body: &[u8]) -> Answer {
    let node = node_id(id)?;
    let tick = inputs::progress_tick_body(body)?;
    json(StatusCode::OK, &apply(store, node, &tick).await)
}

/// Applies a tick; what the node must stop.
pub(crate) async fn apply(store: &EventedStore, node: NodeId, tick: &ProgressTick) -> ProgressReply {
    let events = store.events();
    events.live.prune();
    let watts = tick.power.as_ref().and_then(|p| p.watts);
    let mut cancel_attempts = Vec::new();
    for running in &tick.running {
        let key = AttemptKey::new(running.job_id, running.attempt);
        let verdict = match events.live.verdict(node, key) {
            Verdict::Unknown => look_up(store.inner().as_ref(), store, node, key).await,
            known => known,
        };
        match verdict {
            Verdict::Current => {
                if let Some(progress) = &running.progress {
                    events.live.set_progress(key, progress.clone());
                    events.progress(node, key, progress, watts);
                }
            }
            Verdict::Stop => cancel_attempts.push(key),
            Verdict::Unknown => {}
        }
    }
    store.node_activity(node, tick.running.len() as u32, watts, false).await;
    ProgressReply { cancel_attempts }
}

/// Asks the store about an attempt memory does not know, and remembers the answer.
async fn look_up(inner: &dyn JobStore, store: &EventedStore, node: NodeId, key: AttemptKey) -> Verdict {
    match inner.get(key.job).await {
        Ok(job) => {
            store.events().live.track(&job);
            if job.state.is_active() && job.attempt == key.attempt && job.node_id == Some(node) {
                Verdict::Current
            } else {
                Verdict::Stop
            }
        }
        Err(StoreError::NotFound { .. }) => Verdict::Stop,
        // The store is in trouble: say nothing now; heartbeats reconcile later.
        Err(_) => Verdict::Unknown,
    }
}
