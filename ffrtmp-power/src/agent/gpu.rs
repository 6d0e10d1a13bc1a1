//! Whether and how the agent measures GPU energy: NVML when the binary is built with the `nvml`
//! feature and a driver answers, otherwise a GPU sampler that says why there is none.

use std::sync::Arc;

use crate::{GpuSampler, GpuSamplerConfig, ProcessJobs};
use ffrtmp_core::PowerError;

/// The agent's `--gpu-energy` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuEnergyMode {
    /// Measure GPU energy through NVML when built with the `nvml` feature and a driver answers.
    #[default]
    Auto,
    /// Do not read GPUs; jobs carry no `gpu_joules`.
    Off,
}

/// The GPU sampler for `mode`: under `auto`, NVML's GPUs sampled at `config`'s rate on their own
/// thread (a GPU without an energy counter is measured by power × time, and reports say so);
/// otherwise, or when NVML cannot be opened, a sampler that is unavailable with the reason
/// (`turned off`, `built without the nvml feature`, `NVML library not found (no NVIDIA
/// driver): …`, `no NVIDIA GPU found`, …), so that jobs carry no `gpu_joules` rather than 0 J.
///
/// NVML reports GPU processes by their pid in the host's PID namespace, and `processes` finds
/// their jobs through `/proc` and `cgroup.procs`: the agent must run in the host's PID namespace
/// (in a container, `--pid=host`) for any GPU energy to be charged to jobs.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use ffrtmp_power::agent::{gpu_sampler, GpuEnergyMode};
/// let off = gpu_sampler(GpuEnergyMode::Off, Arc::new(HashMap::new()), Default::default());
/// assert_eq!(off.unavailable_reason().unwrap().to_string(), "energy unavailable: GPU energy turned off (--gpu-energy off)");
/// ```
pub fn gpu_sampler(mode: GpuEnergyMode, processes: Arc<dyn ProcessJobs>, config: GpuSamplerConfig) -> GpuSampler {
    match mode {
        GpuEnergyMode::Off => GpuSampler::unavailable(PowerError::Unavailable(
            "GPU energy turned off (--gpu-energy off)".into(),
        )),
        GpuEnergyMode::Auto => nvml_sampler(processes, config),
    }
}

#[cfg(feature = "nvml")]
fn nvml_sampler(processes: Arc<dyn ProcessJobs>, config: GpuSamplerConfig) -> GpuSampler {
    use crate::{MissingCounter, NvmlSource, NVML_LIBRARY};
    match NvmlSource::open_with(NVML_LIBRARY, MissingCounter::PowerFallback) {
        Ok(nvml) => GpuSampler::start(Arc::new(nvml), processes, config),
        Err(e) => GpuSampler::unavailable(e),
    }
}

#[cfg(not(feature = "nvml"))]
fn nvml_sampler(_processes: Arc<dyn ProcessJobs>, _config: GpuSamplerConfig) -> GpuSampler {
    GpuSampler::unavailable(PowerError::Unavailable(
        "this agent was built without the `nvml` feature (cargo build --features nvml)".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// On this host `auto` either samples GPUs or says precisely why not; never panics.
    #[test]
    fn auto_opens_nvml_or_gives_the_reason() {
        let sampler = gpu_sampler(
            GpuEnergyMode::Auto,
            Arc::new(HashMap::new()),
            GpuSamplerConfig::default(),
        );
        match sampler.unavailable_reason() {
            None => {
                assert_eq!(sampler.source_name(), "nvml");
                assert!(sampler.is_running());
            }
            Some(PowerError::Unavailable(reason)) => {
                eprintln!("GPU energy here: {reason}");
                if cfg!(feature = "nvml") {
                    assert!(!reason.contains("without the `nvml` feature"), "{reason}");
                } else {
                    assert!(reason.contains("without the `nvml` feature"), "{reason}");
                }
            }
            Some(other) => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
