//! The placement bench behind `ffrtmp bench placement`: does a placement policy save energy,
//! and what does it cost in makespan?
//!
//! Each run starts a real master with the policy under test and one real agent per simulated
//! node on this machine. Every agent reads its own powercap tree ([`powercap`]), whose counter
//! this bench advances at that node's wattage while the master shows the node holding a job,
//! so the nodes differ in power although they share one CPU. A warm-up (not counted) starts
//! every run: rounds of one job per node and scenario at once, until the master's efficiency
//! table holds enough energy samples of every node and scenario (what the energy-aware policy
//! needs before it steers), and the first round measures the farm's capacity. Then the
//! same seeded stream of short synthetic encodes ([`stream`]) arrives at a fraction of that
//! capacity, and the run's figures are the sum of the jobs' attributed joules (their energy
//! reports) and the makespan (first submission to last completion, by the master's clock).
//! Policies alternate run by run; means and changes carry 95 % intervals ([`stats`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{Job, JobId, JobSpec, JobState};
use ffrtmp_http::ApiClient;

use crate::error::{BenchError, Context, Result};

pub mod farm;
pub mod powercap;
pub mod stats;
pub mod stream;

mod render;

pub use powercap::Wattage;
pub use render::render_text;
use stats::{ChangeCi, MeanCi};

/// What the output says about the power figures, in so many words.
pub const SIMULATED_NOTE: &str =
    "power figures are simulated: each agent's powercap counters are advanced by this bench at a fixed wattage";
/// The goal: at least this much less energy (a relative change)…
pub const GOAL_JOULES_CHANGE: f64 = -0.25;
/// …at most this much longer makespan.
pub const GOAL_MAKESPAN_CHANGE: f64 = 0.10;
/// How often the master is asked which nodes hold a job.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Most time one job may take, on top of the stream's own length, before a run gives up.
const PER_JOB_TIMEOUT: Duration = Duration::from_secs(30);
/// Most warm-up rounds one run runs.
const MAX_WARMUP_ROUNDS: usize = 6;

/// What to run.
#[derive(Clone, Debug)]
pub struct PlacementConfig {
    /// Directory holding `ffrtmp-master` and `ffrtmp-agent`.
    pub bin_dir: PathBuf,
    /// Policies to compare (`--placement` values); the first is the baseline.
    pub policies: Vec<String>,
    /// `--placement-max-wait` of every master, when given.
    pub max_wait: Option<String>,
    /// Jobs in the stream.
    pub jobs: usize,
    /// Runs per policy.
    pub repeats: usize,
    /// Seed of the stream.
    pub seed: u64,
    /// Arrival rate as a fraction of the farm's capacity.
    pub load: f64,
    /// One simulated node per entry.
    pub nodes: Vec<Wattage>,
    /// The mean gap between arrivals; measured from the capacity when `None`.
    pub mean_gap: Option<Duration>,
    /// `max_energy_range_uj` of the simulated counters.
    pub range_uj: u64,
    /// Energy samples of every (node, scenario) the warm-up gathers before the stream (at
    /// most 6 rounds); 3 is what the energy-aware policy needs by default.
    pub warmup_samples: u64,
}

impl PlacementConfig {
    /// Three nodes drawing 15, 30 and 60 W busy (a tenth of that idle), 30 jobs at half the
    /// capacity, 3 repeats of `default` against `energy-aware`.
    pub fn new(bin_dir: PathBuf) -> PlacementConfig {
        PlacementConfig {
            bin_dir,
            policies: vec!["default".into(), "energy-aware".into()],
            max_wait: None,
            jobs: 30,
            repeats: 3,
            seed: 1,
            load: 0.5,
            nodes: [15.0, 30.0, 60.0].map(busy_watts).to_vec(),
            mean_gap: None,
            range_uj: powercap::RAPL_RANGE_UJ,
            warmup_samples: 3,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |why: &str| Err(BenchError::invalid(why.to_string()));
        if self.policies.is_empty() {
            return bad("no policy to run: give --policies, e.g. default,energy-aware");
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(p) = self.policies.iter().find(|p| !seen.insert(p.as_str())) {
            return Err(BenchError::invalid(format!(
                "policy {p:?} is given twice in --policies"
            )));
        }
        if self.jobs == 0 || self.repeats == 0 {
            return bad("--jobs and --repeats must be at least 1");
        }
        if self.nodes.is_empty() {
            return bad("no node: give --watts, e.g. 15,30,60");
        }
        if !(self.load > 0.0 && self.load.is_finite()) {
            return bad("--load must be a positive fraction of the capacity, e.g. 0.5");
        }
        Ok(())
    }
}

/// A node drawing `watts` busy and a tenth of that idle.
pub fn busy_watts(watts: f64) -> Wattage {
    Wattage {
        busy_watts: watts,
        idle_watts: watts / 10.0,
    }
}

/// The name of simulated node `i` drawing `w`.
fn node_name(i: usize, w: &Wattage) -> String {
    format!("node{}-{}w", i + 1, w.busy_watts)
}

/// One run of one policy.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunOutcome {
    /// The policy.
    pub policy: String,
    /// Repeat number, from 1.
    pub repeat: usize,
    /// Sum of the stream's jobs' attributed joules.
    pub joules: f64,
    /// First submission to last completion, seconds.
    pub makespan_s: f64,
    /// Stream jobs completed.
    pub completed: usize,
    /// Stream jobs that did not complete (failed, canceled, rejected).
    pub failed: usize,
    /// Completed jobs whose report carries no joules.
    pub without_energy: usize,
    /// Stream jobs each node ran, by node name.
    pub jobs_per_node: BTreeMap<String, usize>,
    /// Attributed joules of the stream jobs each node ran, by node name.
    pub joules_per_node: BTreeMap<String, f64>,
    /// Joules each node's counter advanced by over the whole run (idle and warm-up included).
    pub simulated_joules: BTreeMap<String, f64>,
}

/// Every run of one policy, summarised.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PolicySummary {
    /// The policy.
    pub policy: String,
    /// Total attributed joules per run.
    pub joules: MeanCi,
    /// Makespan per run, seconds.
    pub makespan_s: MeanCi,
    /// Stream jobs per node over all runs.
    pub jobs_per_node: BTreeMap<String, usize>,
    /// Stream jobs that did not complete, over all runs.
    pub failed: usize,
}

/// A policy against the baseline (the first policy).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PolicyChange {
    /// The policy.
    pub policy: String,
    /// The baseline it is compared with.
    pub baseline: String,
    /// Relative change of the mean total joules.
    pub joules: ChangeCi,
    /// Relative change of the mean makespan.
    pub makespan: ChangeCi,
    /// Whether the means meet the goal ([`GOAL_JOULES_CHANGE`], [`GOAL_MAKESPAN_CHANGE`]).
    pub goal_met: bool,
    /// Whether the whole intervals meet it (the goal holds at 95 % confidence).
    pub goal_met_with_confidence: bool,
}

/// The whole bench.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PlacementReport {
    /// [`SIMULATED_NOTE`].
    pub note: String,
    /// The goal, in words.
    pub goal: String,
    /// The simulated nodes, by name.
    pub nodes: BTreeMap<String, Wattage>,
    /// Jobs in the stream.
    pub jobs: usize,
    /// Runs per policy.
    pub repeats: usize,
    /// Seed of the stream.
    pub seed: u64,
    /// Arrival rate as a fraction of the capacity.
    pub load: f64,
    /// The farm's measured capacity (jobs/s), when it was measured.
    pub capacity_jobs_per_s: Option<f64>,
    /// Mean gap between arrivals, seconds.
    pub mean_gap_s: f64,
    /// The stream every run submitted.
    pub stream: Vec<stream::Arrival>,
    /// Every run, in the order run.
    pub runs: Vec<RunOutcome>,
    /// One per policy, in the order given.
    pub policies: Vec<PolicySummary>,
    /// Every policy after the first against the first.
    pub changes: Vec<PolicyChange>,
}

/// Runs the bench in `dir` (a scratch directory), telling `progress` what it is doing.
pub async fn run(cfg: &PlacementConfig, dir: &Path, progress: &dyn Fn(&str)) -> Result<PlacementReport> {
    cfg.check()?;
    // The workloads run as the agents' workload user, which must reach its output directories.
    set_mode(dir, 0o755)?;
    let names: Vec<String> = cfg.nodes.iter().enumerate().map(|(i, w)| node_name(i, w)).collect();
    let mut capacity = None;
    let mut arrivals = cfg.mean_gap.map(|gap| stream::schedule(cfg.jobs, gap, cfg.seed));
    let mut runs = Vec::new();
    for repeat in 1..=cfg.repeats {
        for policy in &cfg.policies {
            progress(&format!("run {}: {policy}, repeat {repeat}", runs.len() + 1));
            let run_dir = dir.join(format!("run-{}", runs.len() + 1));
            std::fs::create_dir_all(&run_dir).context("creating a run directory")?;
            set_mode(&run_dir, 0o755)?;
            let mut run = Run::start(cfg, policy, &run_dir, &names).await?;
            let (batch, took, rounds, fewest) = run.warm_up(cfg.warmup_samples).await?;
            progress(&format!(
                "  warm-up: {rounds} round(s); fewest energy samples of a node and scenario: {fewest}"
            ));
            let stream = match &arrivals {
                Some(a) => a.clone(),
                None => {
                    let cap = batch as f64 / took.as_secs_f64();
                    capacity = Some(cap);
                    let gap = stream::mean_gap(cap, cfg.load);
                    progress(&format!(
                        "capacity {cap:.2} jobs/s ({batch} jobs at once took {:.1} s): one job every {:.2} s on average",
                        took.as_secs_f64(),
                        gap.as_secs_f64()
                    ));
                    arrivals.insert(stream::schedule(cfg.jobs, gap, cfg.seed)).clone()
                }
            };
            let outcome = run.stream(&stream, policy, repeat).await?;
            progress(&format!(
                "  {:.1} J attributed, makespan {:.1} s, jobs per node {:?}",
                outcome.joules, outcome.makespan_s, outcome.jobs_per_node
            ));
            runs.push(outcome);
        }
    }
    let arrivals = arrivals.unwrap_or_default();
    let mean_gap_s = cfg
        .mean_gap
        .map(|g| g.as_secs_f64())
        .unwrap_or_else(|| capacity.map_or(0.0, |c| stream::mean_gap(c, cfg.load).as_secs_f64()));
    let (policies, changes) = summarise(&cfg.policies, &runs);
    Ok(PlacementReport {
        note: SIMULATED_NOTE.into(),
        goal: format!(
            "at least {:.0}% fewer joules at most {:.0}% longer makespan than {}",
            -GOAL_JOULES_CHANGE * 100.0,
            GOAL_MAKESPAN_CHANGE * 100.0,
            cfg.policies[0]
        ),
        nodes: names.iter().cloned().zip(cfg.nodes.iter().copied()).collect(),
        jobs: cfg.jobs,
        repeats: cfg.repeats,
        seed: cfg.seed,
        load: cfg.load,
        capacity_jobs_per_s: capacity,
        mean_gap_s,
        stream: arrivals,
        runs,
        policies,
        changes,
    })
}

fn set_mode(dir: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// Per-policy summaries and the changes against the first policy.
pub fn summarise(policies: &[String], runs: &[RunOutcome]) -> (Vec<PolicySummary>, Vec<PolicyChange>) {
    let figures = |policy: &str, f: fn(&RunOutcome) -> f64| -> Vec<f64> {
        runs.iter().filter(|r| r.policy == policy).map(f).collect()
    };
    let mut summaries = Vec::new();
    for policy in policies {
        let (Some(joules), Some(makespan_s)) = (
            stats::mean_ci(&figures(policy, |r| r.joules)),
            stats::mean_ci(&figures(policy, |r| r.makespan_s)),
        ) else {
            continue;
        };
        let mut jobs_per_node = BTreeMap::new();
        for r in runs.iter().filter(|r| &r.policy == policy) {
            for (node, n) in &r.jobs_per_node {
                *jobs_per_node.entry(node.clone()).or_insert(0) += n;
            }
        }
        let failed = runs.iter().filter(|r| &r.policy == policy).map(|r| r.failed).sum();
        summaries.push(PolicySummary {
            policy: policy.clone(),
            joules,
            makespan_s,
            jobs_per_node,
            failed,
        });
    }
    let mut changes = Vec::new();
    let Some(base) = policies.first() else {
        return (summaries, changes);
    };
    for policy in &policies[1..] {
        let joules = stats::change_ci(&figures(base, |r| r.joules), &figures(policy, |r| r.joules));
        let makespan = stats::change_ci(&figures(base, |r| r.makespan_s), &figures(policy, |r| r.makespan_s));
        if let (Some(joules), Some(makespan)) = (joules, makespan) {
            changes.push(PolicyChange {
                policy: policy.clone(),
                baseline: base.clone(),
                joules,
                makespan,
                goal_met: joules.change <= GOAL_JOULES_CHANGE && makespan.change <= GOAL_MAKESPAN_CHANGE,
                goal_met_with_confidence: joules.high <= GOAL_JOULES_CHANGE && makespan.high <= GOAL_MAKESPAN_CHANGE,
            });
        }
    }
    (summaries, changes)
}

/// One policy's farm while it runs: the simulated power, the master's view of who is busy
/// feeding it, and the farm itself.
struct Run {
    farm: farm::Farm,
    api: Arc<ApiClient>,
    power: Option<Arc<powercap::SimulatedPower>>,
    watching: Arc<AtomicBool>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    names: Vec<String>,
    node_names: BTreeMap<String, String>,
}

impl Run {
    async fn start(cfg: &PlacementConfig, policy: &str, dir: &Path, names: &[String]) -> Result<Run> {
        let roots: Vec<PathBuf> = names.iter().map(|n| dir.join(format!("powercap-{n}"))).collect();
        let root_refs: Vec<&Path> = roots.iter().map(PathBuf::as_path).collect();
        // The trees exist before the agents start: an agent reads its tree once at start-up.
        let power = Arc::new(powercap::SimulatedPower::start(&root_refs, &cfg.nodes, cfg.range_uj)?);
        let spec = farm::FarmSpec {
            bin_dir: cfg.bin_dir.clone(),
            policy: policy.to_string(),
            max_wait: cfg.max_wait.clone(),
        };
        let farm = farm::Farm::start(&spec, dir, names, &roots)
            .await
            .with_context(|| format!("starting the farm of policy {policy}"))?;
        let api = Arc::new(farm.api.clone());
        // Node id → index, from the names the agents registered with.
        let mut index = BTreeMap::new();
        let mut node_names = BTreeMap::new();
        for node in api.nodes().await? {
            if let Some(i) = names.iter().position(|n| *n == node.registration.name) {
                index.insert(node.id.to_string(), i);
                node_names.insert(node.id.to_string(), names[i].clone());
            }
        }
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = tokio::spawn(watch_busy(api.clone(), power.clone(), index, watching.clone()));
        Ok(Run {
            farm,
            api,
            power: Some(power),
            watching,
            watcher: Some(watcher),
            names: names.to_vec(),
            node_names,
        })
    }

    /// Rounds of one job per node and scenario at once, until every node has `samples`
    /// energy samples of every scenario in the master's efficiency table (at least one
    /// round; later rounds only of the scenarios still lacking). The first round's size and duration, the rounds run and the fewest samples.
    async fn warm_up(&mut self, samples: u64) -> Result<(usize, Duration, usize, u64)> {
        let mut first = None;
        let mut round = 0;
        let mut lacking: Vec<&str> = stream::SCENARIOS.to_vec();
        loop {
            round += 1;
            let start = Instant::now();
            let mut ids = Vec::new();
            for _ in &self.names {
                for scenario in &lacking {
                    // The stream's mean length, so the first round measures the capacity the
                    // stream is paced against.
                    ids.push(self.submit(stream::spec(scenario, stream::MEAN_DURATION_S)).await?);
                }
            }
            let jobs = self.wait_all(&ids, PER_JOB_TIMEOUT * ids.len() as u32).await?;
            if let Some(j) = jobs.iter().find(|j| j.state != JobState::Completed) {
                return Err(BenchError::invalid(format!(
                    "warm-up job {} ended {:?}: {:?}",
                    j.id, j.state, j.error
                )));
            }
            let (n, took) = *first.get_or_insert((ids.len(), start.elapsed()));
            let mut fewest: Vec<(&str, u64)> = stream::SCENARIOS.iter().map(|s| (*s, 0)).collect();
            for (scenario, count) in &mut fewest {
                *count = self.fewest_samples(scenario).await?;
            }
            lacking = fewest.iter().filter(|(_, n)| *n < samples).map(|(s, _)| *s).collect();
            if round >= MAX_WARMUP_ROUNDS || lacking.is_empty() {
                let least = fewest.iter().map(|(_, n)| *n).min().unwrap_or(0);
                return Ok((n, took, round, least));
            }
        }
    }

    /// The fewest energy samples any node has of `scenario` in the master's efficiency table.
    async fn fewest_samples(&self, scenario: &str) -> Result<u64> {
        let table = self.api.efficiency(Duration::from_secs(3600)).await?;
        let count = |node: &String, scenario: &str| -> u64 {
            table
                .rows
                .iter()
                .filter(|r| r.node_id == *node && r.scenario == scenario)
                .map(|r| r.energy_samples)
                .sum()
        };
        Ok(self
            .node_names
            .keys()
            .map(|node| count(node, scenario))
            .min()
            .unwrap_or(0))
    }

    async fn submit(&self, spec: JobSpec) -> Result<JobId> {
        Ok(self.api.submit(&spec).await.context("submitting a job")?.id)
    }

    /// Submits the stream at its offsets, waits for every job and stops the simulation.
    async fn stream(&mut self, arrivals: &[stream::Arrival], policy: &str, repeat: usize) -> Result<RunOutcome> {
        let start = tokio::time::Instant::now();
        let mut ids = Vec::with_capacity(arrivals.len());
        for a in arrivals {
            tokio::time::sleep_until(start + a.at).await;
            ids.push(self.submit(a.spec()).await?);
        }
        let jobs = self.wait_all(&ids, PER_JOB_TIMEOUT * ids.len() as u32).await?;
        self.watching.store(false, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            let _ = w.await;
        }
        let totals = match self.power.take().map(Arc::try_unwrap) {
            Some(Ok(power)) => power.stop(),
            _ => Vec::new(),
        };
        Ok(outcome(policy, repeat, &jobs, &self.node_names, &self.names, &totals))
    }

    /// Waits until every job in `ids` has ended; the jobs.
    async fn wait_all(&mut self, ids: &[JobId], within: Duration) -> Result<Vec<Job>> {
        let deadline = Instant::now() + within;
        let mut done: BTreeMap<JobId, Job> = BTreeMap::new();
        loop {
            for id in ids
                .iter()
                .filter(|id| !done.contains_key(id))
                .copied()
                .collect::<Vec<_>>()
            {
                let job = self.api.get(id).await.context("reading a job")?;
                if job.state.is_terminal() {
                    done.insert(id, job);
                }
            }
            if done.len() == ids.len() {
                return Ok(ids.iter().filter_map(|id| done.remove(id)).collect());
            }
            self.farm.check_alive()?;
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "{} of {} jobs had not ended within {within:?}",
                    ids.len() - done.len(),
                    ids.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // A run that failed half-way still stops its watcher, and with it the simulation.
        self.watching.store(false, Ordering::Relaxed);
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// Keeps each node's simulated power busy while the master shows it holding a job.
async fn watch_busy(
    api: Arc<ApiClient>,
    power: Arc<powercap::SimulatedPower>,
    index: BTreeMap<String, usize>,
    watching: Arc<AtomicBool>,
) {
    while watching.load(Ordering::Relaxed) {
        // A failed read keeps the last state; the next tick tries again.
        if let Ok(nodes) = api.nodes().await {
            for node in nodes {
                if let Some(i) = index.get(&node.id.to_string()) {
                    power.set_busy(*i, node.active_jobs > 0);
                }
            }
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// The figures of one run from its stream's jobs.
fn outcome(
    policy: &str,
    repeat: usize,
    jobs: &[Job],
    node_names: &BTreeMap<String, String>,
    names: &[String],
    totals: &[f64],
) -> RunOutcome {
    let completed: Vec<&Job> = jobs.iter().filter(|j| j.state == JobState::Completed).collect();
    let energy = |j: &Job| j.result.as_ref().and_then(|r| r.energy.energy_joules);
    let mut jobs_per_node: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 0)).collect();
    let mut joules_per_node: BTreeMap<String, f64> = names.iter().map(|n| (n.clone(), 0.0)).collect();
    for j in &completed {
        let node = j.node_id.map(|n| n.to_string()).unwrap_or_default();
        let name = node_names.get(&node).cloned().unwrap_or(node);
        *jobs_per_node.entry(name.clone()).or_insert(0) += 1;
        *joules_per_node.entry(name).or_insert(0.0) += energy(j).unwrap_or(0.0);
    }
    let first = jobs.iter().map(|j| j.created_at_ms).min().unwrap_or(0);
    let last = jobs.iter().map(|j| j.updated_at_ms).max().unwrap_or(first);
    RunOutcome {
        policy: policy.to_string(),
        repeat,
        joules: completed.iter().filter_map(|j| energy(j)).sum(),
        makespan_s: last.saturating_sub(first) as f64 / 1000.0,
        completed: completed.len(),
        failed: jobs.len() - completed.len(),
        without_energy: completed.iter().filter(|j| energy(j).is_none()).count(),
        jobs_per_node,
        joules_per_node,
        simulated_joules: names.iter().cloned().zip(totals.iter().copied()).collect(),
    }
}

#[cfg(test)]
mod tests;
