//! The idle-baseline columns of each `ffrtmp bench run` row: the node's idle power
//! ([`NodeBaseline`]) and the run's energy above it.

use ffrtmp_core::{EnergyReport, Job, JobState, Node};
use serde::{Deserialize, Serialize};

use super::fmt_num;
use super::idle::NodeBaseline;

/// The idle-baseline columns of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdleFigures {
    /// The node's idle watts (see [`NodeBaseline`]).
    pub baseline_watts: Option<f64>,
    /// Where `baseline_watts` comes from: `idle-windows` or `agent-idle-watts`.
    pub baseline_source: Option<String>,
    /// The part of the node's idle power that the run's energy figure contains (see
    /// [`idle_share`]).
    pub idle_share: Option<f64>,
    /// `max(0, cpu_energy − baseline_watts × wall_s × idle_share)`, with `cpu_energy` the
    /// run's CPU package + DRAM joules ([`cpu_energy`]): the baseline is the node's CPU (RAPL)
    /// idle power, so GPU energy is left out of both sides.
    pub energy_above_idle_joules: Option<f64>,
    /// Why `energy_above_idle_joules` is empty, when it is, or that it was clamped to 0 (the
    /// run's energy was below its share of the baseline: a baseline measured higher than the
    /// run's own idle part, or noise).
    pub energy_above_idle_note: Option<String>,
}

/// The share of the node's idle power contained in a job's energy figure:
///
/// - `whole-node` attribution (all of the node's energy over the job's wall time): 1 when
///   runs did not overlap (`parallel` = 1); with overlapping runs each was charged all of the
///   node's energy, so the share is unknown and the column stays empty;
/// - `cgroup-cpu-share` attribution (each sampling interval's energy split by CPU time, the
///   rest going to "other"): the job's fraction of the machine's CPU time,
///   `cpu_s / (wall_s × cores)` with `cores` the CPUs the split is over ([`split_cpus`]),
///   because the idle power was split the same way. This holds at
///   any parallelism.
///
/// ```
/// use ffrtmp_bench::baseline::idle_share;
/// assert_eq!(idle_share(Some("whole-node"), 1, None, 10.0, None), Ok(1.0));
/// assert!(idle_share(Some("whole-node"), 2, None, 10.0, None).is_err());
/// // 5 CPU seconds in 10 s on 4 cores: an eighth of the machine.
/// assert_eq!(idle_share(Some("cgroup-cpu-share"), 3, Some(5.0), 10.0, Some(4)), Ok(0.125));
/// ```
pub fn idle_share(
    attribution: Option<&str>,
    parallel: usize,
    cpu_s: Option<f64>,
    wall_s: f64,
    cores: Option<u32>,
) -> Result<f64, String> {
    match attribution {
        Some("whole-node") if parallel <= 1 => Ok(1.0),
        Some("whole-node") => Err(format!(
            "whole-node energy with --parallel {parallel}: overlapping runs were each charged all of the \
             node's energy, so the idle share of each is unknown"
        )),
        Some("cgroup-cpu-share") => {
            let cpu = cpu_s.ok_or("the job's CPU time was not reported")?;
            let cores = cores.filter(|&c| c > 0).ok_or("the node's core count is unknown")?;
            if !(wall_s > 0.0 && cpu.is_finite() && cpu >= 0.0) {
                return Err("the job's wall or CPU time is not usable".into());
            }
            Ok((cpu / (wall_s * f64::from(cores))).min(1.0))
        }
        Some(other) => Err(format!("unknown energy attribution {other:?}")),
        None => Err("the energy report names no attribution".into()),
    }
}

/// The CPUs a node's energy split is over, for [`idle_share`]'s `cores`: what its power
/// snapshot says ([`ffrtmp_core::NodePower::cpus`]) when it does, else its registered
/// `cpu_cores` (agents that do not say).
pub fn split_cpus(node: &Node) -> u32 {
    node.power
        .as_ref()
        .and_then(|p| p.cpus)
        .unwrap_or(node.registration.cpu_cores)
}

/// The part of a run's energy that the node's idle baseline (CPU package + DRAM, from RAPL) can
/// be subtracted from: `cpu_joules + dram_joules` when the report splits them out, else the total
/// when it holds no GPU energy. A total that includes GPU joules without a CPU split gives an
/// error, as subtracting a CPU-only baseline from it would mix the two.
///
/// ```
/// use ffrtmp_core::EnergyReport;
/// use ffrtmp_bench::baseline::cpu_energy;
/// let split = EnergyReport { energy_joules: Some(100.0), cpu_joules: Some(30.0), dram_joules: Some(10.0),
///     gpu_joules: Some(60.0), ..Default::default() };
/// assert_eq!(cpu_energy(&split), Ok(40.0));
/// let whole_node = EnergyReport { energy_joules: Some(50.0), ..Default::default() };
/// assert_eq!(cpu_energy(&whole_node), Ok(50.0));
/// ```
pub fn cpu_energy(energy: &EnergyReport) -> Result<f64, String> {
    match (
        energy.cpu_joules,
        energy.dram_joules,
        energy.energy_joules,
        energy.gpu_joules,
    ) {
        (Some(cpu), dram, _, _) => Ok(cpu + dram.unwrap_or(0.0)),
        (None, _, Some(total), None) => Ok(total),
        (None, _, Some(_), Some(_)) => Err(
            "the run's energy includes GPU energy without a CPU/DRAM split, and the idle baseline is CPU (RAPL) \
             only"
                .into(),
        ),
        (None, _, None, _) => Err("the run has no energy".into()),
    }
}

/// `max(0, energy − baseline_watts × wall_s × share)`.
///
/// ```
/// assert_eq!(ffrtmp_bench::baseline::above_idle(100.0, 8.0, 5.0, 1.0), 60.0);
/// assert_eq!(ffrtmp_bench::baseline::above_idle(10.0, 8.0, 5.0, 1.0), 0.0);
/// ```
pub fn above_idle(energy_joules: f64, baseline_watts: f64, wall_s: f64, share: f64) -> f64 {
    (energy_joules - baseline_watts * wall_s * share).max(0.0)
}

/// The idle-baseline columns of one run: `job` as it ended, the baseline of the node that
/// ran it, that node's core count, and the benchmark's parallelism.
pub fn figures(job: Option<&Job>, baseline: Option<&NodeBaseline>, cores: Option<u32>, parallel: usize) -> IdleFigures {
    let mut f = IdleFigures {
        baseline_watts: baseline.and_then(|b| b.watts),
        baseline_source: baseline.filter(|b| b.watts.is_some()).map(|b| b.source.clone()),
        ..IdleFigures::default()
    };
    let result = job
        .filter(|j| j.state == JobState::Completed)
        .and_then(|j| j.result.as_ref());
    let Some(r) = result else {
        f.energy_above_idle_note = Some("the run did not complete".into());
        return f;
    };
    // The baseline is the node's CPU (RAPL) idle power: subtract it from CPU energy only.
    let energy = match cpu_energy(&r.energy) {
        Ok(joules) => joules,
        Err(e) => {
            f.energy_above_idle_note = Some(e);
            return f;
        }
    };
    let cpu_s = match (r.user_s, r.sys_s) {
        (Some(u), Some(s)) => Some(u + s),
        (u, s) => u.or(s),
    };
    // The CPU side's method decides the share (`cgroup-cpu-share+nvml-…` → `cgroup-cpu-share`).
    let cpu_method = r
        .energy
        .attribution
        .as_deref()
        .map(|a| a.split('+').next().unwrap_or(a));
    match idle_share(cpu_method, parallel, cpu_s, r.wall_s, cores) {
        Ok(share) => {
            f.idle_share = Some(share);
            match f.baseline_watts {
                Some(w) => {
                    let idle = w * r.wall_s * share;
                    f.energy_above_idle_joules = Some(above_idle(energy, w, r.wall_s, share));
                    if energy < idle {
                        f.energy_above_idle_note = Some(format!(
                            "clamped to 0: the run's {} J is below its share of the idle baseline, {} W × {} s × {} = \
                             {} J",
                            fmt_num(energy),
                            fmt_num(w),
                            fmt_num(r.wall_s),
                            fmt_num(share),
                            fmt_num(idle)
                        ));
                    }
                }
                None => f.energy_above_idle_note = Some("no idle baseline for the node".into()),
            }
        }
        Err(e) => f.energy_above_idle_note = Some(e),
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idle::tests::{node, snapshot};
    use ffrtmp_core::{JobId, JobResult, JobSpec};

    fn job(attribution: &str, energy: Option<f64>, wall_s: f64, cpu: Option<(f64, f64)>) -> Job {
        Job {
            state: JobState::Completed,
            attempt: 1,
            result: Some(JobResult {
                frames: 30,
                wall_s,
                user_s: cpu.map(|c| c.0),
                sys_s: cpu.map(|c| c.1),
                energy: EnergyReport {
                    source: "rapl".into(),
                    energy_joules: energy,
                    attribution: Some(attribution.into()),
                    ..EnergyReport::default()
                },
                ..JobResult::default()
            }),
            ..Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
        }
    }

    fn baseline(watts: f64) -> NodeBaseline {
        NodeBaseline {
            node_id: "n".into(),
            node: "n".into(),
            watts: Some(watts),
            source: "idle-windows".into(),
            windows: 2,
        }
    }

    #[test]
    fn energy_above_idle_subtracts_the_idle_share_the_figure_contains() {
        // Whole node, one run at a time: 200 J in 10 s over a 12 W idle node.
        let f = figures(
            Some(&job("whole-node", Some(200.0), 10.0, None)),
            Some(&baseline(12.0)),
            Some(4),
            1,
        );
        assert_eq!(f.idle_share, Some(1.0));
        assert_eq!(f.energy_above_idle_joules, Some(80.0));
        assert_eq!(f.energy_above_idle_note, None);
        assert_eq!(f.baseline_source.as_deref(), Some("idle-windows"));
        // Overlapping whole-node runs: left empty, with the reason.
        let f = figures(
            Some(&job("whole-node", Some(200.0), 10.0, None)),
            Some(&baseline(12.0)),
            Some(4),
            2,
        );
        assert_eq!((f.idle_share, f.energy_above_idle_joules), (None, None));
        assert!(f.energy_above_idle_note.unwrap().contains("--parallel 2"));
        // CPU share: 8 + 2 CPU seconds over 10 s on 4 cores is a quarter of the machine,
        // so 12 W × 10 s × 0.25 = 30 J of the 50 J are idle power.
        let f = figures(
            Some(&job("cgroup-cpu-share", Some(50.0), 10.0, Some((8.0, 2.0)))),
            Some(&baseline(12.0)),
            Some(4),
            3,
        );
        assert_eq!(f.idle_share, Some(0.25));
        assert_eq!(f.energy_above_idle_joules, Some(20.0));
        // Never negative.
        let f = figures(
            Some(&job("whole-node", Some(50.0), 10.0, None)),
            Some(&baseline(12.0)),
            Some(4),
            1,
        );
        assert_eq!(f.energy_above_idle_joules, Some(0.0));
        let note = f.energy_above_idle_note.unwrap();
        assert!(
            note.starts_with("clamped to 0: the run's 50.00 J is below") && note.contains("= 120.0 J"),
            "{note}"
        );
    }

    #[test]
    fn the_split_is_over_the_cpus_the_snapshot_names_else_the_registered_cores() {
        let mut node = node("n", None);
        assert_eq!(split_cpus(&node), 4, "no snapshot");
        let mut power = snapshot(0.0, 0.0);
        node.power = Some(power.clone());
        assert_eq!(split_cpus(&node), 4, "an agent that does not say");
        power.cpus = Some(16);
        node.power = Some(power);
        assert_eq!(split_cpus(&node), 16);
    }

    #[test]
    fn gpu_energy_is_not_set_against_the_cpu_only_idle_baseline() {
        // 100 J in all: 30 J package, 10 J DRAM, 60 J GPU; a quarter of a 12 W idle node's
        // 10 s (30 J) comes off the 40 J of CPU energy, not off the total.
        let mut run = job(
            "cgroup-cpu-share+nvml-process-utilization",
            Some(100.0),
            10.0,
            Some((8.0, 2.0)),
        );
        let energy = &mut run.result.as_mut().unwrap().energy;
        energy.cpu_joules = Some(30.0);
        energy.dram_joules = Some(10.0);
        energy.gpu_joules = Some(60.0);
        let f = figures(Some(&run), Some(&baseline(12.0)), Some(4), 1);
        assert_eq!(f.energy_above_idle_joules, Some(10.0), "{f:?}");
        // GPU joules in the total and no CPU split: left empty, with why.
        let energy = &mut run.result.as_mut().unwrap().energy;
        energy.cpu_joules = None;
        energy.dram_joules = None;
        let f = figures(Some(&run), Some(&baseline(12.0)), Some(4), 1);
        assert_eq!(f.energy_above_idle_joules, None);
        assert!(f.energy_above_idle_note.unwrap().contains("CPU (RAPL) only"));
    }

    #[test]
    fn missing_inputs_leave_the_column_empty_with_a_reason() {
        let note = |f: IdleFigures| f.energy_above_idle_note.unwrap();
        assert!(note(figures(None, Some(&baseline(1.0)), Some(4), 1)).contains("did not complete"));
        let no_energy = job("whole-node", None, 10.0, None);
        assert!(note(figures(Some(&no_energy), Some(&baseline(1.0)), Some(4), 1)).contains("no energy"));
        let whole = job("whole-node", Some(5.0), 10.0, None);
        let f = figures(Some(&whole), None, Some(4), 1);
        assert_eq!(f.baseline_watts, None);
        assert!(note(f).contains("no idle baseline"));
        let shared = job("cgroup-cpu-share", Some(5.0), 10.0, None);
        assert!(note(figures(Some(&shared), Some(&baseline(1.0)), Some(4), 1)).contains("CPU time"));
        let shared = job("cgroup-cpu-share", Some(5.0), 10.0, Some((1.0, 0.0)));
        assert!(note(figures(Some(&shared), Some(&baseline(1.0)), None, 1)).contains("core count"));
    }
}
