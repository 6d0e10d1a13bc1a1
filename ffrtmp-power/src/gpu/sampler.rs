//! [`GpuSampler`]: reads a [`GpuMeter`] at a fixed rate on its own thread and accumulates each
//! running job's share of the GPUs' energy.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use ffrtmp_core::PowerError;

use super::pids::PidMap;
use super::state::State;
use super::{GpuAttribution, GpuInterval, GpuJobEnergy, GpuMeter, GpuSamplerConfig, GpuTotals, ProcessJobs};
use crate::meter::UNAVAILABLE_SOURCE;
use crate::sampler::TickThread;

/// Reads every GPU at a fixed rate and attributes each interval's GPU energy to the running jobs
/// by their processes' utilisation ([`GpuAttribution`]), next to the CPU [`Sampler`](crate::Sampler).
///
/// At every reading the running jobs' processes are listed ([`ProcessJobs::job_processes`]: the
/// agent reads each job cgroup's `cgroup.procs`) and any other GPU process is looked up
/// ([`ProcessJobs::job_of`]); a process found so is remembered, with its start time
/// ([`ProcessJobs::start_time`]), while its job runs. So a process's last samples, which NVML
/// reports after it has exited, still count as its job's, and a pid reused by another process is
/// looked up afresh rather than charged to the remembered job. Process ids are NVML's, of the
/// host's PID namespace: the agent must see host pids in `/proc` (in a container, share the
/// host's PID namespace), or no GPU process is found to be a job's.
///
/// Memory is bounded: one accumulator per running job, one state per GPU, and the remembered
/// processes of running jobs (at most 4096; beyond that new processes are looked up at every
/// reading instead of remembered, so their samples after they exit go to "other").
///
/// Readings (NVML calls, `/proc` reads) are taken outside the lock that
/// [`job_started`](Self::job_started), [`totals`](Self::totals) and
/// [`unavailable_reason`](Self::unavailable_reason) take, so a stalled GPU never blocks them.
/// [`job_finished`](Self::job_finished) takes a final reading first. If the GPUs cannot be read,
/// readings are retried at every tick and the next good one covers the gap. Intervals whose
/// energy cannot be split between jobs (no GPU measured, or per-process utilisation unreadable,
/// as on MIG or vGPU) make running jobs [`partial`](GpuJobEnergy::partial); a job with no
/// usable interval gets [`GpuJobEnergy::unavailable`] with the typed reason, never 0 J.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use ffrtmp_core::PowerError;
/// use ffrtmp_power::{GpuMeter, GpuReading, GpuSampler, GpuSamplerConfig, ProcessSample};
///
/// /// One GPU whose counter and process samples the example sets by hand.
/// #[derive(Default)]
/// struct Gpu(Mutex<(u64, Vec<ProcessSample>)>);
/// impl GpuMeter for Gpu {
///     fn source_name(&self) -> &str { "example" }
///     fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
///         let (uj, processes) = self.0.lock().unwrap().clone();
///         Ok(vec![GpuReading { zone: "gpu-0".into(), energy_uj: Some(uj), processes: Some(processes), ..Default::default() }])
///     }
/// }
///
/// let gpu = Arc::new(Gpu::default());
/// let pids = Arc::new(HashMap::from([(100, "job-1".to_string())]));
/// let sampler = GpuSampler::manual(gpu.clone(), pids, GpuSamplerConfig::default());
/// sampler.job_started("job-1");
/// // 50 J, and job-1's process kept the encoder 40 % busy.
/// *gpu.0.lock().unwrap() = (50_000_000, vec![ProcessSample { pid: 100, encoder: 40, ..Default::default() }]);
/// let energy = sampler.job_finished("job-1").unwrap();
/// assert_eq!(energy.joules(), Some(20.0));
/// assert_eq!(energy.method(), "nvml-process-utilization");
/// assert_eq!(sampler.totals().other_joules, 30.0);
/// ```
pub struct GpuSampler {
    shared: Arc<Shared>,
    thread: TickThread,
}

struct Shared {
    meter: Result<Arc<dyn GpuMeter>, PowerError>,
    source_name: String,
    processes: Arc<dyn ProcessJobs>,
    config: GpuSamplerConfig,
    /// Held for a whole reading, so readings are attributed in the order they were taken; never
    /// taken while `state` is held.
    reader: Mutex<PidMap>,
    state: Mutex<State>,
}

impl GpuSampler {
    /// A sampler reading `meter` every [`GpuSamplerConfig::interval`] on its own thread, mapping
    /// processes to jobs with `processes`. Takes the first reading before returning.
    pub fn start(meter: Arc<dyn GpuMeter>, processes: Arc<dyn ProcessJobs>, config: GpuSamplerConfig) -> Self {
        let sampler = GpuSampler::manual(meter, processes, config);
        let shared = sampler.shared.clone();
        sampler
            .thread
            .spawn("ffrtmp-gpu-sampler", "GPU energy sampler", move |control| {
                control.tick_loop("GPU energy sampler", shared.config.interval, || {
                    shared.tick(&mut shared.reader()).map(drop)
                })
            });
        sampler
    }

    /// A sampler that reads only when [`tick`](Self::tick) (or [`job_finished`](Self::job_finished))
    /// is called. Takes the first reading before returning.
    pub fn manual(meter: Arc<dyn GpuMeter>, processes: Arc<dyn ProcessJobs>, config: GpuSamplerConfig) -> Self {
        let name = meter.source_name().to_string();
        let sampler = GpuSampler::with(Ok(meter), name, processes, config);
        let _ = sampler.tick();
        sampler
    }

    /// A sampler without GPUs: every job's GPU energy is unavailable with `err` as the reason
    /// (e.g. `NVML library not found (no NVIDIA driver): …`).
    pub fn unavailable(err: PowerError) -> Self {
        GpuSampler::with(
            Err(err),
            UNAVAILABLE_SOURCE.to_string(),
            Arc::new(HashMap::new()),
            GpuSamplerConfig::default(),
        )
    }

    fn with(
        meter: Result<Arc<dyn GpuMeter>, PowerError>,
        source_name: String,
        processes: Arc<dyn ProcessJobs>,
        config: GpuSamplerConfig,
    ) -> Self {
        let state = State::new(GpuAttribution::new(config.share_hold), source_name.clone());
        GpuSampler {
            shared: Arc::new(Shared {
                meter,
                source_name,
                processes,
                config,
                reader: Mutex::new(PidMap::default()),
                state: Mutex::new(state),
            }),
            thread: TickThread::default(),
        }
    }

    /// Reads the GPUs now and attributes the interval since the last good reading. Returns the
    /// interval, or `None` for the first reading (which only sets the starting point).
    pub fn tick(&self) -> Result<Option<GpuInterval>, PowerError> {
        self.shared.tick(&mut self.shared.reader())
    }

    /// Starts attributing GPU energy to the job `key`: call it before its processes start.
    /// Returns `false` if the key was already running (it restarts from zero).
    pub fn job_started(&self, key: impl Into<String>) -> bool {
        self.shared.lock().start_job(key.into())
    }

    /// Takes a final reading, stops attributing to the job and returns its GPU energy; `None` if
    /// the key is not running, or was started again during the final reading (the new run goes on).
    pub fn job_finished(&self, key: &str) -> Option<GpuJobEnergy> {
        // The run checked here is the one finished: the key may be started again meanwhile.
        let run = self.shared.lock().jobs.get(key)?.run;
        let mut reader = self.shared.reader();
        let flush = self.shared.tick(&mut reader).map(drop);
        let energy = self.shared.lock().finish_job(key, run, flush, &self.shared.source_name);
        if energy.is_some() {
            reader.forget_job(key);
        }
        energy
    }

    /// Stops attributing to the job `key` without a reading and drops what it accumulated (its
    /// workload ran outside its cgroup, so its figures would not be its own). Returns whether the
    /// key was running.
    pub fn job_abandoned(&self, key: &str) -> bool {
        // No reading and no reader lock, so a stalled GPU does not delay it; the pid map drops
        // the job's processes at its next reading.
        self.shared.lock().abandon_job(key)
    }

    /// Whole-node GPU energy since the first reading.
    pub fn totals(&self) -> GpuTotals {
        self.shared.lock().totals.clone()
    }

    /// Why the sampler has no GPU energy at all: the meter's error, or the last error while no
    /// reading has ever succeeded. `None` once a reading succeeded.
    pub fn unavailable_reason(&self) -> Option<PowerError> {
        if let Err(e) = &self.shared.meter {
            return Some(e.clone());
        }
        let st = self.shared.lock();
        match st.last_at {
            Some(_) => None,
            None => Some(
                st.last_error
                    .clone()
                    .unwrap_or_else(|| PowerError::Unavailable("no GPU reading yet".into())),
            ),
        }
    }

    /// Whether the latest reading measured the energy of at least one GPU: `false` without GPUs,
    /// before the first reading, and after a failed reading until one succeeds again.
    pub fn measuring(&self) -> bool {
        self.shared.meter.is_ok() && self.shared.lock().measuring
    }

    /// Whether the sampler has GPUs to read (it was not made [`unavailable`](Self::unavailable)).
    pub fn has_gpus(&self) -> bool {
        self.shared.meter.is_ok()
    }

    /// The GPU source's name (`nvml`), or `unavailable`.
    pub fn source_name(&self) -> &str {
        &self.shared.source_name
    }

    /// Whether the sampler thread is running.
    pub fn is_running(&self) -> bool {
        self.thread.is_running()
    }

    /// Stops the sampler thread and waits for it (at most one reading). Totals stay readable and
    /// [`job_finished`](Self::job_finished) still takes a final reading. Calling it again does
    /// nothing.
    pub fn stop(&self) {
        self.thread.stop();
    }
}

impl fmt::Debug for GpuSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GpuSampler");
        d.field("source", &self.shared.source_name)
            .field("interval", &self.shared.config.interval);
        if let Err(e) = &self.shared.meter {
            d.field("unavailable", e);
        }
        d.field("running", &self.is_running()).finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reader(&self) -> MutexGuard<'_, PidMap> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One reading: the GPUs and the processes' jobs are read with only `pids` (the reader lock)
    /// held; the state is locked just to attribute the interval.
    fn tick(&self, pids: &mut PidMap) -> Result<Option<GpuInterval>, PowerError> {
        let meter = match &self.meter {
            Ok(meter) => meter,
            Err(e) => return Err(e.clone()),
        };
        let read = meter.read_gpus().and_then(|readings| {
            if readings.is_empty() {
                Err(PowerError::Read("no GPU in reading".into()))
            } else {
                Ok(readings)
            }
        });
        let at = Instant::now();
        let readings = match read {
            Ok(readings) => readings,
            Err(e) => {
                let mut st = self.lock();
                st.totals.ticks += 1;
                st.read_failed(&e);
                return Err(e);
            }
        };
        let (runs, held) = {
            let st = self.lock();
            (st.runs(), st.attribution.held_pids())
        };
        let found = pids.resolve(&*self.processes, &readings, &held, &runs, at);
        let mut st = self.lock();
        st.totals.ticks += 1;
        // Only processes of jobs still running as the same run (one may have ended meanwhile).
        let pid_jobs: HashMap<u32, String> = found
            .into_iter()
            .filter(|(_, (key, run))| st.jobs.get(key).is_some_and(|acc| acc.run == *run))
            .map(|(pid, (key, _))| (pid, key))
            .collect();
        let Some(previous) = st.last_at.replace(at) else {
            st.baseline(&readings);
            return Ok(None);
        };
        let interval = st
            .attribution
            .step(&readings, at.saturating_duration_since(previous), &pid_jobs);
        // Only the runs resolved above: a job started since then gets no share of this interval.
        st.account(&interval, &runs);
        Ok(Some(interval))
    }
}
