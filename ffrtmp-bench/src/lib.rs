//! Benchmark methodology of ffrtmp, the library behind `ffrtmp bench`, `ffrtmp load` and
//! `ffrtmp recommend`, usable from any program:
//!
//! - [`matrix`]: the benchmark matrix file (scenarios × bitrates × encoders × engines ×
//!   durations) and the interleaved order its runs are submitted in;
//! - [`run`]: `ffrtmp bench run`, which submits warm-ups and repeats to a master, waits for
//!   them and writes per-run results in the format [`ffrtmp_power::compare`] reads;
//! - [`idle`]: its idle-baseline windows, measured with the nodes' energy meters, and
//!   [`baseline`]: each run's idle baseline and energy above idle;
//! - [`compare`]: `ffrtmp bench compare`, the text and JSON views of
//!   [`ffrtmp_power::compare::compare`];
//! - [`dashboard`]: the bench view of the master's web dashboard;
//! - [`report`]: `ffrtmp bench report`, a self-contained HTML page with hand-made SVG charts
//!   ([`chart`]), each also written as a PNG beside it ([`png`]).
//!
//! Statistics (medians, bootstrap intervals, verdicts) all come from
//! [`ffrtmp_power::compare`]; this crate only runs, loads, formats and draws. Beside the
//! benchmark: [`load`], the scheduler's claim throughput and latency harness, [`scale`], its costs
//! at growing queue sizes, [`placement`], the energy and makespan of placement policies on a
//! farm of simulated-power nodes, and
//! [`recommend`], a concurrency recommendation for the host. Every fallible step returns a
//! [`BenchError`].
//!
//! ```
//! use ffrtmp_bench::{compare::render_text, matrix::Matrix};
//!
//! let matrix = Matrix::parse(r#"{"scenarios": ["720p-h264"], "encoders": ["libx264"]}"#).unwrap();
//! assert_eq!(matrix.cells().unwrap().len(), 1);
//! # let _ = render_text;
//! ```

use std::path::Path;

use ffrtmp_power::compare::{self as stats, RunSample};

pub use error::{BenchError, Context, Result};

pub mod baseline;
pub mod chart;
pub mod compare;
pub mod dashboard;
pub mod error;
pub mod idle;
pub mod label;
pub mod load;
pub mod matrix;
pub mod placement;
pub mod png;
pub mod recommend;
pub mod report;
pub mod results;
pub mod run;
pub mod scale;
pub mod text;

/// Reads a runs file written by `ffrtmp bench run` (or by [`stats::write_json`] /
/// [`stats::write_csv`]): `.csv` is read as CSV, anything else as JSON.
pub fn load_runs(path: &Path) -> Result<Vec<RunSample>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let reader = std::io::BufReader::new(file);
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let runs = if is_csv {
        stats::read_csv(reader)
    } else {
        stats::read_json(reader)
    };
    runs.with_context(|| format!("reading {}", path.display()))
}

/// Parses a relative threshold written as a percentage (`3%`, `0.5%`) or a fraction (`0.03`).
///
/// ```
/// assert_eq!(ffrtmp_bench::parse_threshold("3%").unwrap(), 0.03);
/// assert_eq!(ffrtmp_bench::parse_threshold("0.05").unwrap(), 0.05);
/// assert!(ffrtmp_bench::parse_threshold("3").is_err()); // 300 %? Say 3% or 0.03.
/// assert!(ffrtmp_bench::parse_threshold("-1%").is_err());
/// ```
pub fn parse_threshold(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 0.01),
        None => (t, 1.0),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid threshold {text:?}: expected e.g. 3% or 0.03"))?;
    let value = value * scale;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("invalid threshold {text:?}: must be a non-negative number"));
    }
    if scale == 1.0 && value >= 1.0 {
        return Err(format!(
            "ambiguous threshold {text:?}: write a percentage ({text}%) or a fraction below 1"
        ));
    }
    Ok(value)
}

/// A plain-text table: left-aligned columns separated by two spaces, one line per row. Cells
/// are stripped of terminal control characters ([`text::strip_controls`]).
///
/// ```
/// let t = ffrtmp_bench::text_table(&["A", "BB"], vec![vec!["xyz".into(), "1".into()]]);
/// assert_eq!(t, "A    BB\nxyz  1\n");
/// ```
pub fn text_table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    // Cells hold names and reasons from masters, agents and files: never terminal controls.
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|c| crate::text::strip_controls(&c).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        out.push_str(padded.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
    out
}

/// Formats a number with about four significant digits (`1234.5`, `12.35`, `0.2013`).
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// Formats a relative change as a signed percentage (`+5.02%`).
pub fn fmt_pct(v: f64) -> String {
    format!("{:+.2}%", v * 100.0)
}

fn require_nonempty(runs: &[RunSample], path: &Path) -> Result<()> {
    if runs.is_empty() {
        return Err(BenchError::Invalid(format!("{} holds no runs", path.display())));
    }
    Ok(())
}

/// [`load_runs`], refusing files without runs.
pub fn load_nonempty(path: &Path) -> Result<Vec<RunSample>> {
    let runs = load_runs(path)?;
    require_nonempty(&runs, path)?;
    Ok(runs)
}

/// Checks that every element opened is closed in order (`<x/>` closes itself), ignoring
/// the doctype: enough to catch a broken template or an unescaped name.
#[cfg(test)]
pub(crate) fn assert_balanced(doc: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        if tag.starts_with('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "mismatched </{name}>");
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(!rest.contains('>'), "stray '>' in text");
}
