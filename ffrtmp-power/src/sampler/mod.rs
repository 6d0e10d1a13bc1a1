//! [`Sampler`]: reads a power source at a fixed rate and splits each interval's energy between
//! the running jobs by their share of the machine's CPU time ([`ATTRIBUTION_METHOD`]).

mod attribution;
mod records;
#[cfg(test)]
mod tests;
mod thread;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ffrtmp_core::{EnergySample, PowerError, PowerSource};

use crate::cpu::{CpuTimes, NoCpuTimes};
use crate::meter::UNAVAILABLE_SOURCE;

use attribution::{zone_deltas, JobAcc, State};
pub use records::{IdlePower, IntervalRecord, JobEnergy, SamplerStats, Totals, ZoneTotal};
pub(crate) use thread::TickThread;
use thread::{read_schedstat_ns, ThreadCpu};

/// Name of the attribution method of the [`Sampler`], recorded in reports: per interval, a job
/// gets `its cgroup CPU-time delta / the machine's CPU-time delta (busy and idle)` of every zone's
/// energy, and the rest goes to "other" (other processes and idle).
pub const ATTRIBUTION_METHOD: &str = "cgroup-cpu-share";

/// After this many failed readings in a row a [`Sampler`] no longer counts as
/// [`measuring`](Sampler::measuring).
pub const FAILED_READS_UNAVAILABLE: u64 = 3;

/// Default sampling rate of a [`Sampler`], in hertz.
pub const DEFAULT_HZ: f64 = 10.0;

/// How a [`Sampler`] samples.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Time between ticks of the sampler thread (default 100 ms, i.e. [`DEFAULT_HZ`]).
    pub interval: Duration,
    /// How many recent intervals [`Sampler::recent`] keeps (default 600: a minute at 10 Hz).
    /// This ring and one accumulator per running job are all the memory the sampler keeps.
    pub ring_capacity: usize,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig::hz(DEFAULT_HZ)
    }
}

impl SamplerConfig {
    /// Sampling at `hz` ticks per second (clamped to 0.01..=10,000), ring of 600 intervals.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(ffrtmp_power::SamplerConfig::hz(100.0).interval, Duration::from_millis(10));
    /// ```
    pub fn hz(hz: f64) -> Self {
        let hz = if hz.is_finite() {
            hz.clamp(0.01, 10_000.0)
        } else {
            DEFAULT_HZ
        };
        SamplerConfig {
            interval: Duration::from_secs_f64(1.0 / hz),
            ring_capacity: 600,
        }
    }
}

/// Samples a [`PowerSource`] at a fixed rate and attributes each interval's energy to the running
/// jobs in proportion to their CPU time ([`ATTRIBUTION_METHOD`]).
///
/// Per interval between two readings, with `ΔE` the energy of the source's zones (the source
/// never reports overlapping zones), `Δc_j` job `j`'s CPU-time delta and `ΔC` the machine's
/// (all CPUs, busy and idle, from [`CpuTimes::total_ns`]), job `j` gets `ΔE · Δc_j / max(ΔC, ΣΔc)`
/// of every zone; the rest is "other". A machine that is half idle with one job using the other
/// half therefore charges the job half of the energy. Intervals with no job count as idle
/// ([`idle_power`](Self::idle_power)).
///
/// Memory is bounded: one accumulator per running job and a ring of the last
/// [`SamplerConfig::ring_capacity`] intervals. [`start`](Self::start) ticks on its own thread;
/// [`manual`](Self::manual) leaves ticking to [`tick`](Self::tick) (tests, benches, or an
/// external timer). [`job_finished`](Self::job_finished) takes a reading first, so the job's
/// last partial interval is counted: call it before removing the job's cgroup.
///
/// If the source cannot be read, readings are retried at every tick and nothing is lost as long
/// as a later reading succeeds (the next interval spans the failure); jobs with no measured
/// interval get [`JobEnergy::unavailable`] with the typed reason, never zero watts.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
/// use ffrtmp_power::{CpuTimes, Sampler, SamplerConfig};
///
/// /// A meter and CPU counters the example moves by hand.
/// #[derive(Default)]
/// struct Machine(Mutex<(u64, u64, u64)>); // (package µJ, machine CPU ns, job CPU ns)
/// impl PowerSource for Machine {
///     fn name(&self) -> &str { "example" }
///     fn sample(&self) -> Result<EnergySample, PowerError> {
///         let uj = self.0.lock().unwrap().0;
///         Ok(EnergySample { zones: vec![ZoneEnergy { zone: "package-0".into(), energy_uj: uj }], wraps: 0 })
///     }
/// }
/// impl CpuTimes for Machine {
///     fn job_cpu_ns(&self, job: &str) -> Option<u64> { (job == "job-1").then(|| self.0.lock().unwrap().2) }
///     fn total_ns(&self) -> Option<u64> { Some(self.0.lock().unwrap().1) }
/// }
///
/// let machine = Arc::new(Machine::default());
/// let sampler = Sampler::manual(machine.clone(), machine.clone(), SamplerConfig::default());
/// sampler.job_started("job-1");
/// // One second on a 2-CPU machine: 2 CPU-seconds, 1.5 of them the job's; 40 J used.
/// *machine.0.lock().unwrap() = (40_000_000, 2_000_000_000, 1_500_000_000);
/// sampler.tick().unwrap();
/// let energy = sampler.job_finished("job-1").unwrap();
/// assert_eq!(energy.joules_cpu, 30.0); // 40 J × 1.5 / 2
/// assert_eq!(energy.samples, 2); // the tick, then the final reading at job_finished
/// let totals = sampler.totals();
/// assert_eq!((totals.total_joules, totals.other_joules), (40.0, 10.0));
/// ```
pub struct Sampler {
    shared: Arc<Shared>,
    thread: TickThread,
}

impl Sampler {
    /// A sampler reading `source` and `cpu` every [`SamplerConfig::interval`] on its own thread.
    /// Takes the first reading before returning.
    pub fn start(source: Arc<dyn PowerSource>, cpu: Arc<dyn CpuTimes>, config: SamplerConfig) -> Sampler {
        let sampler = Sampler::manual(source, cpu, config);
        let shared = sampler.shared.clone();
        sampler
            .thread
            .spawn("ffrtmp-power-sampler", "energy sampler", move |control| {
                thread::run(shared, control)
            });
        sampler
    }

    /// A sampler that reads only when [`tick`](Self::tick) (or [`job_finished`](Self::job_finished))
    /// is called. Takes the first reading before returning.
    pub fn manual(source: Arc<dyn PowerSource>, cpu: Arc<dyn CpuTimes>, config: SamplerConfig) -> Sampler {
        let name = source.name().to_string();
        let sampler = Sampler::with(Ok(source), name, cpu, config);
        let _ = sampler.tick();
        sampler
    }

    /// A sampler without a power source: every job's energy is unavailable with `err` as the
    /// reason (e.g. the error of [`RaplSource::system`](crate::RaplSource::system)).
    pub fn unavailable(err: PowerError) -> Sampler {
        Sampler::with(
            Err(err),
            UNAVAILABLE_SOURCE.to_string(),
            Arc::new(NoCpuTimes),
            SamplerConfig::default(),
        )
    }

    /// [`start`](Self::start) on the source if it opened, [`unavailable`](Self::unavailable) if not:
    /// `Sampler::start_or_unavailable(RaplSource::system(), cpu, config)`.
    pub fn start_or_unavailable<S: PowerSource + 'static>(
        source: Result<S, PowerError>,
        cpu: Arc<dyn CpuTimes>,
        config: SamplerConfig,
    ) -> Sampler {
        match source {
            Ok(source) => Sampler::start(Arc::new(source), cpu, config),
            Err(err) => Sampler::unavailable(err),
        }
    }

    fn with(
        source: Result<Arc<dyn PowerSource>, PowerError>,
        source_name: String,
        cpu: Arc<dyn CpuTimes>,
        config: SamplerConfig,
    ) -> Sampler {
        let created = Instant::now();
        let state = State {
            last: None,
            zones: Vec::new(),
            total_uj: 0,
            jobs: HashMap::new(),
            job_generation: 0,
            jobs_joules: 0.0,
            other_joules: 0.0,
            idle_joules: 0.0,
            idle_seconds: 0.0,
            measured_seconds: 0.0,
            wraps: 0,
            ticks: 0,
            intervals: 0,
            read_errors: 0,
            failed_in_a_row: 0,
            last_error: None,
            resets: 0,
            source_resets: None,
            tick_time: Duration::ZERO,
            ring: VecDeque::with_capacity(config.ring_capacity.min(4096)),
            spare: EnergySample::default(),
            deltas: Vec::new(),
        };
        Sampler {
            shared: Arc::new(Shared {
                source,
                source_name,
                cpu,
                config,
                created,
                state: Mutex::new(state),
                thread_cpu: Mutex::new(ThreadCpu::default()),
            }),
            thread: TickThread::default(),
        }
    }

    /// Reads the source and the CPU counters now and attributes the interval since the last
    /// reading. Returns the interval, or `None` for the first reading (which only sets the
    /// starting point). On error nothing is attributed and the next good reading covers the gap.
    pub fn tick(&self) -> Result<Option<IntervalRecord>, PowerError> {
        let mut st = self.shared.lock();
        self.shared.tick(&mut st)
    }

    /// Registers a job whose CPU-time counter starts now at zero (a fresh cgroup): call it before
    /// the job's process starts. Returns `false` if the key was already running (it is restarted).
    pub fn job_started(&self, key: impl Into<String>) -> bool {
        self.register(key.into(), true)
    }

    /// Registers a job that was already running (e.g. after an agent restart): its CPU time
    /// counts from the first reading of its counter, not from zero.
    pub fn job_adopted(&self, key: impl Into<String>) -> bool {
        self.register(key.into(), false)
    }

    fn register(&self, key: String, zero_baseline: bool) -> bool {
        let mut st = self.shared.lock();
        st.job_generation += 1;
        let job = JobAcc::new(zero_baseline);
        let fresh = st.jobs.insert(key.clone(), job).is_none();
        if !fresh {
            tracing::warn!(job = %key, "energy sampler: job started twice; its energy restarts from now");
        }
        fresh
    }

    /// Takes a final reading, stops attributing to the job and returns its energy; `None` if the
    /// key is not running. Call it before the job's cgroup is removed.
    pub fn job_finished(&self, key: &str) -> Option<JobEnergy> {
        let mut st = self.shared.lock();
        if !st.jobs.contains_key(key) {
            return None;
        }
        let flush = self.shared.tick(&mut st);
        let mut acc = st.jobs.remove(key)?;
        if let Err(e) = &flush {
            // The job's last stretch went unmeasured (with no interval at all it is unavailable).
            if acc.samples > 0 {
                acc.mark_partial(|| format!("the final reading failed: {e}"));
            }
            acc.last_error.get_or_insert_with(|| e.clone());
        }
        let unavailable = (acc.samples == 0).then(|| {
            acc.last_error
                .clone()
                .unwrap_or_else(|| PowerError::Unavailable("no energy reading was taken while the job ran".into()))
        });
        Some(JobEnergy {
            key: key.to_string(),
            source: if unavailable.is_some() {
                UNAVAILABLE_SOURCE.to_string()
            } else {
                self.shared.source_name.clone()
            },
            joules_cpu: acc.joules.package,
            joules_dram: acc.joules.dram,
            joules_total: acc.joules.total(),
            cpu_time: Duration::from_nanos(acc.cpu_ns),
            samples: acc.samples,
            wall: acc.started.elapsed(),
            read_errors: acc.read_errors,
            partial: acc.partial,
            partial_reason: acc.partial.then(|| acc.partial_reason.clone()).flatten(),
            unavailable,
        })
    }

    /// Stops attributing to the job `key` without a reading and drops what it accumulated (its
    /// workload ran outside its cgroup, so its CPU share would not be its own). Returns whether
    /// the key was running.
    pub fn job_abandoned(&self, key: &str) -> bool {
        self.shared.lock().jobs.remove(key).is_some()
    }

    /// Keys of the running jobs, sorted.
    pub fn running_jobs(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.shared.lock().jobs.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Whole-node energy since the first reading: per zone, attributed to jobs, other, idle, wraps,
    /// and how long ago the last good reading was.
    pub fn totals(&self) -> Totals {
        let st = self.shared.lock();
        let last_reading_age_s = st.last.as_ref().map(|r| r.at.elapsed().as_secs_f64());
        let zones: Vec<ZoneTotal> = st
            .zones
            .iter()
            .map(|z| ZoneTotal {
                zone: z.name.clone(),
                joules: z.total_uj as f64 / 1e6,
            })
            .collect();
        Totals {
            source: self.shared.source_name.clone(),
            total_joules: st.total_uj as f64 / 1e6,
            zones,
            jobs_joules: st.jobs_joules,
            other_joules: st.other_joules,
            idle_joules: st.idle_joules,
            idle_seconds: st.idle_seconds,
            measured_seconds: st.measured_seconds,
            wraps: st.wraps,
            resets: st.resets,
            running_jobs: st.jobs.len(),
            last_reading_age_s,
        }
    }

    /// The most recent intervals, oldest first (at most [`SamplerConfig::ring_capacity`]).
    pub fn recent(&self) -> Vec<IntervalRecord> {
        self.shared.lock().ring.iter().copied().collect()
    }

    /// Mean power over the recent intervals ending within `window` of the last one.
    pub fn recent_watts(&self, window: Duration) -> Option<f64> {
        let st = self.shared.lock();
        let last_end = st.ring.back()?.end_s;
        let from = last_end - window.as_secs_f64();
        let (joules, secs) = st
            .ring
            .iter()
            .filter(|r| r.end_s > from)
            .fold((0.0, 0.0), |(j, s), r| (j + r.total_joules, s + r.dt_s));
        (secs > 0.0).then(|| joules / secs)
    }

    /// Mean power of the intervals so far in which no job was running; `None` before any.
    pub fn idle_power(&self) -> Option<IdlePower> {
        let st = self.shared.lock();
        (st.idle_seconds > 0.0).then(|| IdlePower {
            watts: st.idle_joules / st.idle_seconds,
            seconds: st.idle_seconds,
            jobs_ran: false,
        })
    }

    /// Measures mean power over the next `window` by reading the source at its start and end
    /// (blocks for `window`). [`IdlePower::jobs_ran`] says whether a job was registered at any
    /// point of the window, in which case the figure is not idle power.
    pub fn measure_idle(&self, window: Duration) -> Result<IdlePower, PowerError> {
        let source = self.shared.source.as_ref().map_err(Clone::clone)?;
        let before = self.job_activity();
        let first = source.sample()?;
        let t0 = Instant::now();
        std::thread::sleep(window);
        let last = source.sample()?;
        let seconds = t0.elapsed().as_secs_f64();
        let after = self.job_activity();
        zone_deltas(&first, &last, &mut Vec::new()).map_err(PowerError::Read)?;
        Ok(IdlePower {
            watts: last.joules_since(&first) / seconds,
            seconds,
            jobs_ran: before.1 > 0 || after.1 > 0 || before.0 != after.0,
        })
    }

    /// (jobs registered so far, jobs running now).
    fn job_activity(&self) -> (u64, usize) {
        let st = self.shared.lock();
        (st.job_generation, st.jobs.len())
    }

    /// Why the sampler has no energy at all: the source's error, or the last error while no
    /// reading has ever succeeded. `None` once a reading succeeded.
    pub fn unavailable_reason(&self) -> Option<PowerError> {
        if let Err(e) = &self.shared.source {
            return Some(e.clone());
        }
        let st = self.shared.lock();
        match st.last {
            Some(_) => None,
            None => Some(
                st.last_error
                    .clone()
                    .unwrap_or_else(|| PowerError::Unavailable("no energy reading yet".into())),
            ),
        }
    }

    /// Whether the sampler is measuring now: a reading has succeeded, and fewer than
    /// [`FAILED_READS_UNAVAILABLE`] readings in a row have failed since. A meter that stopped
    /// answering is then reported as unavailable rather than by its last, frozen figures.
    pub fn measuring(&self) -> bool {
        if self.shared.source.is_err() {
            return false;
        }
        let st = self.shared.lock();
        st.last.is_some() && st.failed_in_a_row < FAILED_READS_UNAVAILABLE
    }

    /// The power source's name (`rapl`, …), or `unavailable`.
    pub fn source_name(&self) -> &str {
        &self.shared.source_name
    }

    /// The configuration.
    pub fn config(&self) -> &SamplerConfig {
        &self.shared.config
    }

    /// Counters about the sampler itself.
    pub fn stats(&self) -> SamplerStats {
        let thread_cpu = self.thread_cpu_time();
        let st = self.shared.lock();
        SamplerStats {
            ticks: st.ticks,
            intervals: st.intervals,
            read_errors: st.read_errors,
            failed_in_a_row: st.failed_in_a_row,
            last_error: st.last_error.clone(),
            tick_time: st.tick_time,
            thread_cpu,
        }
    }

    /// CPU time used by the sampler thread so far (its whole life once stopped), read from
    /// `/proc/<pid>/task/<tid>/schedstat`; `None` without a thread or where that file is missing.
    pub fn thread_cpu_time(&self) -> Option<Duration> {
        let cpu = self.shared.thread_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        let start = cpu.start_ns?;
        let now = match cpu.final_ns {
            Some(ns) => ns,
            None => read_schedstat_ns(cpu.schedstat.as_deref()?)?,
        };
        Some(Duration::from_nanos(now.saturating_sub(start)))
    }

    /// Whether the sampler thread is running.
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops the sampler thread and waits for it (at most one tick). Totals, recent intervals and
    /// running jobs stay readable, and [`job_finished`](Self::job_finished) still takes a final
    /// reading. Calling it again does nothing.
    pub fn stop(&self) {
        self.thread.stop();
    }
}

impl fmt::Debug for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Sampler");
        d.field("source", &self.shared.source_name)
            .field("interval", &self.shared.config.interval);
        if let Err(e) = &self.shared.source {
            d.field("unavailable", e);
        }
        d.field("running", &self.is_running()).finish()
    }
}

struct Shared {
    source: Result<Arc<dyn PowerSource>, PowerError>,
    source_name: String,
    cpu: Arc<dyn CpuTimes>,
    config: SamplerConfig,
    created: Instant,
    state: Mutex<State>,
    thread_cpu: Mutex<ThreadCpu>,
}
