//! The bench view of the master's web dashboard: a directory of result sets, each after the
//! baseline compared against it with [`ffrtmp_power::compare`], laid out as the same rows and
//! verdicts `ffrtmp bench compare` prints ([`super::compare::rows`]).
//!
//! A result set is a subdirectory holding `runs.json` (or `runs.csv`), as `ffrtmp bench run
//! --out` writes, labelled by the subdirectory; or a `.json`/`.csv` runs file directly in the
//! directory, labelled by its stem. The baseline is the set labelled `baseline` when there is
//! one, else the first by label.

use std::path::{Path, PathBuf};

use ffrtmp_http::BenchSource;
use ffrtmp_power::compare::{compare, CompareConfig};
use serde::Serialize;

use super::compare::{rows, verdict_text, Row};
use super::report::label_of;
use super::{load_nonempty, Context, Result};

/// Result sets read from a directory on each call, so new results show without a restart.
#[derive(Clone, Debug)]
pub struct BenchDir {
    dir: PathBuf,
    threshold: f64,
}

impl BenchDir {
    /// The sets under `dir`, with verdicts at the relative `threshold` (e.g. 0.03).
    pub fn new(dir: impl Into<PathBuf>, threshold: f64) -> BenchDir {
        BenchDir {
            dir: dir.into(),
            threshold,
        }
    }

    /// Compares every set against the baseline.
    pub fn view(&self) -> Result<BenchView> {
        let mut sets = Vec::new();
        let mut errors = Vec::new();
        for (label, path) in find_sets(&self.dir)? {
            match load_nonempty(&path) {
                Ok(runs) => sets.push((label, runs)),
                Err(e) => errors.push(format!("{label}: {e}")),
            }
        }
        if let Some(i) = sets.iter().position(|(label, _)| label == "baseline") {
            let base = sets.remove(i);
            sets.insert(0, base);
        }
        let config = CompareConfig {
            threshold: self.threshold,
            ..CompareConfig::default()
        };
        let comparisons = sets
            .iter()
            .skip(1)
            .map(|(label, runs)| {
                let c = compare(&sets[0].1, runs, &config);
                ComparisonView {
                    test: label.clone(),
                    confidence: c.config.confidence,
                    verdicts: c
                        .scenarios
                        .iter()
                        .map(|s| ScenarioVerdict {
                            scenario: s.scenario.clone(),
                            verdict: verdict_text(s.verdict_at(self.threshold)),
                        })
                        .collect(),
                    rows: rows(&c, self.threshold),
                }
            })
            .collect();
        Ok(BenchView {
            baseline: sets.first().map(|(label, _)| label.clone()),
            threshold: self.threshold,
            sets: sets
                .iter()
                .map(|(label, runs)| SetView {
                    label: label.clone(),
                    runs: runs.len(),
                })
                .collect(),
            comparisons,
            errors,
        })
    }
}

impl BenchSource for BenchDir {
    fn load(&self) -> std::result::Result<serde_json::Value, String> {
        let view = self.view().map_err(|e| e.to_string())?;
        serde_json::to_value(view).map_err(|e| e.to_string())
    }
}

/// The result sets in `dir`, by label: `(label, runs file)`.
pub fn find_sets(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut sets = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let file = ["runs.json", "runs.csv"]
                .iter()
                .map(|f| path.join(f))
                .find(|f| f.is_file());
            if let Some(file) = file {
                sets.push((label_of(&file), file));
            }
        } else if path.extension().is_some_and(|e| e == "json" || e == "csv") && !is_meta(&path) {
            sets.push((label_of(&path), path));
        }
    }
    sets.sort();
    Ok(sets)
}

fn is_meta(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "meta.json")
}

/// What `GET /dashboard/bench` answers.
#[derive(Clone, Debug, Serialize)]
pub struct BenchView {
    /// The baseline's label; `None` when there is no set.
    pub baseline: Option<String>,
    /// The verdicts' relative threshold.
    pub threshold: f64,
    /// Every set that loaded, baseline first.
    pub sets: Vec<SetView>,
    /// Each other set against the baseline.
    pub comparisons: Vec<ComparisonView>,
    /// Sets that did not load, and why.
    pub errors: Vec<String>,
}

/// One result set.
#[derive(Clone, Debug, Serialize)]
pub struct SetView {
    /// Its label.
    pub label: String,
    /// Runs in it.
    pub runs: usize,
}

/// One set against the baseline.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonView {
    /// The tested set's label.
    pub test: String,
    /// The intervals' confidence level (0.95).
    pub confidence: f64,
    /// Each scenario's verdict.
    pub verdicts: Vec<ScenarioVerdict>,
    /// The comparison table.
    pub rows: Vec<Row>,
}

/// A scenario's overall verdict.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioVerdict {
    /// The scenario (cell label).
    pub scenario: String,
    /// `no change`, `worse`, `better`, `inconclusive`, …
    pub verdict: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_power::compare::{write_json, RunSample};

    fn runs(fps: f64) -> Vec<RunSample> {
        (0..5)
            .map(|i| RunSample {
                scenario: "720p-h264".into(),
                run: i,
                frames: 300,
                wall_s: 300.0 / (fps + f64::from(i) * 0.01),
                fps: fps + f64::from(i) * 0.01,
                energy_joules: None,
                joules_per_frame: None,
                energy_model: None,
            })
            .collect()
    }

    #[test]
    fn a_directory_of_sets_is_compared_against_the_baseline_with_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        for (name, fps) in [("baseline", 100.0), ("slower", 80.0)] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            write_json(
                std::fs::File::create(dir.path().join(name).join("runs.json")).unwrap(),
                &runs(fps),
            )
            .unwrap();
            std::fs::write(dir.path().join(name).join("meta.json"), "{}").unwrap();
        }
        std::fs::write(dir.path().join("broken.json"), "not json").unwrap();
        let view = BenchDir::new(dir.path(), 0.03).view().unwrap();
        assert_eq!(view.baseline.as_deref(), Some("baseline"));
        assert_eq!(view.comparisons.len(), 1);
        let c = &view.comparisons[0];
        assert_eq!(c.test, "slower");
        assert_eq!(c.verdicts[0].verdict, "worse", "{c:?}");
        let fps = c.rows.iter().find(|r| r.metric == "fps").unwrap();
        assert_eq!(fps.verdict, "worse");
        assert_eq!(view.errors.len(), 1, "{:?}", view.errors);
        assert!(view.errors[0].starts_with("broken: "), "{:?}", view.errors);
        let json = BenchSource::load(&BenchDir::new(dir.path(), 0.03)).unwrap();
        assert_eq!(json["comparisons"][0]["rows"][0]["scenario"], "720p-h264");
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_panic() {
        let err = BenchDir::new("/nonexistent/bench", 0.03).load().unwrap_err();
        assert!(err.contains("/nonexistent/bench"), "{err}");
    }
}
