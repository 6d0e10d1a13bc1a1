//! The [`Executor`] trait: run one job to an outcome.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::job::{Job, JobError, JobResult, Progress};

/// Where an executor sends live progress. Cheap and non-blocking.
pub trait ProgressSink: Send + Sync {
    /// Records the latest progress.
    fn update(&self, progress: Progress);
}

/// A sink that drops progress, for callers that don't need it.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn update(&self, _progress: Progress) {}
}

/// Cancellation signal handed to an executor; [`CancelHandle::cancel`] trips it.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let (handle, mut signal) = ffrtmp_core::cancel_pair();
/// assert!(!signal.is_canceled());
/// handle.cancel();
/// signal.canceled().await; // returns at once
/// assert!(signal.is_canceled());
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct CancelSignal(watch::Receiver<bool>);

/// The sending side of a [`CancelSignal`].
#[derive(Clone, Debug)]
pub struct CancelHandle(std::sync::Arc<watch::Sender<bool>>);

/// A connected handle and signal.
pub fn cancel_pair() -> (CancelHandle, CancelSignal) {
    let (tx, rx) = watch::channel(false);
    (CancelHandle(std::sync::Arc::new(tx)), CancelSignal(rx))
}

impl CancelHandle {
    /// Trips the signal; idempotent.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

impl CancelSignal {
    /// Whether cancellation was requested.
    pub fn is_canceled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once cancellation is requested (never, if the handle is dropped untripped).
    pub async fn canceled(&mut self) {
        if self.0.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// How an execution ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
// Outcomes are moved once from executor to reporter; boxing the result would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ExecOutcome {
    /// Success.
    Completed {
        /// What it produced.
        result: JobResult,
    },
    /// Failure; `error.kind` says whether a retry may help.
    Failed {
        /// The failure.
        error: JobError,
    },
    /// Stopped because the job's own timeout passed.
    TimedOut {
        /// Details.
        message: String,
    },
    /// Stopped by the cancel signal.
    Canceled,
}

/// Runs one job on this node.
///
/// Implementations must stop the workload (and everything it started) promptly when the
/// cancel signal trips, and must not panic on any job. Default implementation: the FFmpeg
/// engine in `ffrtmp-exec`.
///
/// ```
/// use async_trait::async_trait;
/// use ffrtmp_core::{CancelSignal, ExecOutcome, Executor, Job, JobResult, ProgressSink};
///
/// /// Pretends every job encodes 10 frames instantly.
/// struct Instant;
///
/// #[async_trait]
/// impl Executor for Instant {
///     async fn execute(&self, _job: &Job, _p: &dyn ProgressSink, _c: CancelSignal) -> ExecOutcome {
///         ExecOutcome::Completed { result: JobResult { frames: 10, ..Default::default() } }
///     }
/// }
/// ```
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs `job` to an outcome.
    async fn execute(&self, job: &Job, progress: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome;
}
