//! Baseline-versus-test statistics for `ffrtmp bench compare`: medians, the relative change of
//! medians with a bootstrap confidence interval, a verdict per scenario and metric, an exit code
//! for CI, and JSON/CSV files of per-run results.
//!
//! ```
//! use ffrtmp_power::compare::{compare, CompareConfig, Metric, RunSample, Verdict};
//!
//! let runs = |jpf: &[f64]| -> Vec<RunSample> {
//!     jpf.iter().enumerate().map(|(i, &j)| RunSample::new("720p-h264", i as u32, j, 120.0, 5.0)).collect()
//! };
//! let baseline = runs(&[0.200, 0.202, 0.199, 0.201, 0.200, 0.198, 0.201, 0.200]);
//! let test = runs(&[0.220, 0.222, 0.219, 0.221, 0.220, 0.218, 0.221, 0.220]); // +10 % joules per frame
//! let result = compare(&baseline, &test, &CompareConfig::default());
//! let jpf = result.scenarios[0].metric(Metric::JoulesPerFrame).unwrap();
//! assert_eq!(jpf.verdict, Verdict::Worse);
//! assert!((jpf.relative_change.unwrap() - 0.10).abs() < 1e-9);
//! assert_eq!(result.exit_code(0.03), 1);
//! assert_eq!(result.exit_code(0.20), 0); // within a 20 % tolerance
//! ```

mod files;
mod mixed;
mod stats;
#[cfg(test)]
mod tests;
mod verdict;

use std::fmt;

use ffrtmp_core::JobResult;
use serde::{Deserialize, Serialize};

pub use files::{read_csv, read_json, write_csv, write_json, RunsFileError, RUNS_CSV_HEADER};
pub use mixed::mixed_energy;
use stats::{bootstrap_ci, fnv1a, median, SplitMix64, GOLDEN};
use verdict::combine;
pub use verdict::{Comparison, MetricComparison, ScenarioComparison, Verdict};

/// Exit code of `ffrtmp bench compare` when a scenario regressed beyond the threshold.
pub const EXIT_REGRESSION: i32 = 1;

/// Exit code of `ffrtmp bench compare` when nothing regressed but some metric is
/// [`Verdict::Inconclusive`] (more runs are needed); `--allow-inconclusive` turns it into 0.
/// (2 is taken: the files could not be compared.)
pub const EXIT_INCONCLUSIVE: i32 = 3;

/// One run of one scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSample {
    /// Scenario name, e.g. `720p-h264`.
    pub scenario: String,
    /// Repeat number within the scenario.
    #[serde(default)]
    pub run: u32,
    /// Frames encoded.
    #[serde(default)]
    pub frames: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Mean frames per second.
    pub fps: f64,
    /// Joules of the run; `None` when energy was unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_joules: Option<f64>,
    /// Joules per frame; `None` when energy was unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_per_frame: Option<f64>,
    /// The power model the run's energy was estimated with (`--power-model` on a node without
    /// RAPL); `None` when it was measured. Files written before this field existed read as
    /// measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_model: Option<String>,
}

impl RunSample {
    /// A run with the three compared figures (frames and joules left out).
    pub fn new(scenario: impl Into<String>, run: u32, joules_per_frame: f64, fps: f64, wall_s: f64) -> Self {
        RunSample {
            scenario: scenario.into(),
            run,
            joules_per_frame: Some(joules_per_frame),
            fps,
            wall_s,
            ..RunSample::default()
        }
    }

    /// A run from a job's result.
    pub fn from_result(scenario: impl Into<String>, run: u32, result: &JobResult) -> Self {
        RunSample {
            scenario: scenario.into(),
            run,
            frames: result.frames,
            wall_s: result.wall_s,
            fps: result.avg_fps,
            energy_joules: result.energy.energy_joules,
            joules_per_frame: result.energy.joules_per_frame,
            energy_model: result
                .energy
                .estimated
                .then(|| result.energy.model.clone().unwrap_or_else(|| "unnamed".into())),
        }
    }

    /// How the run's energy was obtained: `measured`, `estimated (model <name>)`, or `None`
    /// when it has no energy.
    pub fn energy_kind(&self) -> Option<String> {
        self.energy_joules.or(self.joules_per_frame)?;
        Some(match &self.energy_model {
            Some(model) => format!("estimated (model {model})"),
            None => "measured".to_string(),
        })
    }

    /// The run's value of `metric`, if it is a positive finite number.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let v = match metric {
            Metric::JoulesPerFrame => self.joules_per_frame?,
            Metric::Fps => self.fps,
            Metric::WallS => self.wall_s,
        };
        (v.is_finite() && v > 0.0).then_some(v)
    }
}

/// A compared figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Joules per frame: lower is better.
    JoulesPerFrame,
    /// Frames per second: higher is better.
    Fps,
    /// Wall seconds: lower is better.
    WallS,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 3] = [Metric::JoulesPerFrame, Metric::Fps, Metric::WallS];

    /// Whether a decrease is an improvement.
    pub fn lower_is_better(self) -> bool {
        !matches!(self, Metric::Fps)
    }

    /// Name in files: `joules_per_frame`, `fps`, `wall_s`.
    pub fn name(self) -> &'static str {
        match self {
            Metric::JoulesPerFrame => "joules_per_frame",
            Metric::Fps => "fps",
            Metric::WallS => "wall_s",
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to compare.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareConfig {
    /// Relative change beyond which a difference counts (default 0.03 = 3 %).
    pub threshold: f64,
    /// Bootstrap resamples (default 2,000).
    pub resamples: usize,
    /// Confidence level of the interval (default 0.95).
    pub confidence: f64,
    /// Seed of the resampling; the same inputs and seed give the same intervals (default 42).
    pub seed: u64,
    /// Usable runs needed on each side (default 3).
    pub min_runs: usize,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            threshold: 0.03,
            resamples: 2000,
            confidence: 0.95,
            seed: 42,
            min_runs: 3,
        }
    }
}

/// Compares `test` runs against `baseline` runs, per scenario and [`Metric`].
///
/// Per metric: the medians of each side, the relative change of the medians, and a percentile
/// bootstrap interval of that change at [`CompareConfig::confidence`]: each of
/// [`CompareConfig::resamples`] rounds resamples both sides with replacement (same sizes) and
/// takes the relative change of the resampled medians. Runs whose value is missing, not finite
/// or not positive are left out of that metric. The resampling is seeded per scenario and metric
/// from [`CompareConfig::seed`] and runs on sorted values, so results depend neither on the order
/// of scenarios nor on the order of runs.
pub fn compare(baseline: &[RunSample], test: &[RunSample], config: &CompareConfig) -> Comparison {
    let mut names: Vec<&str> = Vec::new();
    for run in baseline.iter().chain(test) {
        if !names.contains(&run.scenario.as_str()) {
            names.push(&run.scenario);
        }
    }
    let scenarios = names
        .into_iter()
        .map(|name| {
            let metrics: Vec<MetricComparison> = Metric::ALL
                .iter()
                .map(|&metric| {
                    let values = |runs: &[RunSample]| -> Vec<f64> {
                        runs.iter()
                            .filter(|r| r.scenario == name)
                            .filter_map(|r| r.value(metric))
                            .collect()
                    };
                    compare_metric(metric, name, &values(baseline), &values(test), config)
                })
                .collect();
            ScenarioComparison {
                scenario: name.to_string(),
                verdict: combine(metrics.iter().map(|m| m.verdict)),
                metrics,
            }
        })
        .collect();
    Comparison {
        config: config.clone(),
        scenarios,
    }
}

fn compare_metric(
    metric: Metric,
    scenario: &str,
    baseline: &[f64],
    test: &[f64],
    config: &CompareConfig,
) -> MetricComparison {
    // Sorted, so that neither the medians nor the resampling depend on the order of the runs.
    let (mut baseline, mut test) = (baseline.to_vec(), test.to_vec());
    let baseline_median = median(&mut baseline);
    let test_median = median(&mut test);
    let relative_change = match (baseline_median, test_median) {
        (Some(b), Some(t)) => Some((t - b) / b),
        _ => None,
    };
    let enough = baseline.len() >= config.min_runs.max(1) && test.len() >= config.min_runs.max(1);
    let ci = if enough && config.resamples > 0 {
        let mut rng =
            SplitMix64::new(config.seed ^ fnv1a(scenario.as_bytes()) ^ (metric as u64 + 1).wrapping_mul(GOLDEN));
        bootstrap_ci(&baseline, &test, config.resamples, config.confidence, &mut rng)
    } else {
        None
    };
    let mut result = MetricComparison {
        metric,
        n_baseline: baseline.len(),
        n_test: test.len(),
        baseline_median,
        test_median,
        relative_change,
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
        verdict: Verdict::Insufficient,
    };
    result.verdict = result.verdict_at(config.threshold);
    result
}
