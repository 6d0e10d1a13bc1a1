//! `ffrtmp bench run`: submits a matrix's warm-ups and repeats to a master, waits for them
//! with a deadline, and writes per-run results.
//!
//! Order: `warmup` rounds over every cell (waited for, not recorded), an idle window (nothing
//! submitted by us), `repeat` rounds over every cell in the rotated order of [`schedule`],
//! then a second idle window of the same length. By default ([`IdleLength::Auto`]) a window
//! lasts the mean wall time of the completed warm-up runs, so warm-up runs and idle windows
//! are of equal length. At most `parallel` runs are in flight at once (default 1, so runs do
//! not share a node's CPU or its energy meter).
//!
//! Idle windows are measured with the nodes' own energy meters through `GET /nodes` (see
//! [`super::idle`]); each run row gets its node's idle `baseline_watts` and the run's
//! `energy_above_idle_joules`.
//!
//! Files written into the output directory:
//! - `runs.json`: an array of [`BenchRun`]s. Each is a [`RunSample`] (the record
//!   [`ffrtmp_power::compare::read_json`] reads; its `scenario` is the cell's
//!   [`Cell::label`], its `run` the repeat number) plus the job's details;
//! - `runs.csv`: the same rows; the first columns are exactly those of
//!   [`ffrtmp_power::compare::write_csv`], so [`ffrtmp_power::compare::read_csv`] reads it
//!   (written by [`super::results`]);
//! - `meta.json`: [`RunMeta`]: the matrix, settings, timing, idle windows (per node joules
//!   and mean watts), baselines and counts.
//!
//! Runs that did not complete keep `frames`, `wall_s` and `fps` at 0 and no energy, so that
//! the comparison, which only uses positive values, leaves them out.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{BenchError, Context, Result};
use ffrtmp_core::{now_ms, Job, JobId, JobQuery, JobSpec, JobState, NodeId};
use ffrtmp_http::ApiClient;
use ffrtmp_power::compare::{Metric, RunSample};
use serde::{Deserialize, Serialize};

pub use super::idle::{IdleLength, IdleWindow};
pub use super::results::{write_results, write_runs_csv, ResultFiles, EXTRA_CSV_COLUMNS};

use super::baseline::{self, IdleFigures};
use super::idle::{self, NodeBaseline, SnapshotWait};
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
    /// Length of each idle window (before and after the recorded runs).
    pub idle_window: IdleLength,
    /// How long an idle window waits for a node's next power snapshot (heartbeat).
    pub snapshot_wait: Duration,
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
    /// Idle baseline of the node and the run's energy above it.
    #[serde(flatten, default)]
    pub idle: IdleFigures,
}

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
    /// Nominal length of each idle window, seconds (0: none). Each window's own elapsed time
    /// is its `elapsed_s`, and what each node's meter measured spans its `seconds`: up to one
    /// heartbeat interval longer (see [`super::idle`]).
    #[serde(default)]
    pub idle_window_s: f64,
    /// Where that length comes from (`mean wall time of 3 warm-up runs`, `given`, …).
    #[serde(default)]
    pub idle_window_basis: String,
    /// Idle windows, each of `idle_window_s`, with each node's measured span, energy and mean
    /// power over it, and its energy over the window's length.
    pub idle_windows: Vec<IdleWindow>,
    /// About the idle windows' energy: per window and node the joules and mean watts, or why
    /// they are missing.
    pub idle_energy: String,
    /// Per node, the idle power used for the runs' `baseline_watts`.
    #[serde(default)]
    pub baselines: Vec<NodeBaseline>,
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

/// Runs the benchmark. `progress` gets one line per event (submitted/finished runs, phases).
pub async fn run(
    api: &ApiClient,
    master: &str,
    matrix: &Matrix,
    config: &RunConfig,
    progress: &mut dyn FnMut(String),
) -> Result<Outcome> {
    let cells = matrix.cells()?;
    if config.idle_window == IdleLength::Auto && config.warmup == 0 {
        return Err(BenchError::invalid(
            "--idle-window auto takes the window's length from the warm-up runs: give --warmup 1 or more, \
             or a length such as --idle-window 10s (0s skips the windows)",
        ));
    }
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
    let warmups = schedule(cells.len(), config.warmup);
    if !warmups.is_empty() {
        progress(format!("warm-up: {} runs (not recorded)", warmups.len()));
    }
    let (warm, warm_expired) = execute(api, &cells, &specs, &warmups, config, deadline, "warm-up", progress).await?;
    let warmups_completed = warm.iter().flatten().filter(|j| j.state == JobState::Completed).count();
    let (window, basis) = window_length(config.idle_window, &warm);
    let wait = SnapshotWait {
        wait: config.snapshot_wait,
        poll: config.poll,
    };
    let mut idle_windows = Vec::new();
    if !window.is_zero() {
        idle_windows.push(idle::measure(api, "before", window, wait, progress).await);
    }

    let order = schedule(cells.len(), config.repeat);
    progress(format!(
        "measuring: {} cells x {} repeats = {} runs",
        cells.len(),
        config.repeat,
        order.len()
    ));
    let (jobs, expired) = execute(api, &cells, &specs, &order, config, deadline, "run", progress).await?;
    let deadline_passed = warm_expired || expired;
    if !window.is_zero() {
        idle_windows.push(idle::measure(api, "after", window, wait, progress).await);
    }

    // Without the node list the baselines cannot fall back to the agents' own idle power, and
    // rows show node ids: carry on with the runs' results, and say why in the meta.
    let (listed, nodes_error) = match api.nodes().await {
        Ok(nodes) => (nodes, None),
        Err(e) => {
            progress(format!("warning: GET /nodes failed after the runs: {e}"));
            (Vec::new(), Some(e.to_string()))
        }
    };
    let nodes: HashMap<NodeId, String> = listed.iter().map(|n| (n.id, n.registration.name.clone())).collect();
    let baselines = idle::baselines(&idle_windows, &listed);
    let runs: Vec<BenchRun> = order
        .iter()
        .zip(&jobs)
        .map(|(&(cell, repeat), job)| {
            let mut run = record(&cells[cell], repeat, job.as_ref(), &nodes);
            let node = job.as_ref().and_then(|j| j.node_id);
            let node_baseline = node.and_then(|id| baselines.iter().find(|b| b.node_id == id.to_string()));
            let cores = node
                .and_then(|id| listed.iter().find(|n| n.id == id))
                .map(baseline::split_cpus);
            run.idle = baseline::figures(job.as_ref(), node_baseline, cores, config.parallel);
            run
        })
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
        idle_window_s: window.as_secs_f64(),
        idle_energy: describe_idle(&idle_windows, &baselines, &basis, nodes_error.as_deref()),
        idle_window_basis: basis,
        idle_windows,
        baselines,
        warmups_completed,
        runs_completed,
        runs_not_completed: runs.len() - runs_completed,
        deadline_passed,
    };
    Ok(Outcome { runs, meta })
}

/// [`idle::describe`], with why the node list after the runs is missing when it is.
fn describe_idle(windows: &[IdleWindow], baselines: &[NodeBaseline], basis: &str, nodes_error: Option<&str>) -> String {
    let text = idle::describe(windows, baselines, basis);
    match nodes_error {
        None => text,
        Some(e) => format!(
            "{text} | GET /nodes after the runs failed, so no agent's own idle power, node name or core count \
             was read: {e}"
        ),
    }
}

/// The idle windows' length and where it comes from: given, or the mean wall time of the
/// completed warm-up runs (zero, with the reason, when none completed).
pub fn window_length(length: IdleLength, warmups: &[Option<Job>]) -> (Duration, String) {
    match length {
        IdleLength::Fixed(d) if d.is_zero() => (d, "--idle-window 0s: no idle windows".into()),
        IdleLength::Fixed(d) => (d, format!("given, {:.1} s", d.as_secs_f64())),
        IdleLength::Auto => {
            let walls: Vec<f64> = warmups
                .iter()
                .flatten()
                .filter(|j| j.state == JobState::Completed)
                .filter_map(|j| j.result.as_ref().map(|r| r.wall_s))
                .filter(|w| w.is_finite() && *w > 0.0)
                .collect();
            if walls.is_empty() {
                return (
                    Duration::ZERO,
                    "auto: no warm-up run completed, so the window has no length".into(),
                );
            }
            let mean = walls.iter().sum::<f64>() / walls.len() as f64;
            let Ok(length) = Duration::try_from_secs_f64(mean) else {
                return (
                    Duration::ZERO,
                    format!("auto: a mean warm-up wall time of {mean} s is not usable"),
                );
            };
            (
                length,
                format!(
                    "auto: the mean wall time of {} warm-up runs, {:.2} s",
                    walls.len(),
                    mean
                ),
            )
        }
    }
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
) -> Result<(Vec<Option<Job>>, bool)> {
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
        idle: IdleFigures::default(),
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
        "\n{} runs completed, {} not; results in {}\nidle: {}\n",
        m.runs_completed,
        m.runs_not_completed,
        dir.display(),
        m.idle_energy
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_windows_last_as_long_as_the_mean_warm_up_run() {
        let done = |wall_s: f64, state: JobState| {
            let mut j = Job {
                state,
                attempt: 1,
                ..Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
            };
            j.result = Some(ffrtmp_core::JobResult {
                wall_s,
                ..Default::default()
            });
            Some(j)
        };
        let warm = vec![
            done(2.0, JobState::Completed),
            done(4.0, JobState::Completed),
            done(100.0, JobState::Failed),
            None,
        ];
        let (d, basis) = window_length(IdleLength::Auto, &warm);
        assert_eq!(d, Duration::from_secs(3));
        assert!(basis.contains("mean wall time of 2 warm-up runs"), "{basis}");
        let (d, basis) = window_length(IdleLength::Auto, &[done(1.0, JobState::Failed)]);
        assert_eq!(d, Duration::ZERO);
        assert!(basis.contains("no warm-up run completed"), "{basis}");
        assert_eq!(
            window_length(IdleLength::Auto, &[done(1e300, JobState::Completed)]).0,
            Duration::ZERO
        );
        let given = Duration::from_millis(1500);
        assert_eq!(window_length(IdleLength::Fixed(given), &warm).0, given);
        assert_eq!(
            window_length(IdleLength::Fixed(Duration::ZERO), &warm).0,
            Duration::ZERO
        );
    }

    #[test]
    fn a_node_list_that_could_not_be_read_is_told_in_the_idle_note() {
        let ok = describe_idle(&[], &[], "--idle-window 0s", None);
        assert!(!ok.contains("GET /nodes"), "{ok}");
        let failed = describe_idle(&[], &[], "--idle-window 0s", Some("connection refused"));
        assert!(failed.starts_with(&ok), "{failed}");
        assert!(
            failed.ends_with("GET /nodes after the runs failed, so no agent's own idle power, node name or core count was read: connection refused"),
            "{failed}"
        );
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
