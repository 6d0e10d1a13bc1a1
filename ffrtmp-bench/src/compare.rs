//! `ffrtmp bench compare`: the text and JSON views of [`ffrtmp_power::compare::compare`].
//! The numbers and verdicts are the compare module's; this file only lays them out.

use std::path::Path;

use ffrtmp_power::compare::{
    compare, mixed_energy, CompareConfig, Comparison, Metric, MetricComparison, Verdict, EXIT_INCONCLUSIVE,
};
use serde::Serialize;

use super::{fmt_num, fmt_pct, load_nonempty, text_table, BenchError, Result};

/// A verdict as people read it: `no change`, `worse`, …
pub fn verdict_text(v: Verdict) -> String {
    v.name().replace('_', " ")
}

/// Loads two runs files ([`super::load_nonempty`]) and compares them with
/// [`ffrtmp_power::compare::compare`] at `threshold` (other settings at their defaults).
///
/// Estimated energy (a power model's) is never set against measured energy, or against another
/// model's, unless `allow_estimated`: without it such files are refused with both sides' kinds
/// ([`mixed_energy`]); with it the comparison is made and the second value says what was mixed.
pub fn compare_files(
    base: &Path,
    test: &Path,
    threshold: f64,
    allow_estimated: bool,
) -> Result<(Comparison, Option<String>)> {
    let baseline = load_nonempty(base)?;
    let tested = load_nonempty(test)?;
    let mixed = mixed_energy(&baseline, &tested);
    if let (Some(kinds), false) = (&mixed, allow_estimated) {
        return Err(BenchError::Invalid(format!(
            "refusing to compare estimated with measured energy ({kinds}); pass --allow-estimated to compare anyway"
        )));
    }
    let config = CompareConfig {
        threshold,
        ..CompareConfig::default()
    };
    Ok((compare(&baseline, &tested, &config), mixed))
}

/// One line of the comparison table, already formatted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Scenario (cell label).
    pub scenario: String,
    /// Metric name as shown: `J/frame`, `fps`, `wall s`.
    pub metric: String,
    /// Usable runs, `baseline/test`.
    pub runs: String,
    /// Baseline median.
    pub baseline: String,
    /// Test median.
    pub test: String,
    /// Relative change of the medians.
    pub change: String,
    /// 95 % (or the configured level) bootstrap interval of the change.
    pub ci: String,
    /// The verdict at the threshold, or why there is none (`energy unavailable`).
    pub verdict: String,
    /// The verdict itself, for colouring; `None` when energy is unavailable.
    #[serde(skip)]
    pub kind: Option<Verdict>,
}

/// Name of a metric in tables.
pub fn metric_text(m: Metric) -> &'static str {
    match m {
        Metric::JoulesPerFrame => "J/frame",
        Metric::Fps => "fps",
        Metric::WallS => "wall s",
    }
}

/// Why joules per frame cannot be compared, if it cannot be because a side lacks energy.
fn energy_missing(m: &MetricComparison) -> Option<&'static str> {
    if m.metric != Metric::JoulesPerFrame {
        return None;
    }
    match (m.n_baseline, m.n_test) {
        (0, 0) => Some("energy unavailable"),
        (0, _) => Some("energy unavailable in baseline"),
        (_, 0) => Some("energy unavailable in test"),
        _ => None,
    }
}

/// The rows of the comparison table: per scenario, joules per frame, fps and wall time.
pub fn rows(comparison: &Comparison, threshold: f64) -> Vec<Row> {
    let mut rows = Vec::new();
    for s in &comparison.scenarios {
        for m in &s.metrics {
            let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
            let missing = energy_missing(m);
            let verdict = m.verdict_at(threshold);
            rows.push(Row {
                scenario: s.scenario.clone(),
                metric: metric_text(m.metric).into(),
                runs: format!("{}/{}", m.n_baseline, m.n_test),
                baseline: opt(m.baseline_median, fmt_num),
                test: opt(m.test_median, fmt_num),
                change: opt(m.relative_change, fmt_pct),
                ci: match (m.ci_low, m.ci_high) {
                    (Some(l), Some(h)) => format!("[{}, {}]", fmt_pct(l), fmt_pct(h)),
                    _ => "-".into(),
                },
                verdict: missing.map(str::to_string).unwrap_or_else(|| verdict_text(verdict)),
                kind: missing.is_none().then_some(verdict),
            });
        }
    }
    rows
}

/// Column headers of [`rows`], for a confidence level such as 0.95.
pub fn headers(confidence: f64) -> [String; 8] {
    [
        "SCENARIO".into(),
        "METRIC".into(),
        "RUNS B/T".into(),
        "BASELINE".into(),
        "TEST".into(),
        "CHANGE".into(),
        format!("{:.0}% CI", confidence * 100.0),
        "VERDICT".into(),
    ]
}

/// The comparison as text: the table, each scenario's verdict, and the regressions.
pub fn render_text(comparison: &Comparison, threshold: f64) -> String {
    let headers = headers(comparison.config.confidence);
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let table = rows(comparison, threshold)
        .into_iter()
        .map(|r| {
            vec![
                r.scenario, r.metric, r.runs, r.baseline, r.test, r.change, r.ci, r.verdict,
            ]
        })
        .collect();
    let mut out = text_table(&headers, table);
    out.push('\n');
    for s in &comparison.scenarios {
        out.push_str(&format!("{}: {}\n", s.scenario, verdict_text(s.verdict_at(threshold))));
    }
    for line in inconclusive_lines(comparison, threshold) {
        out.push_str(&line);
        out.push('\n');
    }
    let regressions = comparison.regressions(threshold);
    if regressions.is_empty() {
        out.push_str(&format!("no regression beyond {}\n", fmt_threshold(threshold)));
    } else {
        let list: Vec<String> = regressions
            .iter()
            .map(|(s, m)| format!("{s} {}", metric_text(*m)))
            .collect();
        out.push_str(&format!(
            "regressed beyond {}: {}\n",
            fmt_threshold(threshold),
            list.join(", ")
        ));
    }
    out
}

/// One line per inconclusive metric: why, and about how many runs per side would decide it.
pub fn inconclusive_lines(comparison: &Comparison, threshold: f64) -> Vec<String> {
    let level = format!("{:.0}% CI", comparison.config.confidence * 100.0);
    comparison
        .inconclusive(threshold)
        .into_iter()
        .map(|(scenario, m)| {
            let ci = match (m.ci_low, m.ci_high) {
                (Some(l), Some(h)) => format!("[{}, {}]", fmt_pct(l), fmt_pct(h)),
                _ => "-".into(),
            };
            let runs = match m.runs_needed(threshold) {
                Some(n) => format!(
                    "about {n} runs per side (now {}/{}) should decide it",
                    m.n_baseline, m.n_test
                ),
                None => "the change sits on the threshold; no number of runs decides it".into(),
            };
            format!(
                "inconclusive: {scenario} {}: the {level} {ci} reaches both inside and beyond ±{}; {runs}",
                metric_text(m.metric),
                fmt_threshold(threshold)
            )
        })
        .collect()
}

/// The exit status of `ffrtmp bench compare`: [`Comparison::exit_code`], with
/// [`EXIT_INCONCLUSIVE`] turned into 0 when `allow_inconclusive`.
pub fn exit_status(comparison: &Comparison, threshold: f64, allow_inconclusive: bool) -> i32 {
    match comparison.exit_code(threshold) {
        EXIT_INCONCLUSIVE if allow_inconclusive => 0,
        code => code,
    }
}

/// `3%`.
pub fn fmt_threshold(t: f64) -> String {
    format!("{}%", (t * 100.0 * 1e6).round() / 1e6)
}

/// The JSON document of `ffrtmp bench compare --output json`.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// Baseline file.
    pub baseline: &'a str,
    /// Test file.
    pub test: &'a str,
    /// Threshold used for verdicts and the exit code.
    pub threshold: f64,
    /// The full comparison.
    pub comparison: &'a Comparison,
    /// Per scenario, the verdict at the threshold.
    pub verdicts: Vec<(String, Verdict)>,
    /// `[scenario, metric]` that regressed beyond the threshold.
    pub regressions: Vec<(String, Metric)>,
    /// Metrics whose verdict is inconclusive, with about how many runs per side would decide.
    pub inconclusive: Vec<Inconclusive>,
    /// The exit code.
    pub exit_code: i32,
}

/// An inconclusive metric in [`JsonReport`].
#[derive(Debug, Serialize)]
pub struct Inconclusive {
    /// Scenario.
    pub scenario: String,
    /// Metric.
    pub metric: Metric,
    /// About how many runs per side would decide it ([`MetricComparison::runs_needed`]).
    pub runs_needed: Option<usize>,
}

/// Builds the JSON document; `exit_code` as [`exit_status`].
pub fn json_report<'a>(
    baseline: &'a str,
    test: &'a str,
    comparison: &'a Comparison,
    threshold: f64,
    allow_inconclusive: bool,
) -> JsonReport<'a> {
    JsonReport {
        baseline,
        test,
        threshold,
        comparison,
        verdicts: comparison
            .scenarios
            .iter()
            .map(|s| (s.scenario.clone(), s.verdict_at(threshold)))
            .collect(),
        regressions: comparison
            .regressions(threshold)
            .into_iter()
            .map(|(s, m)| (s.to_string(), m))
            .collect(),
        inconclusive: comparison
            .inconclusive(threshold)
            .into_iter()
            .map(|(s, m)| Inconclusive {
                scenario: s.to_string(),
                metric: m.metric,
                runs_needed: m.runs_needed(threshold),
            })
            .collect(),
        exit_code: exit_status(comparison, threshold, allow_inconclusive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_power::compare::RunSample;

    fn runs(jpf: Option<f64>, scale: f64) -> Vec<RunSample> {
        (0..8)
            .map(|i| {
                let noise = 1.0 + 0.005 * ((i as f64) * 1.7).sin();
                let mut r = RunSample::new("720p-h264", i, 0.2 * scale * noise, 100.0 * noise, 3.0 * noise);
                r.joules_per_frame = jpf.map(|j| j * scale * noise);
                r
            })
            .collect()
    }

    #[test]
    fn text_shows_worse_and_missing_energy() {
        let c = compare(&runs(Some(0.2), 1.0), &runs(Some(0.2), 1.1), &CompareConfig::default());
        let text = render_text(&c, 0.03);
        assert!(text.contains("J/frame"), "{text}");
        assert!(text.contains("worse"), "{text}");
        assert!(text.contains("+10.00%"), "{text}");
        assert!(text.contains("regressed beyond 3%: 720p-h264 J/frame"), "{text}");
        assert!(text.contains("95% CI"), "{text}");

        let c = compare(&runs(None, 1.0), &runs(None, 1.0), &CompareConfig::default());
        let text = render_text(&c, 0.03);
        assert!(text.contains("energy unavailable"), "{text}");
        assert!(text.contains("720p-h264: no change"), "{text}");
        assert!(text.contains("no regression beyond 3%"), "{text}");
        let r = rows(&c, 0.03);
        assert_eq!(r[0].kind, None);
        assert_eq!(r[1].kind, Some(Verdict::NoChange));
    }

    #[test]
    fn json_carries_verdicts_and_exit_code() {
        let c = compare(&runs(Some(0.2), 1.0), &runs(Some(0.2), 1.1), &CompareConfig::default());
        let v = serde_json::to_value(json_report("a.json", "b.json", &c, 0.03, false)).unwrap();
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["verdicts"][0][1], "worse");
        assert_eq!(v["regressions"][0][1], "joules_per_frame");
        assert_eq!(fmt_threshold(0.005), "0.5%");
    }
}
