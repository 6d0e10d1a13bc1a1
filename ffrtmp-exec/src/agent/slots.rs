//! The agent's running work, one slot per attempt ([`AttemptKey`]): a stale attempt (the
//! master handed the job to this node again) keeps its own slot until its process is gone,
//! so it still counts against the node's concurrency and its clean-up never touches the newer
//! attempt's slot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ffrtmp_core::{cancel_pair, AttemptKey, CancelHandle, CancelSignal, HeartbeatReply, Progress, ProgressSink};

use super::{lock, Shared};

/// One attempt the agent runs.
pub(super) struct Slot {
    pub(super) cancel: CancelHandle,
    pub(super) progress: Arc<LatestProgress>,
    /// The workload has ended and its outcome is being reported: a drain must not
    /// interrupt it (that would fence the real result).
    pub(super) reporting: Arc<AtomicBool>,
    /// Trips once the attempt's process is gone; a newer attempt of the job waits for it.
    pub(super) ended: CancelSignal,
}

/// Keeps the last progress of a job for the next heartbeat.
#[derive(Default)]
pub(super) struct LatestProgress(Mutex<Option<Progress>>);

impl ProgressSink for LatestProgress {
    fn update(&self, progress: Progress) {
        if let Ok(mut p) = self.0.lock() {
            *p = Some(progress);
        }
    }
}

impl LatestProgress {
    pub(super) fn get(&self) -> Option<Progress> {
        self.0.lock().ok().and_then(|p| p.clone())
    }
}

pub(super) type Slots = Mutex<HashMap<AttemptKey, Slot>>;

/// What a new attempt's task needs from its slot.
pub(super) struct Claimed {
    pub(super) guard: SlotGuard,
    pub(super) signal: CancelSignal,
    pub(super) progress: Arc<LatestProgress>,
    /// Set as soon as the workload returns (see [`Slot::reporting`]).
    pub(super) reporting: Arc<AtomicBool>,
    /// The ended signals of older attempts of the same job, stopped on the way in.
    pub(super) older: Vec<CancelSignal>,
}

/// Takes a slot for `key`, stopping older attempts of the same job (a newer attempt means
/// the master has fenced them). `None` when `key` already has a slot (an assignment seen
/// twice): it runs once.
pub(super) fn claim_slot(shared: &Arc<Shared>, key: AttemptKey) -> Option<Claimed> {
    let (cancel, signal) = cancel_pair();
    let (ended_handle, ended) = cancel_pair();
    let progress = Arc::new(LatestProgress::default());
    let reporting = Arc::new(AtomicBool::new(false));
    let mut slots = lock(&shared.slots);
    if slots.contains_key(&key) {
        return None;
    }
    let older = slots
        .iter()
        .filter(|(k, _)| k.job == key.job && k.attempt < key.attempt)
        .map(|(k, s)| {
            tracing::info!(attempt = %k, newer = key.attempt, "stopping a stale attempt of a reassigned job");
            s.cancel.cancel();
            s.ended.clone()
        })
        .collect();
    slots.insert(
        key,
        Slot {
            cancel,
            progress: progress.clone(),
            reporting: reporting.clone(),
            ended,
        },
    );
    drop(slots);
    shared.stats.running.fetch_add(1, Ordering::Relaxed);
    let guard = SlotGuard {
        shared: shared.clone(),
        key,
        reporting: reporting.clone(),
        ended: ended_handle,
    };
    Some(Claimed {
        guard,
        signal,
        progress,
        reporting,
        older,
    })
}

/// Frees exactly its own attempt's slot when dropped, also when the task holding it panics.
pub(super) struct SlotGuard {
    shared: Arc<Shared>,
    pub(super) key: AttemptKey,
    reporting: Arc<AtomicBool>,
    ended: CancelHandle,
}

impl SlotGuard {
    /// The agent's state this slot lives in.
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The workload's process is gone: a drain must let the report through, and a newer
    /// attempt of the job may start.
    pub(super) fn workload_ended(&self) {
        self.reporting.store(true, Ordering::SeqCst);
        self.ended.cancel();
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.ended.cancel();
        lock(&self.shared.slots).remove(&self.key);
        self.shared.stats.running.fetch_sub(1, Ordering::Relaxed);
        self.shared.slot_freed.notify_one();
    }
}

/// The attempts a heartbeat reply stops, out of those the heartbeat listed (`sent`). A
/// master that predates attempt keys names jobs only; then the listed attempts of those
/// jobs stop, and never one started after the heartbeat was sent.
pub(super) fn attempts_to_stop(reply: &HeartbeatReply, sent: &[AttemptKey]) -> Vec<AttemptKey> {
    let mut stop = reply.cancel_attempts.clone();
    for id in &reply.cancel {
        if !reply.cancel_attempts.iter().any(|k| k.job == *id) {
            stop.extend(sent.iter().filter(|k| k.job == *id));
        }
    }
    stop
}
