//! Verdicts: per metric, per scenario and for the whole comparison, with the exit code for CI.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{CompareConfig, Metric, EXIT_REGRESSION};

#[cfg(doc)]
use super::compare;

/// The outcome for one metric (or scenario) at a threshold `t` (a relative change, 0.03 = 3 %).
///
/// With the confidence interval of the relative change of medians oriented so that positive is
/// bad (`+` for joules per frame and wall time, `−` for fps):
/// - `Worse`: the whole interval lies above `+t`;
/// - `Better`: the whole interval lies below `−t`;
/// - `NoChange`: the interval contains 0, or lies within `[−t, +t]`;
/// - `Inconclusive`: otherwise (a change, but not shown to exceed the threshold);
/// - `Insufficient`: fewer than [`CompareConfig::min_runs`] usable runs on a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Improved beyond the threshold.
    Better,
    /// Regressed beyond the threshold.
    Worse,
    /// No change shown, or a change smaller than the threshold.
    NoChange,
    /// Changed, but not shown to be beyond the threshold.
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
        } else if (low <= 0.0 && high >= 0.0) || (low >= -t && high <= t) {
            Verdict::NoChange
        } else {
            Verdict::Inconclusive
        }
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

    /// [`EXIT_REGRESSION`] (1) when any scenario regressed beyond `threshold`, else 0.
    pub fn exit_code(&self, threshold: f64) -> i32 {
        if self.regressions(threshold).is_empty() {
            0
        } else {
            EXIT_REGRESSION
        }
    }
}
