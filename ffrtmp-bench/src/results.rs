//! The files `ffrtmp bench run` writes: `runs.json`, `runs.csv` (the columns of
//! [`ffrtmp_power::compare::write_csv`] first, so its reader reads them) and `meta.json`.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use ffrtmp_power::compare::{self as stats, RUNS_CSV_HEADER};
use serde::Serialize;

use super::run::{BenchRun, Outcome};

/// Extra CSV columns after those of [`RUNS_CSV_HEADER`].
pub const EXTRA_CSV_COLUMNS: &str = "job_scenario,bitrate,encoder,engine,duration_s,state,job_id,node,avg_watts,\
energy_source,energy_unavailable_reason,used_encoder,error,baseline_watts,baseline_source,idle_share,\
energy_above_idle_joules,energy_above_idle_note";

/// Writes runs as CSV: the columns of [`ffrtmp_power::compare::write_csv`] (written by it),
/// then [`EXTRA_CSV_COLUMNS`].
pub fn write_runs_csv<W: std::io::Write>(mut writer: W, runs: &[BenchRun]) -> std::io::Result<()> {
    writeln!(writer, "{RUNS_CSV_HEADER},{EXTRA_CSV_COLUMNS}")?;
    for r in runs {
        let mut buf = Vec::new();
        stats::write_csv(&mut buf, std::slice::from_ref(&r.sample))?;
        let text = String::from_utf8_lossy(&buf);
        let row = text
            .strip_prefix(RUNS_CSV_HEADER)
            .and_then(|t| t.strip_prefix('\n'))
            .and_then(|t| t.strip_suffix('\n'))
            .ok_or_else(|| std::io::Error::other("unexpected output of compare::write_csv"))?;
        let num = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let extras = [
            Some(r.job_scenario.clone()),
            r.bitrate.clone(),
            r.encoder.clone(),
            r.engine.clone(),
            r.duration_s.map(|d| d.to_string()),
            Some(r.state.clone()),
            r.job_id.clone(),
            r.node.clone(),
            Some(num(r.avg_watts)),
            r.energy_source.clone(),
            r.energy_unavailable_reason.clone(),
            r.used_encoder.clone(),
            r.error.clone(),
            Some(num(r.idle.baseline_watts)),
            r.idle.baseline_source.clone(),
            Some(num(r.idle.idle_share)),
            Some(num(r.idle.energy_above_idle_joules)),
            r.idle.energy_above_idle_note.clone(),
        ];
        let extras: Vec<String> = extras.iter().map(|e| csv_field(e.as_deref().unwrap_or(""))).collect();
        writeln!(writer, "{row},{}", extras.join(","))?;
    }
    writer.flush()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Paths of the files [`write_results`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct ResultFiles {
    /// `runs.json`.
    pub json: PathBuf,
    /// `runs.csv`.
    pub csv: PathBuf,
    /// `meta.json`.
    pub meta: PathBuf,
}

/// Writes `runs.json`, `runs.csv` and `meta.json` into `dir` (created if missing).
pub fn write_results(dir: &Path, outcome: &Outcome) -> Result<ResultFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = ResultFiles {
        json: dir.join("runs.json"),
        csv: dir.join("runs.csv"),
        meta: dir.join("meta.json"),
    };
    let create = |p: &Path| {
        std::fs::File::create(p)
            .map(std::io::BufWriter::new)
            .with_context(|| format!("creating {}", p.display()))
    };
    // Flush explicitly: a BufWriter dropped unflushed swallows write errors (a full disk would
    // leave a truncated file behind an Ok).
    use std::io::Write as _;
    let mut w = create(&files.json)?;
    serde_json::to_writer_pretty(&mut w, &outcome.runs).context("writing runs.json")?;
    w.flush().context("writing runs.json")?;
    let mut w = create(&files.csv)?;
    write_runs_csv(&mut w, &outcome.runs).context("writing runs.csv")?;
    w.flush().context("writing runs.csv")?;
    let mut w = create(&files.meta)?;
    serde_json::to_writer_pretty(&mut w, &outcome.meta).context("writing meta.json")?;
    w.flush().context("writing meta.json")?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::IdleFigures;
    use ffrtmp_power::compare::RunSample;

    fn run(label: &str, repeat: u32, jpf: Option<f64>, state: &str) -> BenchRun {
        BenchRun {
            sample: RunSample {
                scenario: label.into(),
                run: repeat,
                frames: 30,
                wall_s: 0.5,
                fps: 60.0,
                energy_joules: jpf.map(|j| j * 30.0),
                joules_per_frame: jpf,
                energy_model: None,
            },
            job_scenario: "720p-h264".into(),
            bitrate: Some("2M".into()),
            encoder: None,
            engine: None,
            duration_s: Some(1.0),
            state: state.into(),
            job_id: Some("j1".into()),
            node: Some("node, \"a\"".into()),
            avg_watts: jpf.map(|_| 12.5),
            energy_source: Some(if jpf.is_some() { "rapl" } else { "unavailable" }.into()),
            energy_unavailable_reason: jpf.is_none().then(|| "no powercap, here".into()),
            used_encoder: Some("ffmpeg/libx264".into()),
            error: None,
            idle: IdleFigures {
                baseline_watts: jpf.map(|_| 8.5),
                baseline_source: jpf.map(|_| "idle-windows".into()),
                idle_share: jpf.map(|_| 1.0),
                energy_above_idle_joules: jpf.map(|j| j * 30.0 - 4.25),
                energy_above_idle_note: jpf.is_none().then(|| "the run has no energy".into()),
            },
        }
    }

    #[test]
    fn results_are_read_back_by_the_compare_readers() {
        let runs = vec![
            run("720p-h264/2M/1s", 0, Some(0.25), "completed"),
            run("720p-h264/2M/1s", 1, None, "completed"),
            run("a,\"b\"", 2, None, "failed"),
        ];
        let mut csv = Vec::new();
        write_runs_csv(&mut csv, &runs).unwrap();
        let text = String::from_utf8(csv.clone()).unwrap();
        assert!(text.starts_with(RUNS_CSV_HEADER));
        assert!(text
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(",completed,j1,\"node, \"\"a\"\"\",12.5,rapl,,ffmpeg/libx264,,8.5,idle-windows,1,3.25,"));
        assert!(
            text.lines().nth(2).unwrap().ends_with(",,,,,the run has no energy"),
            "{text}"
        );
        let samples: Vec<RunSample> = runs.iter().map(|r| r.sample.clone()).collect();
        assert_eq!(stats::read_csv(&csv[..]).unwrap(), samples);
        let json = serde_json::to_vec(&runs).unwrap();
        assert_eq!(stats::read_json(&json[..]).unwrap(), samples);
        let back: Vec<BenchRun> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, runs);
    }
}
