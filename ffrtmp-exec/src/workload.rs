//! Running any program as a job workload: in a per-job cgroup with the job's limits, under
//! supervision, and classifying how it ended into an [`ExecOutcome`].

use std::time::Duration;

use ffrtmp_core::{CancelSignal, Enforcement, ErrorKind, ExecOutcome, JobError, ResourceLimits};

use crate::cgroup::Cgroups;
use crate::error::ExecError;
use crate::supervise::{self, ProcessExit, ProcessSpec, StopReason, Termination};

/// Lines of stderr quoted in failure messages.
const QUOTED_LINES: usize = 5;

/// What a workload run produced, beyond the process exit.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadRun {
    /// How the process ended.
    pub exit: ProcessExit,
    /// `enforced: cgroup v1 cpu=50% memory=100MiB`, `not enforced: <reason>` or
    /// `none requested`, for [`JobResult::limits`](ffrtmp_core::JobResult).
    pub limits: String,
    /// OOM kills in the job's cgroup (0 without one).
    pub oom_kills: u64,
    /// CPU time of the job's cgroup, when accounted.
    pub cpu_time: Option<Duration>,
    /// Why the cgroup could not be removed afterwards, if it could not.
    pub cgroup_leftover: Option<String>,
}

/// Runs `spec` as the workload of cgroup `name` (e.g. `<job>-a<attempt>`), applying `limits`:
/// CPU and memory through `cgroups` (run without them, and say so, where that fails; limits
/// whose enforcement is `required` are never dropped: the run then fails
/// [`ExecError::NodeUnavailable`] before the program starts), and `timeout_sec` as the
/// supervisor's timeout (the shorter of it and `spec.timeout`).
/// The cgroup is removed before returning.
///
/// ```no_run
/// # async fn demo() -> Result<(), ffrtmp_exec::ExecError> {
/// use ffrtmp_core::{ExecOutcome, ErrorKind, ResourceLimits};
/// use ffrtmp_exec::{run_workload, Cgroups, ProcessSpec};
/// let spec = ProcessSpec::new("python3", ["-c", "x = bytearray(300 * 1024 * 1024)"]);
/// let limits = ResourceLimits { max_memory_mb: Some(100), ..Default::default() };
/// let (_cancel, signal) = ffrtmp_core::cancel_pair();
/// let run = run_workload(spec, "oom-demo", &limits, &Cgroups::detect(), signal, |_| {}).await?;
/// match run.failure("python3", &[]) {
///     Some(ExecOutcome::Failed { error }) => assert_eq!(error.kind, ErrorKind::ResourceExhausted),
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
pub async fn run_workload<F>(
    mut spec: ProcessSpec,
    name: &str,
    limits: &ResourceLimits,
    cgroups: &Cgroups,
    cancel: CancelSignal,
    mut on_stdout: F,
) -> Result<WorkloadRun, ExecError>
where
    F: FnMut(&str) + Send,
{
    if let Some(t) = limits.timeout_sec.map(Duration::from_secs) {
        spec.timeout = Some(spec.timeout.map_or(t, |s| s.min(t)));
    }
    let requested = limits.max_cpu_percent.is_some() || limits.max_memory_mb.is_some();
    let not_enforced = |reason: &dyn std::fmt::Display| {
        if requested {
            format!("not enforced: {reason}")
        } else {
            "none requested".to_string()
        }
    };
    // Limits the job requires are never dropped: the job fails (transient, so another node
    // runs it) instead of running unlimited.
    let required = limits.enforcement == Enforcement::Required;
    let refuse = |reason: &dyn std::fmt::Display| {
        ExecError::NodeUnavailable(format!(
            "the job's resource limits are required but cannot be enforced on this node: {reason}"
        ))
    };
    let (mut cgroup, mut limits_text) = match cgroups.create(name, limits) {
        Ok(cg) => {
            let text = cg
                .enforced()
                .map_or_else(|| "none requested".to_string(), |e| format!("enforced: {e}"));
            (Some(cg), text)
        }
        Err(e) if required => return Err(refuse(&e)),
        Err(e) => {
            tracing::warn!(cgroup = name, error = %e, "running without a job cgroup");
            (None, not_enforced(&e))
        }
    };
    if let Some(cg) = &cgroup {
        if let Err(e) = spec.join(cg) {
            if required {
                if let Some(cg) = cgroup.take() {
                    cg.abandon();
                }
                return Err(refuse(&e));
            }
            limits_text = not_enforced(&e);
            if let Some(cg) = cgroup.take() {
                cg.abandon();
            }
        }
    }

    let mut result = supervise::run(&spec, cancel.clone(), &mut on_stdout).await;
    if let (Err(e), Some(_)) = (&result, &cgroup) {
        if required && !matches!(e, ExecError::ProgramNotFound { .. }) {
            let e = refuse(&format!("joining the cgroup failed: {e}"));
            if let Some(cg) = cgroup.take() {
                cg.abandon();
            }
            return Err(e);
        }
        if !matches!(e, ExecError::ProgramNotFound { .. }) {
            // The child could not join the cgroup (it fails between fork and exec): run free.
            tracing::warn!(cgroup = name, error = %e, "joining the job cgroup failed; running without it");
            limits_text = not_enforced(&format!("joining the cgroup failed: {e}"));
            spec.cgroup_procs.clear();
            if let Some(cg) = cgroup.take() {
                cg.abandon();
            }
            result = supervise::run(&spec, cancel, &mut on_stdout).await;
        }
    }
    spec.cgroup_procs.clear();

    let (oom_kills, cpu_time, cgroup_leftover) = match cgroup {
        Some(cg) => {
            let oom = cg.oom_kills();
            let cpu = cg.cpu_usage();
            let leftover = cg.remove().await.err().map(|e| e.to_string());
            if let Some(e) = &leftover {
                tracing::warn!(cgroup = name, error = %e, "job cgroup left behind");
            }
            (oom, cpu, leftover)
        }
        None => (0, None, None),
    };
    if let (Ok(exit), Some(cgroup_cpu)) = (&result, cpu_time) {
        // The cgroup also counts processes the leader never waited for (daemonized strays).
        let waited = exit.usage.user + exit.usage.sys;
        if cgroup_cpu > waited + (waited / 5).max(Duration::from_millis(500)) {
            tracing::debug!(
                cgroup = name,
                ?cgroup_cpu,
                ?waited,
                "cgroup CPU exceeds the leader's rusage"
            );
        }
    }
    Ok(WorkloadRun {
        exit: result?,
        limits: limits_text,
        oom_kills,
        cpu_time,
        cgroup_leftover,
    })
}

impl WorkloadRun {
    /// Classifies the end of the run: `None` for success, else the outcome to report.
    ///
    /// Cancel and timeout come first; then an OOM kill in the job's cgroup
    /// (`resource_exhausted`); a full disk (`node_unavailable`); stderr matching one of
    /// `encode_errors` (`encode_error`, terminal); anything else is `internal` (retried).
    /// Failure messages quote the last lines of stderr. `program` names the workload.
    pub fn failure(&self, program: &str, encode_errors: &[&str]) -> Option<ExecOutcome> {
        let exit = &self.exit;
        match exit.stopped {
            StopReason::Canceled => return Some(ExecOutcome::Canceled),
            StopReason::TimedOut => {
                let after = exit.wall.as_secs_f64();
                let how = if exit.escalated {
                    "SIGTERM, then SIGKILL after the grace period"
                } else {
                    "SIGTERM"
                };
                return Some(ExecOutcome::TimedOut {
                    message: format!("{program} stopped by its timeout after {after:.1} s ({how})"),
                });
            }
            StopReason::Finished if exit.success() => return None,
            StopReason::Finished => {}
        }
        let status = match exit.status {
            Termination::Exited(c) => format!("exited with status {c}"),
            Termination::Signaled(s) => format!("was killed by signal {s}"),
        };
        let tail = exit.stderr_last(QUOTED_LINES);
        let quoted = if tail.is_empty() {
            String::new()
        } else {
            format!(": {tail}")
        };
        let has = |needle: &str| exit.stderr_tail.iter().any(|l| l.contains(needle));
        let (kind, message) = if self.oom_kills > 0 {
            (
                ErrorKind::ResourceExhausted,
                format!(
                    "{program} {status}: out of memory under its limit ({} oom kill(s); {})",
                    self.oom_kills, self.limits
                ),
            )
        } else if has("No space left on device") {
            (
                ErrorKind::NodeUnavailable,
                format!("{program} {status}: disk full{quoted}"),
            )
        } else if encode_errors.iter().any(|p| has(p)) {
            (ErrorKind::EncodeError, format!("{program} {status}{quoted}"))
        } else {
            (ErrorKind::Internal, format!("{program} {status}{quoted}"))
        };
        Some(ExecOutcome::Failed {
            error: JobError::new(kind, message),
        })
    }
}

/// An engine's run as the outcome the agent reports: an error becomes a failure of its kind,
/// and one that is not the job's fault (`internal`) is also logged.
pub fn outcome_of(engine: &str, job: &ffrtmp_core::Job, run: Result<ExecOutcome, ExecError>) -> ExecOutcome {
    match run {
        Ok(outcome) => outcome,
        Err(e) => {
            let error = ffrtmp_core::JobError::from(e);
            if error.kind == ffrtmp_core::ErrorKind::Internal {
                tracing::warn!(job = %job.id, error = %error.message, "{engine} job failed");
            }
            ExecOutcome::Failed { error }
        }
    }
}

/// Makes sure the job has somewhere to run and, when it writes a file, to write it: the
/// output directory exists (given to the workload's user when it runs as another, see
/// [`RunAs::own_dir`](crate::RunAs::own_dir)), and for file output its disk has the job's
/// `max_disk_mb` free. Returns the directory, which is also the workload's working
/// directory: a relative name FFmpeg opens lands there, never in the agent's.
pub(crate) fn prepare_output_dir(
    job: &ffrtmp_core::Job,
    dir: &std::path::Path,
    run_as: Option<&crate::run_as::RunAs>,
) -> Result<std::path::PathBuf, ExecError> {
    match run_as.filter(|u| !u.is_root()) {
        Some(user) => user.own_dir(dir)?,
        None => std::fs::create_dir_all(dir).map_err(|e| {
            ExecError::NodeUnavailable(format!("output directory {} is not usable: {e}", dir.display()))
        })?,
    }
    if job.spec.parameters.output_mode.unwrap_or_default() == ffrtmp_core::OutputMode::File {
        crate::disk::DiskUsage::of(dir)?.check(job.spec.resource_limits.max_disk_mb)?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_with(status: Termination, stopped: StopReason, tail: &[&str], oom: u64) -> WorkloadRun {
        WorkloadRun {
            exit: ProcessExit {
                pid: 1,
                status,
                stopped,
                escalated: false,
                wall: Duration::from_millis(1500),
                stderr_tail: tail.iter().map(|s| s.to_string()).collect(),
                group_gone: true,
                usage: Default::default(),
            },
            limits: "enforced: cgroup v1 memory=100MiB".into(),
            oom_kills: oom,
            cpu_time: None,
            cgroup_leftover: None,
        }
    }

    fn kind(o: Option<ExecOutcome>) -> ErrorKind {
        match o {
            Some(ExecOutcome::Failed { error }) => error.kind,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn classification() {
        let pats = ["Unknown encoder", "Invalid data found"];
        let ok = run_with(Termination::Exited(0), StopReason::Finished, &[], 0);
        assert_eq!(ok.failure("ffmpeg", &pats), None);
        let canceled = run_with(Termination::Exited(255), StopReason::Canceled, &[], 0);
        assert_eq!(canceled.failure("ffmpeg", &pats), Some(ExecOutcome::Canceled));
        let timed = run_with(Termination::Signaled(15), StopReason::TimedOut, &[], 0);
        assert!(matches!(
            timed.failure("ffmpeg", &pats),
            Some(ExecOutcome::TimedOut { .. })
        ));

        let oom = run_with(Termination::Signaled(9), StopReason::Finished, &[], 1);
        assert_eq!(kind(oom.failure("python3", &pats)), ErrorKind::ResourceExhausted);
        let enc = run_with(
            Termination::Exited(1),
            StopReason::Finished,
            &["Unknown encoder 'libnope'"],
            0,
        );
        let Some(ExecOutcome::Failed { error }) = enc.failure("ffmpeg", &pats) else {
            panic!()
        };
        assert_eq!(error.kind, ErrorKind::EncodeError);
        assert_eq!(error.message, "ffmpeg exited with status 1: Unknown encoder 'libnope'");
        let disk = run_with(
            Termination::Exited(1),
            StopReason::Finished,
            &["x: No space left on device"],
            0,
        );
        assert_eq!(kind(disk.failure("ffmpeg", &pats)), ErrorKind::NodeUnavailable);
        let other = run_with(Termination::Signaled(11), StopReason::Finished, &["boom"], 0);
        let Some(ExecOutcome::Failed { error }) = other.failure("ffmpeg", &pats) else {
            panic!()
        };
        assert_eq!(error.kind, ErrorKind::Internal);
        assert_eq!(error.message, "ffmpeg was killed by signal 11: boom");
    }
}
