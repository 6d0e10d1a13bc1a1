//! Splitting a GPU's energy between processes by their engine utilisation.

use super::ProcessShare;

/// Name of the attribution method of [`split_gpu_energy`], for reports: per interval, a process
/// gets `(encoder + decoder + SM utilisation) / max(100 %, sum over processes)` of the GPU's
/// energy (the delta of its total energy counter), and the rest goes to "other" (idle and
/// unattributed use).
pub const GPU_ATTRIBUTION_METHOD: &str = "nvml-process-utilization";

/// [`GPU_ATTRIBUTION_METHOD`] where a GPU has no total energy counter (older than Volta) or it
/// could not be read, so the interval's energy was estimated as the reported power × the
/// interval's length: an estimate, as NVML's power is itself an average over about a second.
pub const GPU_POWER_FALLBACK_METHOD: &str = "nvml-process-utilization(power-x-time)";

/// Splits a GPU's `joules` over an interval between processes by their engine use
/// ([`GPU_ATTRIBUTION_METHOD`]): a process gets `joules × weight / max(100, Σ weights)`, with
/// [`ProcessShare::weight`] its encoder + decoder + SM utilisation in percent.
///
/// The engines' utilisations are added as if they were one engine, and the divisor never drops
/// below 100 %: a process that keeps the encoder busy 30 % of the time gets 30 % of the energy,
/// and when the processes together ask for more than the whole GPU their shares are scaled to
/// add up to it. The rest, `joules − Σ`, goes to "other" (idle and unattributed use). Shares with
/// the same pid are merged; the result has one entry per pid in order of first appearance.
/// Negative or non-finite `joules` count as 0.
///
/// ```
/// use ffrtmp_power::{split_gpu_energy, ProcessShare};
/// let p = |pid, encoder, decoder| ProcessShare { pid, encoder, decoder, sm: 0.0 };
/// let split = split_gpu_energy(100.0, &[p(1, 30.0, 10.0), p(2, 20.0, 0.0)]);
/// assert_eq!(split, [(1, 40.0), (2, 20.0)]); // 40 J left to "other"
/// let busy = split_gpu_energy(100.0, &[p(1, 90.0, 60.0), p(2, 50.0, 0.0)]);
/// assert_eq!(busy, [(1, 75.0), (2, 25.0)]); // 200 % asked for: scaled to the whole
/// ```
pub fn split_gpu_energy(joules: f64, shares: &[ProcessShare]) -> Vec<(u32, f64)> {
    let joules = if joules.is_finite() && joules > 0.0 {
        joules
    } else {
        0.0
    };
    let mut weights: Vec<(u32, f64)> = Vec::with_capacity(shares.len());
    for share in shares {
        match weights.iter_mut().find(|(pid, _)| *pid == share.pid) {
            Some((_, w)) => *w += share.weight(),
            None => weights.push((share.pid, share.weight())),
        }
    }
    let divisor = weights.iter().map(|(_, w)| w).sum::<f64>().max(100.0);
    weights
        .into_iter()
        .map(|(pid, w)| (pid, joules * w / divisor))
        .collect()
}
