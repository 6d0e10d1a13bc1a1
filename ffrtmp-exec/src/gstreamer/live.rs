//! A GStreamer live push: its QoE readings ([`LiveReadings`]) and its run with reconnects.
//!
//! When the destination goes away mid-stream, `rtmp2sink` fails and `gst-launch-1.0` exits;
//! the pipeline is started again for the rest of the stream, with the same capped backoff
//! inside the same reconnect window as the FFmpeg engine ([`Reconnects`]), until the window
//! passes and the job fails `destination_lost`. QoE is kept across the runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{CancelSignal, ExecOutcome, Job, JobResult, Progress, ProgressSink};

use super::progress::{field, parse_clock};
use super::{GstExecutor, GstPipeline, GstProgressParser, GST_ENCODE_ERRORS, RATE_ELEMENT, SENT_ELEMENT};
use crate::cgroup::job_cgroup_name;
use crate::error::ExecError;
use crate::live::{is_connection_loss, with_duration, AfterLoss, QoeSample, QoeTracker, Reconnects};
use crate::supervise::{ResourceUsage, StopReason};
use crate::workload::{run_workload, WorkloadRun};

/// The QoE figures of one live pipeline run, read from `gst-launch-1.0 -v` output: the
/// `videorate`'s dropped and duplicated counts (printed whenever they change) and each
/// encoded buffer going to the server (its size and timestamp, printed by an `identity`).
///
/// ```
/// use ffrtmp_exec::gstreamer::LiveReadings;
/// let mut r = LiveReadings::default();
/// assert!(r.feed_line("/GstPipeline:pipeline0/GstVideoRate:ffrtmp_rate: duplicate = 9"));
/// assert!(r.feed_line("/GstPipeline:pipeline0/GstVideoRate:ffrtmp_rate: drop = 2"));
/// for (i, pts) in ["0:00:00.000000000", "0:00:00.966666666"].iter().enumerate() {
///     let sent = format!(
///         "/GstPipeline:pipeline0/GstIdentity:ffrtmp_sent: last-message = chain   ******* \
///          (ffrtmp_sent:sink) ({} bytes, dts: none, pts: {pts}, duration: 0:00:00.033333334, \
///          offset: -1, offset_end: -1, flags: 00002000 delta-unit , meta: none) 0x7f0e",
///         50_000 * (i + 1)
///     );
///     assert!(r.feed_line(&sent));
/// }
/// assert!(!r.feed_line("ffrtmp_progress (00:00:01): 1 seconds"));
/// let s = r.sample(None);
/// assert_eq!((s.dup_frames, s.drop_frames, s.total_size), (9, 2, 150_000));
/// assert!((s.out_time_s - 1.0).abs() < 1e-6);
/// assert_eq!((r.rate_readings(), r.sent_buffers()), (2, 2));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LiveReadings {
    drop_frames: u64,
    dup_frames: u64,
    rate_readings: u64,
    sent_bytes: u64,
    sent_buffers: u64,
    first_pts: Option<f64>,
    end_s: f64,
}

impl LiveReadings {
    /// Takes one stdout line; true when it was one of these readings.
    pub fn feed_line(&mut self, line: &str) -> bool {
        let line = line.trim();
        if let Some(rest) = after_element(line, RATE_ELEMENT) {
            let Some((key, value)) = rest.split_once(" = ") else {
                return false;
            };
            let Ok(n) = value.trim().parse::<u64>() else {
                return false;
            };
            match key.trim() {
                "drop" => self.drop_frames = n,
                "duplicate" => self.dup_frames = n,
                _ => return false,
            }
            self.rate_readings += 1;
            return true;
        }
        let Some(rest) = after_element(line, SENT_ELEMENT) else {
            return false;
        };
        if !rest.starts_with("last-message = chain") {
            return false;
        }
        // `(ffrtmp_sent:sink) (6485 bytes, dts: …, pts: 0:00:01.36…, duration: 0:00:00.03…, …`
        let Some(bytes) = rest
            .split_once(" bytes,")
            .and_then(|(head, _)| head.rsplit_once('('))
            .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        else {
            return false;
        };
        self.sent_bytes = self.sent_bytes.saturating_add(bytes);
        self.sent_buffers += 1;
        // Stream headers carry no timestamp; they still count as bytes sent.
        if let Some(pts) = field(rest, "pts:").and_then(parse_clock) {
            let duration = field(rest, "duration:").and_then(parse_clock).unwrap_or(0.0);
            let first = *self.first_pts.get_or_insert(pts);
            let end = pts + duration - first;
            if end.is_finite() {
                self.end_s = self.end_s.max(end);
            }
        }
        true
    }

    /// The figures of this run so far; `speed` is the run's real-time factor as the
    /// progress parser measures it, when known.
    pub fn sample(&self, speed: Option<f64>) -> QoeSample {
        QoeSample {
            drop_frames: self.drop_frames,
            dup_frames: self.dup_frames,
            total_size: self.sent_bytes,
            out_time_s: self.end_s,
            speed,
        }
    }

    /// Dropped or duplicated counts read from the `videorate` (none while it has neither
    /// dropped nor duplicated a frame).
    pub fn rate_readings(&self) -> u64 {
        self.rate_readings
    }

    /// Encoded buffers seen going to the server.
    pub fn sent_buffers(&self) -> u64 {
        self.sent_buffers
    }
}

/// The text after `/…:<name>: ` of a `gst-launch -v` property line of element `name`.
fn after_element<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let at = line.find(&format!(":{name}: "))?;
    Some(&line[at + name.len() + 3..])
}

/// What a live job has delivered so far, across its pipeline runs.
struct Stream {
    qoe: QoeTracker,
    reconnects: Reconnects,
    frames: u64,
    usage: ResourceUsage,
    started: Instant,
}

impl Stream {
    /// Runs `pipe` once, streaming progress with the QoE so far; returns the run and the
    /// progress of its end.
    async fn run_once(
        &mut self,
        exec: &GstExecutor,
        job: &Job,
        pipe: &GstPipeline,
        workdir: &std::path::Path,
        progress: &dyn ProgressSink,
        cancel: CancelSignal,
    ) -> Result<(WorkloadRun, Progress), ExecError> {
        let mut spec = exec.process_spec(pipe, workdir);
        let timeout = job.spec.resource_limits.timeout_sec.map(Duration::from_secs);
        // The job's timeout is for the whole stream, across its runs.
        spec.timeout = timeout.map(|t| t.saturating_sub(self.started.elapsed()));
        let mut limits = job.spec.resource_limits.clone();
        limits.timeout_sec = None;
        let mut parser = GstProgressParser::new(f64::from(pipe.scenario.fps), pipe.frame_limit);
        let mut readings = LiveReadings::default();
        let run_started = Instant::now();
        let (qoe, reconnects) = (&mut self.qoe, self.reconnects.count());
        let run = run_workload(spec, &job_cgroup_name(job), &limits, exec.cgroups(), cancel, |line| {
            if readings.feed_line(line) {
                return;
            }
            if let Some(mut p) = parser.feed_line(line, run_started.elapsed()) {
                qoe.sample(readings.sample(Some(p.speed)));
                p.live = Some(qoe.snapshot(reconnects));
                progress.update(p);
            }
        })
        .await?;
        self.qoe.sample(readings.sample(None));
        self.frames += parser.frames();
        self.usage.user += run.exit.usage.user;
        self.usage.sys += run.exit.usage.sys;
        self.usage.max_rss_kib = self.usage.max_rss_kib.max(run.exit.usage.max_rss_kib);
        let mut last = parser.finish(parser.frames(), run_started.elapsed());
        last.live = Some(self.qoe.snapshot(reconnects));
        Ok((run, last))
    }

    /// The result of the stream, `run` its last run and `last` that run's final progress.
    fn result(self, job: &Job, pipe: &GstPipeline, run: WorkloadRun, last: &Progress) -> JobResult {
        let (frames, usage) = (self.frames, self.usage);
        let wall_s = self.started.elapsed().as_secs_f64();
        JobResult {
            exit_code: run.exit.code(),
            frames,
            wall_s,
            avg_fps: if wall_s > 0.0 { frames as f64 / wall_s } else { 0.0 },
            encoder: pipe.encoder_label(),
            limits: run.limits,
            user_s: Some(usage.user.as_secs_f64()),
            sys_s: Some(usage.sys.as_secs_f64()),
            peak_rss_mb: Some(usage.peak_rss_mb()),
            speed: Some(last.speed).filter(|s| *s > 0.0),
            live: Some(Box::new(self.qoe.finish(self.reconnects.count()))),
            quality: job.spec.parameters.quality.map(|m| {
                Box::new(ffrtmp_core::quality::QualityReport::unavailable(
                    m,
                    "the gstreamer engine does not measure quality",
                ))
            }),
            ..Default::default()
        }
    }
}

/// Runs a live (`output_mode: rtmp`) pipeline with reconnects; see the module docs.
pub(super) async fn run_live(
    exec: &GstExecutor,
    job: &Job,
    first: GstPipeline,
    progress: &dyn ProgressSink,
    mut cancel: CancelSignal,
    workdir: PathBuf,
) -> Result<ExecOutcome, ExecError> {
    let settings = exec.config().live;
    let target = job.spec.parameters.bitrate.as_deref().and_then(parse_bitrate);
    let mut stream = Stream {
        qoe: QoeTracker::new(target, settings.behind_limit),
        reconnects: Reconnects::new(settings.reconnect),
        frames: 0,
        usage: ResourceUsage::default(),
        started: Instant::now(),
    };
    // Only the synthetic source has a length (its num-buffers); a live source runs until it ends.
    let total_s = first
        .frame_limit
        .map(|n| n as f64 / f64::from(first.scenario.fps.max(1)));
    // A file input cannot resume where it stopped; a synthetic or live source can.
    let resumable = first.input.is_none();
    let mut pipe = first;
    loop {
        let (run, last) = stream
            .run_once(exec, job, &pipe, &workdir, progress, cancel.clone())
            .await?;
        let failure = run.failure("gst-launch-1.0", GST_ENCODE_ERRORS);
        let lost = matches!(failure, Some(ExecOutcome::Failed { .. }))
            && run.exit.stopped == StopReason::Finished
            && run.oom_kills == 0
            && is_connection_loss(&run.exit.stderr_tail);
        let left_s = total_s.map(|t| t - stream.qoe.uptime_s());
        if !lost || left_s.is_some_and(|s| s < 0.1) {
            if let (Some(outcome), false) = (failure, lost) {
                return Ok(super::executor::with_first_error(outcome, &run.exit.stderr_tail));
            }
            progress.update(last.clone());
            let result = stream.result(job, &pipe, run, &last);
            return Ok(ExecOutcome::Completed { result });
        }
        // The destination went away. A run that delivered stream starts a new outage.
        let url = pipe.destination.clone().unwrap_or_default();
        let (delivered, uptime_s) = (stream.qoe.run_uptime_s() > 0.0, stream.qoe.uptime_s());
        let reconnects = &mut stream.reconnects;
        let delay = match reconnects.lost(&url, delivered, resumable, uptime_s, &run.exit.stderr_last(2)) {
            AfterLoss::Retry(delay) => delay,
            AfterLoss::GiveUp(error) => return Ok(ExecOutcome::Failed { error: *error }),
        };
        tracing::warn!(job = %job.id, %url, ?delay, reconnects = reconnects.count(), "live destination lost; reconnecting");
        if !reconnects.wait(delay, &mut cancel).await {
            return Ok(ExecOutcome::Canceled);
        }
        stream.qoe.new_run();
        // The rest of the stream: a synthetic source's num-buffers shrink to what is left.
        let rest = total_s.map(|t| (t - stream.qoe.uptime_s()).max(0.1));
        pipe = exec.plan(&with_duration(job, rest)?)?;
    }
}
