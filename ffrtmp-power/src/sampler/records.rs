//! What a [`Sampler`] reports: per-job energy, recent intervals, whole-node totals, idle power and
//! its own counters.

use std::time::Duration;

use ffrtmp_core::PowerError;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::{Sampler, SamplerConfig};

/// Energy attributed to one job by a [`Sampler`], from [`Sampler::job_finished`].
///
/// When [`unavailable`](Self::unavailable) is set no interval of the job could be measured and
/// the joule figures are zero and meaningless: turn it into a report with
/// [`report`](Self::report), which leaves them out and keeps the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct JobEnergy {
    /// The job's key.
    pub key: String,
    /// The power source (`rapl`, …), or `unavailable`.
    pub source: String,
    /// Joules of the `package-*` zones attributed to the job.
    pub joules_cpu: f64,
    /// Joules of the `dram-*` zones attributed to the job.
    pub joules_dram: f64,
    /// Joules of every zone attributed to the job (package + dram, or `psys`, …).
    pub joules_total: f64,
    /// The job's CPU time counted in its intervals.
    pub cpu_time: Duration,
    /// Sampling intervals the job took part in.
    pub samples: u64,
    /// From [`Sampler::job_started`] to [`Sampler::job_finished`].
    pub wall: Duration,
    /// Failed readings while the job ran (their energy is counted in the next good interval).
    pub read_errors: u64,
    /// Part of the job's time could not be measured (no reading before it started, a counter
    /// reset or the source's zones changed, or the final reading failed); the figures cover the
    /// rest.
    pub partial: bool,
    /// Why the job is partial (the first cause), when it is.
    pub partial_reason: Option<String>,
    /// Why the job's energy could not be measured at all, if it could not.
    pub unavailable: Option<PowerError>,
}

impl JobEnergy {
    /// Mean power attributed to the job over its wall time; `None` when unavailable or instant.
    pub fn avg_watts(&self) -> Option<f64> {
        let wall = self.wall.as_secs_f64();
        (self.unavailable.is_none() && wall > 0.0).then(|| self.joules_total / wall)
    }
}

/// One sampling interval, as kept in the ring of recent intervals ([`Sampler::recent`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalRecord {
    /// End of the interval, seconds since the sampler was created.
    pub end_s: f64,
    /// Length of the interval in seconds.
    pub dt_s: f64,
    /// Joules of the `package-*` zones.
    pub package_joules: f64,
    /// Joules of the `dram-*` zones.
    pub dram_joules: f64,
    /// Joules of every zone.
    pub total_joules: f64,
    /// Joules attributed to running jobs.
    pub jobs_joules: f64,
    /// Joules left to "other" (other processes and idle).
    pub other_joules: f64,
    /// Jobs running during the interval.
    pub jobs: u32,
    /// CPU seconds of the whole machine (busy and idle) over the interval.
    pub machine_cpu_s: f64,
    /// CPU seconds of the running jobs over the interval.
    pub jobs_cpu_s: f64,
}

impl IntervalRecord {
    /// Mean power over the interval, in watts.
    pub fn watts(&self) -> Option<f64> {
        (self.dt_s > 0.0).then(|| self.total_joules / self.dt_s)
    }
}

/// Energy of one zone since the sampler's first reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneTotal {
    /// Zone name (`package-0`, `dram-0`, …).
    pub zone: String,
    /// Joules since the first reading.
    pub joules: f64,
}

/// Whole-node figures of a [`Sampler`] since its first reading.
///
/// `jobs_joules + other_joules` equals `total_joules` up to rounding, and `total_joules` only goes
/// up; the sum of `zones` equals it until the source's zones change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// The power source (`rapl`, …), or `unavailable`.
    pub source: String,
    /// Per zone; restarted from zero when the source's set of zones changes.
    pub zones: Vec<ZoneTotal>,
    /// Every zone's energy since the first reading. Unlike `zones`, it is not restarted when the
    /// zones change: it never goes back for one sampler.
    pub total_joules: f64,
    /// Attributed to jobs, finished or running.
    pub jobs_joules: f64,
    /// Left to "other": the CPU share not used by jobs (other processes and idle).
    pub other_joules: f64,
    /// Energy of the intervals in which no job ran.
    pub idle_joules: f64,
    /// Length of the intervals in which no job ran.
    pub idle_seconds: f64,
    /// Seconds covered by measured intervals.
    pub measured_seconds: f64,
    /// Counter wraps the source has corrected (its cumulative count at the last reading).
    pub wraps: u64,
    /// Counter resets seen (from [`PowerSource::resets`](ffrtmp_core::PowerSource::resets)):
    /// each dropped one sampling interval. Totals written before this field existed parse as 0.
    #[serde(default)]
    pub resets: u64,
    /// Jobs running now.
    pub running_jobs: usize,
    /// Seconds since the last good reading of the source (on the monotonic clock), when the
    /// totals were taken; `None` before any. A meter that stopped working shows here as an age
    /// that keeps growing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reading_age_s: Option<f64>,
}

/// Mean power with no job running.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdlePower {
    /// Mean watts.
    pub watts: f64,
    /// Seconds measured.
    pub seconds: f64,
    /// Whether a job was running at some point of the window (then it is not idle power).
    pub jobs_ran: bool,
}

/// Counters about the sampler itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplerStats {
    /// Ticks attempted (the thread's and explicit ones, including the flush at each job's end).
    pub ticks: u64,
    /// Intervals measured.
    pub intervals: u64,
    /// Ticks whose reading failed.
    pub read_errors: u64,
    /// Ticks failed in a row since the last good reading.
    pub failed_in_a_row: u64,
    /// The last reading error, if any.
    pub last_error: Option<PowerError>,
    /// Wall time spent inside ticks (reading counters and attributing).
    pub tick_time: Duration,
    /// CPU time used by the sampler thread (Linux `schedstat`); `None` without a thread or on
    /// other systems.
    pub thread_cpu: Option<Duration>,
}
