//! Per-job energy on an agent: the power [`Sampler`] attributes each interval's energy by the
//! CPU time of each job's cgroup, and the [`GpuSampler`] each interval's GPU energy by the
//! utilisation of the GPU processes in each job's cgroup ([`CgroupProcessJobs`]).
//! [`AttributedEnergy`] learns of job cgroups through [`ffrtmp_core::CgroupObserver`] (the
//! executor in `ffrtmp-exec` tells it; this crate does not depend on that one) and is the
//! agent's [`JobEnergyMeter`]; [`MeteredNode`] adds the node's whole-power snapshot for
//! heartbeats.
//!
//! From any [`ffrtmp_core::PowerSource`] (a wall meter, RAPL, NVML):
//!
//! ```
//! use std::sync::Arc;
//! use ffrtmp_core::{EnergySample, JobEnergyMeter, PowerError, PowerSource, ZoneEnergy};
//! use ffrtmp_power::agent::{AttributedEnergy, MeteredNode};
//! use ffrtmp_power::SamplerConfig;
//!
//! /// A meter whose counter never moves.
//! struct Still;
//! impl PowerSource for Still {
//!     fn name(&self) -> &str { "still" }
//!     fn sample(&self) -> Result<EnergySample, PowerError> {
//!         Ok(EnergySample { zones: vec![ZoneEnergy { zone: "wall".into(), energy_uj: 0 }], wraps: 0 })
//!     }
//! }
//!
//! let energy = Arc::new(AttributedEnergy::from_power_source(Arc::new(Still), SamplerConfig::default(), None));
//! assert_eq!(energy.sampler().unavailable_reason(), None);
//! let meter: Arc<dyn JobEnergyMeter> = Arc::new(MeteredNode::new(energy));
//! # let _ = meter;
//! ```

mod gpu;
mod node;
mod processes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::{
    unavailable_report, CgroupCpuCounter, CpuTimes, GpuJobEnergy, GpuSampler, JobEnergy, MachineClock, ProcessJobs,
    Sampler, SamplerConfig,
};
use ffrtmp_core::power::unavailable_energy;
use ffrtmp_core::quality::quality_pass_key;
use ffrtmp_core::{CgroupObserver, CgroupPaths};
use ffrtmp_core::{EnergyReport, Job, JobEnergyMeter, JobResult, PowerError, PowerSource};

pub use gpu::{gpu_sampler, GpuEnergyMode};
pub use node::MeteredNode;
pub use processes::{job_in_cgroup_file, stat_start_time, CgroupProcessJobs};

/// CPU time of job cgroups (by cgroup name) and of the whole machine.
#[derive(Default)]
pub struct CgroupCpuTimes {
    dirs: RwLock<HashMap<String, JobCpu>>,
    clock: MachineClock,
}

/// A job cgroup's CPU-time counter, opened at its first successful reading and then kept open,
/// so that each sampler tick costs one `pread` per job (the counter opens its file again by
/// itself if it is removed or replaced).
struct JobCpu {
    dir: PathBuf,
    counter: OnceLock<CgroupCpuCounter>,
}

impl JobCpu {
    fn new(dir: &Path) -> Self {
        JobCpu {
            dir: dir.to_path_buf(),
            counter: OnceLock::new(),
        }
    }
}

impl CpuTimes for CgroupCpuTimes {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        let dirs = self.dirs.read().ok()?;
        let entry = dirs.get(job)?;
        if let Some(counter) = entry.counter.get() {
            return counter.read_ns().ok();
        }
        let counter = CgroupCpuCounter::open(&entry.dir).ok()?;
        let ns = counter.read_ns().ok();
        let _ = entry.counter.set(counter);
        ns
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.clock.total_ns())
    }
}

/// Attributes energy to jobs by cgroup CPU share, and GPU energy by the utilisation of each
/// job's GPU processes. Register it as the [`CgroupObserver`] of the executor's cgroups and give
/// it to the agent as its [`JobEnergyMeter`].
pub struct AttributedEnergy {
    sampler: Sampler,
    gpu: GpuSampler,
    cpu: Arc<CgroupCpuTimes>,
    processes: Arc<CgroupProcessJobs>,
    finals: Mutex<FinalsMap>,
    no_cgroups: Option<String>,
}

/// At most this many jobs' final readings wait for [`JobEnergyMeter::finished`]: a job whose
/// report is never asked for must not keep its entry forever.
const MAX_FINALS: usize = 1024;

/// What is known of a job as its cgroup goes away.
enum Final {
    /// Its final CPU and GPU readings (boxed, so `Abandoned` entries stay small).
    Measured(Box<(Option<JobEnergy>, Option<GpuJobEnergy>)>),
    /// Its workload ran outside the cgroup: nothing measured through it is the job's.
    Abandoned,
}

/// The jobs' [`Final`]s until their reports are made, the oldest dropped beyond [`MAX_FINALS`].
#[derive(Default)]
struct FinalsMap {
    /// By cgroup name, with the insertion number that tells the oldest.
    entries: HashMap<String, (u64, Final)>,
    next: u64,
}

impl FinalsMap {
    fn insert(&mut self, name: &str, fin: Final) {
        self.next += 1;
        self.entries.insert(name.to_string(), (self.next, fin));
        while self.entries.len() > MAX_FINALS {
            let oldest = self.entries.iter().min_by_key(|(_, (n, _))| *n).map(|(k, _)| k.clone());
            match oldest {
                Some(key) => self.entries.remove(&key),
                None => break,
            };
        }
    }

    fn remove(&mut self, name: &str) -> Option<Final> {
        self.entries.remove(name).map(|(_, fin)| fin)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

impl AttributedEnergy {
    /// Builds the meter around a sampler made by `make` from the CPU-time reader it must use.
    /// `no_cgroups` is the reason job cgroups are unavailable on this node, if they are. GPU
    /// energy is off until [`with_gpu`](Self::with_gpu).
    pub fn new(make: impl FnOnce(Arc<dyn CpuTimes>) -> Sampler, no_cgroups: Option<String>) -> Self {
        let cpu = Arc::new(CgroupCpuTimes::default());
        let sampler = make(cpu.clone());
        AttributedEnergy {
            sampler,
            gpu: GpuSampler::unavailable(PowerError::Unavailable("GPU energy is not set up".into())),
            cpu,
            processes: Arc::new(CgroupProcessJobs::new("/proc")),
            finals: Mutex::new(FinalsMap::default()),
            no_cgroups,
        }
    }

    /// The meter over `source`, sampled on its own thread at `config`'s rate: each interval's
    /// energy is split between jobs by their cgroups' CPU time. `no_cgroups` is the reason job
    /// cgroups are unavailable on this node, if they are.
    pub fn from_power_source(source: Arc<dyn PowerSource>, config: SamplerConfig, no_cgroups: Option<String>) -> Self {
        AttributedEnergy::new(|cpu| Sampler::start(source, cpu, config), no_cgroups)
    }

    /// Adds per-job GPU energy from the GPU sampler `make` builds from the process → job map it
    /// must use, which reads processes' cgroups under `proc_root` (`/proc`) and each job cgroup's
    /// `cgroup.procs`. See [`gpu_sampler`]. `proc_root` must show the host's pids, which NVML
    /// reports: an agent in a container needs the host's PID namespace for GPU attribution.
    pub fn with_gpu(
        mut self,
        proc_root: impl Into<PathBuf>,
        make: impl FnOnce(Arc<dyn ProcessJobs>) -> GpuSampler,
    ) -> Self {
        self.processes = Arc::new(CgroupProcessJobs::new(proc_root));
        self.gpu = make(self.processes.clone());
        self
    }

    /// The sampler, for metrics and idle power.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// The CPUs the sampler's energy split is over: the machine's CPU time it divides by is
    /// this many CPUs × wall time.
    pub fn cpus(&self) -> u32 {
        self.cpu.clock.cpus()
    }

    /// The GPU sampler, for metrics (unavailable, with its reason, where there is no GPU energy).
    pub fn gpu(&self) -> &GpuSampler {
        &self.gpu
    }
}

impl CgroupObserver for AttributedEnergy {
    fn created(&self, name: &str, cgroup: &CgroupPaths) {
        if let (Some(dir), Ok(mut dirs)) = (cgroup.cpu_accounting_dir(), self.cpu.dirs.write()) {
            dirs.insert(name.to_string(), JobCpu::new(dir));
        }
        self.processes.add(name, cgroup.paths());
        self.sampler.job_started(name);
        self.gpu.job_started(name);
    }

    fn removing(&self, name: &str, _cgroup: &CgroupPaths) {
        // The final readings happen here, while the group's counter still exists.
        let energy = self.sampler.job_finished(name);
        let gpu = self.gpu.job_finished(name);
        self.forget(name, Final::Measured(Box::new((energy, gpu))));
    }

    fn abandoned(&self, name: &str, _cgroup: &CgroupPaths) {
        // No final reading: the accumulators hold the group's CPU time and processes, not the job's.
        self.sampler.job_abandoned(name);
        self.gpu.job_abandoned(name);
        self.forget(name, Final::Abandoned);
    }
}

impl AttributedEnergy {
    /// Keeps `fin` for the job's report and stops following its cgroup.
    fn forget(&self, name: &str, fin: Final) {
        if let Ok(mut finals) = self.finals.lock() {
            finals.insert(name, fin);
        }
        self.processes.remove(name);
        if let Ok(mut dirs) = self.cpu.dirs.write() {
            dirs.remove(name);
        }
    }
}

impl JobEnergyMeter for AttributedEnergy {
    fn started(&self, _job: &Job) {
        // Measurement starts when the executor creates the job's cgroup.
    }

    /// The job's energy whatever its outcome: a failed, timed-out or canceled job used energy
    /// too. `result` (when it completed) gives the frames and wall time; without it the ratios
    /// per frame are left out and the wall time is the sampler's.
    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport {
        let key = job.attempt_key().to_string();
        let fin = self.finals.lock().ok().and_then(|mut f| f.remove(&key));
        let (energy, gpu) = match fin {
            Some(Final::Measured(readings)) => *readings,
            Some(Final::Abandoned) => return unavailable_energy("the workload could not join its cgroup"),
            None => (None, None),
        };
        let Some(e) = energy else {
            return self.why_unmeasured();
        };
        let frames = result.map_or(0, |r| r.frames);
        let wall_s = result.map_or(0.0, |r| r.wall_s);
        self.report(job, e, gpu, frames, wall_s)
    }

    /// The quality pass ran in its own cgroup ([`quality_pass_key`]): its readings make its
    /// report, over the same frames as the encode and the pass's own wall time.
    fn quality_pass(&self, job: &Job, result: &JobResult) -> Option<EnergyReport> {
        let quality = result.quality.as_ref()?;
        let key = quality_pass_key(&job.attempt_key());
        let fin = self.finals.lock().ok().and_then(|mut f| f.remove(&key));
        let (energy, gpu) = match fin {
            Some(Final::Measured(readings)) => *readings,
            Some(Final::Abandoned) => return Some(unavailable_energy("the quality pass could not join its cgroup")),
            // No pass ran (VMAF without libvmaf, a file input): nothing to report.
            None if quality.wall_s.is_none() => return None,
            None => (None, None),
        };
        let Some(e) = energy else {
            return Some(self.why_unmeasured());
        };
        Some(self.report(job, e, gpu, result.frames, quality.wall_s.unwrap_or(0.0)))
    }
}

impl AttributedEnergy {
    /// Why a job (or its quality pass) has no CPU reading.
    fn why_unmeasured(&self) -> EnergyReport {
        match (self.sampler.unavailable_reason(), &self.no_cgroups) {
            (Some(e), _) => unavailable_energy(e.to_string()),
            (None, Some(reason)) => unavailable_energy(format!("no job cgroup to attribute CPU time to: {reason}")),
            (None, None) => unavailable_energy("the job's cgroup was not measured"),
        }
    }

    /// The report of one measured cgroup: its CPU share and GPU readings over `frames` and
    /// `wall_s`.
    fn report(&self, job: &Job, e: JobEnergy, gpu: Option<GpuJobEnergy>, frames: u64, wall_s: f64) -> EnergyReport {
        let s = job.spec.scenario();
        let pixels = frames * u64::from(s.width) * u64::from(s.height);
        let mut report = e.report_with_gpu(gpu.as_ref(), frames, wall_s, pixels);
        if gpu.is_none() {
            // The GPU sampler never had the job: say why there is no GPU figure if it knows.
            report.gpu_unavailable_reason = self
                .gpu
                .unavailable_reason()
                .and_then(|e| unavailable_report(&e).unavailable_reason);
        }
        report
    }
}
