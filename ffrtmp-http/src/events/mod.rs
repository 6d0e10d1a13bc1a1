//! The master's live view: `GET /events` (server-sent events), the agents' progress ticks
//! (`POST /nodes/{id}/progress`) and the in-memory latest progress that `GET /jobs/{id}`
//! and job lists carry.
//!
//! Every store call of the server goes through an event-publishing wrapper, so state
//! changes are published where they happen; progress never touches the store. Messages
//! (`event:` name, `data:` JSON):
//!
//! - `job`: [`JobChange`] on every state change made through this master;
//! - `progress`: [`ProgressUpdate`] for each running attempt on each tick (about 2/s);
//! - `node`: [`NodeUpdate`] on registration, heartbeat, status change, and when a tick
//!   changes its running count or power.
//!
//! Filters (repeatable, comma lists allowed): `?job=<id>&node=<name>&type=job,progress,node`.
//! A `: keepalive` comment goes every 15 s. Publishing never waits: the bus holds
//! [`EventBus::DEFAULT_CAPACITY`] messages and each stream at most [`CLIENT_BUFFER`] more;
//! a stream that falls behind either is disconnected.

mod bus;
mod live;
pub(crate) mod progress;
pub(crate) mod sse;
mod store;
mod wire;

use std::sync::Arc;

use ffrtmp_core::{AttemptKey, Job, NodeId, Progress};

pub use bus::{Event, EventBus, EventType};
pub(crate) use live::Live;
pub use live::{REVERIFY_AFTER, STALE_AFTER};
pub use sse::{CLIENT_BUFFER, KEEPALIVE};
pub(crate) use store::EventedStore;
pub use wire::{rfc3339, JobChange, NodeUpdate, ProgressUpdate, StreamEvent};

use live::NodeInfo;

/// The bus and the in-memory live state, shared by the store wrapper and the routes.
pub(crate) struct Events {
    pub bus: EventBus,
    pub live: Live,
}

impl Events {
    pub fn new(capacity: usize) -> Arc<Events> {
        Arc::new(Events {
            bus: EventBus::new(capacity),
            live: Live::default(),
        })
    }

    fn node_name(&self, id: Option<NodeId>) -> Option<String> {
        id.map(|id| self.live.node(id).map_or_else(|| id.to_string(), |n| n.name))
    }

    /// Publishes the job's current state.
    pub fn job_changed(&self, job: &Job) {
        // A message nobody receives is dropped by the bus: skip building it (every
        // submit, claim and report passes here).
        if self.bus.subscribers() == 0 {
            return;
        }
        let node = self.node_name(job.node_id);
        let data = JobChange {
            job_id: job.id,
            state: job.state,
            attempt: job.attempt,
            node: node.clone(),
            node_id: job.node_id,
            at: rfc3339(ffrtmp_core::now_ms()),
        };
        self.bus.publish(Event::new(EventType::Job, Some(job.id), node, &data));
    }

    /// Publishes a running attempt's progress with its node's power.
    pub fn progress(&self, node: NodeId, key: AttemptKey, progress: &Progress, watts: Option<f64>) {
        let name = self.node_name(Some(node)).unwrap_or_default();
        let data = ProgressUpdate {
            job_id: key.job,
            attempt: key.attempt,
            node: name.clone(),
            node_id: Some(node),
            frame: progress.frame,
            fps: progress.fps,
            speed: progress.speed,
            percent: (progress.percent > 0.0).then_some(progress.percent),
            out_time_s: progress.out_time_s,
            watts,
            at: rfc3339(ffrtmp_core::now_ms()),
            live: progress.live.clone(),
        };
        self.bus
            .publish(Event::new(EventType::Progress, Some(key.job), Some(name), &data));
    }

    /// Publishes a node's status and power.
    fn node_changed(&self, id: NodeId, info: &NodeInfo) {
        let data = NodeUpdate {
            node: info.name.clone(),
            node_id: Some(id),
            status: info.status,
            running: info.running,
            slots: info.slots,
            watts: info.watts,
            at: rfc3339(ffrtmp_core::now_ms()),
        };
        self.bus
            .publish(Event::new(EventType::Node, None, Some(info.name.clone()), &data));
    }
}
