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

use std::fmt;
use std::io::{self, Read, Write};

use ffrtmp_core::JobResult;
use serde::{Deserialize, Serialize};

/// Exit code of `ffrtmp bench compare` when a scenario regressed beyond the threshold.
pub const EXIT_REGRESSION: i32 = 1;

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
        }
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

fn combine(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
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

    /// Writes the comparison as pretty JSON.
    pub fn write_json<W: Write>(&self, writer: W) -> io::Result<()> {
        serde_json::to_writer_pretty(writer, self).map_err(io::Error::from)
    }

    /// Writes one CSV row per scenario and metric: `scenario, metric, n_baseline, n_test,
    /// baseline_median, test_median, relative_change, ci_low, ci_high, verdict` (empty cells for
    /// unknown figures).
    pub fn write_csv<W: Write>(&self, mut writer: W) -> io::Result<()> {
        writeln!(
            writer,
            "scenario,metric,n_baseline,n_test,baseline_median,test_median,relative_change,ci_low,ci_high,verdict"
        )?;
        for s in &self.scenarios {
            for m in &s.metrics {
                writeln!(
                    writer,
                    "{},{},{},{},{},{},{},{},{},{}",
                    csv_field(&s.scenario),
                    m.metric,
                    m.n_baseline,
                    m.n_test,
                    opt(m.baseline_median),
                    opt(m.test_median),
                    opt(m.relative_change),
                    opt(m.ci_low),
                    opt(m.ci_high),
                    m.verdict
                )?;
            }
        }
        writer.flush()
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

/// Percentile bootstrap interval of the relative change of medians.
fn bootstrap_ci(
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
fn median(values: &mut [f64]) -> Option<f64> {
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
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a tiny, fixed pseudo-random generator, so intervals stay reproducible whatever the
/// version of any random-number crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2⁻⁵⁰ for the sizes used here).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Columns of a runs CSV file, in order.
pub const RUNS_CSV_HEADER: &str = "scenario,run,frames,wall_s,fps,energy_joules,joules_per_frame";

/// Writes runs as CSV with the header [`RUNS_CSV_HEADER`]; unknown energy is an empty cell.
///
/// ```
/// use ffrtmp_power::compare::{read_csv, write_csv, RunSample};
/// let runs = vec![RunSample::new("720p-h264", 0, 0.25, 130.0, 4.6)];
/// let mut out = Vec::new();
/// write_csv(&mut out, &runs).unwrap();
/// assert_eq!(
///     String::from_utf8(out.clone()).unwrap(),
///     "scenario,run,frames,wall_s,fps,energy_joules,joules_per_frame\n720p-h264,0,0,4.6,130,,0.25\n"
/// );
/// assert_eq!(read_csv(&out[..]).unwrap(), runs);
/// ```
pub fn write_csv<W: Write>(mut writer: W, runs: &[RunSample]) -> io::Result<()> {
    writeln!(writer, "{RUNS_CSV_HEADER}")?;
    for r in runs {
        writeln!(
            writer,
            "{},{},{},{},{},{},{}",
            csv_field(&r.scenario),
            r.run,
            r.frames,
            r.wall_s,
            r.fps,
            opt(r.energy_joules),
            opt(r.joules_per_frame)
        )?;
    }
    writer.flush()
}

/// Writes runs as a pretty JSON array.
pub fn write_json<W: Write>(writer: W, runs: &[RunSample]) -> io::Result<()> {
    serde_json::to_writer_pretty(writer, runs).map_err(io::Error::from)
}

/// Reads runs from a JSON array (as written by [`write_json`]).
pub fn read_json<R: Read>(reader: R) -> Result<Vec<RunSample>, RunsFileError> {
    serde_json::from_reader(reader).map_err(|e| RunsFileError::Parse {
        line: e.line(),
        message: e.to_string(),
    })
}

/// Why a runs file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RunsFileError {
    /// Reading failed.
    #[error("cannot read runs: {0}")]
    Io(#[from] io::Error),
    /// The content is not valid.
    #[error("runs file line {line}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads runs from CSV with a header row naming the columns (any order; `scenario`, `wall_s` and
/// `fps` are required, others may be missing or empty; unknown columns are ignored). Fields may
/// be quoted with `"`, doubling quotes inside.
pub fn read_csv<R: Read>(mut reader: R) -> Result<Vec<RunSample>, RunsFileError> {
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    let records = parse_csv(&text)?;
    let Some((_, header)) = records.first() else {
        return Ok(Vec::new());
    };
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let required = |name: &str| {
        column(name).ok_or_else(|| RunsFileError::Parse {
            line: 1,
            message: format!("no `{name}` column"),
        })
    };
    let (scenario, wall_s, fps) = (required("scenario")?, required("wall_s")?, required("fps")?);
    let (run, frames) = (column("run"), column("frames"));
    let (energy, jpf) = (column("energy_joules"), column("joules_per_frame"));
    let mut runs = Vec::new();
    for (line, fields) in records.iter().skip(1) {
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }
        let cell = |i: Option<usize>| {
            i.and_then(|i| fields.get(i))
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
        };
        let parse_err = |name: &str, v: &str| RunsFileError::Parse {
            line: *line,
            message: format!("`{name}` is {v:?}, not a number"),
        };
        let num = |i: Option<usize>, name: &str| -> Result<Option<f64>, RunsFileError> {
            cell(i)
                .map(|v| v.parse::<f64>().map_err(|_| parse_err(name, v)))
                .transpose()
        };
        let int = |i: Option<usize>, name: &str| -> Result<Option<u64>, RunsFileError> {
            cell(i)
                .map(|v| v.parse::<u64>().map_err(|_| parse_err(name, v)))
                .transpose()
        };
        let missing = |name: &str| RunsFileError::Parse {
            line: *line,
            message: format!("`{name}` is empty"),
        };
        runs.push(RunSample {
            scenario: cell(Some(scenario)).ok_or_else(|| missing("scenario"))?.to_string(),
            run: int(run, "run")?
                .unwrap_or(0)
                .try_into()
                .map_err(|_| parse_err("run", "too large"))?,
            frames: int(frames, "frames")?.unwrap_or(0),
            wall_s: num(Some(wall_s), "wall_s")?.ok_or_else(|| missing("wall_s"))?,
            fps: num(Some(fps), "fps")?.ok_or_else(|| missing("fps"))?,
            energy_joules: num(energy, "energy_joules")?,
            joules_per_frame: num(jpf, "joules_per_frame")?,
        });
    }
    Ok(runs)
}

/// Splits CSV text into records, each with the 1-based line it starts on.
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, RunsFileError> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => fields.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                records.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        return Err(RunsFileError::Parse {
            line: start,
            message: "unterminated quoted field".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        records.push((start, fields));
    }
    Ok(records)
}

/// A CSV cell, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_quantiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        let sorted = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&sorted, 0.5), 2.0);
        assert_eq!(quantile(&sorted, 0.125), 0.5);
        assert_eq!(quantile(&sorted, 1.0), 4.0);
    }

    #[test]
    fn rng_is_fixed_and_uniform_enough() {
        let mut rng = SplitMix64::new(0);
        // Reference values of SplitMix64 seeded with 0.
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[rng.below(10)] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
    }

    #[test]
    fn verdicts_at_thresholds() {
        let m = |metric, low, high| MetricComparison {
            metric,
            n_baseline: 5,
            n_test: 5,
            baseline_median: Some(1.0),
            test_median: Some(1.0),
            relative_change: Some((low + high) / 2.0),
            ci_low: Some(low),
            ci_high: Some(high),
            verdict: Verdict::Insufficient,
        };
        let t = 0.03;
        assert_eq!(m(Metric::JoulesPerFrame, 0.04, 0.06).verdict_at(t), Verdict::Worse);
        assert_eq!(m(Metric::JoulesPerFrame, -0.06, -0.04).verdict_at(t), Verdict::Better);
        assert_eq!(m(Metric::JoulesPerFrame, -0.01, 0.05).verdict_at(t), Verdict::NoChange);
        assert_eq!(m(Metric::JoulesPerFrame, 0.01, 0.02).verdict_at(t), Verdict::NoChange);
        assert_eq!(
            m(Metric::JoulesPerFrame, 0.02, 0.05).verdict_at(t),
            Verdict::Inconclusive
        );
        // fps: higher is better.
        assert_eq!(m(Metric::Fps, -0.06, -0.04).verdict_at(t), Verdict::Worse);
        assert_eq!(m(Metric::Fps, 0.04, 0.06).verdict_at(t), Verdict::Better);
        assert_eq!(m(Metric::WallS, 0.04, 0.06).verdict_at(t), Verdict::Worse);
        let mut none = m(Metric::Fps, 0.0, 0.0);
        none.ci_low = None;
        assert_eq!(none.verdict_at(t), Verdict::Insufficient);
    }

    #[test]
    fn combine_prefers_worse_then_inconclusive() {
        use Verdict::*;
        assert_eq!(combine([Better, Worse, NoChange].into_iter()), Worse);
        assert_eq!(combine([Better, Inconclusive].into_iter()), Inconclusive);
        assert_eq!(combine([Better, NoChange, Insufficient].into_iter()), Better);
        assert_eq!(combine([Insufficient, NoChange].into_iter()), NoChange);
        assert_eq!(combine([Insufficient].into_iter()), Insufficient);
    }

    #[test]
    fn csv_quoting_round_trips() {
        let text = "scenario,fps,wall_s,extra\n\"a,\"\"b\"\"\nc\",1,2,x\r\n\n";
        let records = parse_csv(text).unwrap();
        assert_eq!(records[1].1[0], "a,\"b\"\nc");
        assert_eq!(records[1].0, 2);
        let runs = read_csv(text.as_bytes()).unwrap();
        assert_eq!(runs[0].scenario, "a,\"b\"\nc");
        assert_eq!(csv_field(&runs[0].scenario), "\"a,\"\"b\"\"\nc\"");
        assert!(matches!(parse_csv("\"open"), Err(RunsFileError::Parse { .. })));
    }
}
