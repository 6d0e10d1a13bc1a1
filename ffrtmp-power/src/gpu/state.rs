//! What a [`GpuSampler`](super::GpuSampler) accumulates between readings: the attribution, one
//! accumulator per running job, and the whole-node totals.

use std::collections::HashMap;
use std::time::Instant;

use ffrtmp_core::PowerError;

use super::{GpuAttribution, GpuInterval, GpuJobEnergy, GpuReading, GpuTotals};
use crate::meter::UNAVAILABLE_SOURCE;

pub(super) struct State {
    pub(super) attribution: GpuAttribution,
    /// Time of the last good reading: the start of the next interval.
    pub(super) last_at: Option<Instant>,
    pub(super) jobs: HashMap<String, JobAcc>,
    /// Number of the next job run ([`JobAcc::run`]).
    next_run: u64,
    pub(super) totals: GpuTotals,
    pub(super) last_error: Option<PowerError>,
    /// Whether the latest reading measured some GPU's energy.
    pub(super) measuring: bool,
}

pub(super) struct JobAcc {
    /// Tells this run of a key from an earlier one with the same key.
    pub(super) run: u64,
    started: Instant,
    joules: f64,
    /// Intervals that could be attributed to jobs.
    intervals: u64,
    power_fallback: bool,
    partial: bool,
    /// Why part of the job's time is missing, when `partial`.
    partial_reason: Option<PowerError>,
    read_errors: u64,
    /// The latest failed reading or unusable interval.
    last_error: Option<PowerError>,
}

impl State {
    pub(super) fn new(attribution: GpuAttribution, source: String) -> Self {
        State {
            attribution,
            last_at: None,
            jobs: HashMap::new(),
            next_run: 0,
            totals: GpuTotals {
                source,
                ..GpuTotals::default()
            },
            last_error: None,
            measuring: false,
        }
    }

    /// Starts (or restarts from zero) the job `key`; `false` if it was running.
    pub(super) fn start_job(&mut self, key: String) -> bool {
        self.next_run += 1;
        let fresh = self.jobs.insert(key, JobAcc::new(self.next_run)).is_none();
        self.totals.running_jobs = self.jobs.len();
        fresh
    }

    /// Each running job's key and run number.
    pub(super) fn runs(&self) -> HashMap<String, u64> {
        self.jobs.iter().map(|(key, acc)| (key.clone(), acc.run)).collect()
    }

    /// A reading failed: counted, and remembered as the reason should nothing else be measured.
    pub(super) fn read_failed(&mut self, err: &PowerError) {
        self.totals.read_errors += 1;
        self.last_error = Some(err.clone());
        self.measuring = false;
        for job in self.jobs.values_mut() {
            job.read_errors += 1;
            job.last_error = Some(err.clone());
        }
    }

    /// The first good reading: the start of the first interval.
    pub(super) fn baseline(&mut self, readings: &[GpuReading]) {
        self.attribution.baseline(readings);
        self.measuring = readings
            .iter()
            .any(|r| r.energy_uj.is_some() || r.power_watts.is_some());
    }

    /// Stops the job `key` and drops its accumulator; `false` if it was not running.
    pub(super) fn abandon_job(&mut self, key: &str) -> bool {
        let found = self.jobs.remove(key).is_some();
        self.totals.running_jobs = self.jobs.len();
        found
    }

    /// Adds an interval to the jobs of `runs` (key → run number, as at the reading) that still
    /// run as those runs, and to the totals.
    pub(super) fn account(&mut self, interval: &GpuInterval, runs: &HashMap<String, u64>) {
        let measured = interval.measured_gpus > 0;
        self.measuring = measured;
        let t = &mut self.totals;
        t.running_jobs = self.jobs.len();
        t.unmeasured_intervals += u64::from(!interval.unmeasured.is_empty());
        t.unattributed_intervals += u64::from(!interval.unattributed.is_empty());
        let mut to_jobs = 0.0;
        if measured {
            t.intervals += 1;
            t.measured_seconds += interval.dt_s;
            t.total_joules += interval.total_joules;
            t.power_fallback_intervals += u64::from(interval.power_fallback);
            for share in &interval.jobs {
                let run = runs.get(&share.job);
                if let Some(job) = self.jobs.get_mut(&share.job).filter(|j| Some(&j.run) == run) {
                    job.joules += share.joules;
                    to_jobs += share.joules;
                }
            }
            t.jobs_joules += to_jobs;
            t.other_joules += (interval.total_joules - to_jobs).max(0.0);
        }
        let gap = gap_reason(interval);
        let usable = interval.attributable_gpus() > 0;
        let read = self
            .jobs
            .iter_mut()
            .filter(|(key, job)| runs.get(*key) == Some(&job.run));
        for (_, job) in read {
            if usable {
                job.intervals += 1;
                job.power_fallback |= interval.power_fallback;
            }
            if let Some(gap) = &gap {
                job.partial = true;
                job.partial_reason = Some(gap.clone());
                job.last_error = Some(gap.clone());
            }
        }
    }

    /// Stops the job `key` after its final reading (`flush`) and says what it used; `None` unless
    /// `key` still runs as `run` (it was started again meanwhile, which dropped that run).
    pub(super) fn finish_job(
        &mut self,
        key: &str,
        run: u64,
        flush: Result<(), PowerError>,
        source: &str,
    ) -> Option<GpuJobEnergy> {
        if self.jobs.get(key).map(|acc| acc.run) != Some(run) {
            return None;
        }
        let mut acc = self.jobs.remove(key)?;
        self.totals.running_jobs = self.jobs.len();
        if let Err(e) = flush {
            // The job's last stretch went unmeasured (with no interval at all it is unavailable).
            if acc.intervals > 0 {
                acc.partial = true;
                acc.partial_reason = Some(e.clone());
            }
            acc.last_error.get_or_insert(e);
        }
        let unavailable = (acc.intervals == 0).then(|| {
            acc.last_error
                .clone()
                .unwrap_or_else(|| PowerError::Unavailable("no GPU reading was taken while the job ran".into()))
        });
        Some(GpuJobEnergy {
            key: key.to_string(),
            source: if unavailable.is_some() {
                UNAVAILABLE_SOURCE.to_string()
            } else {
                source.to_string()
            },
            joules_gpu: acc.joules,
            intervals: acc.intervals,
            wall: acc.started.elapsed(),
            power_fallback: acc.power_fallback,
            partial: acc.partial,
            partial_reason: if acc.partial { acc.partial_reason } else { None },
            read_errors: acc.read_errors,
            unavailable,
        })
    }
}

/// Why (part of) an interval's GPU energy cannot be split between jobs, if it cannot: GPUs not
/// measured, or whose process utilisation could not be read.
fn gap_reason(interval: &GpuInterval) -> Option<PowerError> {
    let mut parts = Vec::new();
    if !interval.unattributed.is_empty() {
        parts.push(format!(
            "GPU energy not attributable to jobs: {}",
            interval.unattributed.join("; ")
        ));
    }
    if !interval.unmeasured.is_empty() || interval.measured_gpus == 0 {
        parts.push(format!("GPU energy not measured: {}", interval.unmeasured.join("; ")));
    }
    (!parts.is_empty()).then(|| PowerError::Unavailable(parts.join("; ")))
}

impl JobAcc {
    fn new(run: u64) -> Self {
        JobAcc {
            run,
            started: Instant::now(),
            joules: 0.0,
            intervals: 0,
            power_fallback: false,
            partial: false,
            partial_reason: None,
            read_errors: 0,
            last_error: None,
        }
    }
}
