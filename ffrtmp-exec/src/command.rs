//! Building the FFmpeg command line of a job: [`FfmpegConfig`] and [`FfmpegCommand`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ffrtmp_core::spec::parse_bitrate;
use ffrtmp_core::{Codec, Job, OutputMode, Scenario};

use crate::detect::{self, HwFamily};
use crate::error::ExecError;

/// Node-side settings of the FFmpeg engine.
#[derive(Clone, Debug, PartialEq)]
pub struct FfmpegConfig {
    /// The `ffmpeg` binary; a bare name is looked up in `PATH`.
    pub ffmpeg_path: PathBuf,
    /// Jobs may only read files under this directory (`parameters.input` is relative to it).
    pub input_dir: PathBuf,
    /// Output files are written here as `<job_id>-a<attempt>.<ext>`.
    pub output_dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when a job is canceled or times out.
    pub grace: Duration,
    /// Seconds encoded when a job gives no `parameters.duration`.
    pub default_duration_s: f64,
    /// RTMP endpoint for `output_mode: rtmp`; `{job_id}` in it is replaced by the job id.
    /// `None`: RTMP jobs fail with `invalid_parameter` unless they name an allowed
    /// `parameters.output_url`.
    pub rtmp_url: Option<String>,
    /// Prefixes (`rtmp://host:port/app/`, `srt://host:port`) a job's `parameters.output_url`
    /// must start with; empty: jobs push only to [`rtmp_url`](Self::rtmp_url).
    pub allow_output_prefixes: Vec<String>,
    /// Prefixes (`rtmp://host:port/app/`) a job's `parameters.input_url` must start with;
    /// empty: no live sources.
    pub allow_input_prefixes: Vec<String>,
    /// Reconnects and real-time limit of live jobs.
    pub live: crate::live::LiveSettings,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        FfmpegConfig {
            ffmpeg_path: PathBuf::from("ffmpeg"),
            input_dir: PathBuf::from("/var/lib/ffrtmp/input"),
            output_dir: PathBuf::from("/var/lib/ffrtmp/output"),
            grace: Duration::from_secs(10),
            default_duration_s: 10.0,
            rtmp_url: None,
            allow_output_prefixes: Vec::new(),
            allow_input_prefixes: Vec::new(),
            live: crate::live::LiveSettings::default(),
        }
    }
}

impl FfmpegConfig {
    /// The defaults with the given input and output directories.
    pub fn new(input_dir: impl Into<PathBuf>, output_dir: impl Into<PathBuf>) -> Self {
        FfmpegConfig {
            input_dir: input_dir.into(),
            output_dir: output_dir.into(),
            ..FfmpegConfig::default()
        }
    }

    /// The live routes of this configuration.
    pub fn live_routes(&self) -> crate::live::LiveRoutes<'_> {
        crate::live::LiveRoutes {
            rtmp_url: self.rtmp_url.as_deref(),
            output_prefixes: self.allow_output_prefixes.clone(),
            input_prefixes: self.allow_input_prefixes.clone(),
        }
    }
}

/// The FFmpeg invocation for one job attempt, and what to expect from it.
///
/// ```
/// use ffrtmp_core::{Job, JobId, JobSpec, JobState};
/// use ffrtmp_exec::{FfmpegCommand, FfmpegConfig};
///
/// let mut spec = JobSpec::new("720p-h264");
/// spec.parameters.duration = Some(2.0);
/// let job = Job { state: JobState::Running, attempt: 1, ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0) };
/// let cmd = FfmpegCommand::build(&job, &FfmpegConfig::new("/srv/in", "/srv/out")).unwrap();
/// let argv = cmd.argv().join(" ");
/// assert!(argv.starts_with("ffmpeg -hide_banner -nostdin -loglevel error -nostats -progress pipe:1"));
/// assert!(argv.contains("-f lavfi -i testsrc2=size=1280x720:rate=30:duration=2"));
/// assert!(argv.contains("-c:v libx264 -preset veryfast"));
/// assert_eq!(cmd.output, Some(format!("/srv/out/{}-a1.mp4", job.id).into()));
/// assert_eq!(cmd.encoder_label(), "ffmpeg/libx264");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FfmpegCommand {
    /// The program (from [`FfmpegConfig::ffmpeg_path`]).
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<OsString>,
    /// The output file, for [`OutputMode::File`].
    pub output: Option<PathBuf>,
    /// The effective scenario (parameters applied).
    pub scenario: Scenario,
    /// The FFmpeg encoder, e.g. `libx264`.
    pub encoder: &'static str,
    /// Seconds of output expected, when known (always for the synthetic source).
    pub expected_duration_s: Option<f64>,
}

impl FfmpegCommand {
    /// Builds the command for `job`, refusing parameters this node cannot honour.
    ///
    /// Reads the file system only to resolve `parameters.input` inside the input directory
    /// (with every file a playlist input names: see [`crate::input`]).
    pub fn build(job: &Job, config: &FfmpegConfig) -> Result<FfmpegCommand, ExecError> {
        let scenario = job
            .spec
            .check()
            .map_err(|e| ExecError::InvalidParameter(e.to_string()))?
            .clone();
        let p = &job.spec.parameters;
        let codec = scenario.codec;
        let (encoder, hw) = match p.encoder.as_deref() {
            None => (codec.software_encoder(), None),
            Some(asked) if asked == codec.software_encoder() => (codec.software_encoder(), None),
            // A hardware encoder: the job only reaches nodes that advertised it, i.e. whose
            // test encode passed (`detect::hardware_encoders`), so the hardware is not re-checked.
            Some(asked) => match detect::hardware_encoder(asked) {
                Some((name, family)) if Codec::of_encoder(name) == Some(codec) => (name, Some(family)),
                _ => {
                    return Err(ExecError::InvalidParameter(format!(
                        "encoder {asked} is not supported by this FFmpeg engine; for {codec} it uses {} or a \
                         hardware encoder ({})",
                        codec.software_encoder(),
                        detect::HW_ENCODERS
                            .iter()
                            .filter(|(n, _)| Codec::of_encoder(n) == Some(codec))
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )))
                }
            },
        };
        let upload = hw.and_then(HwFamily::upload_filter);
        let mode = p.output_mode.unwrap_or_default();
        // Live routes are decided before anything runs: a refused URL never reaches FFmpeg.
        let routes = config.live_routes();
        let live_input = routes.input_url(job)?;
        let live_output = match mode {
            OutputMode::Rtmp => Some(routes.output_url(job)?),
            _ => None,
        };
        let mut a = Args::default();
        a.push_all(&[
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-nostats",
            "-progress",
            "pipe:1",
        ]);
        a.push("-y");
        if let Some(family) = hw {
            for arg in family.device_args(Path::new(detect::DEFAULT_VAAPI_DEVICE)) {
                a.push(arg);
            }
        }

        // Input.
        let expected_duration_s;
        if let Some(url) = &live_input {
            // A live source paces itself: no -re. Only network protocols a live URL needs.
            // The duration limits the input (before -i), so that every output of a ladder stops.
            if let Some(d) = p.duration {
                a.push("-t");
                a.push(fmt_secs(d));
            }
            a.push_all(&["-protocol_whitelist", "rtmp,rtmps,tcp,tls", "-i"]);
            a.push(url);
            a.push("-vf");
            let scale = format!("scale={}:{}", scenario.width, scenario.height);
            a.push(match upload {
                Some(up) => format!("{scale},{up}"),
                None => scale,
            });
            a.push("-r");
            a.push(scenario.fps.to_string());
            expected_duration_s = p.duration;
        } else if let Some(input) = &p.input {
            let (path, kind) = crate::input::resolve_input(&config.input_dir, input)?;
            if mode == OutputMode::Rtmp {
                a.push("-re");
            }
            // Only ordinary containers (no manifest demuxer but the checked playlist's own)
            // and only local files, plain or AES-128 decrypted, whatever a playlist names.
            a.push("-format_whitelist");
            a.push(crate::input::format_whitelist(kind));
            a.push_all(&["-protocol_whitelist", "file,crypto", "-i"]);
            a.push(path);
            if let Some(d) = p.duration {
                a.push("-t");
                a.push(fmt_secs(d));
            }
            a.push("-vf");
            let scale = format!("scale={}:{}", scenario.width, scenario.height);
            a.push(match upload {
                Some(up) => format!("{scale},{up}"),
                None => scale,
            });
            a.push("-r");
            a.push(scenario.fps.to_string());
            expected_duration_s = p.duration;
        } else {
            let d = p.duration.unwrap_or(config.default_duration_s);
            if mode == OutputMode::Rtmp {
                a.push("-re");
            }
            a.push_all(&["-f", "lavfi", "-i"]);
            a.push(format!(
                "testsrc2=size={}x{}:rate={}:duration={}",
                scenario.width,
                scenario.height,
                scenario.fps,
                fmt_secs(d)
            ));
            expected_duration_s = Some(d);
            if let Some(up) = upload {
                a.push_all(&["-vf", up]);
            }
        }

        // Encoder.
        a.push("-an");
        a.push_all(&["-c:v", encoder]);
        if let Some(b) = &p.bitrate {
            let bps = parse_bitrate(b).ok_or_else(|| ExecError::InvalidParameter(format!("invalid bitrate {b:?}")))?;
            a.push("-b:v");
            a.push(bps.to_string());
        }
        let preset = p.preset.as_deref().unwrap_or("veryfast");
        match hw {
            None => push_preset(&mut a, codec, preset),
            Some(family) => push_hw_preset(&mut a, family, preset),
        }
        if upload.is_none() {
            // Device frames (after `hwupload`) carry their own format.
            a.push_all(&["-pix_fmt", "yuv420p"]);
        }
        a.push("-g");
        a.push((scenario.fps * 2).to_string());

        // Output.
        let mut output = None;
        match mode {
            OutputMode::File => {
                let path = config
                    .output_dir
                    .join(format!("{}-a{}.{}", job.id, job.attempt, container_ext(codec)));
                a.push(path.clone());
                output = Some(path);
            }
            OutputMode::Null => a.push_all(&["-f", "null", "-"]),
            OutputMode::Rtmp => {
                let url = live_output.unwrap_or_default();
                a.push_all(&["-f", crate::live::muxer_for(&url)]);
                a.push(url);
            }
        }

        Ok(FfmpegCommand {
            program: config.ffmpeg_path.clone(),
            args: a.0,
            output,
            scenario,
            encoder,
            expected_duration_s,
        })
    }

    /// The whole command line, program first, lossily converted to text (for logs and tests).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(|a| a.as_os_str()))
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// `ffmpeg/<encoder>`, as reported in [`JobResult::encoder`](ffrtmp_core::JobResult).
    pub fn encoder_label(&self) -> String {
        format!("ffmpeg/{}", self.encoder)
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push(&mut self, a: impl Into<OsString>) {
        self.0.push(a.into());
    }
    fn push_all(&mut self, args: &[&str]) {
        self.0.extend(args.iter().map(OsString::from));
    }
}

/// Seconds without a trailing `.0` (`2`, `2.5`).
fn fmt_secs(d: f64) -> String {
    format!("{d}")
}

/// The container for a codec: WebM for VP9, MP4 otherwise.
fn container_ext(codec: Codec) -> &'static str {
    match codec {
        Codec::Vp9 => "webm",
        Codec::H264 | Codec::H265 | Codec::Av1 => "mp4",
    }
}

/// Maps an x264-style preset name onto each encoder's own speed control.
fn push_preset(a: &mut Args, codec: Codec, preset: &str) {
    match codec {
        Codec::H264 | Codec::H265 => a.push_all(&["-preset", preset]),
        Codec::Av1 => {
            // SVT-AV1 presets run 0 (slowest) ..= 13 (fastest).
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
            a.push("-preset");
            a.push(n.to_string());
        }
        Codec::Vp9 => {
            let (deadline, cpu_used) = match preset {
                "ultrafast" => ("realtime", 8),
                "superfast" => ("realtime", 7),
                "veryfast" => ("realtime", 6),
                "faster" => ("good", 5),
                "fast" => ("good", 4),
                "medium" => ("good", 3),
                "slow" => ("good", 2),
                "slower" => ("good", 1),
                _ => ("good", 0),
            };
            a.push_all(&["-deadline", deadline, "-cpu-used"]);
            a.push(cpu_used.to_string());
            a.push_all(&["-row-mt", "1"]);
        }
    }
}

/// Maps an x264-style preset name onto a hardware encoder's: NVENC `p1` (fastest) ..= `p7`,
/// QSV its own names (`veryfast` ..= `veryslow`); VAAPI has none.
fn push_hw_preset(a: &mut Args, family: HwFamily, preset: &str) {
    match family {
        HwFamily::Nvenc => {
            let p = match preset {
                "ultrafast" | "superfast" => "p1",
                "veryfast" => "p2",
                "faster" | "fast" => "p3",
                "medium" => "p4",
                "slow" => "p6",
                _ => "p7",
            };
            a.push_all(&["-preset", p]);
        }
        HwFamily::Qsv => {
            let p = match preset {
                "ultrafast" | "superfast" | "veryfast" => "veryfast",
                "faster" | "fast" | "medium" | "slow" | "slower" => preset,
                _ => "veryslow",
            };
            a.push_all(&["-preset", p]);
        }
        HwFamily::Vaapi => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, JobState};

    fn job(json: &str) -> Job {
        Job {
            state: JobState::Running,
            attempt: 2,
            ..Job::submitted(
                JobId::new(),
                1,
                ffrtmp_core::ValidSpec::stored(serde_json::from_str::<JobSpec>(json).unwrap()).unwrap(),
                0,
            )
        }
    }

    fn argv(json: &str, config: &FfmpegConfig) -> Result<(Job, Vec<String>), ExecError> {
        let j = job(json);
        let cmd = FfmpegCommand::build(&j, config)?;
        Ok((j, cmd.argv()))
    }

    fn cfg() -> FfmpegConfig {
        FfmpegConfig::new("/nonexistent/in", "/out")
    }

    fn after<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
        argv.iter().position(|a| a == flag).map(|i| argv[i + 1].as_str())
    }

    #[test]
    fn synthetic_file_output() {
        let (j, a) = argv(
            r#"{"scenario":"1080p60-h264","parameters":{"duration":3,"bitrate":"5M"}}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            &a[..9],
            [
                "ffmpeg",
                "-hide_banner",
                "-nostdin",
                "-loglevel",
                "error",
                "-nostats",
                "-progress",
                "pipe:1",
                "-y"
            ]
        );
        assert_eq!(after(&a, "-f"), Some("lavfi"));
        assert_eq!(after(&a, "-i"), Some("testsrc2=size=1920x1080:rate=60:duration=3"));
        assert_eq!(after(&a, "-c:v"), Some("libx264"));
        assert_eq!(after(&a, "-b:v"), Some("5000000"));
        assert_eq!(after(&a, "-preset"), Some("veryfast"));
        assert_eq!(after(&a, "-pix_fmt"), Some("yuv420p"));
        assert_eq!(after(&a, "-g"), Some("120"));
        assert_eq!(a.last().unwrap(), &format!("/out/{}-a2.mp4", j.id));
    }

    #[test]
    fn default_duration_and_null_output() {
        let mut c = cfg();
        c.default_duration_s = 7.5;
        let (_, a) = argv(
            r#"{"scenario":"720p-h265","parameters":{"output_mode":"null","preset":"slow"}}"#,
            &c,
        )
        .unwrap();
        assert_eq!(after(&a, "-i"), Some("testsrc2=size=1280x720:rate=30:duration=7.5"));
        assert_eq!(after(&a, "-c:v"), Some("libx265"));
        assert_eq!(after(&a, "-preset"), Some("slow"));
        assert_eq!(&a[a.len() - 3..], ["-f", "null", "-"]);
        assert!(!a.iter().any(|x| x == "-b:v"));
    }

    #[test]
    fn av1_and_vp9_presets() {
        let (_, a) = argv(r#"{"scenario":"1080p-av1"}"#, &cfg()).unwrap();
        assert_eq!(after(&a, "-c:v"), Some("libsvtav1"));
        assert_eq!(after(&a, "-preset"), Some("10"));
        let (j, a) = argv(r#"{"scenario":"720p-vp9","parameters":{"preset":"medium"}}"#, &cfg()).unwrap();
        assert_eq!(after(&a, "-c:v"), Some("libvpx-vp9"));
        assert_eq!(after(&a, "-deadline"), Some("good"));
        assert_eq!(after(&a, "-cpu-used"), Some("3"));
        assert!(!a.iter().any(|x| x == "-preset"));
        assert!(a.last().unwrap().ends_with(&format!("{}-a2.webm", j.id)));
    }

    #[test]
    fn rtmp_needs_an_endpoint() {
        let json = r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp"}}"#;
        let err = argv(json, &cfg()).unwrap_err();
        assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter);
        assert_eq!(err.to_string(), "rtmp output needs a configured rtmp endpoint");
        let mut c = cfg();
        c.rtmp_url = Some("rtmp://media.local/live/{job_id}".into());
        let (j, a) = argv(json, &c).unwrap();
        assert_eq!(&a[a.len() - 3..a.len() - 1], ["-f", "flv"]);
        assert_eq!(a.last().unwrap(), &format!("rtmp://media.local/live/{}", j.id));
        assert!(a.iter().any(|x| x == "-re"));
    }

    #[test]
    fn input_files_stay_inside_the_input_directory() {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("clip.mp4"), b"x").unwrap();
        std::fs::write(root.path().join("secret.mp4"), b"x").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret.mp4"), input.join("link.mp4")).unwrap();
        let c = FfmpegConfig::new(&input, root.path().join("out"));

        let (_, a) = argv(
            r#"{"scenario":"720p-h264","parameters":{"input":"clip.mp4","duration":4}}"#,
            &c,
        )
        .unwrap();
        let canon = input.canonicalize().unwrap().join("clip.mp4");
        assert_eq!(after(&a, "-i"), Some(canon.to_str().unwrap()));
        let i = a.iter().position(|x| x == "-i").unwrap();
        assert_eq!(&a[i - 2..i], ["-protocol_whitelist", "file,crypto"], "{a:?}");
        let formats = after(&a, "-format_whitelist").unwrap();
        assert!(formats.split(',').any(|f| f == "mov"), "{formats}");
        assert!(
            !formats.split(',').any(|f| ["hls", "concat", "dash"].contains(&f)),
            "no manifest demuxer for a media file: {formats}"
        );
        assert_eq!(after(&a, "-t"), Some("4"));
        assert_eq!(after(&a, "-vf"), Some("scale=1280:720"));
        assert!(!a.iter().any(|x| x == "lavfi"));
        std::fs::write(input.join("list.m3u8"), "#EXTM3U\nclip.mp4\n#EXT-X-ENDLIST\n").unwrap();
        let (_, hls) = argv(r#"{"scenario":"720p-h264","parameters":{"input":"list.m3u8"}}"#, &c).unwrap();
        let formats = after(&hls, "-format_whitelist").unwrap();
        assert!(formats.split(',').any(|f| f == "hls"), "{formats}");
        assert!(!formats.split(',').any(|f| f == "concat"), "{formats}");

        for bad in ["link.mp4", "missing.mp4"] {
            let json = format!(r#"{{"scenario":"720p-h264","parameters":{{"input":"{bad}"}}}}"#);
            let err = argv(&json, &c).unwrap_err();
            assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter, "{bad}: {err}");
        }
        // `..` never reaches the file system: the spec refuses it.
        let err = argv(r#"{"scenario":"720p-h264","parameters":{"input":"../secret.mp4"}}"#, &c).unwrap_err();
        assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter);
    }

    #[test]
    fn hardware_encoders_are_refused_not_faked() {
        // NVENC: no device options, system frames, p1..p7 presets.
        let (j, a) = argv(
            r#"{"scenario":"720p-h264","parameters":{"encoder":"h264_nvenc","bitrate":"4M","preset":"medium"}}"#,
            &cfg(),
        )
        .unwrap();
        let expected = format!(
            "ffmpeg -hide_banner -nostdin -loglevel error -nostats -progress pipe:1 -y \
             -f lavfi -i testsrc2=size=1280x720:rate=30:duration=10 \
             -an -c:v h264_nvenc -b:v 4000000 -preset p4 -pix_fmt yuv420p -g 60 /out/{}-a2.mp4",
            j.id
        );
        assert_eq!(a.join(" "), expected);
        let cmd = FfmpegCommand::build(&j, &cfg()).unwrap();
        assert_eq!(cmd.encoder_label(), "ffmpeg/h264_nvenc");

        // VAAPI: the render node before the input, upload after it, no preset, no -pix_fmt.
        let (_, a) = argv(
            r#"{"scenario":"720p-h265","parameters":{"encoder":"hevc_vaapi","output_mode":"null","preset":"slow"}}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            a.join(" "),
            "ffmpeg -hide_banner -nostdin -loglevel error -nostats -progress pipe:1 -y \
             -vaapi_device /dev/dri/renderD128 -f lavfi -i testsrc2=size=1280x720:rate=30:duration=10 \
             -vf format=nv12,hwupload -an -c:v hevc_vaapi -g 60 -f null -"
        );

        // QSV: a QSV device, upload into QSV frames, its own preset names.
        let (_, a) = argv(
            r#"{"scenario":"720p-h264","parameters":{"encoder":"h264_qsv","output_mode":"null","bitrate":"2500k"}}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(
            a.join(" "),
            "ffmpeg -hide_banner -nostdin -loglevel error -nostats -progress pipe:1 -y \
             -init_hw_device qsv=hw -filter_hw_device hw -f lavfi -i testsrc2=size=1280x720:rate=30:duration=10 \
             -vf format=nv12,hwupload=extra_hw_frames=64,format=qsv \
             -an -c:v h264_qsv -b:v 2500000 -preset veryfast -g 60 -f null -"
        );

        // Neither our software encoder nor a known hardware encoder: refused, not run in software.
        let err = argv(
            r#"{"scenario":"720p-h264","parameters":{"encoder":"h264_magic"}}"#,
            &cfg(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter);
        assert!(err.to_string().contains("h264_magic"), "{err}");
        assert!(err.to_string().contains("h264_nvenc, h264_qsv, h264_vaapi"), "{err}");
        let (_, a) = argv(r#"{"scenario":"720p-h264","parameters":{"encoder":"libx264"}}"#, &cfg()).unwrap();
        assert_eq!(after(&a, "-c:v"), Some("libx264"));
    }

    #[test]
    fn hardware_encoders_with_an_input_file_and_per_family_presets() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("clip.mp4"), b"x").unwrap();
        let c = FfmpegConfig::new(root.path(), "/out");
        let (_, a) = argv(
            r#"{"scenario":"1080p-h264","parameters":{"input":"clip.mp4","encoder":"h264_vaapi"}}"#,
            &c,
        )
        .unwrap();
        assert_eq!(after(&a, "-vf"), Some("scale=1920:1080,format=nv12,hwupload"));
        assert_eq!(a.iter().filter(|x| *x == "-vf").count(), 1);
        let (_, a) = argv(
            r#"{"scenario":"1080p-h264","parameters":{"input":"clip.mp4","encoder":"h264_nvenc"}}"#,
            &c,
        )
        .unwrap();
        assert_eq!(after(&a, "-vf"), Some("scale=1920:1080"));
        assert_eq!(after(&a, "-preset"), Some("p2"));

        for (preset, nvenc, qsv) in [
            ("ultrafast", "p1", "veryfast"),
            ("veryfast", "p2", "veryfast"),
            ("fast", "p3", "fast"),
            ("medium", "p4", "medium"),
            ("slow", "p6", "slow"),
            ("veryslow", "p7", "veryslow"),
            ("placebo", "p7", "veryslow"),
        ] {
            for (enc, want) in [("hevc_nvenc", nvenc), ("hevc_qsv", qsv)] {
                let json =
                    format!(r#"{{"scenario":"720p-h265","parameters":{{"encoder":"{enc}","preset":"{preset}"}}}}"#);
                let (_, a) = argv(&json, &cfg()).unwrap();
                assert_eq!(after(&a, "-c:v"), Some(enc));
                assert_eq!(after(&a, "-preset"), Some(want), "{enc} {preset}");
            }
        }
        // AV1 and VP9 hardware encoders keep their container and drop the software options.
        let (j, a) = argv(r#"{"scenario":"720p-vp9","parameters":{"encoder":"vp9_qsv"}}"#, &cfg()).unwrap();
        assert!(!a.iter().any(|x| x == "-deadline" || x == "-row-mt"));
        assert!(a.last().unwrap().ends_with(&format!("{}-a2.webm", j.id)));
        let (_, a) = argv(
            r#"{"scenario":"1080p-av1","parameters":{"encoder":"av1_nvenc"}}"#,
            &cfg(),
        )
        .unwrap();
        assert_eq!(after(&a, "-preset"), Some("p2"));
    }

    #[test]
    fn invalid_spec_is_an_invalid_parameter() {
        let err = argv(r#"{"scenario":"720p-h264","parameters":{"duration":-1}}"#, &cfg()).unwrap_err();
        assert_eq!(err.kind(), ffrtmp_core::ErrorKind::InvalidParameter);
        assert!(err.to_string().contains("duration"));
    }
}
