//! [`AutoExecutor`]: picks the engine of each job, FFmpeg or GStreamer, as the original
//! project did.
//!
//! - `engine: ffmpeg` runs FFmpeg.
//! - `engine: gstreamer` runs GStreamer; on a node without it the job fails
//!   `node_unavailable` (transient), so that another node runs it.
//! - `engine: auto` (the default): live work (the `live` queue, `rtmp` output or a `live-*`
//!   scenario) runs on GStreamer when it is installed and can build the job's pipeline, else on
//!   FFmpeg with the reason logged; everything else runs on FFmpeg.

use async_trait::async_trait;
use ffrtmp_core::{CancelSignal, EngineChoice, ExecOutcome, Executor, Job, JobError, OutputMode, ProgressSink, Queue};

use crate::error::ExecError;
use crate::ffmpeg::FfmpegExecutor;
use crate::gstreamer::GstExecutor;

/// An engine that runs jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Engine {
    /// FFmpeg ([`FfmpegExecutor`]).
    Ffmpeg,
    /// GStreamer ([`GstExecutor`]).
    Gstreamer,
}

impl Engine {
    /// `ffmpeg` or `gstreamer`, as advertised in a node's engines.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Ffmpeg => "ffmpeg",
            Engine::Gstreamer => "gstreamer",
        }
    }
}

/// The engine picked for a job, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// The engine.
    pub engine: Engine,
    /// For the log: `asked for ffmpeg`, `live job (live queue)`, …
    pub reason: String,
    /// Whether an engine the job would rather have had was not usable here.
    pub fell_back: bool,
}

/// Why a job counts as live work, if it does: the `live` queue, `rtmp` output, or a live
/// scenario (`live-4k`, `live-stream`, `live-rtmp`).
pub fn live_reason(job: &Job) -> Option<&'static str> {
    if job.spec.queue == Queue::Live {
        Some("live queue")
    } else if job.spec.parameters.output_mode == Some(OutputMode::Rtmp) {
        Some("rtmp output")
    } else if job.spec.scenario().live {
        Some("live scenario")
    } else {
        None
    }
}

/// Runs each job on FFmpeg or GStreamer (see the [module](self) for the rules).
///
/// ```no_run
/// # async fn demo() {
/// use ffrtmp_exec::engine::AutoExecutor;
/// use ffrtmp_exec::gstreamer::{GstConfig, GstExecutor};
/// use ffrtmp_exec::{FfmpegConfig, FfmpegExecutor};
/// let config = FfmpegConfig::new("/srv/in", "/srv/out");
/// let gst = match GstExecutor::detect(GstConfig::from_ffmpeg(&config)).await {
///     Ok(gst) => Some(gst),
///     Err(e) => {
///         eprintln!("GStreamer engine unavailable: {e}");
///         None
///     }
/// };
/// let exec = AutoExecutor::new(FfmpegExecutor::new(config), gst);
/// println!("engines: {:?}", exec.engines());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AutoExecutor {
    ffmpeg: FfmpegExecutor,
    gstreamer: Option<GstExecutor>,
}

impl AutoExecutor {
    /// FFmpeg always; GStreamer when given.
    pub fn new(ffmpeg: FfmpegExecutor, gstreamer: Option<GstExecutor>) -> Self {
        AutoExecutor { ffmpeg, gstreamer }
    }

    /// The FFmpeg engine.
    pub fn ffmpeg(&self) -> &FfmpegExecutor {
        &self.ffmpeg
    }

    /// The GStreamer engine, when installed.
    pub fn gstreamer(&self) -> Option<&GstExecutor> {
        self.gstreamer.as_ref()
    }

    /// The engines this node offers, for its registration: `ffmpeg`, then `gstreamer`.
    pub fn engines(&self) -> Vec<String> {
        let mut engines = vec![Engine::Ffmpeg.as_str().to_string()];
        if self.gstreamer.is_some() {
            engines.push(Engine::Gstreamer.as_str().to_string());
        }
        engines
    }

    /// Picks the engine for `job`; fails `node_unavailable` when the job asks for GStreamer
    /// and this node has none.
    pub fn select(&self, job: &Job) -> Result<Selection, ExecError> {
        let pick = |engine, reason: String, fell_back| Selection {
            engine,
            reason,
            fell_back,
        };
        match job.spec.engine {
            EngineChoice::Ffmpeg => Ok(pick(Engine::Ffmpeg, "asked for ffmpeg".into(), false)),
            EngineChoice::Gstreamer => match &self.gstreamer {
                Some(_) => Ok(pick(Engine::Gstreamer, "asked for gstreamer".into(), false)),
                None => Err(ExecError::NodeUnavailable(
                    "the job asks for the gstreamer engine, which is not installed on this node".into(),
                )),
            },
            EngineChoice::Auto => {
                let Some(live) = live_reason(job) else {
                    return Ok(pick(Engine::Ffmpeg, "not a live job".into(), false));
                };
                match &self.gstreamer {
                    None => Ok(pick(
                        Engine::Ffmpeg,
                        format!("live job ({live}), but GStreamer is not installed"),
                        true,
                    )),
                    Some(gst) => match gst.plan(job) {
                        Ok(_) => Ok(pick(Engine::Gstreamer, format!("live job ({live})"), false)),
                        Err(e) => Ok(pick(
                            Engine::Ffmpeg,
                            format!("live job ({live}), but GStreamer cannot run it: {e}"),
                            true,
                        )),
                    },
                }
            }
        }
    }
}

#[async_trait]
impl Executor for AutoExecutor {
    async fn execute(&self, job: &Job, progress: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome {
        // Planning a GStreamer run resolves the input (whole playlists): off the runtime.
        let (this, owned) = (self.clone(), job.clone());
        let selected = tokio::task::spawn_blocking(move || this.select(&owned))
            .await
            .unwrap_or_else(|e| {
                Err(ExecError::io(
                    "choosing the engine",
                    std::io::Error::other(e.to_string()),
                ))
            });
        let selection = match selected {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(job = %job.id, error = %e, "no engine for the job on this node");
                return ExecOutcome::Failed {
                    error: JobError::from(e),
                };
            }
        };
        if selection.fell_back {
            tracing::info!(job = %job.id, engine = selection.engine.as_str(), reason = %selection.reason,
                "engine fallback");
        } else {
            tracing::debug!(job = %job.id, engine = selection.engine.as_str(), reason = %selection.reason,
                "engine selected");
        }
        match (selection.engine, &self.gstreamer) {
            (Engine::Gstreamer, Some(gst)) => gst.execute(job, progress, cancel).await,
            _ => self.ffmpeg.execute(job, progress, cancel).await,
        }
    }
}
