//! GPU energy per job: readings of every GPU ([`GpuMeter`], implemented over NVML by
//! `NvmlSource` with the cargo feature `nvml`), their split between processes by engine
//! utilisation ([`split_gpu_energy`]), processes mapped to jobs ([`ProcessJobs`]), one interval
//! at a time ([`GpuAttribution`]), and the [`GpuSampler`] thread that accumulates each job's GPU
//! joules.
//!
//! Nothing here needs a GPU or NVML: the meter and the pid → job map are traits, so the same
//! code runs under tests with fakes.

mod attribution;
mod pids;
mod readings;
mod records;
mod sampler;
#[cfg(test)]
mod sampler_tests;
mod split;
mod state;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use ffrtmp_core::PowerError;

pub use attribution::{GpuAttribution, GpuInterval, JobGpuShare, DEFAULT_SHARE_HOLD};
pub use readings::{GpuReading, ProcessSample, ProcessShare};
pub use records::{GpuJobEnergy, GpuSamplerConfig, GpuTotals};
pub use sampler::GpuSampler;
pub use split::{split_gpu_energy, GPU_ATTRIBUTION_METHOD, GPU_POWER_FALLBACK_METHOD};

/// Reads every GPU of a node: energy counter, power, per-process engine utilisation.
pub trait GpuMeter: Send + Sync {
    /// Name of the source, for reports (`nvml`).
    fn source_name(&self) -> &str;

    /// One reading per GPU, in a stable order. Per-process samples are those taken since the
    /// previous call. A reading a GPU cannot give is `None` with its reason in
    /// [`GpuReading::missing`]; an error means no GPU could be read this time.
    fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError>;
}

/// Which job a GPU process belongs to. The agent answers from the process's cgroup membership
/// (`/proc/<pid>/cgroup`, and each job cgroup's `cgroup.procs`), as it puts every workload in a
/// per-job cgroup.
///
/// Process ids are those NVML reports, i.e. of the host's PID namespace: the answers are only
/// right where `/proc` (and `cgroup.procs`) show host pids, so an agent in a container needs the
/// host's PID namespace (`--pid=host`).
pub trait ProcessJobs: Send + Sync {
    /// The key of the job (as given to [`GpuSampler::job_started`]) whose workload `pid` is part
    /// of, or `None` for a process of no job (or one that has exited).
    fn job_of(&self, pid: u32) -> Option<String>;

    /// Every process of every running job now, as `(pid, job key)` (the agent: from each job
    /// cgroup's `cgroup.procs`). The [`GpuSampler`] asks at every
    /// reading, so a process is known to be its job's while it runs, even if it exits before
    /// NVML reports its last samples. None by default.
    fn job_processes(&self) -> Vec<(u32, String)> {
        Vec::new()
    }

    /// When process `pid` started (field 22 of `/proc/<pid>/stat`, clock ticks since boot), to
    /// tell a reused pid from the process remembered under it; `None` when it has exited or
    /// cannot be told (the default), which keeps a remembered process's job.
    fn start_time(&self, _pid: u32) -> Option<u64> {
        None
    }
}

/// A fixed map, e.g. for tests.
///
/// ```
/// use std::collections::HashMap;
/// use ffrtmp_power::ProcessJobs;
/// let map = HashMap::from([(42, "job-a".to_string())]);
/// assert_eq!(map.job_of(42).as_deref(), Some("job-a"));
/// assert_eq!(map.job_of(7), None);
/// ```
impl ProcessJobs for HashMap<u32, String> {
    fn job_of(&self, pid: u32) -> Option<String> {
        self.get(&pid).cloned()
    }
}
