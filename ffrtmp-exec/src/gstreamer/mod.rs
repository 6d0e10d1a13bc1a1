//! The GStreamer engine: [`GstExecutor`] runs a job as one `gst-launch-1.0` pipeline on the
//! same supervision path as FFmpeg ([`run_workload`]: process group, `nice`, job cgroup,
//! cancel, timeout), with its own command line ([`GstPipeline`]) and progress parser
//! ([`GstProgressParser`]).
//!
//! A synthetic 720p H.264 job to a file runs
//!
//! ```text
//! gst-launch-1.0 -e -v -X caps videotestsrc num-buffers=60 pattern=smpte
//!   ! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert ! video/x-raw,format=I420
//!   ! identity name=ffrtmp_frames silent=false ! progressreport name=ffrtmp_progress update-freq=1 silent=false
//!   ! x264enc speed-preset=veryfast key-int-max=60 pass=qual quantizer=23
//!   ! h264parse ! mp4mux ! filesink location="<output dir>/<job>-a1.mp4"
//! ```
//!
//! GStreamer has no `-progress`. Frames are counted exactly: `-v` prints the `identity`'s
//! `last-message` for every buffer (one line per frame, with its timestamp); `progressreport`
//! prints the source's position and duration once a second, which gives the percent of file
//! inputs and paces the progress updates.
//!
//! A live push (`output_mode: rtmp`) also has its `videorate` print its dropped and
//! duplicated counts and an `identity` after the encoder print each buffer sent (size and
//! timestamp): its QoE ([`LiveReadings`]). When the server goes away the pipeline is started
//! again for the rest of the stream, as the FFmpeg engine does ([`crate::live::Reconnects`]).

mod executor;
mod live;
mod pipeline;
mod progress;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

use ffrtmp_core::Codec;

use crate::command::FfmpegConfig;

pub use executor::GstExecutor;
pub use live::LiveReadings;
pub use pipeline::GstPipeline;
pub use progress::GstProgressParser;

#[cfg(doc)]
use crate::command::FfmpegCommand;
#[cfg(doc)]
use crate::workload::run_workload;

/// Stderr text of `gst-launch-1.0` that means the pipeline, codec or input was refused: a
/// terminal `encode_error`, never retried.
pub const GST_ENCODE_ERRORS: &[&str] = &[
    "erroneous pipeline",
    "no element",
    "could not link",
    "not-negotiated",
    "not-linked",
    "Could not determine type of stream",
    "missing a plug-in",
    "No decoder available",
    "Could not decode stream",
    "Could not demultiplex stream",
    "Stream doesn't contain enough data",
    "This file is corrupt",
    "Resource not found",
    "Could not open resource for reading",
    "Can not initialize",
];

/// Elements the engine may put in a pipeline; [`crate::detect::gstreamer_elements`] looks
/// for these.
pub const GST_ELEMENTS: &[&str] = &[
    "videotestsrc",
    "filesrc",
    "decodebin",
    "videoconvert",
    "videoscale",
    "videorate",
    "identity",
    "progressreport",
    "x264enc",
    "x265enc",
    "svtav1enc",
    "vp9enc",
    "h264parse",
    "h265parse",
    "av1parse",
    "mp4mux",
    "webmmux",
    "flvmux",
    "rtmp2sink",
    "rtmp2src",
    "filesink",
    "fakesink",
];

/// Elements every pipeline needs, whatever the job.
const BASE_ELEMENTS: &[&str] = &["videoconvert", "identity", "progressreport"];

/// Name of the counting `identity` in every pipeline.
const FRAMES_ELEMENT: &str = "ffrtmp_frames";

/// Name of the `videorate` of a live push, whose dropped and duplicated counts are read.
const RATE_ELEMENT: &str = "ffrtmp_rate";

/// Name of the `identity` after the encoder of a live push, counting the bytes sent.
const SENT_ELEMENT: &str = "ffrtmp_sent";

/// Name of the `progressreport` in every pipeline.
const PROGRESS_ELEMENT: &str = "ffrtmp_progress";

/// The GStreamer encoder element for a codec.
///
/// ```
/// use ffrtmp_core::Codec;
/// assert_eq!(ffrtmp_exec::gstreamer::encoder_element(Codec::H265), "x265enc");
/// ```
pub fn encoder_element(codec: Codec) -> &'static str {
    match codec {
        Codec::H264 => "x264enc",
        Codec::H265 => "x265enc",
        Codec::Av1 => "svtav1enc",
        Codec::Vp9 => "vp9enc",
    }
}

/// Node-side settings of the GStreamer engine.
#[derive(Clone, Debug, PartialEq)]
pub struct GstConfig {
    /// The `gst-launch-1.0` binary; a bare name is looked up in `PATH`.
    pub gst_launch_path: PathBuf,
    /// The `gst-inspect-1.0` binary, for [`GstExecutor::detect`].
    pub gst_inspect_path: PathBuf,
    /// Jobs may only read files under this directory (`parameters.input` is relative to it).
    pub input_dir: PathBuf,
    /// Output files are written here as `<job_id>-a<attempt>.<ext>`.
    pub output_dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when a job is canceled or times out.
    pub grace: Duration,
    /// Seconds encoded when a synthetic job gives no `parameters.duration`.
    pub default_duration_s: f64,
    /// RTMP endpoint for `output_mode: rtmp`; `{job_id}` in it is replaced by the job id.
    pub rtmp_url: Option<String>,
    /// Prefixes a job's `parameters.output_url` must start with (see [`FfmpegConfig`]).
    pub allow_output_prefixes: Vec<String>,
    /// Prefixes a job's `parameters.input_url` must start with (see [`FfmpegConfig`]).
    pub allow_input_prefixes: Vec<String>,
    /// Reconnects and real-time limit of live jobs.
    pub live: crate::live::LiveSettings,
}

impl Default for GstConfig {
    fn default() -> Self {
        GstConfig::from_ffmpeg(&FfmpegConfig::default())
    }
}

impl GstConfig {
    /// The defaults with the given input and output directories.
    pub fn new(input_dir: impl Into<PathBuf>, output_dir: impl Into<PathBuf>) -> Self {
        GstConfig::from_ffmpeg(&FfmpegConfig::new(input_dir, output_dir))
    }

    /// The same directories, grace, default duration and RTMP endpoint as an FFmpeg engine,
    /// with `gst-launch-1.0` and `gst-inspect-1.0` from `PATH`.
    pub fn from_ffmpeg(f: &FfmpegConfig) -> Self {
        GstConfig {
            gst_launch_path: PathBuf::from("gst-launch-1.0"),
            gst_inspect_path: PathBuf::from("gst-inspect-1.0"),
            input_dir: f.input_dir.clone(),
            output_dir: f.output_dir.clone(),
            grace: f.grace,
            default_duration_s: f.default_duration_s,
            rtmp_url: f.rtmp_url.clone(),
            allow_output_prefixes: f.allow_output_prefixes.clone(),
            allow_input_prefixes: f.allow_input_prefixes.clone(),
            live: f.live,
        }
    }

    /// The FFmpeg view of these settings: both engines check parameters, resolve inputs and
    /// name outputs by the same rules ([`FfmpegCommand::build`]).
    fn as_ffmpeg(&self) -> FfmpegConfig {
        FfmpegConfig {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            input_dir: self.input_dir.clone(),
            output_dir: self.output_dir.clone(),
            grace: self.grace,
            default_duration_s: self.default_duration_s,
            rtmp_url: self.rtmp_url.clone(),
            allow_output_prefixes: self.allow_output_prefixes.clone(),
            allow_input_prefixes: self.allow_input_prefixes.clone(),
            live: self.live,
        }
    }
}
