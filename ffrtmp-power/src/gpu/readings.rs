//! What a [`GpuMeter`] reads: per-GPU readings and per-process engine utilisation.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use ffrtmp_core::EnergySample;

#[cfg(doc)]
use super::{split_gpu_energy, GpuMeter};

/// One GPU's readings from a [`GpuMeter`] (NVML's `NvmlSource::snapshot`). `None` means the GPU
/// could not give that reading (see [`missing`](Self::missing)), never zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    /// NVML index of the GPU.
    pub index: u32,
    /// The GPU's zone in [`EnergySample`]s: `gpu-<index>`.
    pub zone: String,
    /// The GPU's total energy counter, microjoules since the meter was opened (monotone); `None`
    /// when the GPU has no such counter (older than Volta) or it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_uj: Option<u64>,
    /// Power draw in watts (NVML's average over its last update period).
    pub power_watts: Option<f64>,
    /// GPU die temperature in °C.
    pub temperature_c: Option<u32>,
    /// Percent of the last sample period in which a kernel ran.
    pub gpu_utilization: Option<u32>,
    /// Percent of the last sample period in which device memory was read or written.
    pub memory_utilization: Option<u32>,
    /// Video encoder (NVENC) utilisation, percent.
    pub encoder_utilization: Option<u32>,
    /// Video decoder (NVDEC) utilisation, percent.
    pub decoder_utilization: Option<u32>,
    /// Per-process utilisation samples since the previous snapshot (empty when no process used
    /// the GPU meanwhile).
    pub processes: Option<Vec<ProcessSample>>,
    /// Why a reading is `None`, one line each, e.g. `power: not supported by this GPU`.
    pub missing: Vec<String>,
}

impl GpuReading {
    /// This GPU's processes as [`ProcessShare`]s for [`split_gpu_energy`] (none when process
    /// utilisation is unavailable).
    pub fn process_shares(&self) -> Vec<ProcessShare> {
        ProcessShare::from_samples(self.processes.as_deref().unwrap_or_default())
    }
}

/// One process's utilisation of a GPU's engines, as NVML samples it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Process id (in the host's PID namespace).
    pub pid: u32,
    /// CPU timestamp of the sample, microseconds.
    pub timestamp_us: u64,
    /// SM (3D / compute) utilisation, percent.
    pub sm: u32,
    /// Frame buffer memory utilisation, percent.
    pub memory: u32,
    /// Video encoder utilisation, percent.
    pub encoder: u32,
    /// Video decoder utilisation, percent.
    pub decoder: u32,
}

/// One process's use of a GPU over an interval, in percent of each engine, for
/// [`split_gpu_energy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessShare {
    /// Process id.
    pub pid: u32,
    /// Video encoder utilisation, percent.
    pub encoder: f64,
    /// Video decoder utilisation, percent.
    pub decoder: f64,
    /// SM (3D / compute) utilisation, percent.
    pub sm: f64,
}

impl ProcessShare {
    /// One share per process (in order of first appearance), each the mean of that process's
    /// samples.
    ///
    /// ```
    /// use ffrtmp_power::{ProcessSample, ProcessShare};
    /// let s = |pid, encoder| ProcessSample { pid, encoder, ..Default::default() };
    /// let shares = ProcessShare::from_samples(&[s(7, 40), s(9, 10), s(7, 60)]);
    /// assert_eq!((shares[0].pid, shares[0].encoder), (7, 50.0));
    /// assert_eq!((shares[1].pid, shares[1].encoder), (9, 10.0));
    /// ```
    pub fn from_samples(samples: &[ProcessSample]) -> Vec<ProcessShare> {
        let mut sums: Vec<(ProcessShare, u32)> = Vec::new();
        for s in samples {
            let i = match sums.iter().position(|(share, _)| share.pid == s.pid) {
                Some(i) => i,
                None => {
                    sums.push((
                        ProcessShare {
                            pid: s.pid,
                            ..Default::default()
                        },
                        0,
                    ));
                    sums.len() - 1
                }
            };
            let (share, n) = &mut sums[i];
            share.encoder += f64::from(s.encoder);
            share.decoder += f64::from(s.decoder);
            share.sm += f64::from(s.sm);
            *n += 1;
        }
        sums.into_iter()
            .map(|(share, n)| {
                let n = f64::from(n);
                ProcessShare {
                    pid: share.pid,
                    encoder: share.encoder / n,
                    decoder: share.decoder / n,
                    sm: share.sm / n,
                }
            })
            .collect()
    }

    /// Encoder + decoder + SM utilisation, each clamped to 0–100 % (not-a-number counts as 0).
    pub fn weight(&self) -> f64 {
        let pct = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(0.0, 100.0) };
        pct(self.encoder) + pct(self.decoder) + pct(self.sm)
    }
}
