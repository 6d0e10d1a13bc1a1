//! A job as the master knows it: spec, state, attempt, progress, outcome and history.

use serde::{Deserialize, Serialize};

use crate::attempts::AttemptsEnergy;
use crate::ids::{AttemptKey, JobId, NodeId};
use crate::state::JobState;
use crate::valid_spec::ValidSpec;

/// Live progress of a running encode.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Frames encoded so far.
    pub frame: u64,
    /// Current encoding rate in frames per second.
    pub fps: f64,
    /// Encoding speed relative to real time (2.0 = twice real time).
    pub speed: f64,
    /// Percent done, 0..=100, when the total is known.
    pub percent: f64,
    /// Seconds of output written.
    pub out_time_s: f64,
    /// A live stream's QoE so far; absent for file encodes (and from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::LiveProgress>,
}

/// Why a job failed. The kind decides whether the failure is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The encoder refused the codec, format or input. Terminal.
    EncodeError,
    /// A parameter was wrong in a way only the node could see. Terminal.
    InvalidParameter,
    /// Killed for exceeding its own memory limit. Terminal.
    ResourceExhausted,
    /// Ran past its own `timeout_sec`. Terminal.
    Timeout,
    /// The node holding the job stopped heartbeating. Transient.
    NodeLost,
    /// The node could not start the job (full scratch disk, missing engine…). Transient.
    NodeUnavailable,
    /// The agent stopped (drain, crash) before the job finished. Transient.
    Interrupted,
    /// Anything else that a retry may fix. Transient.
    Internal,
    /// A live destination or source the node is not configured to use. Terminal.
    DestinationRefused,
    /// A live destination went away and did not come back within the node's reconnect
    /// window (the reconnects were the retries). Terminal.
    DestinationLost,
    /// The encode finished but its output does not decode in full, or holds fewer or more
    /// frames (or seconds) than the job asked for. Terminal.
    OutputInvalid,
}

impl ErrorKind {
    /// Transient failures are retried until `max_retries`; the others fail the job at once.
    ///
    /// ```
    /// use ffrtmp_core::ErrorKind;
    /// assert!(ErrorKind::NodeLost.is_transient());
    /// assert!(!ErrorKind::EncodeError.is_transient());
    /// ```
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::NodeLost | ErrorKind::NodeUnavailable | ErrorKind::Interrupted | ErrorKind::Internal
        )
    }
}

/// A failure with its kind and a human message, and the energy the failed attempt used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
    /// Energy the attempt used before it failed or timed out, as measured by its node: a failed
    /// encode costs energy too. `None` when the node sent none (the failure was decided before
    /// the workload ran, or by the master, e.g. a lost node). Errors stored before this field
    /// existed parse with `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergyReport>,
}

impl JobError {
    /// Shorthand constructor.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        JobError {
            kind,
            message: message.into(),
            energy: None,
        }
    }
}

/// Energy used by one job, or why it could not be measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// The source used (`rapl`, `nvml`, `file`), or `unavailable`.
    pub source: String,
    /// Total joules attributed to the job; `None` when unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
    /// Mean power over the job's wall time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_watts: Option<f64>,
    /// Joules per encoded frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_per_frame: Option<f64>,
    /// Why energy is missing, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<String>,
    /// How the energy was attributed to this job: `cgroup-cpu-share` (the job's share of the
    /// machine's CPU time in each sampling interval) or `whole-node` (all of the node's energy
    /// over the job's wall time, which double-counts concurrent jobs). With GPU energy the GPU's
    /// method follows a `+`: `cgroup-cpu-share+nvml-process-utilization` (each interval's GPU
    /// energy split by the job's processes' encoder, decoder and SM utilisation), or
    /// `…+nvml-process-utilization(power-x-time)` where a GPU had no energy counter and its power
    /// × time was used instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
    /// Joules of the CPU package zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_joules: Option<f64>,
    /// Joules of the DRAM zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram_joules: Option<f64>,
    /// Joules of the node's GPUs attributed to the job, included in `energy_joules`. `None` when
    /// GPU energy was not measured (no NVIDIA GPU, NVML unavailable, or turned off), never 0 for
    /// "unknown"; `Some(0.0)` is a measurement: the GPUs were read and the job used none of them.
    /// Reports written before this field existed parse with `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_joules: Option<f64>,
    /// Why the job's GPU energy is missing (`gpu_joules` is `None`: e.g. `no NVIDIA GPU found`,
    /// `GPU energy turned off (--gpu-energy off)`, or `GPU energy not attributable to jobs: gpu-0:
    /// process utilization: not supported by this GPU`), or incomplete (`gpu_joules` covers only
    /// part of the job, and this says what the rest lacked). `None` when GPU energy was measured
    /// over the whole job, or nothing is known about it. Reports written before this field
    /// existed parse with `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_unavailable_reason: Option<String>,
    /// Frames encoded per joule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_per_joule: Option<f64>,
    /// Pixels encoded per joule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels_per_joule: Option<f64>,
    /// The job's CPU seconds counted by the attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Wall seconds `avg_watts` is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// Sampling intervals the job took part in (0 for a whole-node report).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub intervals: u64,
    /// Readings that failed while the job ran.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_errors: u64,
    /// The figures cover only part of the job's time: some of it could not be measured (a
    /// counter reset or vanished, the final reading failed), so the energy is a lower bound.
    /// `partial_reason` says why. Reports written before this field existed parse as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Why the report is partial, e.g. `energy counter reset while the job ran (…); the interval
    /// was dropped` or `the final reading failed: energy read failed: …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_reason: Option<String>,
    /// The figures are an estimate from a power model (`--power-model` on a node without an
    /// energy counter), not a measurement; `model` names it. Reports written before this field
    /// existed parse as `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
    /// The power model the estimate comes from, when `estimated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a finished encode produced.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    /// Exit status of the workload.
    pub exit_code: Option<i32>,
    /// Frames encoded.
    pub frames: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Mean frames per second over the wall time.
    pub avg_fps: f64,
    /// Bytes written to the output (0 for null output).
    pub output_bytes: u64,
    /// The engine and encoder used, e.g. `ffmpeg/libx264`.
    pub encoder: String,
    /// Whether resource limits were enforced, and if not why.
    pub limits: String,
    /// Energy.
    pub energy: EnergyReport,
    /// CPU seconds in user mode of the workload and the children it waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_s: Option<f64>,
    /// CPU seconds in the kernel of the workload and the children it waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_s: Option<f64>,
    /// Peak resident memory in MiB (the largest single process of the workload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
    /// Size of the input file in bytes (`None` for a synthetic source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    /// Raw 4:2:0 frame bytes (width × height × 1.5 × frames) over output bytes, for file outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_ratio: Option<f64>,
    /// Last reported encoding speed, as a multiple of real time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// Quality of experience of a live stream (`None` for other jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Box<crate::live::LiveQoe>>,
    /// The output's quality when the job asked for it (`parameters.quality`), measured by a
    /// separate pass after the encode. Results stored before this field existed parse as `None`.
    /// (Boxed: most results have none, and results travel inside enums.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Box<crate::quality::QualityReport>>,
}

impl JobResult {
    /// Raw 4:2:0 bytes of `frames` frames of `width`×`height` over `output_bytes`; `None`
    /// without output bytes or frames.
    ///
    /// ```
    /// assert_eq!(ffrtmp_core::JobResult::compression_ratio_of(1280, 720, 60, 829_440), Some(100.0));
    /// assert_eq!(ffrtmp_core::JobResult::compression_ratio_of(1280, 720, 60, 0), None);
    /// ```
    pub fn compression_ratio_of(width: u32, height: u32, frames: u64, output_bytes: u64) -> Option<f64> {
        if output_bytes == 0 || frames == 0 {
            return None;
        }
        Some(f64::from(width) * f64::from(height) * 1.5 * frames as f64 / output_bytes as f64)
    }
}

/// One transition in a job's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// State before (`None` for the submission itself).
    pub from: Option<JobState>,
    /// State after.
    pub to: JobState,
    /// Attempt number at the time.
    pub attempt: u32,
    /// Node involved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// Why.
    pub reason: String,
}

/// A job as stored by the master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Identifier.
    pub id: JobId,
    /// Human-friendly sequence number, increasing with submission.
    pub seq: u64,
    /// What was submitted, validated when it was; read back from storage or the wire with
    /// [`ValidSpec::stored`], so a job accepted under older bounds still loads.
    #[serde(deserialize_with = "ValidSpec::deserialize_stored")]
    pub spec: ValidSpec,
    /// Current state.
    pub state: JobState,
    /// Attempt number; bumped by every claim and used as the fencing token.
    pub attempt: u32,
    /// Node holding (or last holding) the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// Last reported progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// Outcome of a completed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    /// Last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// When a retrying job becomes claimable again (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    /// Submission time (ms since epoch).
    pub created_at_ms: u64,
    /// Last change (ms since epoch).
    pub updated_at_ms: u64,
    /// Transitions, oldest first. Lists may leave it empty; single-job reads fill it.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// The energy of every attempt that reported any (completed, failed, timed out,
    /// canceled or interrupted), and their total: `result` and `error` tell only the last
    /// attempt. Jobs stored before this field existed parse with none.
    #[serde(default, skip_serializing_if = "AttemptsEnergy::is_empty")]
    pub attempts_energy: AttemptsEnergy,
}

impl Job {
    /// A job as it is right after submission: `queued`, attempt 0, no holder, result or
    /// history. Stores build new jobs with it; tests and examples derive other states from it.
    ///
    /// ```
    /// use ffrtmp_core::{Job, JobId, JobSpec, JobState};
    ///
    /// let job = Job::submitted(JobId::new(), 7, JobSpec::new("720p-h264").try_into().unwrap(), 1_000);
    /// assert_eq!((job.state, job.attempt, job.seq, job.updated_at_ms), (JobState::Queued, 0, 7, 1_000));
    /// let running = Job { state: JobState::Running, attempt: 1, ..job };
    /// assert!(running.state.is_active());
    /// ```
    pub fn submitted(id: JobId, seq: u64, spec: ValidSpec, now_ms: u64) -> Job {
        Job {
            id,
            seq,
            spec,
            state: JobState::Queued,
            attempt: 0,
            node_id: None,
            progress: None,
            result: None,
            error: None,
            retry_at_ms: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            history: Vec::new(),
            attempts_energy: AttemptsEnergy::default(),
        }
    }

    /// The key of this job's current attempt, under which an agent keeps its state.
    ///
    /// ```
    /// use ffrtmp_core::{Job, JobId, JobSpec};
    /// let job = Job { attempt: 2, ..Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0) };
    /// assert_eq!(job.attempt_key().to_string(), format!("{}-a2", job.id));
    /// ```
    pub fn attempt_key(&self) -> AttemptKey {
        AttemptKey::new(self.id, self.attempt)
    }
}

#[cfg(test)]
mod job_result_tests {
    use super::*;

    #[test]
    fn outcome_details_are_optional_on_the_wire() {
        // A row written before the details existed still parses, and absent details stay off the wire.
        let old = r#"{"exit_code":0,"frames":60,"wall_s":2.0,"avg_fps":30.0,"output_bytes":10,
            "encoder":"ffmpeg/libx264","limits":"none requested","energy":{"source":"none"}}"#;
        let r: JobResult = serde_json::from_str(old).unwrap();
        assert_eq!(
            (r.user_s, r.peak_rss_mb, r.input_bytes, r.compression_ratio, r.speed),
            (None, None, None, None, None)
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("user_s") && !text.contains("speed"), "{text}");
        let full = JobResult {
            user_s: Some(1.5),
            sys_s: Some(0.25),
            peak_rss_mb: Some(120.0),
            input_bytes: Some(1234),
            compression_ratio: Some(80.0),
            speed: Some(2.5),
            ..r
        };
        let back: JobResult = serde_json::from_str(&serde_json::to_string(&full).unwrap()).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn gpu_joules_round_trip_and_old_reports_parse_without_them() {
        let old = r#"{"source":"rapl","energy_joules":40.0,"attribution":"cgroup-cpu-share",
            "cpu_joules":30.0,"dram_joules":10.0}"#;
        let r: EnergyReport = serde_json::from_str(old).unwrap();
        assert_eq!(
            (r.gpu_joules, r.cpu_joules, r.energy_joules),
            (None, Some(30.0), Some(40.0))
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("gpu_joules"), "{text}");
        let with_gpu = EnergyReport {
            source: "rapl+nvml".into(),
            energy_joules: Some(100.0),
            gpu_joules: Some(60.0),
            attribution: Some("cgroup-cpu-share+nvml-process-utilization".into()),
            ..r
        };
        let text = serde_json::to_string(&with_gpu).unwrap();
        assert!(text.contains(r#""gpu_joules":60.0"#), "{text}");
        let back: EnergyReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, with_gpu);
        // A measured zero is kept, not dropped as "unknown".
        let zero = EnergyReport {
            gpu_joules: Some(0.0),
            ..with_gpu
        };
        let back: EnergyReport = serde_json::from_str(&serde_json::to_string(&zero).unwrap()).unwrap();
        assert_eq!(back.gpu_joules, Some(0.0));
    }

    #[test]
    fn gpu_unavailable_reason_round_trips_and_stays_off_the_wire_when_absent() {
        let r: EnergyReport = serde_json::from_str(r#"{"source":"rapl","energy_joules":40.0}"#).unwrap();
        assert_eq!(r.gpu_unavailable_reason, None);
        assert!(!serde_json::to_string(&r).unwrap().contains("gpu_unavailable_reason"));
        let why = EnergyReport {
            gpu_unavailable_reason: Some("no NVIDIA GPU found".into()),
            ..r
        };
        let text = serde_json::to_string(&why).unwrap();
        assert!(
            text.contains(r#""gpu_unavailable_reason":"no NVIDIA GPU found""#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<EnergyReport>(&text).unwrap(), why);
    }
}
