//! Capped exponential backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff: `base × 2^n`, capped, with "equal jitter" (half fixed, half random)
/// so that retries of many clients spread out yet never collapse to zero.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_core::Backoff;
/// let b = Backoff::TRANSPORT;
/// for n in 0..10 {
///     let d = b.delay(n);
///     assert!(d <= Duration::from_secs(30));
///     assert!(d >= b.nominal(n) / 2);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
    /// Retries after the first try.
    pub max_retries: u32,
}

impl Backoff {
    /// Transport retries: 1 s → 30 s, 3 retries.
    pub const TRANSPORT: Backoff = Backoff {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(30),
        max_retries: 3,
    };

    /// Job retries after a transient failure: 5 s × 2^n, capped at 5 minutes.
    pub const JOB: Backoff = Backoff {
        base: Duration::from_secs(5),
        cap: Duration::from_secs(300),
        max_retries: 3,
    };

    /// Delay before retry `n` (0-based) without jitter.
    pub fn nominal(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Delay before retry `n` (0-based) with jitter: uniform in `[nominal/2, nominal]`.
    pub fn delay(&self, n: u32) -> Duration {
        let nominal = self.nominal(n);
        let half = nominal / 2;
        let spread = (nominal - half).as_micros() as u64;
        let extra = if spread == 0 {
            0
        } else {
            rand::thread_rng().gen_range(0..=spread)
        };
        half + Duration::from_micros(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff::JOB;
        assert_eq!(b.nominal(0), Duration::from_secs(5));
        assert_eq!(b.nominal(1), Duration::from_secs(10));
        assert_eq!(b.nominal(5), Duration::from_secs(160));
        assert_eq!(b.nominal(6), Duration::from_secs(300));
        assert_eq!(b.nominal(40), Duration::from_secs(300));
    }

    #[test]
    fn jitter_spreads() {
        let b = Backoff::TRANSPORT;
        let delays: std::collections::HashSet<_> = (0..50).map(|_| b.delay(2)).collect();
        assert!(delays.len() > 1, "jitter produced one value");
    }
}
