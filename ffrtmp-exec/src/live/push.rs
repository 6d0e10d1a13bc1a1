//! An FFmpeg live push with reconnects: when the destination goes away mid-stream, the push
//! is restarted with capped backoff (for the rest of the stream) until the reconnect window
//! passes, then the job fails `destination_lost`. QoE is kept across the runs.

use std::path::PathBuf;
use std::time::Instant;

use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{CancelSignal, ErrorKind, ExecOutcome, Job, JobError, JobResult, ProgressSink, ValidSpec};

use super::{is_connection_loss, QoeTracker};
use crate::command::FfmpegCommand;
use crate::error::ExecError;
use crate::ffmpeg::{FfmpegExecutor, FFMPEG_ENCODE_ERRORS};
use crate::progress::ProgressParser;
use crate::supervise::{ProcessSpec, ResourceUsage, StopReason};
use crate::workload::run_workload;

/// `job` with `duration` seconds (the rest of its stream after a reconnect).
fn with_duration(job: &Job, duration: Option<f64>) -> Result<Job, ExecError> {
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
    let (mut frames, mut reconnects, mut outage_tries) = (0u64, 0u32, 0u32);
    let mut usage = ResourceUsage::default();
    let mut lost_since: Option<Instant> = None;
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
                    p.live = Some(qoe.snapshot(reconnects));
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
                    live: Some(Box::new(qoe.finish(reconnects))),
                    ..Default::default()
                },
            });
        }
        // The destination went away. A run that delivered stream starts a new outage.
        if qoe.run_uptime_s() > 0.0 {
            lost_since = Some(Instant::now());
            outage_tries = 0;
        }
        let since = *lost_since.get_or_insert_with(Instant::now);
        let left = settings.reconnect.window.saturating_sub(since.elapsed());
        if !resumable || left.is_zero() {
            let why = match resumable {
                true => format!(
                    "not back within the {:.0} s reconnect window",
                    settings.reconnect.window.as_secs_f64()
                ),
                false => "a file input cannot resume mid-stream".to_string(),
            };
            let message = format!(
                "live destination {url} lost: {why} ({reconnects} reconnects, {:.1} s streamed); last error: {}",
                qoe.uptime_s(),
                run.exit.stderr_last(2)
            );
            return Ok(ExecOutcome::Failed {
                error: JobError::new(ErrorKind::DestinationLost, message),
            });
        }
        let delay = settings.reconnect.delay(outage_tries, left);
        tracing::warn!(job = %job.id, %url, ?delay, reconnects, "live destination lost; reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.canceled() => return Ok(ExecOutcome::Canceled),
        }
        outage_tries += 1;
        reconnects += 1;
        qoe.new_run();
    }
}
