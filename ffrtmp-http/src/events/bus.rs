//! The broadcast bus behind `GET /events`: fixed capacity, publishers never wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ffrtmp_core::JobId;
use serde::Serialize;
use tokio::sync::broadcast;

/// The kinds of message on the stream (the SSE `event:` name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Job state changes.
    Job,
    /// Progress of running attempts.
    Progress,
    /// Node status and power.
    Node,
}

impl EventType {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Job => "job",
            EventType::Progress => "progress",
            EventType::Node => "node",
        }
    }

    /// Parses an SSE event name.
    pub fn parse(name: &str) -> Option<EventType> {
        match name {
            "job" => Some(EventType::Job),
            "progress" => Some(EventType::Progress),
            "node" => Some(EventType::Node),
            _ => None,
        }
    }
}

/// One published message, serialized once for every subscriber.
#[derive(Clone, Debug)]
pub struct Event {
    /// Its type.
    pub kind: EventType,
    /// The job it concerns (for filters).
    pub job: Option<JobId>,
    /// The name of the node it concerns (for filters).
    pub node: Option<String>,
    /// The whole SSE message: `event: …\ndata: …\n\n`.
    pub frame: Bytes,
}

impl Event {
    /// An event of `kind` with `data` as its JSON.
    pub fn new(kind: EventType, job: Option<JobId>, node: Option<String>, data: &impl Serialize) -> Event {
        let json = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
        let frame = Bytes::from(format!("event: {}\ndata: {json}\n\n", kind.as_str()));
        Event { kind, job, node, frame }
    }
}

/// A bounded broadcast of [`Event`]s. Publishing never blocks: a subscriber that falls
/// more than the capacity behind loses its place and is disconnected.
///
/// ```
/// use ffrtmp_http::events::EventBus;
/// let bus = EventBus::new(4);
/// assert_eq!(bus.capacity(), 4);
/// assert_eq!(bus.subscribers(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    capacity: usize,
    dropped: Arc<AtomicU64>,
}

impl EventBus {
    /// Messages the bus keeps for its slowest subscriber by default.
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A bus keeping at most `capacity` (at least 1) messages.
    pub fn new(capacity: usize) -> EventBus {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        EventBus {
            tx,
            capacity,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes to every subscriber; returns at once.
    pub fn publish(&self, event: Event) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(event));
    }

    /// A new subscription, starting with the next message.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// The most messages held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages held now (never more than [`capacity`](Self::capacity)).
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Streams connected now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Streams disconnected so far for reading too slowly.
    pub fn dropped_clients(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}
