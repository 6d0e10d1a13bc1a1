//! What a [`GpuSampler`] is configured with and reports: per-job GPU energy and whole-node
//! totals.

use std::time::Duration;

use ffrtmp_core::PowerError;
use serde::{Deserialize, Serialize};

use super::{DEFAULT_SHARE_HOLD, GPU_ATTRIBUTION_METHOD, GPU_POWER_FALLBACK_METHOD};
use crate::sampler::SamplerConfig;

#[cfg(doc)]
use super::{GpuAttribution, GpuSampler};

/// How a [`GpuSampler`] samples.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuSamplerConfig {
    /// Time between readings (default 100 ms, the CPU sampler's default rate).
    pub interval: Duration,
    /// How long a GPU's last per-process shares are reused without newer samples
    /// ([`DEFAULT_SHARE_HOLD`]; see [`GpuAttribution`]).
    pub share_hold: Duration,
}

impl Default for GpuSamplerConfig {
    fn default() -> Self {
        GpuSamplerConfig::hz(crate::DEFAULT_HZ)
    }
}

impl GpuSamplerConfig {
    /// Readings at `hz` per second (clamped like [`SamplerConfig::hz`]), shares held for
    /// [`DEFAULT_SHARE_HOLD`].
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(ffrtmp_power::GpuSamplerConfig::hz(10.0).interval, Duration::from_millis(100));
    /// ```
    pub fn hz(hz: f64) -> Self {
        GpuSamplerConfig {
            interval: SamplerConfig::hz(hz).interval,
            share_hold: DEFAULT_SHARE_HOLD,
        }
    }
}

/// GPU energy attributed to one job by a [`GpuSampler`], from [`GpuSampler::job_finished`].
///
/// When [`unavailable`](Self::unavailable) is set no interval of the job could be measured and
/// split between jobs, and [`joules`](Self::joules) gives `None`: a job on a GPU node that used
/// no GPU gets `Some(0.0)` (measured), a job on a node whose GPUs cannot be read, or cannot say
/// which process used them (per-process utilisation unavailable, as on MIG or vGPU), gets `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuJobEnergy {
    /// The job's key.
    pub key: String,
    /// The GPU source (`nvml`), or `unavailable`.
    pub source: String,
    /// Joules of every GPU attributed to the job (meaningless when unavailable).
    pub joules_gpu: f64,
    /// Measured intervals the job took part in.
    pub intervals: u64,
    /// From [`GpuSampler::job_started`] to [`GpuSampler::job_finished`].
    pub wall: Duration,
    /// Some of the job's intervals used power × time instead of an energy counter.
    pub power_fallback: bool,
    /// Part of the job's time could not be measured or split between jobs (a failed final
    /// reading, GPUs with neither counter nor power, or without per-process utilisation); the
    /// figure covers the rest.
    pub partial: bool,
    /// Why part of the job's time is missing, when [`partial`](Self::partial).
    pub partial_reason: Option<PowerError>,
    /// Failed readings while the job ran (the next good reading covers their time).
    pub read_errors: u64,
    /// Why the job's GPU energy could not be measured at all, if it could not.
    pub unavailable: Option<PowerError>,
}

impl GpuJobEnergy {
    /// The attributed joules; `None` when unavailable (never a pretend 0).
    pub fn joules(&self) -> Option<f64> {
        self.unavailable.is_none().then_some(self.joules_gpu)
    }

    /// The attribution method: [`GPU_ATTRIBUTION_METHOD`], or [`GPU_POWER_FALLBACK_METHOD`] when
    /// any of the job's intervals used power × time.
    pub fn method(&self) -> &'static str {
        if self.power_fallback {
            GPU_POWER_FALLBACK_METHOD
        } else {
            GPU_ATTRIBUTION_METHOD
        }
    }
}

/// Whole-node GPU figures of a [`GpuSampler`] since its first reading.
///
/// `jobs_joules + other_joules` equals `total_joules` up to rounding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuTotals {
    /// The GPU source (`nvml`), or `unavailable`.
    pub source: String,
    /// Energy of every measured GPU.
    pub total_joules: f64,
    /// Attributed to jobs, finished or running.
    pub jobs_joules: f64,
    /// Idle, processes of no job, and unclaimed utilisation.
    pub other_joules: f64,
    /// Seconds covered by measured intervals.
    pub measured_seconds: f64,
    /// Intervals measured.
    pub intervals: u64,
    /// Intervals in which a GPU's energy was power × time.
    pub power_fallback_intervals: u64,
    /// Intervals with at least one GPU unmeasured (neither counter nor power).
    pub unmeasured_intervals: u64,
    /// Intervals with at least one measured GPU whose per-process utilisation could not be read
    /// (its energy all went to "other").
    #[serde(default)]
    pub unattributed_intervals: u64,
    /// Readings attempted.
    pub ticks: u64,
    /// Readings that failed.
    pub read_errors: u64,
    /// Jobs running now.
    pub running_jobs: usize,
}
