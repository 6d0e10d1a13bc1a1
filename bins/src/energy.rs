//! Per-job energy on the reference agent: the power sampler of `ffrtmp-power` attributes
//! each interval's energy by the CPU time of each job's cgroup, which `ffrtmp-exec` creates.
//! This module is the glue between the two crates (which do not depend on each other).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use ffrtmp_core::power::unavailable_energy;
use ffrtmp_core::{EnergyReport, Job, JobEnergyMeter, JobResult};
use ffrtmp_exec::{job_cgroup_name, CgroupObserver, JobCgroup};
use ffrtmp_power::{cgroup_cpu_ns, CpuTimes, JobEnergy, MachineClock, Sampler};

/// CPU time of job cgroups (by cgroup name) and of the whole machine.
#[derive(Default)]
pub struct CgroupCpuTimes {
    dirs: RwLock<HashMap<String, PathBuf>>,
    clock: MachineClock,
}

impl CpuTimes for CgroupCpuTimes {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        let dir = self.dirs.read().ok()?.get(job)?.clone();
        cgroup_cpu_ns(dir).ok()
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.clock.total_ns())
    }
}

/// Attributes energy to jobs by cgroup CPU share. Register it as the [`CgroupObserver`] of
/// the executor's cgroups and give it to the agent as its [`JobEnergyMeter`].
pub struct AttributedEnergy {
    sampler: Sampler,
    cpu: Arc<CgroupCpuTimes>,
    finals: Mutex<HashMap<String, Option<JobEnergy>>>,
    no_cgroups: Option<String>,
}

impl AttributedEnergy {
    /// Builds the meter around a sampler made by `make` from the CPU-time reader it must use.
    /// `no_cgroups` is the reason job cgroups are unavailable on this node, if they are.
    pub fn new(make: impl FnOnce(Arc<dyn CpuTimes>) -> Sampler, no_cgroups: Option<String>) -> Self {
        let cpu = Arc::new(CgroupCpuTimes::default());
        let sampler = make(cpu.clone());
        AttributedEnergy {
            sampler,
            cpu,
            finals: Mutex::new(HashMap::new()),
            no_cgroups,
        }
    }

    /// The sampler, for metrics and idle power.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }
}

impl CgroupObserver for AttributedEnergy {
    fn created(&self, name: &str, cgroup: &JobCgroup) {
        if let (Some(dir), Ok(mut dirs)) = (cgroup.cpu_accounting_dir(), self.cpu.dirs.write()) {
            dirs.insert(name.to_string(), dir.to_path_buf());
        }
        self.sampler.job_started(name);
    }

    fn removing(&self, name: &str, _cgroup: &JobCgroup) {
        // The final reading happens here, while the group's counter still exists.
        let energy = self.sampler.job_finished(name);
        if let Ok(mut finals) = self.finals.lock() {
            finals.insert(name.to_string(), energy);
        }
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
        let energy = self.finals.lock().ok().and_then(|mut f| f.remove(&key)).flatten();
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
                e.report(result.frames, result.wall_s, pixels).into_report()
            }
            None => match (self.sampler.unavailable_reason(), &self.no_cgroups) {
                (Some(e), _) => unavailable_energy(e.to_string()),
                (None, Some(reason)) => unavailable_energy(format!("no job cgroup to attribute CPU time to: {reason}")),
                (None, None) => unavailable_energy("the job's cgroup was not measured"),
            },
        }
    }
}
