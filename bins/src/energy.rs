//! Per-job energy on the reference agent: the power sampler of `ffrtmp-power` attributes
//! each interval's energy by the CPU time of each job's cgroup, which `ffrtmp-exec` creates,
//! and the GPU sampler each interval's GPU energy by the utilisation of the GPU processes in
//! each job's cgroup ([`CgroupProcessJobs`]). This module is the glue between the two crates
//! (which do not depend on each other).

mod gpu;
mod processes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ffrtmp_core::power::unavailable_energy;
use ffrtmp_core::{EnergyReport, Job, JobEnergyMeter, JobResult, PowerError};
use ffrtmp_exec::{job_cgroup_name, CgroupObserver, JobCgroup};
use ffrtmp_power::{
    unavailable_report, CgroupCpuCounter, CpuTimes, GpuJobEnergy, GpuSampler, JobEnergy, MachineClock, ProcessJobs,
    Sampler,
};

pub use gpu::{gpu_sampler, GpuEnergyMode};
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
    finals: Mutex<HashMap<String, Finals>>,
    no_cgroups: Option<String>,
}

/// A job's final CPU and GPU readings, taken as its cgroup goes away.
type Finals = (Option<JobEnergy>, Option<GpuJobEnergy>);

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
            finals: Mutex::new(HashMap::new()),
            no_cgroups,
        }
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
    fn created(&self, name: &str, cgroup: &JobCgroup) {
        if let (Some(dir), Ok(mut dirs)) = (cgroup.cpu_accounting_dir(), self.cpu.dirs.write()) {
            dirs.insert(name.to_string(), JobCpu::new(dir));
        }
        self.processes.add(name, cgroup.paths());
        self.sampler.job_started(name);
        self.gpu.job_started(name);
    }

    fn removing(&self, name: &str, _cgroup: &JobCgroup) {
        // The final readings happen here, while the group's counter still exists.
        let energy = self.sampler.job_finished(name);
        let gpu = self.gpu.job_finished(name);
        if let Ok(mut finals) = self.finals.lock() {
            finals.insert(name.to_string(), (energy, gpu));
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

    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport {
        let key = job_cgroup_name(job);
        let (energy, gpu) = self
            .finals
            .lock()
            .ok()
            .and_then(|mut f| f.remove(&key))
            .unwrap_or_default();
        let Some(result) = result else {
            return unavailable_energy("the job did not complete");
        };
        match energy {
            Some(e) => {
                let pixels = job
                    .spec
                    .validate()
                    .map(|s| result.frames * u64::from(s.width) * u64::from(s.height))
                    .unwrap_or(0);
                let mut report = e
                    .report_with_gpu(gpu.as_ref(), result.frames, result.wall_s, pixels)
                    .into_report();
                if gpu.is_none() {
                    // The GPU sampler never had the job: say why there is no GPU figure if it knows.
                    report.gpu_unavailable_reason = self
                        .gpu
                        .unavailable_reason()
                        .and_then(|e| unavailable_report(&e).unavailable_reason);
                }
                report
            }
            None => match (self.sampler.unavailable_reason(), &self.no_cgroups) {
                (Some(e), _) => unavailable_energy(e.to_string()),
                (None, Some(reason)) => unavailable_energy(format!("no job cgroup to attribute CPU time to: {reason}")),
                (None, None) => unavailable_energy("the job's cgroup was not measured"),
            },
        }
    }
}
