//! Files of per-run results: JSON and CSV.

use std::io::{self, Read, Write};

use super::{Comparison, RunSample};

impl Comparison {
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
///
/// When some run's energy was estimated, an `energy_model` column follows (the model's name,
/// empty for measured runs), so an estimate never reads back as a measurement.
pub fn write_csv<W: Write>(mut writer: W, runs: &[RunSample]) -> io::Result<()> {
    let models = runs.iter().any(|r| r.energy_model.is_some());
    let extra = if models { ",energy_model" } else { "" };
    writeln!(writer, "{RUNS_CSV_HEADER}{extra}")?;
    for r in runs {
        let model = match (models, &r.energy_model) {
            (true, Some(m)) => format!(",{}", csv_field(m)),
            (true, None) => ",".to_string(),
            (false, _) => String::new(),
        };
        writeln!(
            writer,
            "{},{},{},{},{},{},{}{model}",
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
    let model = column("energy_model");
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
            energy_model: cell(model).map(String::from),
        });
    }
    Ok(runs)
}

/// Splits CSV text into records, each with the 1-based line it starts on.
pub(super) fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<String>)>, RunsFileError> {
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
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}
