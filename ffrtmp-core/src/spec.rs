//! What a user submits: [`JobSpec`] and its parts, with validation.

use serde::{Deserialize, Serialize};

use crate::bounds::{self, in_range, length, FieldError};
use crate::scenario::{Codec, Scenario, ScenarioError};

/// Which queue a job waits in; `live` is served before `default`, `default` before `batch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queue {
    /// Latency-sensitive work.
    Live,
    /// Ordinary work.
    #[default]
    Default,
    /// Throughput work that may wait.
    Batch,
}

/// Priority within a queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// First.
    High,
    /// Normal.
    #[default]
    Medium,
    /// Last.
    Low,
}

/// The transcoding engine a job asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Let the node choose (GStreamer for live work when installed, else FFmpeg).
    #[default]
    Auto,
    /// FFmpeg.
    Ffmpeg,
    /// GStreamer (`gst-launch-1.0`).
    Gstreamer,
}

impl EngineChoice {
    /// The engine's name as nodes advertise it (`ffmpeg`, `gstreamer`); `None` for `auto`,
    /// which any node can run.
    pub fn pinned(self) -> Option<&'static str> {
        match self {
            EngineChoice::Auto => None,
            EngineChoice::Ffmpeg => Some("ffmpeg"),
            EngineChoice::Gstreamer => Some("gstreamer"),
        }
    }
}

/// Whether a job's resource limits must be enforced, or may degrade to monitoring.
///
/// ```
/// use ffrtmp_core::{Enforcement, ResourceLimits};
/// let old: ResourceLimits = serde_json::from_str(r#"{"max_memory_mb":512}"#).unwrap();
/// assert_eq!(old.enforcement, Enforcement::BestEffort);
/// let strict: ResourceLimits = serde_json::from_str(r#"{"max_memory_mb":512,"enforcement":"required"}"#).unwrap();
/// assert_eq!(strict.enforcement, Enforcement::Required);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Enforced where the node can (a writable cgroup hierarchy with the cpu and memory
    /// controllers); elsewhere the job runs unlimited and its result says `not enforced`.
    #[default]
    BestEffort,
    /// Only nodes that advertise [`NodeRegistration::enforces_limits`](crate::NodeRegistration)
    /// are given the job; an agent that cannot enforce them after all fails the job
    /// `node_unavailable` rather than run it unlimited.
    Required,
}

impl Enforcement {
    fn is_best_effort(&self) -> bool {
        *self == Enforcement::BestEffort
    }
}

/// What the job is for; stored and reported, used to filter results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Classification {
    /// Real work.
    #[default]
    Production,
    /// Test traffic.
    Test,
    /// A benchmark run.
    Benchmark,
    /// Debugging.
    Debug,
}

/// Where the encoded stream goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputMode {
    /// A file in the node's output directory.
    #[default]
    File,
    /// Encode and discard (measures the encoder alone).
    Null,
    /// Stream to an RTMP endpoint configured on the node.
    Rtmp,
}

/// Encoding parameters. Every field is optional; the scenario supplies the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    /// Seconds of video to encode (synthetic source) or to take from the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Target bitrate, e.g. `"5M"`, `"2500k"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<String>,
    /// Encoder preset, e.g. `"veryfast"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Overrides the scenario's frame rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    /// Overrides the scenario's size, `"<w>x<h>"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Overrides the scenario's codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
    /// A specific encoder, e.g. `"h264_nvenc"`; only nodes that advertise it run the job.
    /// Absent: the node's encoder for the codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// Input file, relative to the node's input directory. Absent: synthetic `testsrc2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Where the output goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<OutputMode>,
    /// Live destination (`rtmp://…`, `srt://…`) for `output_mode: rtmp`; the node pushes
    /// there only when it matches one of its allowed output prefixes. Absent: the node's
    /// own RTMP URL template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_url: Option<String>,
    /// Live source (`rtmp://…`) to pull instead of a file or the synthetic source; the node
    /// reads it only when it matches one of its allowed input prefixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_url: Option<String>,
    /// Measure the output's quality against its source after the encode (`psnr`, `ssim` or
    /// `vmaf`); needs a file output. The result carries it as `quality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<crate::quality::QualityMetric>,
}

/// Limits enforced on the node while the job runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceLimits {
    /// CPU quota in percent of one core (200 = two cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cpu_percent: Option<u32>,
    /// Memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mb: Option<u64>,
    /// Scratch space the job needs, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disk_mb: Option<u64>,
    /// Wall-clock limit in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
    /// Whether the limits must be enforced ([`Enforcement`]); left out of the JSON when
    /// `best_effort`, so specs stored before it existed read the same.
    #[serde(default, skip_serializing_if = "Enforcement::is_best_effort")]
    pub enforcement: Enforcement,
}

fn default_max_retries() -> u32 {
    3
}

/// A job as submitted: the wire form, checked once into a [`ValidSpec`](crate::ValidSpec)
/// where it enters (a store's `submit`), which is what a [`Job`](crate::Job) carries.
///
/// The body of the original project is accepted as is:
///
/// ```
/// use ffrtmp_core::JobSpec;
/// let spec: JobSpec = serde_json::from_str(
///     r#"{"scenario":"1080p-h264","confidence":"auto","parameters":{"duration":300,"bitrate":"5M"}}"#,
/// ).unwrap();
/// let scenario = spec.validate().unwrap();
/// assert_eq!(scenario.height, 1080);
/// // Unknown fields are refused rather than silently dropped.
/// assert!(serde_json::from_str::<JobSpec>(r#"{"scenario":"720p-h264","bogus":1}"#).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Scenario name, see [`Scenario`].
    pub scenario: String,
    /// Confidence level of a benchmark run (`"auto"`, `"high"`, …); stored as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    /// Encoding parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Limits on the node.
    #[serde(default)]
    pub resource_limits: ResourceLimits,
    /// Queue.
    #[serde(default)]
    pub queue: Queue,
    /// Priority within the queue.
    #[serde(default)]
    pub priority: Priority,
    /// Engine.
    #[serde(default)]
    pub engine: EngineChoice,
    /// Purpose.
    #[serde(default)]
    pub classification: Classification,
    /// How many times a transient failure is retried.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
}

impl JobSpec {
    /// A spec for `scenario` with every other field at its default.
    pub fn new(scenario: impl Into<String>) -> Self {
        JobSpec {
            scenario: scenario.into(),
            confidence: None,
            parameters: Parameters::default(),
            resource_limits: ResourceLimits::default(),
            queue: Queue::default(),
            priority: Priority::default(),
            engine: EngineChoice::default(),
            classification: Classification::default(),
            max_retries: default_max_retries(),
        }
    }

    /// Checks every field against its bound (the constants of [`bounds`]) and
    /// returns the effective scenario (parameters applied). The error names the field and
    /// what is accepted. [`ValidSpec`](crate::ValidSpec) runs it once and keeps the
    /// scenario, so code holding a job reads `job.spec.scenario()` instead.
    ///
    /// ```
    /// use ffrtmp_core::JobSpec;
    /// let mut spec = JobSpec::new("720p-h264");
    /// spec.resource_limits.timeout_sec = Some(u64::MAX);
    /// let err = spec.validate().unwrap_err().to_string();
    /// assert!(err.contains("resource_limits.timeout_sec") && err.contains("604800"), "{err}");
    /// ```
    pub fn validate(&self) -> Result<Scenario, SpecError> {
        length("scenario", &self.scenario, 1, bounds::MAX_SCENARIO_LEN)?;
        let mut scenario = Scenario::parse(&self.scenario)?;
        if let Some(c) = &self.confidence {
            length("confidence", c, 0, bounds::MAX_LABEL_LEN)?;
        }
        self.parameters.apply(&mut scenario)?;
        self.resource_limits.validate()?;
        in_range("max_retries", self.max_retries, 0, bounds::MAX_RETRIES)?;
        Ok(scenario)
    }
}

impl Parameters {
    /// Checks the parameters and applies them to `scenario`.
    fn apply(&self, scenario: &mut Scenario) -> Result<(), SpecError> {
        if self.quality.is_some() && self.output_mode.is_some_and(|m| m != OutputMode::File) {
            return Err(SpecError::invalid(
                "parameters.quality",
                "needs a file output (output_mode \"file\"): there is nothing to measure otherwise",
            ));
        }
        if let Some(d) = self.duration {
            if !d.is_finite() || d <= 0.0 || d > bounds::MAX_DURATION_S {
                return Err(SpecError::invalid(
                    "parameters.duration",
                    &format!("must be > 0 and at most {} seconds, not {d}", bounds::MAX_DURATION_S),
                ));
            }
        }
        if let Some(b) = &self.bitrate {
            length("parameters.bitrate", b, 1, bounds::MAX_BITRATE_LEN)?;
            parse_bitrate(b).ok_or_else(|| {
                SpecError::invalid(
                    "parameters.bitrate",
                    &format!(
                        "expected a number with an optional k, M or G suffix, e.g. \"5M\", from {} to {} bit/s",
                        bounds::MIN_BITRATE_BPS,
                        bounds::MAX_BITRATE_BPS
                    ),
                )
            })?;
        }
        if let Some(preset) = &self.preset {
            if !PRESETS.contains(&preset.as_str()) {
                return Err(SpecError::invalid(
                    "parameters.preset",
                    &format!("expected one of {}", PRESETS.join(", ")),
                ));
            }
        }
        if let Some(fps) = self.fps {
            in_range("parameters.fps", fps, 1, bounds::MAX_FPS)?;
            scenario.fps = fps;
        }
        if let Some(res) = &self.resolution {
            let (w, h) = parse_resolution(res).ok_or_else(|| {
                SpecError::invalid(
                    "parameters.resolution",
                    &format!(
                        "expected <width>x<height>, even numbers, {}..={}",
                        bounds::MIN_DIMENSION,
                        bounds::MAX_DIMENSION
                    ),
                )
            })?;
            scenario.width = w;
            scenario.height = h;
        }
        if let Some(codec) = &self.codec {
            length("parameters.codec", codec, 1, bounds::MAX_LABEL_LEN)?;
            scenario.codec = codec.parse::<Codec>()?;
        }
        if let Some(encoder) = &self.encoder {
            let well_formed = !encoder.is_empty()
                && encoder.len() <= bounds::MAX_LABEL_LEN
                && encoder
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !well_formed {
                return Err(SpecError::invalid(
                    "parameters.encoder",
                    "expected an FFmpeg encoder name such as h264_nvenc",
                ));
            }
            if Codec::of_encoder(encoder) != Some(scenario.codec) {
                return Err(SpecError::invalid(
                    "parameters.encoder",
                    &format!("{encoder} does not produce {} (the scenario's codec)", scenario.codec),
                ));
            }
        }
        if let Some(input) = &self.input {
            length("parameters.input", input, 1, bounds::MAX_INPUT_PATH_LEN)?;
            check_relative_path(input)?;
        }
        self.check_live_urls()?;
        Ok(())
    }
}

impl Parameters {
    /// Live URLs: well formed, with a live scheme; an output URL only for `rtmp` output and
    /// an input URL never beside an input file. Whether the node may use them is its call.
    fn check_live_urls(&self) -> Result<(), SpecError> {
        if let Some(url) = &self.output_url {
            check_live_url("parameters.output_url", url, &["rtmp://", "rtmps://", "srt://"])?;
            if self.output_mode != Some(OutputMode::Rtmp) {
                return Err(SpecError::invalid(
                    "parameters.output_url",
                    "needs \"output_mode\": \"rtmp\"",
                ));
            }
        }
        if let Some(url) = &self.input_url {
            check_live_url("parameters.input_url", url, &["rtmp://", "rtmps://"])?;
            if self.input.is_some() {
                return Err(SpecError::invalid(
                    "parameters.input_url",
                    "give either parameters.input (a file) or parameters.input_url (a live source), not both",
                ));
            }
        }
        Ok(())
    }

    /// Applies the overrides that parse (fps, resolution, codec) without checking bounds:
    /// the scenario of a spec stored under older bounds ([`ValidSpec::stored`](crate::ValidSpec::stored)).
    pub(crate) fn apply_lenient(&self, mut scenario: Scenario) -> Scenario {
        if let Some(fps) = self.fps.filter(|f| *f > 0) {
            scenario.fps = fps;
        }
        if let Some((w, h)) = self.resolution.as_deref().and_then(parse_resolution) {
            scenario.width = w;
            scenario.height = h;
        }
        if let Some(codec) = self.codec.as_deref().and_then(|c| c.parse::<Codec>().ok()) {
            scenario.codec = codec;
        }
        scenario
    }
}

impl ResourceLimits {
    /// Checks each limit: CPU 1..=[`MAX_CPU_PERCENT`](bounds::MAX_CPU_PERCENT) %, memory
    /// 1..=[`MAX_MEMORY_MB`](bounds::MAX_MEMORY_MB) MiB, disk at most
    /// [`MAX_DISK_MB`](bounds::MAX_DISK_MB) MiB, timeout
    /// 1..=[`MAX_TIMEOUT_S`](bounds::MAX_TIMEOUT_S) seconds.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(cpu) = self.max_cpu_percent {
            in_range("resource_limits.max_cpu_percent", cpu, 1, bounds::MAX_CPU_PERCENT)?;
        }
        if let Some(mb) = self.max_memory_mb {
            in_range("resource_limits.max_memory_mb", mb, 1, bounds::MAX_MEMORY_MB)?;
        }
        if let Some(mb) = self.max_disk_mb {
            in_range("resource_limits.max_disk_mb", mb, 0, bounds::MAX_DISK_MB)?;
        }
        if let Some(t) = self.timeout_sec {
            in_range("resource_limits.timeout_sec", t, 1, bounds::MAX_TIMEOUT_S)?;
        }
        Ok(())
    }
}

/// Encoder presets accepted in `parameters.preset` (the x264/x265 names).
pub const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Parses `"5M"`, `"2500k"`, `"800000"` into bits per second.
///
/// ```
/// assert_eq!(ffrtmp_core::spec::parse_bitrate("5M"), Some(5_000_000));
/// assert_eq!(ffrtmp_core::spec::parse_bitrate("2500k"), Some(2_500_000));
/// assert_eq!(ffrtmp_core::spec::parse_bitrate("fast"), None);
/// ```
pub fn parse_bitrate(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1_000),
        'm' | 'M' => (&s[..s.len() - 1], 1_000_000),
        'g' | 'G' => (&s[..s.len() - 1], 1_000_000_000),
        _ => (s, 1),
    };
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let bps = v * mult as f64;
    (bounds::MIN_BITRATE_BPS as f64..=bounds::MAX_BITRATE_BPS as f64)
        .contains(&bps)
        .then_some(bps as u64)
}

fn parse_resolution(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once(['x', 'X'])?;
    let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
    let ok = |v: u32| (bounds::MIN_DIMENSION..=bounds::MAX_DIMENSION).contains(&v) && v % 2 == 0;
    (ok(w) && ok(h)).then_some((w, h))
}

fn check_live_url(field: &str, url: &str, schemes: &[&str]) -> Result<(), SpecError> {
    length(field, url, 1, bounds::MAX_INPUT_PATH_LEN)?;
    let scheme_ok = schemes
        .iter()
        .any(|s| url.len() > s.len() && url[..s.len()].eq_ignore_ascii_case(s));
    // No spaces, quotes or control characters: the URL becomes one argument of FFmpeg and one
    // quoted property of a GStreamer pipeline.
    let clean = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\' | '!'));
    if !scheme_ok || !clean {
        return Err(SpecError::invalid(
            field,
            &format!(
                "expected a URL starting with {} without spaces, quotes, backslashes or '!'",
                schemes.join(" or ")
            ),
        ));
    }
    Ok(())
}

fn check_relative_path(p: &str) -> Result<(), SpecError> {
    let path = std::path::Path::new(p);
    let bad = p.is_empty()
        || p.contains("://")
        || path.is_absolute()
        || path.components().any(|c| !matches!(c, std::path::Component::Normal(_)));
    if bad {
        return Err(SpecError::invalid(
            "parameters.input",
            "must be a relative path inside the node's input directory (no '..', no absolute paths, no URLs)",
        ));
    }
    Ok(())
}

/// Why a [`JobSpec`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The scenario name did not parse.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A field has a value outside its domain.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The field, as named in JSON.
        field: String,
        /// What is expected.
        message: String,
    },
}

impl From<FieldError> for SpecError {
    fn from(e: FieldError) -> Self {
        SpecError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

impl SpecError {
    fn invalid(field: &str, message: &str) -> Self {
        SpecError::Invalid {
            field: field.to_string(),
            message: message.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Scenario, String> {
        let spec: JobSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let s: JobSpec = serde_json::from_str(r#"{"scenario":"720p-h264"}"#).unwrap();
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.queue, Queue::Default);
        assert_eq!(s.priority, Priority::Medium);
    }

    #[test]
    fn refuses_bad_values() {
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"duration":-1}}"#)
            .unwrap_err()
            .contains("duration"));
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"bitrate":"lots"}}"#)
            .unwrap_err()
            .contains("bitrate"));
        assert!(
            spec(r#"{"scenario":"720p-h264","parameters":{"input":"../etc/passwd"}}"#)
                .unwrap_err()
                .contains("input")
        );
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"input":"/etc/passwd"}}"#).is_err());
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"input":"rtmp://x/y"}}"#).is_err());
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"preset":"warp"}}"#).is_err());
        assert!(spec(r#"{"scenario":"720p-h264","queue":"urgent"}"#).is_err());
        assert!(spec(r#"{"scenario":"720p-h264","parameters":{"colour":"red"}}"#).is_err());
    }

    #[test]
    fn live_urls_are_checked() {
        let ok = r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","output_url":"rtmp://h:1935/live/k"}}"#;
        assert!(spec(ok).is_ok());
        assert!(
            spec(r#"{"scenario":"live-rtmp","parameters":{"output_mode":"rtmp","output_url":"srt://h:9000"}}"#).is_ok()
        );
        let err = spec(r#"{"scenario":"live-rtmp","parameters":{"output_url":"rtmp://h/live/k"}}"#).unwrap_err();
        assert!(err.contains("parameters.output_url") && err.contains("rtmp"), "{err}");
        for bad in [
            "file:///etc/passwd",
            "rtmp://h/live/k a",
            "rtmp://h/x'y",
            "rtmp://h/a!b",
            "http://h/x",
            "rtmp://",
        ] {
            let json =
                format!(r#"{{"scenario":"live-rtmp","parameters":{{"output_mode":"rtmp","output_url":"{bad}"}}}}"#);
            let err = spec(&json).unwrap_err();
            assert!(err.contains("parameters.output_url"), "{bad}: {err}");
        }
        assert!(spec(r#"{"scenario":"live-rtmp","parameters":{"input_url":"rtmp://h/live/src"}}"#).is_ok());
        assert!(spec(r#"{"scenario":"live-rtmp","parameters":{"input_url":"srt://h:9000"}}"#).is_err());
        let both = spec(r#"{"scenario":"live-rtmp","parameters":{"input_url":"rtmp://h/live/s","input":"a.mp4"}}"#);
        assert!(both.unwrap_err().contains("not both"));
    }

    #[test]
    fn parameters_override_the_scenario() {
        let s =
            spec(r#"{"scenario":"720p-h264","parameters":{"fps":60,"resolution":"640x360","codec":"vp9"}}"#).unwrap();
        assert_eq!((s.width, s.height, s.fps, s.codec), (640, 360, 60, Codec::Vp9));
    }
}
