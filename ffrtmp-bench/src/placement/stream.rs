//! The job stream of the placement bench: short synthetic encodes arriving as a seeded
//! Poisson process, so every policy and every repeat sees the same jobs at the same offsets.

use std::time::Duration;

use ffrtmp_core::JobSpec;
use rand::{Rng, SeedableRng};

/// The scenarios the stream draws from.
pub const SCENARIOS: [&str; 2] = ["360p-h264", "480p-h264"];
/// Seconds of video each job encodes, drawn from these.
pub const DURATIONS_S: [f64; 3] = [1.0, 1.5, 2.0];
/// The mean of [`DURATIONS_S`].
pub const MEAN_DURATION_S: f64 = 1.5;
/// The encoder preset of every job: fast enough that a job takes about a second or two.
pub const PRESET: &str = "veryfast";

/// One job of the stream.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Arrival {
    /// When it is submitted, after the stream's start.
    #[serde(serialize_with = "secs")]
    pub at: Duration,
    /// Its scenario.
    pub scenario: String,
    /// Seconds of synthetic video.
    pub duration_s: f64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Arrival {
    /// The job to submit.
    pub fn spec(&self) -> JobSpec {
        spec(&self.scenario, self.duration_s)
    }
}

/// A short synthetic encode of `scenario`, `duration_s` seconds long.
pub fn spec(scenario: &str, duration_s: f64) -> JobSpec {
    let mut spec = JobSpec::new(scenario);
    spec.parameters.duration = Some(duration_s);
    spec.parameters.preset = Some(PRESET.into());
    // A failed encode is a finding of the bench, not something to hide behind a retry.
    spec.max_retries = 0;
    spec
}

/// `jobs` arrivals drawn from `seed`: exponential gaps of mean `mean_gap` (the first job at
/// 0), scenario and duration uniform over [`SCENARIOS`] and [`DURATIONS_S`].
pub fn schedule(jobs: usize, mean_gap: Duration, seed: u64) -> Vec<Arrival> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut at = Duration::ZERO;
    let mut out = Vec::with_capacity(jobs);
    for i in 0..jobs {
        if i > 0 {
            // Inverse transform of the exponential distribution; 1 - u is in (0, 1].
            let u: f64 = rng.gen();
            at += mean_gap.mul_f64(-(1.0 - u).ln());
        }
        out.push(Arrival {
            at,
            scenario: SCENARIOS[rng.gen_range(0..SCENARIOS.len())].to_string(),
            duration_s: DURATIONS_S[rng.gen_range(0..DURATIONS_S.len())],
        });
    }
    out
}

/// The mean gap between arrivals that loads a farm of `capacity_jobs_per_s` at `load`
/// (0.5: half its capacity).
pub fn mean_gap(capacity_jobs_per_s: f64, load: f64) -> Duration {
    Duration::from_secs_f64(1.0 / (capacity_jobs_per_s * load).max(1e-6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let a = schedule(50, Duration::from_millis(800), 7);
        assert_eq!(a, schedule(50, Duration::from_millis(800), 7));
        assert_ne!(a, schedule(50, Duration::from_millis(800), 8));
        assert_eq!(a.len(), 50);
        assert_eq!(a[0].at, Duration::ZERO);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at), "arrivals in order");
        for s in SCENARIOS {
            assert!(a.iter().any(|x| x.scenario == s), "{s} never drawn");
        }
        for d in DURATIONS_S {
            assert!(a.iter().any(|x| x.duration_s == d), "{d} s never drawn");
        }
        assert_eq!(
            DURATIONS_S.iter().sum::<f64>() / DURATIONS_S.len() as f64,
            MEAN_DURATION_S
        );
    }

    #[test]
    fn arrivals_come_at_the_rate_asked() {
        // Half of a farm that finishes 2 jobs/s: one job a second on average.
        let gap = mean_gap(2.0, 0.5);
        assert_eq!(gap, Duration::from_secs(1));
        let a = schedule(4001, gap, 1);
        let mean = a.last().unwrap().at.as_secs_f64() / 4000.0;
        // The mean of 4000 exponential gaps is within a few percent of the mean asked.
        assert!((mean - 1.0).abs() < 0.05, "mean gap {mean}");
        // Exponential, not evenly spaced: about 63 % of gaps are shorter than the mean.
        let short = a.windows(2).filter(|w| (w[1].at - w[0].at) < gap).count() as f64 / 4000.0;
        assert!((short - 0.632).abs() < 0.03, "share of short gaps {short}");
    }

    #[test]
    fn each_job_is_a_short_synthetic_encode_without_retries() {
        let s = spec("480p-h264", 1.5);
        assert_eq!(s.scenario, "480p-h264");
        assert_eq!(s.parameters.duration, Some(1.5));
        assert_eq!(s.parameters.input, None, "synthetic source");
        assert_eq!(s.max_retries, 0);
        s.validate().unwrap();
    }
}
