//! The per-interval split: each interval's energy, zone by zone, goes to the running jobs by their
//! share of the machine's CPU time ([`ATTRIBUTION_METHOD`](super::ATTRIBUTION_METHOD)), the rest
//! to "other".

use std::collections::{HashMap, VecDeque};
use std::sync::{MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ffrtmp_core::{EnergySample, PowerError, PowerSource};

use super::{IntervalRecord, Shared};

pub(super) struct State {
    /// The last good reading: the start of the next interval.
    pub(super) last: Option<Reading>,
    /// Per zone, in the source's order, since the first reading (restarted when the zones change).
    pub(super) zones: Vec<ZoneAcc>,
    /// Every zone since the first reading; never restarted, so the node's total only goes up.
    pub(super) total_uj: u64,
    pub(super) jobs: HashMap<String, JobAcc>,
    /// Jobs registered so far.
    pub(super) job_generation: u64,
    pub(super) jobs_joules: f64,
    pub(super) other_joules: f64,
    pub(super) idle_joules: f64,
    pub(super) idle_seconds: f64,
    pub(super) measured_seconds: f64,
    pub(super) wraps: u64,
    pub(super) ticks: u64,
    pub(super) intervals: u64,
    pub(super) read_errors: u64,
    /// Ticks failed in a row since the last good reading.
    pub(super) failed_in_a_row: u64,
    pub(super) last_error: Option<PowerError>,
    /// Counter resets seen (intervals dropped for them).
    pub(super) resets: u64,
    /// The source's own reset count at the last good reading.
    pub(super) source_resets: Option<u64>,
    pub(super) tick_time: Duration,
    pub(super) ring: VecDeque<IntervalRecord>,
    /// The reading before last, given back to the source to read into, and the per-zone deltas:
    /// kept so that a tick over a source that reads in place allocates nothing.
    pub(super) spare: EnergySample,
    pub(super) deltas: Vec<u64>,
}

pub(super) struct Reading {
    pub(super) at: Instant,
    pub(super) energy: EnergySample,
    pub(super) machine_ns: u64,
}

pub(super) struct ZoneAcc {
    pub(super) name: String,
    pub(super) kind: ZoneKind,
    pub(super) total_uj: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ZoneKind {
    Package,
    Dram,
    Other,
}

fn zone_kind(name: &str) -> ZoneKind {
    if name.starts_with("package") {
        ZoneKind::Package
    } else if name.starts_with("dram") {
        ZoneKind::Dram
    } else {
        ZoneKind::Other
    }
}

/// Joules by kind of zone.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Split {
    pub(super) package: f64,
    pub(super) dram: f64,
    pub(super) other: f64,
}

impl Split {
    pub(super) fn total(&self) -> f64 {
        self.package + self.dram + self.other
    }

    pub(super) fn add(&mut self, kind: ZoneKind, joules: f64) {
        match kind {
            ZoneKind::Package => self.package += joules,
            ZoneKind::Dram => self.dram += joules,
            ZoneKind::Other => self.other += joules,
        }
    }

    pub(super) fn add_share(&mut self, interval: &Split, share: f64) {
        self.package += interval.package * share;
        self.dram += interval.dram * share;
        self.other += interval.other * share;
    }
}

pub(super) struct JobAcc {
    pub(super) started: Instant,
    /// The CPU counter started at zero when the job was registered (else: at its first reading).
    pub(super) zero_baseline: bool,
    pub(super) last_ns: Option<u64>,
    /// CPU delta of the interval being attributed.
    pub(super) pending_ns: u64,
    pub(super) cpu_ns: u64,
    pub(super) joules: Split,
    pub(super) samples: u64,
    pub(super) read_errors: u64,
    pub(super) partial: bool,
    /// Why the job is partial (the first cause seen).
    pub(super) partial_reason: Option<String>,
    pub(super) last_error: Option<PowerError>,
}

impl JobAcc {
    pub(super) fn new(zero_baseline: bool) -> Self {
        JobAcc {
            started: Instant::now(),
            zero_baseline,
            last_ns: None,
            pending_ns: 0,
            cpu_ns: 0,
            joules: Split::default(),
            samples: 0,
            read_errors: 0,
            partial: false,
            partial_reason: None,
            last_error: None,
        }
    }

    /// Marks the job's figures as covering only part of its time, keeping the first reason.
    pub(super) fn mark_partial(&mut self, reason: impl FnOnce() -> String) {
        self.partial = true;
        if self.partial_reason.is_none() {
            self.partial_reason = Some(reason());
        }
    }

    /// The CPU-time delta since the last reading, given the counter now (`None`: unreadable).
    pub(super) fn advance(&mut self, now: Option<u64>) -> u64 {
        let Some(now) = now else { return 0 };
        let base = self.last_ns.or(self.zero_baseline.then_some(0));
        self.last_ns = Some(now);
        match base {
            // A counter that went down was recreated: count from zero.
            Some(base) if now < base => now,
            Some(base) => now - base,
            None => 0,
        }
    }
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn tick(&self, st: &mut State) -> Result<Option<IntervalRecord>, PowerError> {
        let source = match &self.source {
            Ok(source) => source.as_ref(),
            Err(e) => return Err(e.clone()),
        };
        let began = Instant::now();
        let result = self.read_and_attribute(source, st);
        st.ticks += 1;
        st.tick_time += began.elapsed();
        if result.is_ok() {
            st.failed_in_a_row = 0;
        }
        if let Err(e) = &result {
            st.read_errors += 1;
            st.failed_in_a_row += 1;
            st.last_error = Some(e.clone());
            for job in st.jobs.values_mut() {
                job.read_errors += 1;
                job.last_error = Some(e.clone());
            }
        }
        result
    }

    fn read_and_attribute(
        &self,
        source: &dyn PowerSource,
        st: &mut State,
    ) -> Result<Option<IntervalRecord>, PowerError> {
        // On the failures below the buffers go back, so a source that fails now and then does
        // not make later ticks allocate.
        let mut energy = std::mem::take(&mut st.spare);
        if let Err(e) = source.sample_into(&mut energy) {
            st.spare = energy;
            return Err(e);
        }
        let at = Instant::now();
        let Some(machine_ns) = self.cpu.total_ns() else {
            st.spare = energy;
            return Err(PowerError::Read(
                "the machine's CPU time cannot be read (CpuTimes::total_ns)".into(),
            ));
        };
        let resets = source.resets();
        let resets_before = st.source_resets.replace(resets);
        let Some(prev) = st.last.take() else {
            self.set_start(
                st,
                energy,
                machine_ns,
                at,
                "no energy reading was taken before the job started",
            );
            return Ok(None);
        };
        let new_resets = resets.saturating_sub(resets_before.unwrap_or(resets));
        if new_resets > 0 {
            // A counter restarted: what the interval used is unknown, so nobody is charged for
            // it (a reset corrected as a wrap once charged a 7 s encode with 123 kJ).
            st.resets += new_resets;
            st.spare = prev.energy;
            tracing::warn!(
                resets = new_resets,
                "energy counter reset; the sampling interval is dropped"
            );
            self.set_start(st, energy, machine_ns, at, RESET_REASON);
            return Ok(None);
        }
        if let Err(reason) = zone_deltas(&prev.energy, &energy, &mut st.deltas) {
            // Start afresh from this reading; the running jobs lose this interval.
            st.spare = prev.energy;
            self.set_start(st, energy, machine_ns, at, &reason);
            return Err(PowerError::Read(reason));
        }
        let deltas = std::mem::take(&mut st.deltas);

        let dt = at.saturating_duration_since(prev.at).as_secs_f64();
        let machine_delta = machine_ns.saturating_sub(prev.machine_ns);
        let mut jobs_delta = 0u64;
        for (key, job) in st.jobs.iter_mut() {
            job.pending_ns = job.advance(self.cpu.job_cpu_ns(key));
            jobs_delta = jobs_delta.saturating_add(job.pending_ns);
        }
        let mut interval = Split::default();
        for (zone, delta) in st.zones.iter_mut().zip(&deltas) {
            zone.total_uj = zone.total_uj.saturating_add(*delta);
            st.total_uj = st.total_uj.saturating_add(*delta);
            interval.add(zone.kind, *delta as f64 / 1e6);
        }
        let total_joules = interval.total();
        // Jobs can never get more than the interval's energy, even if the job counters ran ahead
        // of the machine's (they are read a moment later, or with a finer resolution).
        let denominator = machine_delta.max(jobs_delta);
        let mut jobs_joules = 0.0;
        for job in st.jobs.values_mut() {
            let share = if denominator == 0 {
                0.0
            } else {
                job.pending_ns as f64 / denominator as f64
            };
            job.joules.add_share(&interval, share);
            job.cpu_ns = job.cpu_ns.saturating_add(job.pending_ns);
            job.samples += 1;
            jobs_joules += total_joules * share;
        }
        let other_joules = (total_joules - jobs_joules).max(0.0);
        st.jobs_joules += jobs_joules;
        st.other_joules += other_joules;
        st.measured_seconds += dt;
        if st.jobs.is_empty() {
            st.idle_joules += total_joules;
            st.idle_seconds += dt;
        }
        st.wraps = energy.wraps;
        st.intervals += 1;
        let record = IntervalRecord {
            end_s: at.saturating_duration_since(self.created).as_secs_f64(),
            dt_s: dt,
            package_joules: interval.package,
            dram_joules: interval.dram,
            total_joules,
            jobs_joules,
            other_joules,
            jobs: st.jobs.len() as u32,
            machine_cpu_s: machine_delta as f64 / 1e9,
            jobs_cpu_s: jobs_delta as f64 / 1e9,
        };
        if self.config.ring_capacity > 0 {
            if st.ring.len() >= self.config.ring_capacity {
                st.ring.pop_front();
            }
            st.ring.push_back(record);
        }
        st.last = Some(Reading { at, energy, machine_ns });
        st.spare = prev.energy;
        st.deltas = deltas;
        Ok(Some(record))
    }

    /// Makes `energy` the start of the next interval, with no interval attributed: the first
    /// reading, or a new start after the source's zones changed. Running jobs' CPU counters restart
    /// from their current reading and, as their time so far went unmeasured, they are partial
    /// with `why` as the reason.
    fn set_start(&self, st: &mut State, energy: EnergySample, machine_ns: u64, at: Instant, why: &str) {
        if st.zones.is_empty() || !same_zones(&st.zones, &energy) {
            if !st.zones.is_empty() {
                tracing::warn!("energy source zones changed; per-zone totals restart (the node's total goes on)");
            }
            st.zones = energy
                .zones
                .iter()
                .map(|z| ZoneAcc {
                    name: z.zone.clone(),
                    kind: zone_kind(&z.zone),
                    total_uj: 0,
                })
                .collect();
        }
        for (key, job) in st.jobs.iter_mut() {
            job.last_ns = self.cpu.job_cpu_ns(key);
            job.mark_partial(|| why.to_string());
        }
        st.wraps = energy.wraps;
        st.last = Some(Reading { at, energy, machine_ns });
    }
}

/// Why a job is partial after a counter reset.
pub(super) const RESET_REASON: &str = "an energy counter reset while the job ran (a restarted driver, or a \
     backwards jump too large for a wrap); that sampling interval was dropped";

fn same_zones(zones: &[ZoneAcc], energy: &EnergySample) -> bool {
    zones.len() == energy.zones.len() && zones.iter().zip(&energy.zones).all(|(a, b)| a.name == b.zone)
}

/// Microjoules per zone from `prev` to `next` into `deltas`, which must list the same zones in the
/// same order, none going backwards.
pub(super) fn zone_deltas(prev: &EnergySample, next: &EnergySample, deltas: &mut Vec<u64>) -> Result<(), String> {
    if next.zones.is_empty() {
        return Err("the energy samples have no zones".into());
    }
    let same =
        prev.zones.len() == next.zones.len() && prev.zones.iter().zip(&next.zones).all(|(a, b)| a.zone == b.zone);
    if !same {
        let names = |s: &EnergySample| s.zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "the energy samples cover different zones ([{}] then [{}])",
            names(prev),
            names(next)
        ));
    }
    deltas.clear();
    for (a, b) in prev.zones.iter().zip(&next.zones) {
        let delta = b.energy_uj.checked_sub(a.energy_uj).ok_or_else(|| {
            format!(
                "the {} counter went backwards ({} µJ then {} µJ)",
                b.zone, a.energy_uj, b.energy_uj
            )
        })?;
        deltas.push(delta);
    }
    Ok(())
}
