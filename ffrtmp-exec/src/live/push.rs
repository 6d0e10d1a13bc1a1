//! An FFmpeg live push with reconnects: when the destination goes away mid-stream, the push
//! is restarted with capped backoff (for the rest of the stream) until the reconnect window
//! passes, then the job fails `destination_lost`. QoE is kept across the runs.

use std::path::PathBuf;
use std::time::Instant;

use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{CancelSignal, ExecOutcome, Job, JobResult, ProgressSink, ValidSpec};

use super::{is_connection_loss, AfterLoss, QoeTracker, Reconnects};
use crate::command::FfmpegCommand;
use crate::error::ExecError;
use crate::ffmpeg::{FfmpegExecutor, FFMPEG_ENCODE_ERRORS};
use crate::progress::ProgressParser;
use crate::supervise::{ProcessSpec, ResourceUsage, StopReason};
use crate::workload::run_workload;

/// `job` with `duration` seconds (the rest of its stream after a reconnect).
pub(crate) fn with_duration(job: &Job, duration: Option<f64>) -> Result<Job, ExecError> {
    let Some(d) = duration else {
        return Ok(job.clone());
    };
    let mut spec = job.spec.clone().into_spec();
    spec.parameters.duration = Some(d);
    let spec = ValidSpec::stored(spec).map_err(|e| ExecError::InvalidParameter(e.to_string()))?;
    Ok(Job { spec, ..job.clone() })
}

/// The supervised process of one run of `cmd`, `timeout` left for it.
fn process_spec(
    exec: &FfmpegExecutor,
    cmd: &FfmpegCommand,
    workdir: &std::path::Path,
    timeout: Option<std::time::Duration>,
) -> ProcessSpec {
    let mut spec = ProcessSpec::new(&cmd.program, cmd.args.iter().cloned());
    spec.grace = exec.config().grace;
    spec.nice = exec.nice();
    spec.run_as = exec.run_as().cloned();
    spec.current_dir = Some(workdir.to_path_buf());
    spec.timeout = timeout;
    spec
}

/// Runs a live (`output_mode: rtmp`) job on FFmpeg with reconnects; see the module docs.
pub(crate) async fn run_ffmpeg_live(
    exec: &FfmpegExecutor,
    job: &Job,
    progress: &dyn ProgressSink,
    mut cancel: CancelSignal,
    workdir: PathBuf,
) -> Result<ExecOutcome, ExecError> {
    let config = exec.config();
    let settings = config.live;
    let p = &job.spec.parameters;
    let mut qoe = QoeTracker::new(p.bitrate.as_deref().and_then(parse_bitrate), settings.behind_limit);
    let synthetic = p.input.is_none() && p.input_url.is_none();
    let total_s = p.duration.or(synthetic.then_some(config.default_duration_s));
    // A file input cannot resume where it stopped; a synthetic or live source can.
    let resumable = p.input.is_none();
    let timeout = job.spec.resource_limits.timeout_sec.map(std::time::Duration::from_secs);
    let mut limits = job.spec.resource_limits.clone();
    limits.timeout_sec = None;
    let started = Instant::now();
    let mut frames = 0u64;
    let mut reconnects = Reconnects::new(settings.reconnect);
    let mut usage = ResourceUsage::default();
    loop {
        let rest = total_s.map(|t| (t - qoe.uptime_s()).max(0.1));
        let attempt = with_duration(job, rest)?;
        let cmd = if super::is_abr(job) {
            super::abr_command(&attempt, config)?
        } else {
            FfmpegCommand::build(&attempt, config)?
        };
        let url = cmd.argv().last().cloned().unwrap_or_default();
        let spec = process_spec(
            exec,
            &cmd,
            &workdir,
            timeout.map(|t| t.saturating_sub(started.elapsed())),
        );
        let mut parser = ProgressParser::new(cmd.expected_duration_s, Some(f64::from(cmd.scenario.fps)));
        let run = run_workload(
            spec,
            &crate::cgroup::job_cgroup_name(job),
            &limits,
            exec.cgroups(),
            cancel.clone(),
            |line| {
                qoe.feed_line(line);
                if let Some(mut p) = parser.feed_line(line) {
                    p.live = Some(qoe.snapshot(reconnects.count()));
                    progress.update(p);
                }
            },
        )
        .await?;
        frames += parser.frames();
        usage.user += run.exit.usage.user;
        usage.sys += run.exit.usage.sys;
        usage.max_rss_kib = usage.max_rss_kib.max(run.exit.usage.max_rss_kib);
        let failure = run.failure("ffmpeg", FFMPEG_ENCODE_ERRORS);
        let lost = failure.is_some()
            && run.exit.stopped == StopReason::Finished
            && run.oom_kills == 0
            && is_connection_loss(&run.exit.stderr_tail);
        let left_s = total_s.map(|t| t - qoe.uptime_s());
        if !lost || left_s.is_some_and(|s| s < 0.1) {
            if let (Some(outcome), false) = (failure, lost) {
                return Ok(outcome);
            }
            let wall_s = started.elapsed().as_secs_f64();
            return Ok(ExecOutcome::Completed {
                result: JobResult {
                    exit_code: run.exit.code(),
                    frames,
                    wall_s,
                    avg_fps: if wall_s > 0.0 { frames as f64 / wall_s } else { 0.0 },
                    encoder: cmd.encoder_label(),
                    limits: run.limits,
                    user_s: Some(usage.user.as_secs_f64()),
                    sys_s: Some(usage.sys.as_secs_f64()),
                    peak_rss_mb: Some(usage.peak_rss_mb()),
                    speed: parser.last().map(|p| p.speed).filter(|s| *s > 0.0),
                    live: Some(Box::new(qoe.finish(reconnects.count()))),
                    ..Default::default()
                },
            });
        }
        // The destination went away. A run that delivered stream starts a new outage.
        let last_error = run.exit.stderr_last(2);
        let delay = match reconnects.lost(&url, qoe.run_uptime_s() > 0.0, resumable, qoe.uptime_s(), &last_error) {
            AfterLoss::Retry(delay) => delay,
            AfterLoss::GiveUp(error) => return Ok(ExecOutcome::Failed { error: *error }),
        };
        tracing::warn!(job = %job.id, %url, ?delay, reconnects = reconnects.count(), "live destination lost; reconnecting");
        if !reconnects.wait(delay, &mut cancel).await {
            return Ok(ExecOutcome::Canceled);
        }
        qoe.new_run();
    }
}
