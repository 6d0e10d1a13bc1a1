//! [`FfmpegExecutor`]: the default [`Executor`], running each job as one FFmpeg process.

use async_trait::async_trait;
use ffrtmp_core::quality::QualityReport;
use ffrtmp_core::ProgressSink;
use ffrtmp_core::{CancelSignal, EngineChoice, ExecOutcome, Executor, Job, JobResult};

use crate::cgroup::Cgroups;
use crate::command::{FfmpegCommand, FfmpegConfig};
use crate::error::ExecError;
use crate::progress::ProgressParser;
use crate::run_as::RunAs;
use crate::supervise::ProcessSpec;
use crate::workload::{prepare_output_dir, run_workload};

/// Stderr text that means the codec, format, parameters or input were refused: a terminal
/// `encode_error`, never retried.
pub const FFMPEG_ENCODE_ERRORS: &[&str] = &[
    "Unknown encoder",
    "Encoder not found",
    "Unknown decoder",
    "Invalid argument",
    "No such file or directory",
    "Error while opening encoder",
    "Error initializing output stream",
    "Invalid data found",
    "moov atom not found",
    "Could not find codec parameters",
    "does not contain any stream",
    "Unrecognized option",
    "Option not found",
    "Error parsing options",
    "Error opening filters",
    "Error reinitializing filters",
    "Unknown input format",
    "Invalid frame dimensions",
    "Conversion failed",
];

/// Runs jobs with FFmpeg: builds the command ([`FfmpegCommand`]), checks the scratch disk,
/// runs it supervised in a per-job cgroup at `nice 10`, streams `-progress` to the sink and
/// classifies the outcome. Never panics on a job.
///
/// ```no_run
/// # async fn demo(job: ffrtmp_core::Job) {
/// use ffrtmp_core::{Executor, ExecOutcome, NoProgress};
/// use ffrtmp_exec::{FfmpegConfig, FfmpegExecutor};
/// let exec = FfmpegExecutor::new(FfmpegConfig::new("/srv/in", "/srv/out"));
/// let (_cancel, signal) = ffrtmp_core::cancel_pair();
/// if let ExecOutcome::Completed { result } = exec.execute(&job, &NoProgress, signal).await {
///     println!("{} frames, limits {}", result.frames, result.limits);
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FfmpegExecutor {
    config: FfmpegConfig,
    cgroups: Cgroups,
    nice: Option<i32>,
    run_as: Option<RunAs>,
}

impl FfmpegExecutor {
    /// An executor with `config` and the host's cgroups ([`Cgroups::detect`]).
    pub fn new(config: FfmpegConfig) -> Self {
        Self::with_cgroups(config, Cgroups::detect())
    }

    /// An executor with explicit cgroup support (e.g. [`Cgroups::disabled`]).
    pub fn with_cgroups(config: FfmpegConfig, cgroups: Cgroups) -> Self {
        FfmpegExecutor {
            config,
            cgroups,
            nice: Some(10),
            run_as: None,
        }
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

    /// The niceness encodes run at (`None`: the agent's).
    pub fn nice(&self) -> Option<i32> {
        self.nice
    }

    /// The configuration.
    pub fn config(&self) -> &FfmpegConfig {
        &self.config
    }

    /// The cgroup support in use.
    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    async fn run(
        &self,
        job: &Job,
        progress: &dyn ProgressSink,
        cancel: CancelSignal,
    ) -> Result<ExecOutcome, ExecError> {
        if job.spec.engine == EngineChoice::Gstreamer {
            return Err(ExecError::NodeUnavailable(
                "this executor runs FFmpeg; the job asks for the gstreamer engine".to_string(),
            ));
        }
        // Resolving the input reads whole playlists (and every file they name): not on the
        // runtime's worker threads.
        let (owned_job, config) = (job.clone(), self.config.clone());
        let cmd = tokio::task::spawn_blocking(move || FfmpegCommand::build(&owned_job, &config))
            .await
            .map_err(|e| ExecError::io("checking the job's input", std::io::Error::other(e.to_string())))??;
        let file_input = job.spec.parameters.input.as_ref().and_then(|_| input_path(&cmd.args));
        if let (Some(user), Some(input)) = (self.run_as.as_ref().filter(|u| !u.is_root()), file_input) {
            user.check_readable(input).await?;
        }
        if cancel.is_canceled() {
            return Ok(ExecOutcome::Canceled);
        }
        let limits = &job.spec.resource_limits;
        let workdir = prepare_output_dir(job, &self.config.output_dir, self.run_as.as_ref())?;
        if job.spec.parameters.output_mode == Some(ffrtmp_core::OutputMode::Rtmp) {
            return crate::live::run_ffmpeg_live(self, job, progress, cancel, workdir).await;
        }

        let mut spec = ProcessSpec::new(&cmd.program, cmd.args.iter().cloned());
        spec.grace = self.config.grace;
        spec.nice = self.nice;
        spec.run_as = self.run_as.clone();
        spec.current_dir = Some(workdir);
        let mut parser = ProgressParser::new(cmd.expected_duration_s, Some(f64::from(cmd.scenario.fps)));
        let quality_cancel = cancel.clone();
        let run = run_workload(
            spec,
            &crate::cgroup::job_cgroup_name(job),
            limits,
            &self.cgroups,
            cancel,
            |line| {
                if let Some(p) = parser.feed_line(line) {
                    progress.update(p);
                }
            },
        )
        .await;
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                remove_output(&cmd);
                return Err(e);
            }
        };
        if let Some(outcome) = run.failure("ffmpeg", FFMPEG_ENCODE_ERRORS) {
            remove_output(&cmd);
            return Ok(outcome);
        }

        let wall_s = run.exit.wall.as_secs_f64();
        if let Err(e) = self.verify_output(job, &cmd, wall_s).await {
            remove_output(&cmd);
            return Err(e);
        }
        let quality = self.quality_pass(job, &cmd, wall_s, quality_cancel).await;
        let frames = parser.frames();
        let output_bytes = match &cmd.output {
            Some(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            None => 0,
        };
        let input_bytes = match &job.spec.parameters.input {
            Some(_) => input_path(&cmd.args)
                .and_then(|p| std::fs::metadata(p).ok())
                .map(|m| m.len()),
            None => None,
        };
        let usage = run.exit.usage;
        let (width, height) = (cmd.scenario.width, cmd.scenario.height);
        Ok(ExecOutcome::Completed {
            result: JobResult {
                exit_code: run.exit.code(),
                frames,
                wall_s,
                avg_fps: if wall_s > 0.0 { frames as f64 / wall_s } else { 0.0 },
                output_bytes,
                encoder: cmd.encoder_label(),
                limits: run.limits,
                energy: Default::default(),
                user_s: Some(usage.user.as_secs_f64()),
                sys_s: Some(usage.sys.as_secs_f64()),
                peak_rss_mb: Some(usage.peak_rss_mb()),
                input_bytes,
                compression_ratio: cmd
                    .output
                    .as_ref()
                    .and_then(|_| JobResult::compression_ratio_of(width, height, frames, output_bytes)),
                speed: parser.last().map(|p| p.speed).filter(|s| *s > 0.0),
                live: None,
                quality: quality.map(Box::new),
            },
        })
    }
}

impl FfmpegExecutor {
    /// Decodes a file output in full ([`crate::verify`]); for the synthetic source, whose
    /// length is known, also checks its frames and duration. Live and null outputs have no file.
    async fn verify_output(&self, job: &Job, cmd: &FfmpegCommand, wall_s: f64) -> Result<(), ExecError> {
        let Some(output) = &cmd.output else {
            return Ok(());
        };
        let asked = match (&job.spec.parameters.input, cmd.expected_duration_s) {
            (None, Some(duration_s)) => Some(crate::verify::Expected {
                duration_s,
                fps: f64::from(cmd.scenario.fps),
            }),
            // A file input may be shorter than the duration asked: only a full decode is checked.
            _ => None,
        };
        // Decoding is faster than encoding; the floor covers a loaded machine.
        let timeout = std::time::Duration::from_secs_f64((wall_s * 2.0).max(120.0));
        crate::verify::verify(&self.config.ffmpeg_path, output, asked, timeout)
            .await
            .map(|_| ())
    }
}

impl FfmpegExecutor {
    /// The quality pass, when the job asks for one: against the regenerated synthetic source,
    /// or unavailable with the reason for a file input.
    async fn quality_pass(
        &self,
        job: &Job,
        cmd: &FfmpegCommand,
        wall_s: f64,
        cancel: CancelSignal,
    ) -> Option<QualityReport> {
        let metric = job.spec.parameters.quality?;
        let output = cmd.output.as_ref()?;
        let (None, Some(duration_s)) = (&job.spec.parameters.input, cmd.expected_duration_s) else {
            return Some(QualityReport::unavailable(
                metric,
                "quality is measured against the synthetic source only; this job encoded a file input",
            ));
        };
        let pass = crate::quality::QualityPass {
            ffmpeg: &self.config.ffmpeg_path,
            cgroups: &self.cgroups,
            cgroup_name: ffrtmp_core::quality::quality_pass_key(&job.attempt_key()),
            nice: self.nice,
            timeout: std::time::Duration::from_secs_f64((wall_s * 4.0).max(120.0)),
            cancel,
        };
        Some(crate::quality::measure_synthetic(pass, output, &cmd.scenario, duration_s, metric).await)
    }
}

/// The input file of an FFmpeg command: the argument after its `-i`.
fn input_path(args: &[std::ffi::OsString]) -> Option<&std::path::Path> {
    let i = args.iter().position(|a| a == "-i")?;
    args.get(i + 1).map(std::path::Path::new)
}

/// Deletes a partial output file after a failed, canceled or timed-out attempt.
fn remove_output(cmd: &FfmpegCommand) {
    if let Some(path) = &cmd.output {
        let _ = std::fs::remove_file(path);
    }
}

#[async_trait]
impl Executor for FfmpegExecutor {
    async fn execute(&self, job: &Job, progress: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome {
        crate::workload::outcome_of("ffmpeg", job, self.run(job, progress, cancel).await)
    }
}
