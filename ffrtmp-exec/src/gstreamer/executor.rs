//! [`GstExecutor`]: runs jobs as `gst-launch-1.0` pipelines on the supervised workload path.

use std::collections::BTreeSet;

use async_trait::async_trait;
use ffrtmp_core::{CancelSignal, Codec, EngineChoice, ErrorKind, ExecOutcome, Executor, Job, JobResult, ProgressSink};
use tokio::time::Instant;

use crate::cgroup::{job_cgroup_name, Cgroups};
use crate::error::ExecError;
use crate::run_as::RunAs;
use crate::supervise::ProcessSpec;
use crate::workload::{prepare_output_dir, run_workload};

use super::{encoder_element, GstConfig, GstPipeline, GstProgressParser, BASE_ELEMENTS, GST_ENCODE_ERRORS};

#[cfg(doc)]
use super::GST_ELEMENTS;

/// Runs jobs with GStreamer: builds the pipeline ([`GstPipeline`]), checks the scratch disk,
/// runs `gst-launch-1.0` supervised in a per-job cgroup at `nice 10`, streams progress to the
/// sink and classifies the outcome like the FFmpeg engine. Never panics on a job.
///
/// ```no_run
/// # async fn demo(job: ffrtmp_core::Job) -> Result<(), ffrtmp_exec::ExecError> {
/// use ffrtmp_core::{Executor, ExecOutcome, NoProgress};
/// use ffrtmp_exec::gstreamer::{GstConfig, GstExecutor};
/// let exec = GstExecutor::detect(GstConfig::new("/srv/in", "/srv/out")).await?;
/// let (_cancel, signal) = ffrtmp_core::cancel_pair();
/// if let ExecOutcome::Completed { result } = exec.execute(&job, &NoProgress, signal).await {
///     println!("{} frames with {}", result.frames, result.encoder);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct GstExecutor {
    config: GstConfig,
    cgroups: Cgroups,
    nice: Option<i32>,
    run_as: Option<RunAs>,
    elements: Option<BTreeSet<String>>,
}

impl GstExecutor {
    /// An executor with `config` and the host's cgroups ([`Cgroups::detect`]). The elements
    /// installed are not known: a missing one fails the job when the pipeline starts.
    pub fn new(config: GstConfig) -> Self {
        Self::with_cgroups(config, Cgroups::detect())
    }

    /// An executor with explicit cgroup support (e.g. [`Cgroups::disabled`]).
    pub fn with_cgroups(config: GstConfig, cgroups: Cgroups) -> Self {
        GstExecutor {
            config,
            cgroups,
            nice: Some(10),
            run_as: None,
            elements: None,
        }
    }

    /// Finds out whether `gst-launch-1.0` runs and which of [`GST_ELEMENTS`] are installed
    /// (with `gst-inspect-1.0`); fails when GStreamer or an element every pipeline needs is
    /// missing. Uses the host's cgroups.
    pub async fn detect(config: GstConfig) -> Result<Self, ExecError> {
        Self::detect_with_cgroups(config, Cgroups::detect()).await
    }

    /// [`GstExecutor::detect`] with explicit cgroup support.
    pub async fn detect_with_cgroups(config: GstConfig, cgroups: Cgroups) -> Result<Self, ExecError> {
        let launch = &config.gst_launch_path;
        let mut cmd = tokio::process::Command::new(launch);
        cmd.arg("--version").stdin(std::process::Stdio::null());
        let out = crate::detect::probe_output(cmd, crate::detect::PROBE_TIMEOUT)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ExecError::ProgramNotFound {
                    program: launch.clone(),
                },
                _ => ExecError::Spawn {
                    program: launch.clone(),
                    source: e,
                },
            })?;
        if !out.status.success() {
            return Err(ExecError::NodeUnavailable(format!(
                "{} --version exited with {}",
                launch.display(),
                out.status
            )));
        }
        let found = crate::detect::gstreamer_elements(&config.gst_inspect_path)
            .await
            .map_err(ExecError::NodeUnavailable)?;
        let found: BTreeSet<String> = found.into_iter().collect();
        if let Some(missing) = BASE_ELEMENTS.iter().find(|e| !found.contains(**e)) {
            return Err(ExecError::NodeUnavailable(format!(
                "GStreamer has no {missing} element (install gstreamer1.0-plugins-base and -good)"
            )));
        }
        Ok(Self::with_cgroups(config, cgroups).with_elements(found))
    }

    /// Declares the elements installed; pipelines needing others are refused up front.
    pub fn with_elements<I, S>(mut self, elements: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.elements = Some(elements.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the niceness of encodes (`None`: inherit the agent's). Default 10.
    pub fn with_nice(mut self, nice: Option<i32>) -> Self {
        self.nice = nice;
        self
    }

    /// Runs encodes as `user` (`None`: as this process's user). The output directory must
    /// be that user's, or not exist yet (it is then created for that user); one owned by
    /// anyone else fails each job (see [`RunAs::own_dir`]).
    pub fn with_run_as(mut self, user: Option<RunAs>) -> Self {
        self.run_as = user;
        self
    }

    /// The user encodes run as, when not this process's.
    pub fn run_as(&self) -> Option<&RunAs> {
        self.run_as.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &GstConfig {
        &self.config
    }

    /// The cgroup support in use.
    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    /// The elements known to be installed (`None`: not detected).
    pub fn elements(&self) -> Option<&BTreeSet<String>> {
        self.elements.as_ref()
    }

    /// Whether this node's GStreamer has the encoder for `codec` (true when not detected).
    pub fn supports(&self, codec: Codec) -> bool {
        self.elements
            .as_ref()
            .is_none_or(|e| e.contains(encoder_element(codec)))
    }

    /// The pipeline this executor would run for `job`, or why it cannot run it.
    pub fn plan(&self, job: &Job) -> Result<GstPipeline, ExecError> {
        GstPipeline::build(job, &self.config, self.elements.as_ref())
    }

    /// The supervised process of `pipe`, run in `workdir`.
    pub(super) fn process_spec(&self, pipe: &GstPipeline, workdir: &std::path::Path) -> ProcessSpec {
        let mut spec = ProcessSpec::new(&pipe.program, pipe.args.iter().cloned());
        spec.grace = self.config.grace;
        spec.nice = self.nice;
        spec.run_as = self.run_as.clone();
        spec.current_dir = Some(workdir.to_path_buf());
        spec
    }

    async fn run(
        &self,
        job: &Job,
        progress: &dyn ProgressSink,
        cancel: CancelSignal,
    ) -> Result<ExecOutcome, ExecError> {
        if job.spec.engine == EngineChoice::Ffmpeg {
            return Err(ExecError::NodeUnavailable(
                "this executor runs GStreamer; the job asks for the ffmpeg engine".to_string(),
            ));
        }
        // Planning resolves the input (whole playlists): off the runtime.
        let (this, owned) = (self.clone(), job.clone());
        let pipe = tokio::task::spawn_blocking(move || this.plan(&owned))
            .await
            .map_err(|e| ExecError::io("planning the pipeline", std::io::Error::other(e.to_string())))??;
        if let (Some(user), Some(input)) = (self.run_as.as_ref().filter(|u| !u.is_root()), &pipe.input) {
            user.check_readable(input).await?;
        }
        if cancel.is_canceled() {
            return Ok(ExecOutcome::Canceled);
        }
        let limits = &job.spec.resource_limits;
        let workdir = prepare_output_dir(job, &self.config.output_dir, self.run_as.as_ref())?;
        if job.spec.parameters.output_mode == Some(ffrtmp_core::OutputMode::Rtmp) {
            return super::live::run_live(self, job, pipe, progress, cancel, workdir).await;
        }

        let spec = self.process_spec(&pipe, &workdir);
        let mut parser = GstProgressParser::new(f64::from(pipe.scenario.fps), pipe.frame_limit);
        let started = Instant::now();
        let run = run_workload(spec, &job_cgroup_name(job), limits, &self.cgroups, cancel, |line| {
            if let Some(p) = parser.feed_line(line, started.elapsed()) {
                progress.update(p);
            }
        })
        .await;
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                remove_output(&pipe);
                return Err(e);
            }
        };
        if let Some(outcome) = run.failure("gst-launch-1.0", GST_ENCODE_ERRORS) {
            remove_output(&pipe);
            return Ok(with_first_error(outcome, &run.exit.stderr_tail));
        }

        let wall = run.exit.wall;
        let wall_s = wall.as_secs_f64();
        // Frames are counted one by one; only when none were seen does a synthetic source
        // that reached its end of stream stand for its num-buffers.
        let counted = parser.frames();
        let frames = if counted == 0 && parser.reached_eos() {
            pipe.frame_limit.unwrap_or(0)
        } else {
            counted
        };
        progress.update(parser.finish(frames, wall));
        let output_bytes = match &pipe.output {
            Some(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        let usage = run.exit.usage;
        let (width, height) = (pipe.scenario.width, pipe.scenario.height);
        Ok(ExecOutcome::Completed {
            result: JobResult {
                exit_code: run.exit.code(),
                frames,
                wall_s,
                avg_fps: if wall_s > 0.0 { frames as f64 / wall_s } else { 0.0 },
                output_bytes,
                encoder: pipe.encoder_label(),
                limits: run.limits,
                energy: Default::default(),
                user_s: Some(usage.user.as_secs_f64()),
                sys_s: Some(usage.sys.as_secs_f64()),
                peak_rss_mb: Some(usage.peak_rss_mb()),
                input_bytes: pipe
                    .input
                    .as_ref()
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len()),
                compression_ratio: pipe
                    .output
                    .as_ref()
                    .and_then(|_| JobResult::compression_ratio_of(width, height, frames, output_bytes)),
                speed: parser.last().map(|p| p.speed).filter(|s| *s > 0.0),
                live: None,
                quality: job.spec.parameters.quality.map(|m| {
                    Box::new(ffrtmp_core::quality::QualityReport::unavailable(
                        m,
                        "the gstreamer engine does not measure quality",
                    ))
                }),
            },
        })
    }
}

/// Adds gst-launch's first error line to a failure message that does not quote it: the
/// last lines of stderr are often only the generic `Internal data stream error` and
/// `pipeline doesn't want to preroll`, while the cause came first.
pub(super) fn with_first_error(outcome: ExecOutcome, stderr_tail: &[String]) -> ExecOutcome {
    let ExecOutcome::Failed { mut error } = outcome else {
        return outcome;
    };
    let first = stderr_tail
        .iter()
        .find(|l| l.starts_with("ERROR: from element") || l.starts_with("WARNING: erroneous pipeline"));
    if let Some(first) = first.filter(|f| !error.message.contains(f.as_str())) {
        if matches!(error.kind, ErrorKind::EncodeError | ErrorKind::Internal) {
            error.message = format!("{} (first error: {first})", error.message);
        }
    }
    ExecOutcome::Failed { error }
}

/// Deletes a partial output file after a failed, canceled or timed-out attempt.
fn remove_output(pipe: &GstPipeline) {
    if let Some(path) = &pipe.output {
        let _ = std::fs::remove_file(path);
    }
}

#[async_trait]
impl Executor for GstExecutor {
    async fn execute(&self, job: &Job, progress: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome {
        crate::workload::outcome_of("gstreamer", job, self.run(job, progress, cancel).await)
    }
}
