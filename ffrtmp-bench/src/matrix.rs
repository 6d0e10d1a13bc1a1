//! The benchmark matrix of `ffrtmp bench run`: a JSON file naming scenarios × bitrates ×
//! encoders × engines × durations, expanded into [`Cell`]s, and the interleaved order the
//! runs are submitted in ([`schedule`]).
//!
//! ```
//! use ffrtmp_bench::matrix::Matrix;
//! let m = Matrix::parse(r#"{"scenarios":["720p-h264","1080p-h265"],"bitrates":["2M","5M"],"duration":3}"#).unwrap();
//! let cells = m.cells().unwrap();
//! assert_eq!(cells.len(), 4);
//! assert_eq!(cells[0].label(), "720p-h264/2M/3s");
//! ```
//!
//! Every list may also be given as a single value (`"bitrate":"5M"`, `"duration":3`); the
//! singular and plural names are the same field. Unknown fields are refused.

use crate::error::{BenchError, Context, Result};
use ffrtmp_core::{Classification, Codec, EngineChoice, JobSpec, OutputMode, Priority, Queue, Scenario};
use serde::{Deserialize, Serialize};

/// One value or a list of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A benchmark matrix as written in its file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Scenario names, e.g. `720p-h264`.
    #[serde(alias = "scenario")]
    pub scenarios: OneOrMany<String>,
    /// Bitrates, e.g. `2M`; absent: the scenario's default.
    #[serde(default, alias = "bitrate", skip_serializing_if = "Option::is_none")]
    pub bitrates: Option<OneOrMany<String>>,
    /// Encoders, e.g. `libx264`; absent: the node's encoder for the codec.
    #[serde(default, alias = "encoder", skip_serializing_if = "Option::is_none")]
    pub encoders: Option<OneOrMany<String>>,
    /// Engines: `auto`, `ffmpeg`, `gstreamer`; absent: `auto`.
    #[serde(default, alias = "engine", skip_serializing_if = "Option::is_none")]
    pub engines: Option<OneOrMany<EngineChoice>>,
    /// Seconds of video per run; absent: the scenario's default.
    #[serde(default, alias = "duration", skip_serializing_if = "Option::is_none")]
    pub durations: Option<OneOrMany<f64>>,
    /// Where the output goes (default `null`: the encoder alone is measured).
    #[serde(default = "default_output_mode")]
    pub output_mode: OutputMode,
    /// Encoder preset for every run, e.g. `veryfast`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// Queue of the runs (default `default`).
    #[serde(default)]
    pub queue: Queue,
    /// Priority of the runs (default `medium`).
    #[serde(default)]
    pub priority: Priority,
    /// Wall-clock limit of one run, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
    /// Retries after transient failures (default 0: a retried run measures something else).
    #[serde(default)]
    pub max_retries: u32,
}

fn default_output_mode() -> OutputMode {
    OutputMode::Null
}

/// One combination of the matrix; every run of a cell has the same [`JobSpec`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Scenario name.
    pub scenario: String,
    /// Bitrate, if the matrix sets one.
    pub bitrate: Option<String>,
    /// Encoder, if the matrix sets one.
    pub encoder: Option<String>,
    /// Engine, if the matrix sets one.
    pub engine: Option<EngineChoice>,
    /// Seconds of video, if the matrix sets them.
    pub duration_s: Option<f64>,
}

/// The name of an engine in labels and files.
pub fn engine_name(e: EngineChoice) -> &'static str {
    match e {
        EngineChoice::Auto => "auto",
        EngineChoice::Ffmpeg => "ffmpeg",
        EngineChoice::Gstreamer => "gstreamer",
    }
}

impl Cell {
    /// The name the cell's runs are compared under: the scenario, then each dimension the
    /// matrix sets, joined by `/`: `720p-h264`, `720p-h264/2M`, `1080p-h265/5M/libx265/ffmpeg/10s`.
    /// It depends only on the cell, so files from different matrices compare cell by cell.
    pub fn label(&self) -> String {
        let mut parts = vec![self.scenario.clone()];
        parts.extend(self.bitrate.clone());
        parts.extend(self.encoder.clone());
        parts.extend(self.engine.map(|e| engine_name(e).to_string()));
        parts.extend(self.duration_s.map(|d| format!("{d}s")));
        parts.join("/")
    }

    /// The job submitted for each run of the cell.
    pub fn spec(&self, matrix: &Matrix) -> JobSpec {
        let mut spec = JobSpec::new(self.scenario.clone());
        spec.parameters.bitrate = self.bitrate.clone();
        spec.parameters.encoder = self.encoder.clone();
        spec.parameters.duration = self.duration_s;
        spec.parameters.preset = matrix.preset.clone();
        spec.parameters.output_mode = Some(matrix.output_mode);
        spec.resource_limits.timeout_sec = matrix.timeout_sec;
        spec.engine = self.engine.unwrap_or_default();
        spec.queue = matrix.queue;
        spec.priority = matrix.priority;
        spec.classification = Classification::Benchmark;
        spec.max_retries = matrix.max_retries;
        spec
    }
}

impl Matrix {
    /// Parses a matrix file's JSON text.
    pub fn parse(text: &str) -> Result<Matrix> {
        serde_json::from_str(text).context("invalid benchmark matrix")
    }

    /// Reads and parses a matrix file.
    pub fn load(path: &std::path::Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Matrix::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Every combination, scenarios outermost, then bitrates, encoders, engines, durations.
    /// An encoder of a known codec is only paired with scenarios of that codec (so
    /// `["libx264","libx265"]` fits a matrix of H.264 and H.265 scenarios); an encoder that fits
    /// no scenario is an error. Each cell's job is validated the way the master will validate
    /// it, so a bad matrix fails before anything is submitted.
    pub fn cells(&self) -> Result<Vec<Cell>> {
        let scenarios = self.scenarios.to_vec();
        if scenarios.is_empty() {
            return Err(BenchError::invalid("the matrix names no scenarios"));
        }
        // An absent dimension is one "unset" value; an empty list is a mistake.
        fn dim<T: Clone>(name: &str, v: &Option<OneOrMany<T>>) -> Result<Vec<Option<T>>> {
            match v {
                None => Ok(vec![None]),
                Some(list) => {
                    let list = list.to_vec();
                    if list.is_empty() {
                        return Err(BenchError::Invalid(format!(
                            "`{name}` is an empty list: leave it out to use the default"
                        )));
                    }
                    Ok(list.into_iter().map(Some).collect())
                }
            }
        }
        let bitrates = dim("bitrates", &self.bitrates)?;
        let encoders = dim("encoders", &self.encoders)?;
        let engines = dim("engines", &self.engines)?;
        let durations = dim("durations", &self.durations)?;
        let mut cells = Vec::new();
        let mut used_encoders = std::collections::HashSet::new();
        for scenario in &scenarios {
            let codec = Scenario::parse(scenario)
                .map_err(|e| BenchError::Invalid(format!("scenario {scenario}: {e}")))?
                .codec;
            let fits = |e: &Option<String>| e.as_deref().and_then(Codec::of_encoder).is_none_or(|c| c == codec);
            for bitrate in &bitrates {
                for encoder in encoders.iter().filter(|e| fits(e)) {
                    used_encoders.insert(encoder.clone());
                    for engine in &engines {
                        for duration in &durations {
                            cells.push(Cell {
                                scenario: scenario.clone(),
                                bitrate: bitrate.clone(),
                                encoder: encoder.clone(),
                                engine: *engine,
                                duration_s: *duration,
                            });
                        }
                    }
                }
            }
        }
        if let Some(unused) = encoders.iter().find(|e| !used_encoders.contains(*e)) {
            return Err(BenchError::Invalid(format!(
                "encoder {} produces a codec none of the scenarios uses",
                unused.as_deref().unwrap_or_default()
            )));
        }
        let mut labels = std::collections::HashSet::new();
        for cell in &cells {
            let label = cell.label();
            if !labels.insert(label.clone()) {
                return Err(BenchError::Invalid(format!("the matrix lists cell {label} twice")));
            }
            cell.spec(self)
                .validate()
                .map_err(|e| BenchError::Invalid(format!("cell {label}: {e}")))?;
        }
        Ok(cells)
    }
}

/// The submission order of `rounds` rounds over `cells` cells: each round runs every cell
/// once, and round `r` starts `r` cells further on (A B C, B C A, C A B, …), so that every cell
/// takes every position equally often and slow drift (heat, clocks, other load) spreads over
/// all cells instead of piling onto the last one. Yields `(cell, round)`.
///
/// ```
/// use ffrtmp_bench::matrix::schedule;
/// assert_eq!(schedule(2, 3), vec![(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]);
/// ```
pub fn schedule(cells: usize, rounds: u32) -> Vec<(usize, u32)> {
    let mut order = Vec::with_capacity(cells * rounds as usize);
    for round in 0..rounds {
        for i in 0..cells {
            order.push(((round as usize + i) % cells, round));
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_combination_in_order() {
        let m = Matrix::parse(
            r#"{"scenarios":["720p-h264","1080p-h265"],"bitrates":["2M","5M"],
                "encoders":["libx264","libx265"],"engines":["ffmpeg"],"durations":[1,2.5],"preset":"veryfast"}"#,
        )
        .unwrap();
        let cells = m.cells().unwrap();
        assert_eq!(cells.len(), 8);
        let labels: Vec<String> = cells.iter().map(Cell::label).collect();
        assert_eq!(labels[0], "720p-h264/2M/libx264/ffmpeg/1s");
        assert_eq!(labels[1], "720p-h264/2M/libx264/ffmpeg/2.5s");
        assert_eq!(labels[2], "720p-h264/5M/libx264/ffmpeg/1s");
        assert_eq!(labels[7], "1080p-h265/5M/libx265/ffmpeg/2.5s");
        let spec = cells[0].spec(&m);
        assert_eq!(spec.parameters.bitrate.as_deref(), Some("2M"));
        assert_eq!(spec.parameters.encoder.as_deref(), Some("libx264"));
        assert_eq!(spec.parameters.duration, Some(1.0));
        assert_eq!(spec.parameters.preset.as_deref(), Some("veryfast"));
        assert_eq!(spec.parameters.output_mode, Some(OutputMode::Null));
        assert_eq!(spec.engine, EngineChoice::Ffmpeg);
        assert_eq!(spec.classification, Classification::Benchmark);
        assert_eq!(spec.max_retries, 0);
    }

    #[test]
    fn singular_names_and_defaults() {
        let m = Matrix::parse(r#"{"scenario":"720p-h264","duration":3,"output_mode":"file","max_retries":2}"#).unwrap();
        let cells = m.cells().unwrap();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].label(), "720p-h264/3s");
        let spec = cells[0].spec(&m);
        assert_eq!(spec.parameters.bitrate, None);
        assert_eq!(spec.parameters.output_mode, Some(OutputMode::File));
        assert_eq!(spec.engine, EngineChoice::Auto);
        assert_eq!(spec.max_retries, 2);
        let bare = Matrix::parse(r#"{"scenarios":["4K-h265"]}"#).unwrap();
        assert_eq!(bare.cells().unwrap()[0].label(), "4K-h265");
        assert_eq!(bare.output_mode, OutputMode::Null);
    }

    #[test]
    fn refuses_bad_matrices() {
        let err = |text: &str| Matrix::parse(text).and_then(|m| m.cells()).unwrap_err().chain();
        assert!(err(r#"{"scenarios":[]}"#).contains("no scenarios"));
        assert!(err(r#"{"scenarios":["720p-h264"],"bitrates":[]}"#).contains("empty list"));
        assert!(err(r#"{"scenarios":["720p-h264"],"bitrate":"2M","bitrates":["5M"]}"#).contains("duplicate"));
        assert!(err(r#"{"scenarios":["720p-h264"],"bitrats":["5M"]}"#).contains("unknown field"));
        assert!(err(r#"{"scenarios":["720p-mpeg2"]}"#).contains("720p-mpeg2"));
        assert!(err(r#"{"scenarios":["720p-h264"],"duration":-1}"#).contains("duration"));
        assert!(err(r#"{"scenarios":["720p-h264","720p-h264"]}"#).contains("twice"));
        assert!(err(r#"{"scenarios":["720p-h264"],"encoders":["libx264","libx265"]}"#).contains("libx265"));
        assert!(err(r#"{"scenarios":["720p-h264"],"engines":["vlc"]}"#).contains("invalid benchmark matrix"));
    }

    #[test]
    fn schedule_rotates_cells_through_positions() {
        let order = schedule(3, 3);
        assert_eq!(
            order.iter().map(|&(c, _)| c).collect::<Vec<_>>(),
            vec![0, 1, 2, 1, 2, 0, 2, 0, 1]
        );
        // Every cell once per round, every cell in every position once over 3 rounds.
        for round in 0..3 {
            let mut cells: Vec<usize> = order.iter().filter(|o| o.1 == round).map(|o| o.0).collect();
            cells.sort();
            assert_eq!(cells, vec![0, 1, 2]);
        }
        for pos in 0..3 {
            let mut at: Vec<usize> = (0..3).map(|r| order[r * 3 + pos].0).collect();
            at.sort();
            assert_eq!(at, vec![0, 1, 2]);
        }
        assert!(schedule(0, 5).is_empty());
        assert!(schedule(4, 0).is_empty());
    }
}
