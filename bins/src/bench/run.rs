//! `ffrtmp bench run`: submits a matrix's warm-ups and repeats to a master, waits for them
//! with a deadline, and writes per-run results.
//!
//! Order: an idle window (nothing submitted by us), `warmup` rounds over every cell (waited
//! for, not recorded), `repeat` rounds over every cell in the rotated order of
//! [`schedule`], then a second idle window of the same length. At most `parallel` runs are in
//! flight at once (default 1, so runs do not share a node's CPU or its energy meter).
//!
//! Files written into the output directory:
//! - `runs.json`: an array of [`BenchRun`]s. Each is a [`RunSample`] (the record
//!   [`ffrtmp_power::compare::read_json`] reads; its `scenario` is the cell's
//!   [`Cell::label`], its `run` the repeat number) plus the job's details;
//! - `runs.csv`: the same rows; the first columns are exactly those of
//!   [`ffrtmp_power::compare::write_csv`], so [`ffrtmp_power::compare::read_csv`] reads it;
//! - `meta.json`: [`RunMeta`]: the matrix, settings, timing, idle windows and counts.
//!
//! Runs that did not complete keep `frames`, `wall_s` and `fps` at 0 and no energy, so that
//! the comparison, which only uses positive values, leaves them out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use ffrtmp_core::{Job, JobId, JobQuery, JobSpec, JobState, NodeId};
use ffrtmp_http::ApiClient;
use ffrtmp_power::compare::{self as stats, Metric, RunSample, RUNS_CSV_HEADER};
use serde::{Deserialize, Serialize};

use super::matrix::{engine_name, schedule, Cell, Matrix};
use super::report::summarize;
use super::{fmt_num, text_table};

/// Settings of one benchmark.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Recorded runs per cell.
    pub repeat: u32,
    /// Unrecorded warm-up runs per cell, before the recorded ones.
    pub warmup: u32,
    /// Length of each idle window (before and after the runs); zero skips them.
    pub idle_window: Duration,
    /// Most runs in flight at once.
    pub parallel: usize,
    /// Deadline for the whole benchmark; runs still unfinished then are canceled.
    pub timeout: Duration,
    /// How often in-flight jobs are polled.
    pub poll: Duration,
}

/// One recorded run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchRun {
    /// What `ffrtmp bench compare` reads: scenario (the cell label), run (the repeat),
    /// frames, wall_s, fps, energy_joules, joules_per_frame.
    #[serde(flatten)]
    pub sample: RunSample,
    /// The scenario submitted.
    pub job_scenario: String,
    /// Bitrate asked for.
    pub bitrate: Option<String>,
    /// Encoder asked for.
    pub encoder: Option<String>,
    /// Engine asked for.
    pub engine: Option<String>,
    /// Seconds of video asked for.
    pub duration_s: Option<f64>,
    /// Final state of the job (`completed`, `failed`, …; `not_submitted` when the deadline
    /// passed first).
    pub state: String,
    /// The job.
    pub job_id: Option<String>,
    /// Name of the node that ran it (its id when the node is no longer listed).
    pub node: Option<String>,
    /// Mean power over the run, watts.
    pub avg_watts: Option<f64>,
    /// Energy source (`rapl`, `unavailable`, …).
    pub energy_source: Option<String>,
    /// Why energy is missing, when it is.
    pub energy_unavailable_reason: Option<String>,
    /// Engine and encoder the node used, e.g. `ffmpeg/libx264`.
    pub used_encoder: Option<String>,
    /// The job's last error.
    pub error: Option<String>,
}

/// An idle window: nothing was submitted by the benchmark during it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleWindow {
    /// `before` or `after` the runs.
    pub phase: String,
    /// Start, ms since the Unix epoch.
    pub start_ms: u64,
    /// End, ms since the Unix epoch.
    pub end_ms: u64,
    /// Its energy; always `None` for now (see [`IDLE_ENERGY_NOTE`]).
    pub energy_joules: Option<f64>,
}

/// Why idle windows carry no energy.
pub const IDLE_ENERGY_NOTE: &str = "not measured: the master has no API for a node's energy outside jobs yet, so the \
     idle windows are recorded (start/end) but their energy is not; read the nodes' RAPL counters over these \
     windows to get the idle baseline";

/// The metadata of a benchmark (`meta.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// The master's URL.
    pub master: String,
    /// The matrix as given.
    pub matrix: Matrix,
    /// Cell labels, in matrix order.
    pub cells: Vec<String>,
    /// Recorded runs per cell.
    pub repeat: u32,
    /// Warm-up runs per cell.
    pub warmup: u32,
    /// Most runs in flight.
    pub parallel: usize,
    /// Start, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// End, ms since the Unix epoch.
    pub finished_at_ms: u64,
    /// Jobs assigned or running on the master when the benchmark started (other load).
    pub busy_jobs_at_start: usize,
    /// Idle windows, equal in length.
    pub idle_windows: Vec<IdleWindow>,
    /// About the idle windows' energy.
    pub idle_energy: String,
    /// Warm-ups that completed.
    pub warmups_completed: usize,
    /// Recorded runs that completed.
    pub runs_completed: usize,
    /// Recorded runs that did not complete.
    pub runs_not_completed: usize,
    /// Whether the deadline passed before every run finished.
    pub deadline_passed: bool,
}

/// What a benchmark produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Recorded runs, in submission order.
    pub runs: Vec<BenchRun>,
    /// The metadata.
    pub meta: RunMeta,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the benchmark. `progress` gets one line per event (submitted/finished runs, phases).
pub async fn run(
    api: &ApiClient,
    master: &str,
    matrix: &Matrix,
    config: &RunConfig,
    progress: &mut dyn FnMut(String),
) -> anyhow::Result<Outcome> {
    let cells = matrix.cells()?;
    let specs: Vec<JobSpec> = cells.iter().map(|c| c.spec(matrix)).collect();
    let started_at_ms = now_ms();
    let deadline = Instant::now() + config.timeout;
    let mut busy_jobs_at_start = 0;
    for state in [JobState::Assigned, JobState::Running] {
        let query = JobQuery {
            state: Some(state),
            limit: Some(100),
            ..JobQuery::default()
        };
        busy_jobs_at_start += api.list(&query).await.context("listing busy jobs")?.jobs.len();
    }
    if busy_jobs_at_start > 0 {
        progress(format!(
            "warning: {busy_jobs_at_start} jobs already assigned or running: they share the nodes with the benchmark"
        ));
    }
    let mut idle_windows = Vec::new();
    idle(config.idle_window, "before", &mut idle_windows, progress).await;

    let warmups = schedule(cells.len(), config.warmup);
    if !warmups.is_empty() {
        progress(format!("warm-up: {} runs (not recorded)", warmups.len()));
    }
    let (warm, warm_expired) = execute(api, &cells, &specs, &warmups, config, deadline, "warm-up", progress).await?;
    let warmups_completed = warm.iter().flatten().filter(|j| j.state == JobState::Completed).count();

    let order = schedule(cells.len(), config.repeat);
    progress(format!(
        "measuring: {} cells x {} repeats = {} runs",
        cells.len(),
        config.repeat,
        order.len()
    ));
    let (jobs, expired) = execute(api, &cells, &specs, &order, config, deadline, "run", progress).await?;
    let deadline_passed = warm_expired || expired;
    idle(config.idle_window, "after", &mut idle_windows, progress).await;

    let nodes: HashMap<NodeId, String> = api
        .nodes()
        .await
        .map(|ns| ns.into_iter().map(|n| (n.id, n.registration.name)).collect())
        .unwrap_or_default();
    let runs: Vec<BenchRun> = order
        .iter()
        .zip(&jobs)
        .map(|(&(cell, repeat), job)| record(&cells[cell], repeat, job.as_ref(), &nodes))
        .collect();
    let runs_completed = runs.iter().filter(|r| r.state == JobState::Completed.as_str()).count();
    let meta = RunMeta {
        master: master.to_string(),
        matrix: matrix.clone(),
        cells: cells.iter().map(Cell::label).collect(),
        repeat: config.repeat,
        warmup: config.warmup,
        parallel: config.parallel,
        started_at_ms,
        finished_at_ms: now_ms(),
        busy_jobs_at_start,
        idle_windows,
        idle_energy: IDLE_ENERGY_NOTE.to_string(),
        warmups_completed,
        runs_completed,
        runs_not_completed: runs.len() - runs_completed,
        deadline_passed,
    };
    Ok(Outcome { runs, meta })
}

async fn idle(window: Duration, phase: &str, windows: &mut Vec<IdleWindow>, progress: &mut dyn FnMut(String)) {
    if window.is_zero() {
        return;
    }
    progress(format!("idle window {phase} the runs: {:.1} s", window.as_secs_f64()));
    let start_ms = now_ms();
    tokio::time::sleep(window).await;
    windows.push(IdleWindow {
        phase: phase.to_string(),
        start_ms,
        end_ms: now_ms(),
        energy_joules: None,
    });
}

/// Submits `order` with at most `config.parallel` in flight and returns each run's final job
/// (`None` when the deadline passed before it was submitted), and whether the deadline
/// passed. At the deadline, runs in flight are canceled.
#[allow(clippy::too_many_arguments)]
async fn execute(
    api: &ApiClient,
    cells: &[Cell],
    specs: &[JobSpec],
    order: &[(usize, u32)],
    config: &RunConfig,
    deadline: Instant,
    what: &str,
    progress: &mut dyn FnMut(String),
) -> anyhow::Result<(Vec<Option<Job>>, bool)> {
    let mut done: Vec<Option<Job>> = vec![None; order.len()];
    let mut in_flight: Vec<(usize, JobId)> = Vec::new();
    let mut next = 0;
    let parallel = config.parallel.max(1);
    while next < order.len() || !in_flight.is_empty() {
        let expired = Instant::now() >= deadline;
        while !expired && in_flight.len() < parallel && next < order.len() {
            let (cell, round) = order[next];
            let job = api
                .submit(&specs[cell])
                .await
                .with_context(|| format!("submitting {}", cells[cell].label()))?;
            progress(format!(
                "{what} {} #{round}: submitted job {}",
                cells[cell].label(),
                job.id
            ));
            in_flight.push((next, job.id));
            next += 1;
        }
        if expired {
            for &(slot, id) in &in_flight {
                let _ = api
                    .cancel_with_reason(id, Some("ffrtmp bench run: deadline passed"))
                    .await;
                // A job that cannot be read now is left out of the results, not the whole run.
                match api.get(id).await {
                    Ok(job) => done[slot] = Some(job),
                    Err(e) => progress(format!("job {id}: could not read its final state: {e}")),
                }
            }
            progress(format!(
                "deadline passed: {} runs canceled, {} not submitted",
                in_flight.len(),
                order.len() - next
            ));
            return Ok((done, true));
        }
        tokio::time::sleep(config.poll).await;
        let mut still = Vec::new();
        for (slot, id) in in_flight {
            // A read that fails (after the client's own retries) is tried again next poll:
            // one blip must not throw away the runs already finished.
            let job = match api.get(id).await {
                Ok(job) => job,
                Err(e) => {
                    progress(format!("job {id}: could not read its state, retrying: {e}"));
                    still.push((slot, id));
                    continue;
                }
            };
            if job.state.is_terminal() {
                let (cell, round) = order[slot];
                progress(format!(
                    "{what} {} #{round}: {}{}",
                    cells[cell].label(),
                    job.state,
                    summary(&job)
                ));
                done[slot] = Some(job);
            } else {
                still.push((slot, id));
            }
        }
        in_flight = still;
    }
    Ok((done, false))
}

fn summary(job: &Job) -> String {
    match &job.result {
        Some(r) if job.state == JobState::Completed => format!(
            " ({} frames, {:.2} s, {:.1} fps{})",
            r.frames,
            r.wall_s,
            r.avg_fps,
            r.energy
                .joules_per_frame
                .map(|j| format!(", {j:.4} J/frame"))
                .unwrap_or_default()
        ),
        _ => job
            .error
            .as_ref()
            .map(|e| format!(" ({:?}: {})", e.kind, e.message))
            .unwrap_or_default(),
    }
}

/// The recorded form of one run.
pub fn record(cell: &Cell, repeat: u32, job: Option<&Job>, nodes: &HashMap<NodeId, String>) -> BenchRun {
    let label = cell.label();
    let completed = job.filter(|j| j.state == JobState::Completed);
    let result = completed.and_then(|j| j.result.as_ref());
    let sample = match result {
        Some(r) => RunSample::from_result(label, repeat, r),
        None => RunSample {
            scenario: label,
            run: repeat,
            ..RunSample::default()
        },
    };
    let energy = job.and_then(|j| j.result.as_ref()).map(|r| &r.energy);
    BenchRun {
        sample,
        job_scenario: cell.scenario.clone(),
        bitrate: cell.bitrate.clone(),
        encoder: cell.encoder.clone(),
        engine: cell.engine.map(|e| engine_name(e).to_string()),
        duration_s: cell.duration_s,
        state: job.map_or("not_submitted", |j| j.state.as_str()).to_string(),
        job_id: job.map(|j| j.id.to_string()),
        node: job
            .and_then(|j| j.node_id)
            .map(|id| nodes.get(&id).cloned().unwrap_or_else(|| id.to_string())),
        avg_watts: energy.and_then(|e| e.avg_watts),
        energy_source: energy.map(|e| e.source.clone()),
        energy_unavailable_reason: energy.and_then(|e| e.unavailable_reason.clone()),
        used_encoder: job.and_then(|j| j.result.as_ref()).map(|r| r.encoder.clone()),
        error: job
            .and_then(|j| j.error.as_ref())
            .map(|e| format!("{:?}: {}", e.kind, e.message)),
    }
}

/// A text summary of a benchmark: per cell the completed runs and the median [min..max] of
/// fps, wall time and joules per frame, then the counts and where the files are.
pub fn render_summary(outcome: &Outcome, dir: &Path) -> String {
    let samples: Vec<RunSample> = outcome.runs.iter().map(|r| r.sample.clone()).collect();
    let rows = summarize(&samples)
        .iter()
        .map(|s| {
            let stat = |metric| match s.stat(metric) {
                Some(st) => format!("{} [{}..{}]", fmt_num(st.median), fmt_num(st.min), fmt_num(st.max)),
                None if metric == Metric::JoulesPerFrame => "unavailable".into(),
                None => "-".into(),
            };
            let done = outcome
                .runs
                .iter()
                .filter(|r| r.sample.scenario == s.scenario && r.state == JobState::Completed.as_str())
                .count();
            vec![
                s.scenario.clone(),
                format!("{done}/{}", s.runs),
                stat(Metric::Fps),
                stat(Metric::WallS),
                stat(Metric::JoulesPerFrame),
            ]
        })
        .collect();
    let m = &outcome.meta;
    let mut out = text_table(&["CELL", "DONE", "FPS MEDIAN [MIN..MAX]", "WALL S", "J/FRAME"], rows);
    out.push_str(&format!(
        "\n{} runs completed, {} not; {} idle windows (energy not measured); results in {}\n",
        m.runs_completed,
        m.runs_not_completed,
        m.idle_windows.len(),
        dir.display()
    ));
    out
}

/// Extra CSV columns after those of [`RUNS_CSV_HEADER`].
pub const EXTRA_CSV_COLUMNS: &str = "job_scenario,bitrate,encoder,engine,duration_s,state,job_id,node,avg_watts,\
energy_source,energy_unavailable_reason,used_encoder,error";

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
pub fn write_results(dir: &Path, outcome: &Outcome) -> anyhow::Result<ResultFiles> {
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
            .ends_with(",completed,j1,\"node, \"\"a\"\"\",12.5,rapl,,ffmpeg/libx264,"));
        let samples: Vec<RunSample> = runs.iter().map(|r| r.sample.clone()).collect();
        assert_eq!(stats::read_csv(&csv[..]).unwrap(), samples);
        let json = serde_json::to_vec(&runs).unwrap();
        assert_eq!(stats::read_json(&json[..]).unwrap(), samples);
        let back: Vec<BenchRun> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, runs);
    }

    #[test]
    fn unfinished_runs_have_no_figures() {
        let cell = Cell {
            scenario: "720p-h264".into(),
            bitrate: None,
            encoder: None,
            engine: None,
            duration_s: Some(1.0),
        };
        let r = record(&cell, 3, None, &HashMap::new());
        assert_eq!(r.state, "not_submitted");
        assert_eq!(r.sample.scenario, "720p-h264/1s");
        assert_eq!(r.sample.run, 3);
        assert_eq!((r.sample.frames, r.sample.fps, r.sample.wall_s), (0, 0.0, 0.0));
        assert_eq!(r.sample.joules_per_frame, None);
    }
}
