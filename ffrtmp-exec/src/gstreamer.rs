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

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{
    CancelSignal, Codec, EngineChoice, ErrorKind, ExecOutcome, Executor, Job, JobError, JobResult, OutputMode,
    Progress, ProgressSink, Scenario,
};
use tokio::time::Instant;

use crate::cgroup::{job_cgroup_name, Cgroups};
use crate::command::{FfmpegCommand, FfmpegConfig};
use crate::disk::DiskUsage;
use crate::error::ExecError;
use crate::supervise::ProcessSpec;
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
    "filesink",
    "fakesink",
];

/// Elements every pipeline needs, whatever the job.
const BASE_ELEMENTS: &[&str] = &["videoconvert", "identity", "progressreport"];

/// Name of the counting `identity` in every pipeline.
const FRAMES_ELEMENT: &str = "ffrtmp_frames";
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
        }
    }
}

/// The `gst-launch-1.0` invocation for one job attempt, and what to expect from it.
///
/// ```
/// use ffrtmp_core::{Job, JobId, JobSpec, JobState};
/// use ffrtmp_exec::gstreamer::{GstConfig, GstPipeline};
///
/// let mut spec = JobSpec::new("720p-h264");
/// spec.parameters.duration = Some(2.0);
/// spec.parameters.bitrate = Some("2M".into());
/// let job = Job {
///     id: JobId::new(), seq: 1, spec, state: JobState::Running, attempt: 1, node_id: None,
///     progress: None, result: None, error: None, retry_at_ms: None, created_at_ms: 0,
///     updated_at_ms: 0, history: vec![],
/// };
/// let p = GstPipeline::build(&job, &GstConfig::new("/srv/in", "/srv/out"), None).unwrap();
/// let argv = p.argv().join(" ");
/// assert!(argv.starts_with("gst-launch-1.0 -e -v -X caps videotestsrc num-buffers=60 pattern=smpte"));
/// assert!(argv.contains("! video/x-raw,width=1280,height=720,framerate=30/1 ! videoconvert !"));
/// assert!(argv.contains("! x264enc speed-preset=veryfast key-int-max=60 bitrate=2000 ! h264parse ! mp4mux !"));
/// assert!(argv.ends_with(&format!("filesink location=\"/srv/out/{}-a1.mp4\"", job.id)));
/// assert_eq!(p.frame_limit, Some(60));
/// assert_eq!(p.encoder_label(), "gstreamer/x264enc");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GstPipeline {
    /// The program (from [`GstConfig::gst_launch_path`]).
    pub program: PathBuf,
    /// Arguments after the program: options, then the pipeline, one token each.
    pub args: Vec<OsString>,
    /// The input file (`None` for the synthetic source).
    pub input: Option<PathBuf>,
    /// The output file, for [`OutputMode::File`].
    pub output: Option<PathBuf>,
    /// The effective scenario (parameters applied).
    pub scenario: Scenario,
    /// The encoder element, e.g. `x264enc`.
    pub encoder: &'static str,
    /// Frames the source stops after (`num-buffers` of the synthetic source).
    pub frame_limit: Option<u64>,
    /// Every element the pipeline uses.
    pub elements: Vec<&'static str>,
}

impl GstPipeline {
    /// Builds the pipeline for `job`, refusing parameters this node cannot honour. When
    /// `available` is given (see [`GstExecutor::detect`]), a pipeline needing an element
    /// outside it is refused with `invalid_parameter`.
    ///
    /// Parameters are checked, `parameters.input` is resolved inside the input directory and
    /// the output named exactly as by the FFmpeg engine.
    pub fn build(
        job: &Job,
        config: &GstConfig,
        available: Option<&BTreeSet<String>>,
    ) -> Result<GstPipeline, ExecError> {
        let plan = FfmpegCommand::build(job, &config.as_ffmpeg())?;
        let scenario = plan.scenario;
        let p = &job.spec.parameters;
        let mode = p.output_mode.unwrap_or_default();
        let codec = scenario.codec;
        let encoder = encoder_element(codec);
        let fps = scenario.fps;
        let (w, h) = (scenario.width, scenario.height);
        let mut t = Tokens::default();
        let mut elements: Vec<&'static str> = BASE_ELEMENTS.to_vec();
        t.push_all(&["-e", "-v", "-X", "caps"]);

        // Source, decoded and shaped to the scenario.
        let mut input = None;
        let frame_limit = match &p.input {
            Some(_) => {
                if p.duration.is_some() {
                    // Neither gst-launch nor a stock element stops a decoded file after N frames
                    // reliably (identity eos-after does not stop decodebin): refuse rather than
                    // silently encode the whole file.
                    return Err(ExecError::InvalidParameter(
                        "the gstreamer engine cannot limit the duration of an input file; \
                         drop parameters.duration or use the ffmpeg engine"
                            .to_string(),
                    ));
                }
                let path = input_path(&plan.args)?;
                t.element("filesrc", &mut elements);
                t.push(format!("location={}", quote(&path.to_string_lossy())));
                input = Some(path);
                t.link_all(&["decodebin", "videoconvert", "videoscale", "videorate"], &mut elements);
                t.link(format!(
                    "video/x-raw,format=I420,width={w},height={h},framerate={fps}/1"
                ));
                None
            }
            None => {
                // The same duration FFmpeg's testsrc2 gets, as a number of frames.
                let d = p.duration.unwrap_or(config.default_duration_s);
                let n = (d * f64::from(fps)).round().max(1.0) as u64;
                t.element("videotestsrc", &mut elements);
                t.push(format!("num-buffers={n}"));
                t.push("pattern=smpte");
                if mode == OutputMode::Rtmp {
                    t.push("is-live=true");
                }
                t.link(format!("video/x-raw,width={w},height={h},framerate={fps}/1"));
                t.link("videoconvert");
                t.link("video/x-raw,format=I420");
                Some(n)
            }
        };

        // Counting and progress.
        t.link("identity");
        t.push(format!("name={FRAMES_ELEMENT}"));
        t.push("silent=false");
        t.link("progressreport");
        t.push(format!("name={PROGRESS_ELEMENT}"));
        t.push_all(&["update-freq=1", "silent=false"]);

        // Encoder.
        t.link(encoder);
        elements.push(encoder);
        let bps = match &p.bitrate {
            Some(b) => {
                Some(parse_bitrate(b).ok_or_else(|| ExecError::InvalidParameter(format!("invalid bitrate {b:?}")))?)
            }
            None => None,
        };
        push_encoder_options(&mut t, codec, p.preset.as_deref().unwrap_or("veryfast"), fps, bps)?;

        // Output.
        let mut output = None;
        match mode {
            OutputMode::File => {
                let path = plan
                    .output
                    .clone()
                    .ok_or_else(|| ExecError::io("planning the output", std::io::Error::other("no output path")))?;
                let (parser, mux) = match codec {
                    Codec::H264 => (Some("h264parse"), "mp4mux"),
                    Codec::H265 => (Some("h265parse"), "mp4mux"),
                    Codec::Av1 => (Some("av1parse"), "mp4mux"),
                    Codec::Vp9 => (None, "webmmux"),
                };
                if let Some(parser) = parser {
                    t.link(parser);
                    elements.push(parser);
                }
                t.link_all(&[mux, "filesink"], &mut elements);
                t.push(format!("location={}", quote(&path.to_string_lossy())));
                output = Some(path);
            }
            OutputMode::Null => t.link_all(&["fakesink"], &mut elements),
            OutputMode::Rtmp => {
                if codec != Codec::H264 {
                    return Err(ExecError::InvalidParameter(format!(
                        "rtmp output with the gstreamer engine carries h264 only (flvmux), not {codec}"
                    )));
                }
                // FfmpegCommand::build checked the endpoint; its URL is its last argument.
                let url = plan
                    .args
                    .last()
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default();
                t.link_all(&["h264parse", "flvmux"], &mut elements);
                t.push("streamable=true");
                t.link_all(&["rtmp2sink"], &mut elements);
                t.push(format!("location={}", quote(&url)));
            }
        }

        if let Some(available) = available {
            if let Some(missing) = elements.iter().find(|e| !available.contains(**e)) {
                return Err(ExecError::InvalidParameter(format!(
                    "this node's GStreamer has no {missing} element (needed for {codec} {} output)",
                    output_mode_name(mode)
                )));
            }
        }
        elements.sort_unstable();
        elements.dedup();
        Ok(GstPipeline {
            program: config.gst_launch_path.clone(),
            args: t.0,
            input,
            output,
            scenario,
            encoder,
            frame_limit,
            elements,
        })
    }

    /// The whole command line, program first, lossily converted to text (for logs and tests).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `gstreamer/<encoder element>`, as reported in [`JobResult::encoder`].
    pub fn encoder_label(&self) -> String {
        format!("gstreamer/{}", self.encoder)
    }
}

fn output_mode_name(mode: OutputMode) -> &'static str {
    match mode {
        OutputMode::File => "file",
        OutputMode::Null => "null",
        OutputMode::Rtmp => "rtmp",
    }
}

/// The resolved input of an FFmpeg plan: the argument after its `-i`.
fn input_path(ffmpeg_args: &[OsString]) -> Result<PathBuf, ExecError> {
    ffmpeg_args
        .iter()
        .position(|a| a == "-i")
        .and_then(|i| ffmpeg_args.get(i + 1))
        .map(PathBuf::from)
        .ok_or_else(|| ExecError::io("planning the input", std::io::Error::other("no input in the plan")))
}

/// A property value in double quotes, for gst-launch's parser: `\` and `"` escaped, so that
/// spaces, `!` and quotes in paths stay part of the value.
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Encoder properties: preset, keyframe interval (2 s, as the FFmpeg engine) and rate control.
fn push_encoder_options(
    t: &mut Tokens,
    codec: Codec,
    preset: &str,
    fps: u32,
    bps: Option<u64>,
) -> Result<(), ExecError> {
    let gop = fps * 2;
    let kbps = |max: u64, element: &str| -> Result<Option<u64>, ExecError> {
        match bps {
            None => Ok(None),
            Some(b) => {
                let k = (b + 500) / 1000;
                if k == 0 || k > max {
                    return Err(ExecError::InvalidParameter(format!(
                        "bitrate {b} bit/s is outside what {element} accepts (1..={max} kbit/s)"
                    )));
                }
                Ok(Some(k))
            }
        }
    };
    match codec {
        Codec::H264 | Codec::H265 => {
            let (element, max) = if codec == Codec::H264 {
                ("x264enc", 2_048_000)
            } else {
                ("x265enc", 102_400)
            };
            t.push(format!("speed-preset={preset}"));
            t.push(format!("key-int-max={gop}"));
            match kbps(max, element)? {
                Some(k) => t.push(format!("bitrate={k}")),
                // Constant quality 23, like FFmpeg's libx264 default CRF; x265enc keeps its
                // own default rate control.
                None if codec == Codec::H264 => t.push_all(&["pass=qual", "quantizer=23"]),
                None => {}
            }
        }
        Codec::Av1 => {
            // SVT-AV1 presets run 0 (slowest) ..= 12 (fastest).
            let n = match preset {
                "ultrafast" => 12,
                "superfast" => 11,
                "veryfast" => 10,
                "faster" => 9,
                "fast" => 8,
                "medium" => 7,
                "slow" => 5,
                "slower" => 4,
                "veryslow" => 2,
                _ => 0,
            };
            t.push(format!("preset={n}"));
            if let Some(k) = kbps(u64::from(u32::MAX), "svtav1enc")? {
                t.push(format!("target-bitrate={k}"));
            }
        }
        Codec::Vp9 => {
            // libvpx deadlines in microseconds: 1 = realtime, 1000000 = good.
            let (deadline, cpu_used) = match preset {
                "ultrafast" => (1, 8),
                "superfast" => (1, 7),
                "veryfast" => (1, 6),
                "faster" => (1_000_000, 5),
                "fast" => (1_000_000, 4),
                "medium" => (1_000_000, 3),
                "slow" => (1_000_000, 2),
                "slower" => (1_000_000, 1),
                _ => (1_000_000, 0),
            };
            t.push(format!("deadline={deadline}"));
            t.push(format!("cpu-used={cpu_used}"));
            t.push("row-mt=true");
            t.push(format!("keyframe-max-dist={gop}"));
            if let Some(b) = bps {
                if b > i32::MAX as u64 {
                    return Err(ExecError::InvalidParameter(format!(
                        "bitrate {b} bit/s is more than vp9enc accepts"
                    )));
                }
                t.push(format!("target-bitrate={b}"));
            }
        }
    }
    Ok(())
}

#[derive(Default)]
struct Tokens(Vec<OsString>);

impl Tokens {
    fn push(&mut self, a: impl Into<OsString>) {
        self.0.push(a.into());
    }
    fn push_all(&mut self, args: &[&str]) {
        self.0.extend(args.iter().map(OsString::from));
    }
    /// `! a`.
    fn link(&mut self, a: impl Into<OsString>) {
        self.push("!");
        self.push(a);
    }
    /// The first element of the pipeline.
    fn element(&mut self, e: &'static str, used: &mut Vec<&'static str>) {
        self.push(e);
        used.push(e);
    }
    /// `! a ! b …`, recording the elements.
    fn link_all(&mut self, es: &[&'static str], used: &mut Vec<&'static str>) {
        for e in es {
            self.link(*e);
            used.push(e);
        }
    }
}

/// Incremental parser of `gst-launch-1.0 -v` output of a [`GstPipeline`]: counts the frames
/// the `identity` reports (one `last-message = chain` line each, with its timestamp) and
/// returns a [`Progress`] for each `progressreport` line (once a second).
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_exec::gstreamer::GstProgressParser;
/// let mut p = GstProgressParser::new(30.0, Some(60));
/// let frame = "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* \
///              (ffrtmp_frames:sink) (1382400 bytes, dts: none, pts: 0:00:00.966666666, \
///              duration: 0:00:00.033333334, offset: 29, offset_end:  30, flags: 00000000 ) 0x5581";
/// for _ in 0..30 {
///     assert!(p.feed_line(frame, Duration::from_secs(1)).is_none());
/// }
/// let prog = p.feed_line("ffrtmp_progress (00:00:01): 1 / 2 seconds (50.0 %)", Duration::from_secs(1)).unwrap();
/// assert_eq!((prog.frame, prog.percent, prog.fps), (30, 50.0, 30.0));
/// assert!((prog.out_time_s - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Default)]
pub struct GstProgressParser {
    fps: f64,
    expected_frames: Option<u64>,
    frames: u64,
    out_time_s: f64,
    source_percent: f64,
    last: Option<Progress>,
    eos: bool,
}

impl GstProgressParser {
    /// A parser for an encode at `fps` frames per second, expected to produce
    /// `expected_frames` frames when known (the percent is then frames / expected; otherwise
    /// it is the source position over its duration, as `progressreport` says).
    pub fn new(fps: f64, expected_frames: Option<u64>) -> Self {
        GstProgressParser {
            fps: if fps.is_finite() && fps > 0.0 { fps } else { 0.0 },
            expected_frames: expected_frames.filter(|n| *n > 0),
            ..Default::default()
        }
    }

    /// Takes one stdout line; `elapsed` is the wall time since the pipeline started (for
    /// the rate and speed). Returns a progress block on each `progressreport` line.
    pub fn feed_line(&mut self, line: &str, elapsed: Duration) -> Option<Progress> {
        let line = line.trim();
        if line.contains(": last-message = chain") && line.contains(FRAMES_ELEMENT) {
            self.frames += 1;
            if let Some(pts) = field(line, "pts:").and_then(parse_clock) {
                let duration = field(line, "duration:").and_then(parse_clock).unwrap_or(0.0);
                self.out_time_s = self.out_time_s.max(pts + duration);
            } else if self.fps > 0.0 {
                self.out_time_s = self.out_time_s.max(self.frames as f64 / self.fps);
            }
            return None;
        }
        if line.starts_with("Got EOS from element") {
            self.eos = true;
            return None;
        }
        let report = line.strip_prefix(PROGRESS_ELEMENT)?.trim_start().strip_prefix('(')?;
        let (_, rest) = report.split_once("): ")?;
        // `1 / 2 seconds (50.0 %)`, or `1 seconds` when the duration is unknown.
        if let Some(pct) = rest
            .rsplit_once('(')
            .and_then(|(_, p)| p.trim_end_matches(')').trim().strip_suffix('%'))
        {
            if let Some(v) = pct.trim().parse::<f64>().ok().filter(|v| v.is_finite()) {
                self.source_percent = self.source_percent.max(v.clamp(0.0, 100.0));
            }
        } else if !rest.ends_with("seconds") {
            return None;
        }
        Some(self.block(elapsed))
    }

    /// The progress now, monotone with respect to earlier blocks.
    fn block(&mut self, elapsed: Duration) -> Progress {
        let secs = elapsed.as_secs_f64();
        let percent = match self.expected_frames {
            Some(n) => (self.frames as f64 / n as f64 * 100.0).clamp(0.0, 100.0),
            None => self.source_percent,
        };
        let mut p = Progress {
            frame: self.frames,
            fps: if secs > 0.0 { self.frames as f64 / secs } else { 0.0 },
            speed: if secs > 0.0 { self.out_time_s / secs } else { 0.0 },
            percent,
            out_time_s: self.out_time_s,
        };
        if let Some(last) = &self.last {
            p.percent = p.percent.max(last.percent);
        }
        self.last = Some(p.clone());
        p
    }

    /// The final block after the pipeline ended well: `frames` (at least those counted) and
    /// 100 %.
    pub fn finish(&mut self, frames: u64, elapsed: Duration) -> Progress {
        self.frames = self.frames.max(frames);
        if self.fps > 0.0 {
            self.out_time_s = self.out_time_s.max(self.frames as f64 / self.fps);
        }
        let mut p = self.block(elapsed);
        p.percent = 100.0;
        self.last = Some(p.clone());
        p
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Seconds of video through the encoder so far.
    pub fn out_time_s(&self) -> f64 {
        self.out_time_s
    }

    /// The latest block, if any.
    pub fn last(&self) -> Option<&Progress> {
        self.last.as_ref()
    }

    /// Whether gst-launch said the pipeline reached its end of stream.
    pub fn reached_eos(&self) -> bool {
        self.eos
    }
}

/// The text after `key` up to the next comma.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    Some(rest.split(',').next()?.trim())
}

/// `H:MM:SS.nnnnnnnnn` to seconds; `none` and garbage to `None`.
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.trim().parse().ok()?;
    let m: f64 = parts.next()?.trim().parse().ok()?;
    let sec: f64 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || ![h, m, sec].iter().all(|v| v.is_finite() && *v >= 0.0) {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + sec)
}

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
        let out = tokio::process::Command::new(launch)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
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
        let pipe = self.plan(job)?;
        if cancel.is_canceled() {
            return Ok(ExecOutcome::Canceled);
        }
        let limits = &job.spec.resource_limits;
        if job.spec.parameters.output_mode.unwrap_or_default() == OutputMode::File {
            let dir = &self.config.output_dir;
            std::fs::create_dir_all(dir).map_err(|e| {
                ExecError::NodeUnavailable(format!("output directory {} is not usable: {e}", dir.display()))
            })?;
            DiskUsage::of(dir)?.check(limits.max_disk_mb)?;
        }

        let mut spec = ProcessSpec::new(&pipe.program, pipe.args.iter().cloned());
        spec.grace = self.config.grace;
        spec.nice = self.nice;
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
        // A synthetic source that reached its end of stream produced exactly num-buffers.
        let frames = parser.frames().max(pipe.frame_limit.unwrap_or(0));
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
            },
        })
    }
}

/// Adds gst-launch's first error line to a failure message that does not quote it: the
/// last lines of stderr are often only the generic `Internal data stream error` and
/// `pipeline doesn't want to preroll`, while the cause came first.
fn with_first_error(outcome: ExecOutcome, stderr_tail: &[String]) -> ExecOutcome {
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
        match self.run(job, progress, cancel).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let error = JobError::from(e);
                if error.kind == ErrorKind::Internal {
                    tracing::warn!(job = %job.id, error = %error.message, "gstreamer job failed");
                }
                ExecOutcome::Failed { error }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, JobState};

    fn job(json: &str) -> Job {
        Job {
            id: JobId::new(),
            seq: 1,
            spec: serde_json::from_str::<JobSpec>(json).unwrap(),
            state: JobState::Running,
            attempt: 2,
            node_id: None,
            progress: None,
            result: None,
            error: None,
            retry_at_ms: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            history: vec![],
        }
    }

    fn argv(json: &str, config: &GstConfig) -> Result<(Job, GstPipeline), ExecError> {
        let j = job(json);
        let p = GstPipeline::build(&j, config, None)?;
        Ok((j, p))
    }

    fn cfg() -> GstConfig {
        GstConfig::new("/nonexistent/in", "/out")
    }

    /// The pipeline part, after the options.
    fn pipeline(p: &GstPipeline) -> String {
        p.argv()[5..].join(" ")
    }

    #[test]
    fn synthetic_h265_file() {
        let (j, p) = argv(
            r#"{"scenario":"1080p60-h265","parameters":{"duration":0.5,"bitrate":"5M","preset":"slow"}}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(&p.argv()[..5], ["gst-launch-1.0", "-e", "-v", "-X", "caps"]);
        assert_eq!(
            pipeline(&p),
            format!(
                "videotestsrc num-buffers=30 pattern=smpte ! video/x-raw,width=1920,height=1080,framerate=60/1 \
                 ! videoconvert ! video/x-raw,format=I420 ! identity name=ffrtmp_frames silent=false \
                 ! progressreport name=ffrtmp_progress update-freq=1 silent=false \
                 ! x265enc speed-preset=slow key-int-max=120 bitrate=5000 ! h265parse ! mp4mux \
                 ! filesink location=\"/out/{}-a2.mp4\"",
                j.id
            )
        );
        assert_eq!(p.encoder_label(), "gstreamer/x265enc");
        assert_eq!(p.frame_limit, Some(30));
        assert_eq!(p.output, Some(format!("/out/{}-a2.mp4", j.id).into()));
    }

    #[test]
    fn null_vp9_and_av1() {
        let (_, p) = argv(
            r#"{"scenario":"240p-vp9","parameters":{"duration":1,"output_mode":"null","preset":"medium"}}"#,
            &cfg(),
        )
        .unwrap();
        assert!(
            pipeline(&p).ends_with("! vp9enc deadline=1000000 cpu-used=3 row-mt=true keyframe-max-dist=60 ! fakesink"),
            "{}",
            pipeline(&p)
        );
        assert_eq!(p.output, None);
        let (j, p) = argv(r#"{"scenario":"720p-vp9","parameters":{"bitrate":"1M"}}"#, &cfg()).unwrap();
        let text = pipeline(&p);
        assert!(text.contains("target-bitrate=1000000 ! webmmux ! filesink"), "{text}");
        assert!(text.ends_with(&format!("{}-a2.webm\"", j.id)));
        assert!(!text.contains("parse"));
        let (_, p) = argv(r#"{"scenario":"720p-av1","parameters":{"bitrate":"1M"}}"#, &cfg()).unwrap();
        assert!(pipeline(&p).contains("! svtav1enc preset=10 target-bitrate=1000 ! av1parse ! mp4mux"));
    }

    #[test]
    fn missing_elements_are_refused_up_front() {
        let have: BTreeSet<String> = GST_ELEMENTS
            .iter()
            .filter(|e| **e != "svtav1enc")
            .map(|e| e.to_string())
            .collect();
        let j = job(r#"{"scenario":"720p-av1"}"#);
        let e = GstPipeline::build(&j, &cfg(), Some(&have)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert_eq!(
            e.to_string(),
            "this node's GStreamer has no svtav1enc element (needed for av1 file output)"
        );
        let j = job(r#"{"scenario":"720p-h264"}"#);
        assert!(GstPipeline::build(&j, &cfg(), Some(&have)).is_ok());
    }

    #[test]
    fn rtmp_and_parameter_checks() {
        let json = r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","duration":5}}"#;
        let e = argv(json, &cfg()).unwrap_err();
        assert_eq!(e.to_string(), "rtmp output needs a configured rtmp endpoint");
        let mut c = cfg();
        c.rtmp_url = Some("rtmp://media.local/live/{job_id}".into());
        let (j, p) = argv(json, &c).unwrap();
        let text = pipeline(&p);
        assert!(
            text.starts_with("videotestsrc num-buffers=150 pattern=smpte is-live=true !"),
            "{text}"
        );
        assert!(text.ends_with(&format!(
            "! h264parse ! flvmux streamable=true ! rtmp2sink location=\"rtmp://media.local/live/{}\"",
            j.id
        )));
        let e = argv(r#"{"scenario":"720p-h265","parameters":{"output_mode":"rtmp"}}"#, &c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let e = argv(r#"{"scenario":"720p-h265","parameters":{"bitrate":"200M"}}"#, &c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert!(e.to_string().contains("x265enc"), "{e}");
        let e = argv(r#"{"scenario":"720p-h264","parameters":{"encoder":"h264_nvenc"}}"#, &c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    }

    #[test]
    fn file_input_is_quoted_and_stays_inside() {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("in dir");
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("a !b\"c.mp4"), b"x").unwrap();
        std::fs::write(root.path().join("secret.mp4"), b"x").unwrap();
        let c = GstConfig::new(&input, root.path().join("out"));
        let (_, p) = argv(r#"{"scenario":"360p-h264","parameters":{"input":"a !b\"c.mp4"}}"#, &c).unwrap();
        let canon = input.canonicalize().unwrap();
        let expected = format!("location=\"{}/a !b\\\"c.mp4\"", canon.display());
        assert_eq!(p.argv()[6], expected);
        assert!(pipeline(&p).contains(
            "! decodebin ! videoconvert ! videoscale ! videorate \
             ! video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! identity"
        ));
        assert_eq!(p.frame_limit, None);
        let e = argv(r#"{"scenario":"360p-h264","parameters":{"input":"../secret.mp4"}}"#, &c).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let e = argv(
            r#"{"scenario":"360p-h264","parameters":{"input":"a !b\"c.mp4","duration":1}}"#,
            &c,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert!(e.to_string().contains("cannot limit the duration"), "{e}");
    }

    /// Captured from `gst-launch-1.0 -e -v -X caps` (GStreamer 1.22), abridged.
    const CAPTURED: &str = concat!(
        "Setting pipeline to PAUSED ...\n",
        "Pipeline is PREROLLING ...\n",
        "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = event   ******* ",
        "(ffrtmp_frames:sink) E (type: stream-start (10254), GstEventStreamStart, ",
        "stream-id=(string)4e64;) 0x7fc9\n",
        "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
        "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.000000000, duration: ",
        "0:00:00.033333333, offset: 0, offset_end:  1, flags: 00000040 discont , meta: ",
        "GstVideoMeta) 0x7fc9\n",
        "ffrtmp_progress (00:00:00): 0 / 3 seconds ( 0.0 %)\n",
        "Pipeline is PREROLLED ...\n",
        "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
        "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.033333333, duration: ",
        "0:00:00.033333334, offset: 1, offset_end:  2, flags: 00000000 , meta: GstVideoMeta) ",
        "0x7fc9\n",
        "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* ",
        "(ffrtmp_frames:sink) (345600 bytes, dts: none, pts: 0:00:00.066666667, duration: ",
        "0:00:00.033333333, offset: 2, offset_end:  3, flags: 00000000 , meta: GstVideoMeta) ",
        "0x7fc9\n",
        "ffrtmp_progress (00:00:01): 1 / 3 seconds (33.3 %)\n",
        "ffrtmp_progress ( 0: 0: 1): Could not query position and/or duration\n",
        "ffrtmp_progress (00:00:02): 2 seconds\n",
        "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = event   ******* ",
        "(ffrtmp_frames:sink) E (type: eos (28174), ) 0x7fc9\n",
        "Got EOS from element \"pipeline0\".\n",
    );

    #[test]
    fn captured_output() {
        let mut p = GstProgressParser::new(30.0, None);
        let blocks: Vec<Progress> = CAPTURED
            .lines()
            .enumerate()
            .filter_map(|(i, l)| p.feed_line(l, Duration::from_millis(500 * i as u64)))
            .collect();
        assert_eq!(blocks.len(), 3);
        assert_eq!((blocks[0].frame, blocks[0].percent), (1, 0.0));
        assert_eq!(blocks[1].frame, 3);
        assert_eq!(blocks[1].percent, 33.3);
        assert!((blocks[1].out_time_s - 0.1).abs() < 1e-6, "{}", blocks[1].out_time_s);
        // A report without a duration keeps the percent.
        assert_eq!(blocks[2].percent, 33.3);
        assert!(blocks[1].fps > 0.0 && blocks[1].speed > 0.0);
        assert!(p.reached_eos());
        let last = p.finish(3, Duration::from_secs(2));
        assert_eq!((last.frame, last.percent), (3, 100.0));
        assert_eq!(p.frames(), 3);
    }

    #[test]
    fn percent_from_expected_frames_and_odd_lines() {
        let mut p = GstProgressParser::new(25.0, Some(100));
        let chain = "/X/GstIdentity:ffrtmp_frames: last-message = chain ******* (ffrtmp_frames:sink) \
                     (1 bytes, dts: none, pts: none, duration: none, offset: 0)";
        for _ in 0..25 {
            p.feed_line(chain, Duration::ZERO);
        }
        assert_eq!(p.out_time_s(), 1.0);
        let b = p
            .feed_line("ffrtmp_progress (00:00:00): 0 / 4 seconds ( 0.0 %)", Duration::ZERO)
            .unwrap();
        assert_eq!((b.frame, b.percent, b.fps, b.speed), (25, 25.0, 0.0, 0.0));
        for junk in [
            "",
            "garbage",
            "ffrtmp_progress",
            "ffrtmp_progress (",
            "ffrtmp_progress (x): 3 buffers",
        ] {
            assert!(p.feed_line(junk, Duration::ZERO).is_none(), "{junk:?}");
        }
        assert_eq!(parse_clock("0:01:02.500000000"), Some(62.5));
        assert_eq!(parse_clock("none"), None);
        assert_eq!(parse_clock("-1:00:00"), None);
    }

    #[test]
    fn first_error_is_quoted() {
        let tail: Vec<String> = [
            "ERROR: from element /GstPipeline:pipeline0/GstFileSrc:filesrc0: Resource not found.",
            "Additional debug info:",
            "ERROR: pipeline doesn't want to preroll.",
        ]
        .map(String::from)
        .to_vec();
        let failed = ExecOutcome::Failed {
            error: JobError::new(
                ErrorKind::EncodeError,
                "gst-launch-1.0 exited with status 1: Additional debug info:",
            ),
        };
        let ExecOutcome::Failed { error } = with_first_error(failed, &tail) else {
            panic!()
        };
        assert_eq!(
            error.message,
            "gst-launch-1.0 exited with status 1: Additional debug info: (first error: ERROR: from element \
             /GstPipeline:pipeline0/GstFileSrc:filesrc0: Resource not found.)"
        );
        assert_eq!(with_first_error(ExecOutcome::Canceled, &tail), ExecOutcome::Canceled);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(r#"/a b/c"d\e"#), r#""/a b/c\"d\\e""#);
    }
}
