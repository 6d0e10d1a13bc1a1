//! Readings and expectations shared by the GPU attribution and sampler tests.

use std::collections::HashMap;

use super::{GpuReading, ProcessSample};

/// A reading of one GPU with per-process encoder utilisation `(pid, encoder %)`.
pub(super) fn reading(zone: &str, energy_uj: Option<u64>, power_watts: Option<f64>, pids: &[(u32, u32)]) -> GpuReading {
    GpuReading {
        zone: zone.into(),
        energy_uj,
        power_watts,
        processes: Some(
            pids.iter()
                .map(|&(pid, encoder)| ProcessSample {
                    pid,
                    encoder,
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }
}

/// A pid → job map.
pub(super) fn jobs(pairs: &[(u32, &str)]) -> HashMap<u32, String> {
    pairs.iter().map(|&(pid, job)| (pid, job.to_string())).collect()
}

/// Equal up to rounding.
pub(super) fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}
