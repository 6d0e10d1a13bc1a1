//! Verdicts: per metric, per scenario and for the whole comparison, with the exit code for CI.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CompareConfig, Metric, EXIT_INCONCLUSIVE, EXIT_REGRESSION};

#[cfg(doc)]
use super::compare;

/// The outcome for one metric (or scenario) at a threshold `t` (a relative change, 0.03 = 3 %).
///
/// With the confidence interval of the relative change of medians oriented so that positive is
/// bad (`+` for joules per frame and wall time, `−` for fps):
/// - `Worse`: the whole interval lies above `+t`;
/// - `Better`: the whole interval lies below `−t`;
/// - `NoChange`: the whole interval lies within `[−t, +t]`;
/// - `Inconclusive`: otherwise: the interval crosses `±t`, so more runs are needed to tell
///   (see [`MetricComparison::runs_needed`]). An interval that merely contains 0 is not
///   "no change": a wide one is compatible with large changes either way;
/// - `Insufficient`: fewer than [`CompareConfig::min_runs`] usable runs on a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Improved beyond the threshold.
    Better,
    /// Regressed beyond the threshold.
    Worse,
    /// Any change is shown to be smaller than the threshold.
    NoChange,
    /// Neither shown beyond nor within the threshold: more runs are needed.
    Inconclusive,
    /// Not enough runs to say.
    Insufficient,
}

impl Verdict {
    /// Name in files: `better`, `worse`, `no_change`, `inconclusive`, `insufficient`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Better => "better",
            Verdict::Worse => "worse",
            Verdict::NoChange => "no_change",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Insufficient => "insufficient",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One metric of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// The metric.
    pub metric: Metric,
    /// Usable baseline runs.
    pub n_baseline: usize,
    /// Usable test runs.
    pub n_test: usize,
    /// Median of the baseline.
    pub baseline_median: Option<f64>,
    /// Median of the test.
    pub test_median: Option<f64>,
    /// `(test median − baseline median) / baseline median`.
    pub relative_change: Option<f64>,
    /// Lower end of the bootstrap confidence interval of `relative_change`.
    pub ci_low: Option<f64>,
    /// Upper end of the bootstrap confidence interval of `relative_change`.
    pub ci_high: Option<f64>,
    /// Verdict at the comparison's threshold.
    pub verdict: Verdict,
}

impl MetricComparison {
    /// The verdict at another threshold (see [`Verdict`]).
    pub fn verdict_at(&self, threshold: f64) -> Verdict {
        let (Some(low), Some(high)) = (self.ci_low, self.ci_high) else {
            return Verdict::Insufficient;
        };
        let t = threshold.abs();
        // Orient the interval so that positive is bad.
        let (low, high) = if self.metric.lower_is_better() {
            (low, high)
        } else {
            (-high, -low)
        };
        if low > t {
            Verdict::Worse
        } else if high < -t {
            Verdict::Better
        } else if low >= -t && high <= t {
            Verdict::NoChange
        } else {
            Verdict::Inconclusive
        }
    }

    /// For an [`Verdict::Inconclusive`] metric at `threshold`: about how many runs per side
    /// would decide it, assuming the interval's half-width shrinks as `1/√n` around the same
    /// change. That many runs narrow the interval until it fits within `±threshold` (when the
    /// change is smaller than the threshold) or clears it (when larger). `None` for any other
    /// verdict, and when the change sits on the threshold (no number of runs decides it).
    ///
    /// ```
    /// use ffrtmp_power::compare::{Metric, MetricComparison, Verdict};
    /// // fps −11.8 %, 95 % CI [−45 %, +7.6 %] from 5 runs a side, threshold 3 %.
    /// let m = MetricComparison {
    ///     metric: Metric::Fps, n_baseline: 5, n_test: 5,
    ///     baseline_median: Some(100.0), test_median: Some(88.2), relative_change: Some(-0.118),
    ///     ci_low: Some(-0.45), ci_high: Some(0.076), verdict: Verdict::Inconclusive,
    /// };
    /// assert_eq!(m.verdict_at(0.03), Verdict::Inconclusive);
    /// // Half-width 26.3 % must fall below 11.8 % − 3 % = 8.8 %: 5 × (26.3 / 8.8)² ≈ 45.
    /// assert_eq!(m.runs_needed(0.03), Some(45));
    /// ```
    pub fn runs_needed(&self, threshold: f64) -> Option<usize> {
        if self.verdict_at(threshold) != Verdict::Inconclusive {
            return None;
        }
        let (low, high) = (self.ci_low?, self.ci_high?);
        let change = self.relative_change.unwrap_or((low + high) / 2.0).abs();
        let half_width = (high - low) / 2.0;
        let target = (change - threshold.abs()).abs();
        let n = self.n_baseline.min(self.n_test).max(1) as f64;
        // The small subtraction keeps rounding noise from adding a run (40.000000001 → 40).
        let needed = (n * (half_width / target).powi(2) - 1e-9).ceil();
        // Always more runs than now: the interval as measured did not decide it.
        needed.is_finite().then(|| (needed as usize).max(n as usize + 1))
    }
}

/// All metrics of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioComparison {
    /// Scenario name.
    pub scenario: String,
    /// One per [`Metric::ALL`].
    pub metrics: Vec<MetricComparison>,
    /// The scenario's verdict: `worse` if any metric is, else `inconclusive` if any is, else
    /// `better` if any is, else `no_change` (or `insufficient` when every metric is).
    pub verdict: Verdict,
}

impl ScenarioComparison {
    /// The comparison of `metric`.
    pub fn metric(&self, metric: Metric) -> Option<&MetricComparison> {
        self.metrics.iter().find(|m| m.metric == metric)
    }

    /// The scenario's verdict at another threshold.
    pub fn verdict_at(&self, threshold: f64) -> Verdict {
        combine(self.metrics.iter().map(|m| m.verdict_at(threshold)))
    }
}

pub(super) fn combine(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let all: Vec<Verdict> = verdicts.collect();
    let any = |v| all.contains(&v);
    if any(Verdict::Worse) {
        Verdict::Worse
    } else if any(Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else if any(Verdict::Better) {
        Verdict::Better
    } else if any(Verdict::NoChange) {
        Verdict::NoChange
    } else {
        Verdict::Insufficient
    }
}

/// The result of [`compare`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The configuration used.
    pub config: CompareConfig,
    /// Per scenario, baseline order first, then scenarios only in the test.
    pub scenarios: Vec<ScenarioComparison>,
}

impl Comparison {
    /// `(scenario, metric)` pairs that regressed beyond `threshold`.
    pub fn regressions(&self, threshold: f64) -> Vec<(&str, Metric)> {
        self.scenarios
            .iter()
            .flat_map(|s| {
                s.metrics
                    .iter()
                    .filter(move |m| m.verdict_at(threshold) == Verdict::Worse)
                    .map(move |m| (s.scenario.as_str(), m.metric))
            })
            .collect()
    }

    /// `(scenario, metric)` pairs whose verdict at `threshold` is [`Verdict::Inconclusive`].
    pub fn inconclusive(&self, threshold: f64) -> Vec<(&str, &MetricComparison)> {
        self.scenarios
            .iter()
            .flat_map(|s| {
                s.metrics
                    .iter()
                    .filter(move |m| m.verdict_at(threshold) == Verdict::Inconclusive)
                    .map(move |m| (s.scenario.as_str(), m))
            })
            .collect()
    }

    /// [`EXIT_REGRESSION`] (1) when any scenario regressed beyond `threshold`, else
    /// [`EXIT_INCONCLUSIVE`] (3) when any metric is inconclusive, else 0.
    pub fn exit_code(&self, threshold: f64) -> i32 {
        if !self.regressions(threshold).is_empty() {
            EXIT_REGRESSION
        } else if !self.inconclusive(threshold).is_empty() {
            EXIT_INCONCLUSIVE
        } else {
            0
        }
    }
}
