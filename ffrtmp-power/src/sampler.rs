//! [`Sampler`]: reads a power source at a fixed rate and splits each interval's energy between
//! the running jobs by their share of the machine's CPU time ([`ATTRIBUTION_METHOD`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ffrtmp_core::{EnergySample, PowerError, PowerSource};
use serde::{Deserialize, Serialize};

use crate::cpu::{CpuTimes, NoCpuTimes};
use crate::meter::UNAVAILABLE_SOURCE;

/// Name of the attribution method of the [`Sampler`], recorded in reports: per interval, a job
/// gets `its cgroup CPU-time delta / the machine's CPU-time delta (busy and idle)` of every zone's
/// energy, and the rest goes to "other" (other processes and idle).
pub const ATTRIBUTION_METHOD: &str = "cgroup-cpu-share";

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
    /// Part of the job's time could not be measured (no reading before it started, or the final
    /// reading failed); the figures cover the rest.
    pub partial: bool,
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
/// `jobs_joules + other_joules` equals `total_joules` up to rounding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// The power source (`rapl`, …), or `unavailable`.
    pub source: String,
    /// Per zone.
    pub zones: Vec<ZoneTotal>,
    /// Sum over zones.
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
    /// Jobs running now.
    pub running_jobs: usize,
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
    /// The last reading error, if any.
    pub last_error: Option<PowerError>,
    /// Wall time spent inside ticks (reading counters and attributing).
    pub tick_time: Duration,
    /// CPU time used by the sampler thread (Linux `schedstat`); `None` without a thread or on
    /// other systems.
    pub thread_cpu: Option<Duration>,
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
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Sampler {
    /// A sampler reading `source` and `cpu` every [`SamplerConfig::interval`] on its own thread.
    /// Takes the first reading before returning.
    pub fn start(source: Arc<dyn PowerSource>, cpu: Arc<dyn CpuTimes>, config: SamplerConfig) -> Sampler {
        let sampler = Sampler::manual(source, cpu, config);
        let shared = sampler.shared.clone();
        let spawned = thread::Builder::new()
            .name("ffrtmp-power-sampler".into())
            .spawn(move || run(shared));
        match spawned {
            Ok(handle) => *sampler.thread.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle),
            Err(e) => tracing::warn!(error = %e, "cannot start the energy sampler thread; sampling only at job ends"),
        }
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
            last_error: None,
            tick_time: Duration::ZERO,
            ring: VecDeque::with_capacity(config.ring_capacity.min(4096)),
        };
        Sampler {
            shared: Arc::new(Shared {
                source,
                source_name,
                cpu,
                config,
                created,
                state: Mutex::new(state),
                stop: Mutex::new(false),
                wake: Condvar::new(),
                thread_cpu: Mutex::new(ThreadCpu::default()),
            }),
            thread: Mutex::new(None),
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
            acc.partial |= acc.samples > 0;
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
            unavailable,
        })
    }

    /// Keys of the running jobs, sorted.
    pub fn running_jobs(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.shared.lock().jobs.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Whole-node energy since the first reading: per zone, attributed to jobs, other, idle, wraps.
    pub fn totals(&self) -> Totals {
        let st = self.shared.lock();
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
            total_joules: st.zones.iter().map(|z| z.total_uj).sum::<u64>() as f64 / 1e6,
            zones,
            jobs_joules: st.jobs_joules,
            other_joules: st.other_joules,
            idle_joules: st.idle_joules,
            idle_seconds: st.idle_seconds,
            measured_seconds: st.measured_seconds,
            wraps: st.wraps,
            running_jobs: st.jobs.len(),
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
        thread::sleep(window);
        let last = source.sample()?;
        let seconds = t0.elapsed().as_secs_f64();
        let after = self.job_activity();
        zone_deltas(&first, &last).map_err(PowerError::Read)?;
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
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    /// Stops the sampler thread and waits for it (at most one tick). Totals, recent intervals and
    /// running jobs stay readable, and [`job_finished`](Self::job_finished) still takes a final
    /// reading. Calling it again does nothing.
    pub fn stop(&self) {
        *self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_all();
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("the energy sampler thread panicked");
            }
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop();
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
    stop: Mutex<bool>,
    wake: Condvar,
    thread_cpu: Mutex<ThreadCpu>,
}

#[derive(Default)]
struct ThreadCpu {
    schedstat: Option<PathBuf>,
    start_ns: Option<u64>,
    final_ns: Option<u64>,
}

struct State {
    /// The last good reading: the start of the next interval.
    last: Option<Reading>,
    /// Per zone, in the source's order, since the first reading.
    zones: Vec<ZoneAcc>,
    jobs: HashMap<String, JobAcc>,
    /// Jobs registered so far.
    job_generation: u64,
    jobs_joules: f64,
    other_joules: f64,
    idle_joules: f64,
    idle_seconds: f64,
    measured_seconds: f64,
    wraps: u64,
    ticks: u64,
    intervals: u64,
    read_errors: u64,
    last_error: Option<PowerError>,
    tick_time: Duration,
    ring: VecDeque<IntervalRecord>,
}

struct Reading {
    at: Instant,
    energy: EnergySample,
    machine_ns: u64,
}

struct ZoneAcc {
    name: String,
    kind: ZoneKind,
    total_uj: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ZoneKind {
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
struct Split {
    package: f64,
    dram: f64,
    other: f64,
}

impl Split {
    fn total(&self) -> f64 {
        self.package + self.dram + self.other
    }

    fn add(&mut self, kind: ZoneKind, joules: f64) {
        match kind {
            ZoneKind::Package => self.package += joules,
            ZoneKind::Dram => self.dram += joules,
            ZoneKind::Other => self.other += joules,
        }
    }

    fn add_share(&mut self, interval: &Split, share: f64) {
        self.package += interval.package * share;
        self.dram += interval.dram * share;
        self.other += interval.other * share;
    }
}

struct JobAcc {
    started: Instant,
    /// The CPU counter started at zero when the job was registered (else: at its first reading).
    zero_baseline: bool,
    last_ns: Option<u64>,
    /// CPU delta of the interval being attributed.
    pending_ns: u64,
    cpu_ns: u64,
    joules: Split,
    samples: u64,
    read_errors: u64,
    partial: bool,
    last_error: Option<PowerError>,
}

impl JobAcc {
    fn new(zero_baseline: bool) -> Self {
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
            last_error: None,
        }
    }

    /// The CPU-time delta since the last reading, given the counter now (`None`: unreadable).
    fn advance(&mut self, now: Option<u64>) -> u64 {
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
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn tick(&self, st: &mut State) -> Result<Option<IntervalRecord>, PowerError> {
        let source = match &self.source {
            Ok(source) => source.as_ref(),
            Err(e) => return Err(e.clone()),
        };
        let began = Instant::now();
        let result = self.read_and_attribute(source, st);
        st.ticks += 1;
        st.tick_time += began.elapsed();
        if let Err(e) = &result {
            st.read_errors += 1;
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
        let energy = source.sample()?;
        let at = Instant::now();
        let machine_ns = self
            .cpu
            .total_ns()
            .ok_or_else(|| PowerError::Read("the machine's CPU time cannot be read (CpuTimes::total_ns)".into()))?;
        let Some(prev) = st.last.take() else {
            self.set_start(st, energy, machine_ns, at);
            return Ok(None);
        };
        let deltas = match zone_deltas(&prev.energy, &energy) {
            Ok(deltas) => deltas,
            Err(reason) => {
                // Start afresh from this reading; the running jobs lose this interval.
                self.set_start(st, energy, machine_ns, at);
                return Err(PowerError::Read(reason));
            }
        };

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
        Ok(Some(record))
    }

    /// Makes `energy` the start of the next interval, with no interval attributed: the first
    /// reading, or a new start after the source's zones changed. Running jobs' CPU counters restart
    /// from their current reading and, as their time so far went unmeasured, they are partial.
    fn set_start(&self, st: &mut State, energy: EnergySample, machine_ns: u64, at: Instant) {
        if st.zones.is_empty() || !same_zones(&st.zones, &energy) {
            if !st.zones.is_empty() {
                tracing::warn!("energy source zones changed; per-zone totals restart");
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
            job.partial = true;
        }
        st.wraps = energy.wraps;
        st.last = Some(Reading { at, energy, machine_ns });
    }
}

fn same_zones(zones: &[ZoneAcc], energy: &EnergySample) -> bool {
    zones.len() == energy.zones.len() && zones.iter().zip(&energy.zones).all(|(a, b)| a.name == b.zone)
}

/// Microjoules per zone from `prev` to `next`, which must list the same zones in the same order,
/// none going backwards.
fn zone_deltas(prev: &EnergySample, next: &EnergySample) -> Result<Vec<u64>, String> {
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
    prev.zones
        .iter()
        .zip(&next.zones)
        .map(|(a, b)| {
            b.energy_uj.checked_sub(a.energy_uj).ok_or_else(|| {
                format!(
                    "the {} counter went backwards ({} µJ then {} µJ)",
                    b.zone, a.energy_uj, b.energy_uj
                )
            })
        })
        .collect()
}

/// The sampler thread: ticks every interval until stopped. Late ticks are not made up in a burst.
fn run(shared: Arc<Shared>) {
    shared.thread_cpu_start();
    let interval = shared.config.interval;
    let mut next = Instant::now() + interval;
    let mut failing = false;
    loop {
        {
            let mut stopped = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if *stopped {
                    drop(stopped);
                    shared.thread_cpu_end();
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stopped = shared
                    .wake
                    .wait_timeout(stopped, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let result = {
            let mut st = shared.lock();
            shared.tick(&mut st)
        };
        match result {
            Err(e) if !failing => {
                tracing::warn!(error = %e, "energy sampler: reading failed; retrying every tick");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "energy sampler: reading failed"),
            Ok(_) if failing => {
                tracing::info!("energy sampler: readings resumed");
                failing = false;
            }
            Ok(_) => {}
        }
        next += interval;
        let now = Instant::now();
        if next <= now {
            next = now + interval;
        }
    }
}

impl Shared {
    fn thread_cpu_start(&self) {
        // /proc/thread-self -> "<pid>/task/<tid>", readable from any thread of the process.
        let path = fs::read_link("/proc/thread-self")
            .ok()
            .map(|link| PathBuf::from("/proc").join(link).join("schedstat"));
        let start = path.as_deref().and_then(read_schedstat_ns);
        let mut cpu = self.thread_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        cpu.start_ns = start;
        cpu.schedstat = path;
    }

    fn thread_cpu_end(&self) {
        let mut cpu = self.thread_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        cpu.final_ns = cpu.schedstat.as_deref().and_then(read_schedstat_ns);
    }
}

/// Nanoseconds on CPU, the first field of a `schedstat` file.
fn read_schedstat_ns(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::ZoneEnergy;

    #[derive(Default)]
    struct Fake {
        state: Mutex<FakeState>,
    }

    #[derive(Default)]
    struct FakeState {
        zones: Vec<(String, u64)>,
        fail: Option<PowerError>,
        machine_ns: Option<u64>,
        jobs: HashMap<String, u64>,
    }

    impl Fake {
        fn new(zones: &[&str]) -> Arc<Fake> {
            let fake = Fake::default();
            {
                let mut st = fake.state.lock().unwrap();
                st.zones = zones.iter().map(|z| (z.to_string(), 0)).collect();
                st.machine_ns = Some(0);
            }
            Arc::new(fake)
        }

        /// Advances by `secs` on `cpus` CPUs with `watts` per zone and the given job CPU fractions
        /// (of the whole machine).
        fn advance(&self, secs: f64, cpus: f64, watts: &[f64], jobs: &[(&str, f64)]) {
            let mut st = self.state.lock().unwrap();
            for (z, w) in st.zones.iter_mut().zip(watts) {
                z.1 += (w * secs * 1e6).round() as u64;
            }
            let machine = secs * cpus * 1e9;
            *st.machine_ns.as_mut().unwrap() += machine as u64;
            for (job, frac) in jobs {
                *st.jobs.entry(job.to_string()).or_default() += (machine * frac) as u64;
            }
        }
    }

    impl PowerSource for Fake {
        fn name(&self) -> &str {
            "fake"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            let st = self.state.lock().unwrap();
            if let Some(e) = &st.fail {
                return Err(e.clone());
            }
            Ok(EnergySample {
                zones: st
                    .zones
                    .iter()
                    .map(|(zone, uj)| ZoneEnergy {
                        zone: zone.clone(),
                        energy_uj: *uj,
                    })
                    .collect(),
                wraps: 0,
            })
        }
    }

    impl CpuTimes for Fake {
        fn job_cpu_ns(&self, job: &str) -> Option<u64> {
            self.state.lock().unwrap().jobs.get(job).copied()
        }
        fn total_ns(&self) -> Option<u64> {
            self.state.lock().unwrap().machine_ns
        }
    }

    fn manual(fake: &Arc<Fake>) -> Sampler {
        Sampler::manual(fake.clone(), fake.clone(), SamplerConfig::default())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn no_jobs_means_all_other_and_idle() {
        let fake = Fake::new(&["package-0", "dram-0"]);
        let s = manual(&fake);
        fake.advance(1.0, 2.0, &[20.0, 5.0], &[]);
        let r = s.tick().unwrap().unwrap();
        assert!(close(r.total_joules, 25.0) && close(r.other_joules, 25.0) && r.jobs_joules == 0.0);
        // Watts divide by real time between readings, which this test does not control.
        let idle = s.idle_power().unwrap();
        assert!(idle.watts > 0.0 && idle.seconds > 0.0 && !idle.jobs_ran, "{idle:?}");
        let t = s.totals();
        assert!(close(t.other_joules, 25.0) && close(t.idle_joules, 25.0));
        assert_eq!(t.zones.len(), 2);
    }

    #[test]
    fn shares_never_exceed_the_interval() {
        let fake = Fake::new(&["package-0"]);
        let s = manual(&fake);
        s.job_started("a");
        s.job_started("b");
        // The job counters claim 3 CPU-s on a machine that counted 2: jobs split all of it.
        {
            let mut st = fake.state.lock().unwrap();
            st.zones[0].1 = 30_000_000;
            st.machine_ns = Some(2_000_000_000);
            st.jobs.insert("a".into(), 1_000_000_000);
            st.jobs.insert("b".into(), 2_000_000_000);
        }
        let r = s.tick().unwrap().unwrap();
        assert!(close(r.jobs_joules, 30.0) && r.other_joules == 0.0, "{r:?}");
        let a = s.job_finished("a").unwrap();
        assert!(close(a.joules_cpu, 10.0), "{a:?}");
        assert_eq!(s.job_finished("a"), None);
    }

    #[test]
    fn failed_reading_is_covered_by_the_next() {
        let fake = Fake::new(&["package-0"]);
        let s = manual(&fake);
        s.job_started("a");
        fake.advance(1.0, 1.0, &[10.0], &[("a", 0.5)]);
        fake.state.lock().unwrap().fail = Some(PowerError::Read("flaky".into()));
        assert!(s.tick().is_err());
        fake.state.lock().unwrap().fail = None;
        fake.advance(1.0, 1.0, &[10.0], &[("a", 0.5)]);
        s.tick().unwrap();
        let e = s.job_finished("a").unwrap();
        assert!(close(e.joules_total, 10.0), "{e:?}");
        assert_eq!((e.read_errors, e.partial, e.unavailable.clone()), (1, false, None));
    }

    #[test]
    fn unreadable_machine_cpu_skips_the_tick() {
        let fake = Fake::new(&["package-0"]);
        let s = manual(&fake);
        fake.state.lock().unwrap().machine_ns = None;
        let err = s.tick().unwrap_err();
        assert!(matches!(err, PowerError::Read(r) if r.contains("total_ns")));
    }

    #[test]
    fn job_counter_reset_counts_from_zero_and_adopted_jobs_from_first_reading() {
        let mut acc = JobAcc::new(true);
        assert_eq!(acc.advance(Some(5)), 5);
        assert_eq!(acc.advance(None), 0);
        assert_eq!(acc.advance(Some(9)), 4);
        assert_eq!(acc.advance(Some(2)), 2);
        let mut adopted = JobAcc::new(false);
        assert_eq!(adopted.advance(Some(1_000)), 0);
        assert_eq!(adopted.advance(Some(1_500)), 500);
    }

    #[test]
    fn zones_changing_restart_from_the_new_reading() {
        let fake = Fake::new(&["package-0"]);
        let s = manual(&fake);
        s.job_started("a");
        fake.state.lock().unwrap().zones = vec![("package-1".into(), 7)];
        let err = s.tick().unwrap_err();
        assert!(matches!(err, PowerError::Read(r) if r.contains("different zones")));
        fake.advance(1.0, 1.0, &[4.0], &[("a", 1.0)]);
        s.tick().unwrap();
        let e = s.job_finished("a").unwrap();
        assert!(e.partial && close(e.joules_total, 4.0), "{e:?}");
        assert_eq!(s.totals().zones[0].zone, "package-1");
    }

    #[test]
    fn ring_is_bounded() {
        let fake = Fake::new(&["package-0"]);
        let config = SamplerConfig {
            ring_capacity: 3,
            ..SamplerConfig::default()
        };
        let s = Sampler::manual(fake.clone(), fake.clone(), config);
        for _ in 0..10 {
            fake.advance(0.1, 1.0, &[10.0], &[]);
            s.tick().unwrap();
        }
        let recent = s.recent();
        assert_eq!(recent.len(), 3);
        assert!(recent.windows(2).all(|w| w[0].end_s <= w[1].end_s));
        assert!(close(s.totals().total_joules, 10.0));
    }
}
