//! Claim order, shared by every store: one definition of how queue and priority rank a job.

use ffrtmp_core::{Priority, Queue};

/// Claim order: queue first (live, default, batch), then priority. Lower runs first.
pub fn rank(queue: Queue, priority: Priority) -> i64 {
    let q = match queue {
        Queue::Live => 0,
        Queue::Default => 1,
        Queue::Batch => 2,
    };
    let p = match priority {
        Priority::High => 0,
        Priority::Medium => 1,
        Priority::Low => 2,
    };
    q * 3 + p
}

/// The queue's name as stored.
pub(crate) fn queue_name(q: Queue) -> &'static str {
    match q {
        Queue::Live => "live",
        Queue::Default => "default",
        Queue::Batch => "batch",
    }
}
