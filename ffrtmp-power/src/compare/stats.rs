//! Statistics: medians, quantiles and the seeded percentile bootstrap.

/// Percentile bootstrap interval of the relative change of medians.
pub(super) fn bootstrap_ci(
    baseline: &[f64],
    test: &[f64],
    resamples: usize,
    confidence: f64,
    rng: &mut SplitMix64,
) -> Option<(f64, f64)> {
    let mut b = vec![0.0; baseline.len()];
    let mut t = vec![0.0; test.len()];
    let mut changes = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        b.iter_mut().for_each(|x| *x = baseline[rng.below(baseline.len())]);
        t.iter_mut().for_each(|x| *x = test[rng.below(test.len())]);
        if let (Some(mb), Some(mt)) = (median(&mut b), median(&mut t)) {
            changes.push((mt - mb) / mb);
        }
    }
    if changes.is_empty() {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence.clamp(0.0, 1.0);
    Some((quantile(&changes, alpha / 2.0), quantile(&changes, 1.0 - alpha / 2.0)))
}

/// Median (mean of the two middle values for an even count); sorts `values`.
pub(super) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

/// Quantile `q` of sorted `values`, linear between order statistics.
pub(super) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

pub(super) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a tiny, fixed pseudo-random generator, so intervals stay reproducible whatever the
/// version of any random-number crate.
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2⁻⁵⁰ for the sizes used here).
    pub(super) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}
