//! Energy counters for ffrtmp: RAPL through Linux powercap, and per-job energy reports.
//!
//! - [`RaplSource`] implements [`ffrtmp_core::PowerSource`] over `/sys/class/powercap`, or any
//!   directory laid out the same way (a file-backed source for tests and VMs, same code path).
//!   By default it reads every `package-N` zone and every `dram` subzone; `core` and `uncore`
//!   are inside their package and `psys` contains the packages, so they are never summed with
//!   them ([`ZoneSelection::Psys`] reads `psys` alone). Counter wraps are corrected; a counter
//!   going backwards too far for a wrap (more than [`DEFAULT_MAX_ZONE_WATTS`] since the last
//!   reading) is a reset, whose interval the [`Sampler`] drops, marking its jobs partial.
//! - [`Sampler`] reads a source at a fixed rate (10 Hz by default) on its own thread and splits
//!   each interval's energy between running jobs by their cgroup CPU-time share of the machine
//!   ([`ATTRIBUTION_METHOD`], `cgroup-cpu-share`), the rest going to "other"; it measures idle
//!   power and keeps bounded memory. Jobs' CPU time comes in through [`CpuTimes`], which the
//!   agent implements over its job cgroups
//!   ([`CgroupCpuCounter`], with [`MachineClock`] for the machine's CPU time).
//! - [`detailed_report`] turns a job's [`JobEnergy`] into core's [`ffrtmp_core::EnergyReport`],
//!   the one report type from the sampler to the stored job: the split, per-frame and per-pixel
//!   figures, and whether (and why) it covers only part of the job.
//! - [`EnergyMeter`] samples a source at the start and end of a job and builds a **whole-node**
//!   report; [`unavailable_report`] records why energy is missing instead of reporting zero.
//! - [`GpuSampler`] reads every GPU ([`GpuMeter`]) at the CPU sampler's rate on its own thread
//!   and splits each interval's GPU energy (total-energy counter delta, or power × time where
//!   there is no counter, flagged) between running jobs by their processes' encoder, decoder and
//!   SM utilisation ([`GpuAttribution`], [`split_gpu_energy`], [`GPU_ATTRIBUTION_METHOD`]);
//!   processes are mapped to jobs through [`ProcessJobs`] (the agent: by cgroup membership), the
//!   rest goes to "other". [`detailed_report_with_gpu`] adds a job's GPU joules to its report.
//! - `NvmlSource` (cargo feature `nvml`) implements [`ffrtmp_core::PowerSource`] over the total
//!   energy counter of every NVIDIA GPU (zones `gpu-0`, `gpu-1`, …) through NVML, loaded at run
//!   time, and [`GpuMeter`] with power, temperature, utilisation and per-process encoder, decoder
//!   and SM use.
//! - [`agent`] is the per-job energy of an agent: [`agent::AttributedEnergy`] observes job
//!   cgroups ([`ffrtmp_core::CgroupObserver`]) and meters each job's CPU and GPU energy;
//!   [`agent::MeteredNode`] adds the node's power snapshot for heartbeats.
//! - [`compare`] holds the baseline-versus-test statistics of `ffrtmp bench compare`: medians,
//!   bootstrap confidence intervals of their relative change, verdicts and an exit code.
//!
//! - [`ModelSource`] estimates energy where there is no counter (VMs, most clouds) from a
//!   [`PowerModel`] (idle and full-load watts) and the node's CPU utilisation; its reports are
//!   marked `estimated` with the model named.
//!
//! Where there is no meter the reason is kept, as [`ffrtmp_core::PowerError::Unavailable`]:
//! `no powercap interface at <root> (no RAPL driver, or a VM)`, `no RAPL zones under <root>`,
//! or `needs root or read access to <zone>/energy_uj` (kernels since 2020 make `energy_uj`
//! readable by root only). For NVML: `NVML library not found (no NVIDIA driver): …`,
//! `no NVIDIA GPU found`, or `GPU 0 does not support the total energy counter (needs Volta or
//! newer)`.
#![warn(missing_docs)]

pub mod agent;
pub mod compare;
mod cpu;
pub mod describe;
mod gpu;
mod meter;
mod model;
#[cfg(feature = "nvml")]
mod nvml;
mod rapl;
mod report;
mod sampler;
mod small_file;

pub use cpu::{
    cgroup_cpu_ns, online_cpus, parse_proc_stat_total_ns, proc_stat_total_ns, CgroupCpuCounter, CpuTimes, MachineClock,
    USER_HZ,
};
pub use gpu::{
    split_gpu_energy, GpuAttribution, GpuInterval, GpuJobEnergy, GpuMeter, GpuReading, GpuSampler, GpuSamplerConfig,
    GpuTotals, JobGpuShare, ProcessJobs, ProcessSample, ProcessShare, DEFAULT_SHARE_HOLD, GPU_ATTRIBUTION_METHOD,
    GPU_POWER_FALLBACK_METHOD,
};
pub use meter::{energy_report, unavailable_report, EnergyInterval, EnergyMeter, UNAVAILABLE_SOURCE};
pub use model::{
    model_name, parse_proc_stat_busy, ModelSource, PowerModel, PowerModelError, MODEL_SOURCE_PREFIX, MODEL_ZONE,
};
#[cfg(feature = "nvml")]
pub use nvml::{MissingCounter, NvmlSource, NVML_LIBRARY};
pub use rapl::{RaplSource, ZoneInfo, ZoneSelection, DEFAULT_MAX_ZONE_WATTS, SYSTEM_POWERCAP};
pub use report::{detailed_report, detailed_report_with_gpu, whole_node_report, WHOLE_NODE};
pub use sampler::{
    IdlePower, IntervalRecord, JobEnergy, Sampler, SamplerConfig, SamplerStats, Totals, ZoneTotal, ATTRIBUTION_METHOD,
    DEFAULT_HZ, FAILED_READS_UNAVAILABLE,
};
