//! [`GstPipeline`]: the `gst-launch-1.0` command line of a job.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{Codec, Job, OutputMode, Scenario};

use crate::command::FfmpegCommand;
use crate::error::ExecError;

use super::{encoder_element, GstConfig, BASE_ELEMENTS, FRAMES_ELEMENT, PROGRESS_ELEMENT, RATE_ELEMENT, SENT_ELEMENT};

#[cfg(doc)]
use super::GstExecutor;
#[cfg(doc)]
use ffrtmp_core::JobResult;

/// The `gst-launch-1.0` invocation for one job attempt, and what to expect from it.
///
/// ```
/// use ffrtmp_core::{Job, JobId, JobSpec, JobState};
/// use ffrtmp_exec::gstreamer::{GstConfig, GstPipeline};
///
/// let mut spec = JobSpec::new("720p-h264");
/// spec.parameters.duration = Some(2.0);
/// spec.parameters.bitrate = Some("2M".into());
/// let job = Job { state: JobState::Running, attempt: 1, ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0) };
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
    /// The live destination, for [`OutputMode::Rtmp`].
    pub destination: Option<String>,
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
        if crate::live::is_abr(job) {
            // One pipeline per output here; the ladder is one FFmpeg process.
            return Err(ExecError::InvalidParameter(
                "live-abr (a ladder of renditions) runs on the ffmpeg engine".to_string(),
            ));
        }
        let plan = FfmpegCommand::build(job, &config.as_ffmpeg())?;
        if plan.encoder != plan.scenario.codec.software_encoder() {
            // Hardware encoders run on the FFmpeg engine only (`engine: auto` falls back to it).
            return Err(ExecError::InvalidParameter(format!(
                "encoder {} is not supported by the GStreamer engine",
                plan.encoder
            )));
        }
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
            None if p.input_url.is_some() => {
                if p.duration.is_some() {
                    return Err(ExecError::InvalidParameter(
                        "the gstreamer engine cannot limit the duration of a live source; \
                         drop parameters.duration or use the ffmpeg engine"
                            .to_string(),
                    ));
                }
                // FfmpegCommand::build checked the source against the node's allowed prefixes.
                let url = plan
                    .args
                    .iter()
                    .position(|a| a == "-i")
                    .and_then(|i| plan.args.get(i + 1))
                    .map(|a| a.to_string_lossy().into_owned())
                    .unwrap_or_default();
                t.element("rtmp2src", &mut elements);
                t.push(format!("location={}", quote(&url)));
                t.link_all(&["decodebin", "videoconvert", "videoscale", "videorate"], &mut elements);
                live_rate_readings(&mut t, mode);
                t.link(format!(
                    "video/x-raw,format=I420,width={w},height={h},framerate={fps}/1"
                ));
                None
            }
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
                // hlsdemux and friends may fetch what a playlist names (over any protocol
                // GStreamer has); FFmpeg's whitelist confines those, so playlists go there.
                if crate::input::sniff(&path)? != crate::input::InputKind::Media {
                    return Err(ExecError::InvalidParameter(
                        "the gstreamer engine does not take playlist inputs (HLS or concat lists); \
                         use the ffmpeg engine"
                            .to_string(),
                    ));
                }
                // gst-launch's quoted strings cannot carry a backslash safely (a trailing one
                // escapes the closing quote); such inputs go to the ffmpeg engine.
                let text = path.to_str().filter(|t| !t.contains('\\')).ok_or_else(|| {
                    ExecError::InvalidParameter(
                        "the gstreamer engine cannot take an input path containing a backslash or bytes \
                         that are not UTF-8; use the ffmpeg engine"
                            .to_string(),
                    )
                })?;
                t.element("filesrc", &mut elements);
                t.push(format!("location={}", quote(text)));
                input = Some(path);
                t.link_all(&["decodebin", "videoconvert", "videoscale", "videorate"], &mut elements);
                live_rate_readings(&mut t, mode);
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
                if mode == OutputMode::Rtmp {
                    // Keeps a live push at the scenario's rate and counts what that took.
                    t.link_all(&["videorate"], &mut elements);
                    live_rate_readings(&mut t, mode);
                }
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
        let mut destination = None;
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
                if crate::live::muxer_for(&url) != "flv" {
                    return Err(ExecError::InvalidParameter(format!(
                        "the gstreamer engine pushes rtmp only, not {url}; use the ffmpeg engine"
                    )));
                }
                // Counts the encoded bytes and stream time going to the server.
                t.link("identity");
                t.push(format!("name={SENT_ELEMENT}"));
                t.push("silent=false");
                t.link_all(&["h264parse", "flvmux"], &mut elements);
                t.push("streamable=true");
                t.link_all(&["rtmp2sink"], &mut elements);
                t.push(format!("location={}", quote(&url)));
                destination = Some(url);
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
            destination,
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

/// Names the `videorate` just linked and, for a live push, has it print its dropped and
/// duplicated counts whenever they change (read by [`super::live::LiveReadings`]).
fn live_rate_readings(t: &mut Tokens, mode: OutputMode) {
    if mode == OutputMode::Rtmp {
        t.push(format!("name={RATE_ELEMENT}"));
        t.push("silent=false");
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
pub(super) fn quote(value: &str) -> String {
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
