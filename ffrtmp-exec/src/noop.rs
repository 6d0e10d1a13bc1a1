//! An executor that does no encoding: it waits a fixed time and succeeds. For load tests and
//! benchmarks of the scheduling path (`ffrtmp-agent --executor noop`).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use ffrtmp_core::{CancelSignal, ExecOutcome, Executor, Job, JobResult, ProgressSink};

/// Waits `delay`, honouring cancel, then reports one frame.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use ffrtmp_core::{cancel_pair, ExecOutcome, Executor, Job, JobSpec, JobState, JobId, NoProgress};
/// let job = Job { id: JobId::new(), seq: 1, spec: JobSpec::new("720p-h264").try_into().unwrap(), state: JobState::Running, attempt: 1,
///     node_id: None, progress: None, result: None, error: None, retry_at_ms: None, created_at_ms: 0,
///     updated_at_ms: 0, history: vec![], attempts_energy: Default::default() };
/// let (_handle, signal) = cancel_pair();
/// let out = ffrtmp_exec::NoopExecutor::new(Duration::from_millis(1)).execute(&job, &NoProgress, signal).await;
/// assert!(matches!(out, ExecOutcome::Completed { .. }));
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct NoopExecutor {
    delay: Duration,
}

impl NoopExecutor {
    /// An executor whose every job takes `delay`.
    pub fn new(delay: Duration) -> Self {
        NoopExecutor { delay }
    }
}

#[async_trait]
impl Executor for NoopExecutor {
    async fn execute(&self, _job: &Job, _progress: &dyn ProgressSink, mut cancel: CancelSignal) -> ExecOutcome {
        let start = Instant::now();
        tokio::select! {
            _ = cancel.canceled() => ExecOutcome::Canceled,
            _ = tokio::time::sleep(self.delay) => ExecOutcome::Completed {
                result: JobResult {
                    exit_code: Some(0),
                    frames: 1,
                    wall_s: start.elapsed().as_secs_f64(),
                    encoder: "noop".into(),
                    limits: "none requested".into(),
                    ..Default::default()
                },
            },
        }
    }
}
