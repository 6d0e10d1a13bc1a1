//! The bounds of every number, string and list the API accepts, as named constants, and the
//! checks of the node-side messages ([`NodeRegistration`], [`Heartbeat`], [`ClaimRequest`],
//! [`JobReport`]). [`JobSpec::validate`](crate::JobSpec::validate) checks a job spec against
//! the same constants.
//!
//! Every check names the field and the bound in its error, so that an HTTP client gets a
//! 400 saying what to change rather than a job that can never run (a `timeout_sec` of
//! 2^64−1 overflowed the agent's deadline).
//!
//! ```
//! use ffrtmp_core::{bounds, ClaimRequest, NodeId};
//! let claim = ClaimRequest { node_id: NodeId::new(), claim_id: "c1".into(), max_jobs: 2, wait_ms: 20_000 };
//! assert!(claim.validate().is_ok());
//! let greedy = ClaimRequest { max_jobs: bounds::MAX_CONCURRENT_JOBS + 1, ..claim };
//! let err = greedy.validate().unwrap_err();
//! assert_eq!(err.field, "max_jobs");
//! assert!(err.to_string().contains("1024"), "{err}");
//! ```

use crate::job::{EnergyReport, JobResult, Progress};
use crate::node::{ClaimRequest, Heartbeat, JobEvent, JobReport, NodeRegistration};

/// Longest wall-clock limit a job may ask for (`resource_limits.timeout_sec`): 7 days.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
/// Longest `parameters.duration` (seconds of video): one day.
pub const MAX_DURATION_S: f64 = 86_400.0;
/// Lowest `parameters.bitrate`: 1 kbit/s.
pub const MIN_BITRATE_BPS: u64 = 1_000;
/// Highest `parameters.bitrate`: 10 Gbit/s.
pub const MAX_BITRATE_BPS: u64 = 10_000_000_000;
/// Longest `parameters.bitrate` text.
pub const MAX_BITRATE_LEN: usize = 32;
/// Highest frame rate (`parameters.fps`).
pub const MAX_FPS: u32 = 240;
/// Smallest width or height of `parameters.resolution`.
pub const MIN_DIMENSION: u32 = 16;
/// Largest width or height of `parameters.resolution` (8K).
pub const MAX_DIMENSION: u32 = 7680;
/// Highest `resource_limits.max_cpu_percent`: 1024 cores at 100 % each.
pub const MAX_CPU_PERCENT: u32 = 102_400;
/// Highest `resource_limits.max_memory_mb`: 16 TiB.
pub const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;
/// Highest `resource_limits.max_disk_mb`: 1 PiB.
pub const MAX_DISK_MB: u64 = 1024 * 1024 * 1024;
/// Highest `max_retries`.
pub const MAX_RETRIES: u32 = 100;
/// Longest scenario name.
pub const MAX_SCENARIO_LEN: usize = 64;
/// Longest short label: `confidence`, `version`, an engine or encoder name.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest `parameters.input` path.
pub const MAX_INPUT_PATH_LEN: usize = 1024;
/// Longest node name (a DNS host name is at most 253 bytes).
pub const MAX_NODE_NAME_LEN: usize = 255;
/// Most encoders one node may advertise.
pub const MAX_ENCODERS: usize = 256;
/// Most engines one node may advertise.
pub const MAX_ENGINES: usize = 16;
/// Most logical CPU cores a node may advertise.
pub const MAX_CPU_CORES: u32 = 65_536;
/// Most memory a node may advertise: 64 TiB.
pub const MAX_NODE_MEMORY_MB: u64 = 64 * 1024 * 1024;
/// Highest `max_concurrent_jobs` of a node, and so the most jobs one claim may ask for and
/// one heartbeat may list.
pub const MAX_CONCURRENT_JOBS: u32 = 1024;
/// Longest `claim_id`.
pub const MAX_CLAIM_ID_LEN: usize = 128;
/// Longest `wait_ms` a claim may ask for: an hour (the server waits at most its own cap).
pub const MAX_CLAIM_WAIT_MS: u64 = 3_600_000;
/// Longest failure or timeout message in a report: 64 KiB (messages quote stderr lines).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Longest `limits` text of a result (it may quote an OS error and a cgroup path).
pub const MAX_LIMITS_TEXT_LEN: usize = 4096;
/// Largest frame count in a progress update or result: 10^12 (over 100 years at 240 fps).
pub const MAX_FRAMES: u64 = 1_000_000_000_000;
/// Largest rate (`fps`, `speed`, `avg_fps`) in a progress update or result.
pub const MAX_RATE: f64 = 1e6;
/// Largest duration in seconds (`out_time_s`, `wall_s`, CPU seconds) in a report: 10^9 s.
pub const MAX_REPORT_SECONDS: f64 = 1e9;

/// Most joules one energy report may attribute to a job (`energy_joules`, and each of the
/// CPU, DRAM and GPU parts): 10^15 J, a megawatt for over 30 years, as for a node's meter.
pub const MAX_JOB_JOULES: f64 = 1e15;
/// Highest mean power of a job (`avg_watts`): 1 MW, as for a node's meter.
pub const MAX_JOB_WATTS: f64 = 1e6;
/// Longest energy `source` or `attribution` label.
pub const MAX_ENERGY_LABEL_LEN: usize = 2 * MAX_LABEL_LEN;
/// Longest reason in an energy report (`unavailable_reason`, `gpu_unavailable_reason`,
/// `partial_reason`): they may quote an OS error per GPU.
pub const MAX_ENERGY_REASON_LEN: usize = 4096;
/// Most sampling intervals or failed readings one energy report may count: one a
/// millisecond for [`MAX_REPORT_SECONDS`].
pub const MAX_ENERGY_INTERVALS: u64 = 1_000_000_000_000;

/// A field outside its bounds: which one, and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct FieldError {
    /// The field, as named in JSON (`resource_limits.timeout_sec`, `encoders[3]`…).
    pub field: String,
    /// What is accepted, and what was given.
    pub message: String,
}

impl FieldError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `value` must lie in `min..=max`.
pub(crate) fn in_range<T>(field: &str, value: T, min: T, max: T) -> Result<(), FieldError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(FieldError::new(field, format!("must be {min}..={max}, not {value}")));
    }
    Ok(())
}

/// `value` must be a finite number in `0..=max`.
pub(crate) fn finite_at_most(field: &str, value: f64, max: f64) -> Result<(), FieldError> {
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err(FieldError::new(
            field,
            format!("must be a finite number in 0..={max}, not {value}"),
        ));
    }
    Ok(())
}

/// `text` must be `min..=max` bytes long.
pub(crate) fn length(field: &str, text: &str, min: usize, max: usize) -> Result<(), FieldError> {
    if text.len() < min || text.len() > max {
        return Err(FieldError::new(
            field,
            format!("must be {min}..={max} bytes long, not {}", text.len()),
        ));
    }
    Ok(())
}

/// A list of at most `max` labels, each 1..=[`MAX_LABEL_LEN`] bytes.
fn labels(field: &str, list: &[String], max: usize) -> Result<(), FieldError> {
    if list.len() > max {
        return Err(FieldError::new(
            field,
            format!("must list at most {max} entries, not {}", list.len()),
        ));
    }
    for (i, item) in list.iter().enumerate() {
        length(&format!("{field}[{i}]"), item, 1, MAX_LABEL_LEN)?;
    }
    Ok(())
}

impl NodeRegistration {
    /// Checks every field against its bound: the name 1..=[`MAX_NODE_NAME_LEN`] bytes, cores
    /// 1..=[`MAX_CPU_CORES`], memory at most [`MAX_NODE_MEMORY_MB`], concurrency
    /// 1..=[`MAX_CONCURRENT_JOBS`], at most [`MAX_ENCODERS`] encoders and [`MAX_ENGINES`]
    /// engines of 1..=[`MAX_LABEL_LEN`] bytes each, each quality metric at most once, a
    /// version of at most [`MAX_LABEL_LEN`]. The stores refuse a registration that fails this.
    pub fn validate(&self) -> Result<(), FieldError> {
        length("name", &self.name, 1, MAX_NODE_NAME_LEN)?;
        in_range("cpu_cores", self.cpu_cores, 1, MAX_CPU_CORES)?;
        in_range("memory_mb", self.memory_mb, 0, MAX_NODE_MEMORY_MB)?;
        in_range("max_concurrent_jobs", self.max_concurrent_jobs, 1, MAX_CONCURRENT_JOBS)?;
        labels("encoders", &self.encoders, MAX_ENCODERS)?;
        labels("engines", &self.engines, MAX_ENGINES)?;
        let metrics = &self.quality_metrics;
        if metrics.iter().enumerate().any(|(i, m)| metrics[..i].contains(m)) {
            return Err(FieldError::new("quality_metrics", "must list each metric at most once"));
        }
        length("version", &self.version, 0, MAX_LABEL_LEN)
    }
}

impl Progress {
    /// Checks that every figure is finite and plausible: frames at most [`MAX_FRAMES`], `fps`
    /// and `speed` at most [`MAX_RATE`], `percent` 0..=100, `out_time_s` at most
    /// [`MAX_REPORT_SECONDS`], and a live stream's figures ([`LiveProgress::validate`](crate::LiveProgress::validate)).
    /// `field` prefixes the field names in the error.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        in_range(&format!("{field}.frame"), self.frame, 0, MAX_FRAMES)?;
        finite_at_most(&format!("{field}.fps"), self.fps, MAX_RATE)?;
        finite_at_most(&format!("{field}.speed"), self.speed, MAX_RATE)?;
        finite_at_most(&format!("{field}.percent"), self.percent, 100.0)?;
        finite_at_most(&format!("{field}.out_time_s"), self.out_time_s, MAX_REPORT_SECONDS)?;
        match &self.live {
            Some(live) => live.validate(&format!("{field}.live")),
            None => Ok(()),
        }
    }
}

impl Heartbeat {
    /// Checks the heartbeat: at most [`MAX_CONCURRENT_JOBS`] running jobs, each progress
    /// plausible ([`Progress::validate`]), and the power snapshot
    /// ([`NodePower::validate`](crate::NodePower::validate)).
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.running.len() > MAX_CONCURRENT_JOBS as usize {
            return Err(FieldError::new(
                "running",
                format!(
                    "must list at most {MAX_CONCURRENT_JOBS} jobs, not {}",
                    self.running.len()
                ),
            ));
        }
        for (i, job) in self.running.iter().enumerate() {
            if let Some(p) = &job.progress {
                p.validate(&format!("running[{i}].progress"))?;
            }
        }
        if let Some(p) = &self.power {
            p.validate().map_err(|message| FieldError::new("power", message))?;
        }
        Ok(())
    }
}

impl ClaimRequest {
    /// Checks the claim: `claim_id` 1..=[`MAX_CLAIM_ID_LEN`] bytes, `max_jobs` at most
    /// [`MAX_CONCURRENT_JOBS`], `wait_ms` at most [`MAX_CLAIM_WAIT_MS`].
    pub fn validate(&self) -> Result<(), FieldError> {
        length("claim_id", &self.claim_id, 1, MAX_CLAIM_ID_LEN)?;
        in_range("max_jobs", self.max_jobs, 0, MAX_CONCURRENT_JOBS)?;
        in_range("wait_ms", self.wait_ms, 0, MAX_CLAIM_WAIT_MS)
    }
}

impl JobResult {
    /// Checks the outcome's figures: frames at most [`MAX_FRAMES`], output and input bytes
    /// at most [`MAX_DISK_MB`] MiB, seconds at most [`MAX_REPORT_SECONDS`], rates at most
    /// [`MAX_RATE`], texts bounded ([`MAX_LABEL_LEN`] × 2 for the encoder,
    /// [`MAX_LIMITS_TEXT_LEN`] for the limits).
    pub fn validate(&self) -> Result<(), FieldError> {
        let max_bytes = MAX_DISK_MB * 1024 * 1024;
        in_range("result.frames", self.frames, 0, MAX_FRAMES)?;
        in_range("result.output_bytes", self.output_bytes, 0, max_bytes)?;
        if let Some(b) = self.input_bytes {
            in_range("result.input_bytes", b, 0, max_bytes)?;
        }
        finite_at_most("result.wall_s", self.wall_s, MAX_REPORT_SECONDS)?;
        finite_at_most("result.avg_fps", self.avg_fps, MAX_RATE)?;
        let optional = [
            ("result.user_s", self.user_s, MAX_REPORT_SECONDS),
            ("result.sys_s", self.sys_s, MAX_REPORT_SECONDS),
            ("result.peak_rss_mb", self.peak_rss_mb, MAX_NODE_MEMORY_MB as f64),
            ("result.compression_ratio", self.compression_ratio, f64::MAX),
            ("result.speed", self.speed, MAX_RATE),
        ];
        for (field, value, max) in optional {
            if let Some(v) = value {
                finite_at_most(field, v, max)?;
            }
        }
        if let Some(live) = &self.live {
            live.validate()?;
        }
        length("result.encoder", &self.encoder, 0, 2 * MAX_LABEL_LEN)?;
        length("result.limits", &self.limits, 0, MAX_LIMITS_TEXT_LEN)
    }
}

impl EnergyReport {
    /// Checks every figure is a finite, non-negative number below its bound (joules at most
    /// [`MAX_JOB_JOULES`], `avg_watts` at most [`MAX_JOB_WATTS`], seconds at most
    /// [`MAX_REPORT_SECONDS`], per-joule and per-frame ratios finite), the counts at most
    /// [`MAX_ENERGY_INTERVALS`] and the texts bounded ([`MAX_ENERGY_LABEL_LEN`],
    /// [`MAX_ENERGY_REASON_LEN`]). `field` prefixes the field names in the error.
    ///
    /// ```
    /// use ffrtmp_core::EnergyReport;
    /// let ok = EnergyReport { source: "rapl".into(), energy_joules: Some(12.5), ..Default::default() };
    /// assert!(ok.validate("energy").is_ok());
    /// let nan = EnergyReport { energy_joules: Some(f64::NAN), ..ok };
    /// assert_eq!(nan.validate("energy").unwrap_err().field, "energy.energy_joules");
    /// ```
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        let figures = [
            ("energy_joules", self.energy_joules, MAX_JOB_JOULES),
            ("cpu_joules", self.cpu_joules, MAX_JOB_JOULES),
            ("dram_joules", self.dram_joules, MAX_JOB_JOULES),
            ("gpu_joules", self.gpu_joules, MAX_JOB_JOULES),
            ("avg_watts", self.avg_watts, MAX_JOB_WATTS),
            ("cpu_seconds", self.cpu_seconds, MAX_REPORT_SECONDS),
            ("wall_s", self.wall_s, MAX_REPORT_SECONDS),
            ("joules_per_frame", self.joules_per_frame, MAX_JOB_JOULES),
            ("frames_per_joule", self.frames_per_joule, f64::MAX),
            ("pixels_per_joule", self.pixels_per_joule, f64::MAX),
        ];
        for (name, value, max) in figures {
            if let Some(v) = value {
                finite_at_most(&format!("{field}.{name}"), v, max)?;
            }
        }
        in_range(&format!("{field}.intervals"), self.intervals, 0, MAX_ENERGY_INTERVALS)?;
        in_range(
            &format!("{field}.read_errors"),
            self.read_errors,
            0,
            MAX_ENERGY_INTERVALS,
        )?;
        length(&format!("{field}.source"), &self.source, 0, MAX_ENERGY_LABEL_LEN)?;
        let texts = [
            ("attribution", &self.attribution, MAX_ENERGY_LABEL_LEN),
            ("unavailable_reason", &self.unavailable_reason, MAX_ENERGY_REASON_LEN),
            (
                "gpu_unavailable_reason",
                &self.gpu_unavailable_reason,
                MAX_ENERGY_REASON_LEN,
            ),
            ("partial_reason", &self.partial_reason, MAX_ENERGY_REASON_LEN),
        ];
        for (name, text, max) in texts {
            if let Some(t) = text {
                length(&format!("{field}.{name}"), t, 0, max)?;
            }
        }
        Ok(())
    }
}

impl JobReport {
    /// Checks the event's figures and texts: progress ([`Progress::validate`]), the result
    /// ([`JobResult::validate`]), messages at most [`MAX_MESSAGE_LEN`] bytes, and every
    /// energy report ([`EnergyReport::validate`]).
    pub fn validate(&self) -> Result<(), FieldError> {
        match &self.event {
            JobEvent::Started => Ok(()),
            JobEvent::Progress { progress } => progress.validate("progress"),
            JobEvent::Completed { result } => {
                result.validate()?;
                result.energy.validate("result.energy")
            }
            JobEvent::Failed { error } => {
                length("error.message", &error.message, 0, MAX_MESSAGE_LEN)?;
                error.energy.as_ref().map_or(Ok(()), |e| e.validate("error.energy"))
            }
            JobEvent::TimedOut { message, energy } => {
                length("message", message, 0, MAX_MESSAGE_LEN)?;
                energy.as_ref().map_or(Ok(()), |e| e.validate("energy"))
            }
            JobEvent::Energy { energy } => energy.validate("energy"),
        }
    }
}

#[cfg(test)]
mod tests;
