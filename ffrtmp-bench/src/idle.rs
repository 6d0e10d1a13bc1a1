//! Idle-baseline windows of `ffrtmp bench run`, and each node's idle power from them (the
//! per-run columns derived from it are in [`super::baseline`]).
//!
//! A window is measured with the nodes' own energy meters as the master last heard them:
//! every heartbeat carries a [`NodePower`] snapshot, which `GET /nodes` shows. A snapshot can
//! be up to one heartbeat interval old, so a window starts only once every metered node has
//! sent a newer snapshot (taken after the benchmark's previous activity ended), lasts the
//! window's length, and ends with the next newer snapshot of each node.
//!
//! What is measured, per node, is therefore its span between those two snapshots
//! ([`NodeIdle::seconds`], on the agent's monotonic clock): not the window's length, but that
//! plus the time from the first snapshot to the window's start (up to one poll of
//! `GET /nodes`) and from the window's end to the next heartbeat (up to one heartbeat
//! interval, 30 s by the agents' default), during all of which the benchmark submits nothing.
//! Spans differ between nodes and windows, so the figures compared are rates: a node's mean
//! power `Δenergy_joules / Δmeasured_s` over its span, and from it its energy over exactly the
//! window's length ([`NodeIdle::window_joules`] = mean power × [`IdleWindow::length_s`]). The
//! joules actually counted over the span are kept beside them ([`NodeIdle::joules`]).
//!
//! The idle baseline of a node is the mean power over its measured windows (without other
//! jobs on it), or, when there is none, the idle power its agent measured at start.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ffrtmp_core::{Node, NodeId, NodePower, NodeStatus};
use ffrtmp_http::ApiClient;
use serde::{Deserialize, Serialize};

use super::fmt_num;

/// How long each idle window lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IdleLength {
    /// The mean wall time of the completed warm-up runs, so that a warm-up run and an idle
    /// window are of equal length.
    Auto,
    /// A given length; zero skips the windows.
    Fixed(Duration),
}

impl IdleLength {
    /// Parses `auto` or a duration (`10s`, `500ms`, `0s`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ffrtmp_bench::idle::IdleLength;
    /// assert_eq!(IdleLength::parse("auto").unwrap(), IdleLength::Auto);
    /// assert_eq!(IdleLength::parse("2s").unwrap(), IdleLength::Fixed(Duration::from_secs(2)));
    /// assert!(IdleLength::parse("soon").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<IdleLength, String> {
        if text.trim().eq_ignore_ascii_case("auto") {
            return Ok(IdleLength::Auto);
        }
        crate::text::parse_duration(text)
            .map(IdleLength::Fixed)
            .map_err(|e| format!("{e}, or auto"))
    }
}

/// One node's energy over one idle window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeIdle {
    /// The node's id.
    pub node_id: String,
    /// The node's name.
    pub node: String,
    /// Its energy source (`rapl`, …), when it reports one.
    pub source: Option<String>,
    /// Joules counted between the window's two snapshots (over `seconds`, not over the
    /// window's length).
    pub joules: Option<f64>,
    /// The measured span: seconds between the two snapshots on the agent's monotonic clock,
    /// the window's length plus up to one poll and one heartbeat interval (see the module
    /// documentation).
    pub seconds: Option<f64>,
    /// `joules / seconds`: the node's mean power over its span.
    pub mean_watts: Option<f64>,
    /// `mean_watts` × the window's nominal length ([`IdleWindow::length_s`]): the node's idle
    /// energy over a window of exactly that length; absent in files written before it existed.
    #[serde(default)]
    pub window_joules: Option<f64>,
    /// Jobs the master had on the node at the window's start or end (not the benchmark's:
    /// other load). A window with jobs is recorded but not used as a baseline.
    pub jobs_seen: u32,
    /// Why there are no figures, when there are none.
    pub unavailable_reason: Option<String>,
}

/// An idle window: nothing was submitted by the benchmark during it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdleWindow {
    /// `before` or `after` the recorded runs.
    pub phase: String,
    /// Start, ms since the Unix epoch (once every metered node had a newer snapshot).
    pub start_ms: u64,
    /// End, ms since the Unix epoch (before waiting for the closing snapshots). Wall clock:
    /// use `elapsed_s` for the length.
    pub end_ms: u64,
    /// The window's nominal length, seconds (what was asked for).
    #[serde(default)]
    pub length_s: f64,
    /// Seconds from start to end on this process's monotonic clock, immune to wall-clock
    /// steps; `None` in files written before it existed.
    #[serde(default)]
    pub elapsed_s: Option<f64>,
    /// Sum of the nodes' `window_joules` (mean power × `length_s`); `None` when no node
    /// measured the window. The nodes' spans differ, so their counted `joules` are not summed.
    pub energy_joules: Option<f64>,
    /// Per online node at the window's start.
    #[serde(default)]
    pub nodes: Vec<NodeIdle>,
    /// About the window as a whole (e.g. the master's node list could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A node's idle power as used for the runs' `baseline_watts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeBaseline {
    /// The node's id.
    pub node_id: String,
    /// The node's name.
    pub node: String,
    /// Idle watts; `None` when neither the windows nor the agent measured it.
    pub watts: Option<f64>,
    /// `idle-windows` (mean over this benchmark's windows), `agent-idle-watts` (what the
    /// agent measured at its start), or `none`.
    pub source: String,
    /// Windows the figure comes from.
    pub windows: usize,
}

/// How long to wait for new snapshots, and how often to look.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotWait {
    /// Give up on a node that sent no new snapshot within this long.
    pub wait: Duration,
    /// How often `GET /nodes` is read meanwhile.
    pub poll: Duration,
}

/// Latest snapshots per node, and why a node has none.
type Fresh = (HashMap<NodeId, Node>, HashMap<NodeId, String>);

/// Reads `GET /nodes` until each of `ids` shows a snapshot newer than the one it showed at
/// the first read ([`NodePower::supersedes`]: a later heartbeat, not a delayed older one), or
/// the wait ends.
async fn fresh_snapshots(api: &ApiClient, ids: &[NodeId], wait: SnapshotWait) -> Result<Fresh, String> {
    let deadline = Instant::now() + wait.wait;
    let first = api.nodes().await.map_err(|e| format!("GET /nodes failed: {e}"))?;
    let before: HashMap<NodeId, Option<NodePower>> = first.into_iter().map(|n| (n.id, n.power)).collect();
    let mut fresh: HashMap<NodeId, Node> = HashMap::new();
    let mut last_error = None;
    while fresh.len() < ids.len() && Instant::now() < deadline {
        tokio::time::sleep(wait.poll).await;
        let nodes = match api.nodes().await {
            Ok(n) => n,
            // A blip is retried until the deadline.
            Err(e) => {
                last_error = Some(e.to_string());
                continue;
            }
        };
        for n in nodes {
            if is_newer(before.get(&n.id), n.power.as_ref()) && ids.contains(&n.id) {
                fresh.insert(n.id, n);
            }
        }
    }
    let secs = wait.wait.as_secs_f64();
    let missing = ids
        .iter()
        .filter(|id| !fresh.contains_key(id))
        .map(|id| {
            let why = match &last_error {
                Some(e) => format!("no new power snapshot within {secs:.0} s (last error: {e})"),
                None => format!("no new power snapshot (heartbeat) within {secs:.0} s"),
            };
            (*id, why)
        })
        .collect();
    Ok((fresh, missing))
}

/// Whether `now` is a newer snapshot than `first`, what the node showed at the first read
/// (`None`: not listed then; `Some(None)`: listed without a snapshot).
fn is_newer(first: Option<&Option<NodePower>>, now: Option<&NodePower>) -> bool {
    match (first, now) {
        (Some(Some(old)), Some(p)) => p.supersedes(old),
        (Some(None), Some(_)) => true,
        _ => false,
    }
}

/// Joules and seconds between two snapshots of one meter.
///
/// ```
/// use ffrtmp_bench::idle::span;
/// use ffrtmp_core::NodePower;
/// let a = NodePower { source: "rapl".into(), energy_joules: 100.0, measured_s: 10.0, watts: None,
///     idle_watts: None, counting_since_ms: 7, sampled_at_ms: 17_000, cpus: None };
/// let b = NodePower { energy_joules: 160.0, measured_s: 12.0, sampled_at_ms: 19_000, ..a.clone() };
/// assert_eq!(span(&a, &b), Ok((60.0, 2.0)));
/// let restarted = NodePower { counting_since_ms: 18_000, ..b };
/// assert!(span(&a, &restarted).unwrap_err().contains("restarted"));
/// ```
pub fn span(start: &NodePower, end: &NodePower) -> Result<(f64, f64), String> {
    if start.counting_since_ms != end.counting_since_ms {
        return Err("the agent restarted during the window (its energy count started again)".into());
    }
    if start.source != end.source {
        return Err(format!(
            "the energy source changed during the window ({} to {})",
            start.source, end.source
        ));
    }
    let joules = end.energy_joules - start.energy_joules;
    let seconds = end.measured_s - start.measured_s;
    // Written so that NaN fails too, and a span too short for its energy (infinite power).
    if !(joules.is_finite() && joules >= 0.0 && seconds.is_finite() && seconds > 0.0 && (joules / seconds).is_finite())
    {
        return Err(format!(
            "the meter did not move forward, or its figures are not usable ({joules:.3} J in {seconds:.3} s \
             between the snapshots)"
        ));
    }
    Ok((joules, seconds))
}

const NO_POWER: &str = "the node reports no power snapshot (energy unavailable there, or an agent too old to send one)";

/// Measures one idle window of `length` (see the module documentation). `progress` gets a
/// line when the window starts.
pub async fn measure(
    api: &ApiClient,
    phase: &str,
    length: Duration,
    wait: SnapshotWait,
    progress: &mut dyn FnMut(String),
) -> IdleWindow {
    let mut window = IdleWindow {
        phase: phase.to_string(),
        start_ms: 0,
        end_ms: 0,
        length_s: length.as_secs_f64(),
        elapsed_s: None,
        energy_joules: None,
        nodes: Vec::new(),
        note: None,
    };
    let online: Vec<Node> = match api.nodes().await {
        Ok(nodes) => nodes.into_iter().filter(|n| n.status == NodeStatus::Online).collect(),
        Err(e) => {
            window.note = Some(format!("GET /nodes failed, so no node energy was read: {e}"));
            Vec::new()
        }
    };
    let metered: Vec<NodeId> = online.iter().filter(|n| n.power.is_some()).map(|n| n.id).collect();
    let (starts, mut reasons) = if metered.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        progress(format!(
            "idle window {phase}: waiting for new power snapshots of {} nodes",
            metered.len()
        ));
        fresh_snapshots(api, &metered, wait).await.unwrap_or_else(|e| {
            let all = metered.iter().map(|id| (*id, e.clone())).collect();
            (HashMap::new(), all)
        })
    };
    progress(format!("idle window {phase} the runs: {:.1} s", length.as_secs_f64()));
    window.start_ms = ffrtmp_core::now_ms();
    let started_at = Instant::now();
    tokio::time::sleep(length).await;
    window.elapsed_s = Some(started_at.elapsed().as_secs_f64());
    window.end_ms = ffrtmp_core::now_ms();
    let started: Vec<NodeId> = starts.keys().copied().collect();
    let (ends, missing) = if started.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        fresh_snapshots(api, &started, wait).await.unwrap_or_else(|e| {
            let all = started.iter().map(|id| (*id, e.clone())).collect();
            (HashMap::new(), all)
        })
    };
    reasons.extend(missing);
    for n in &online {
        let mut idle = NodeIdle {
            node_id: n.id.to_string(),
            node: n.registration.name.clone(),
            source: n.power.as_ref().map(|p| p.source.clone()),
            ..NodeIdle::default()
        };
        let (s0, s1) = (starts.get(&n.id), ends.get(&n.id));
        idle.jobs_seen = [Some(n), s0, s1]
            .iter()
            .flatten()
            .map(|x| x.active_jobs)
            .max()
            .unwrap_or(0);
        match (s0.and_then(|x| x.power.as_ref()), s1.and_then(|x| x.power.as_ref())) {
            (Some(a), Some(b)) => match span(a, b) {
                Ok((joules, seconds)) => {
                    let watts = joules / seconds;
                    idle.joules = Some(joules);
                    idle.seconds = Some(seconds);
                    idle.mean_watts = Some(watts);
                    idle.window_joules = Some(watts * window.length_s);
                }
                Err(e) => idle.unavailable_reason = Some(e),
            },
            _ => {
                let why = reasons.get(&n.id).cloned();
                idle.unavailable_reason = Some(why.unwrap_or_else(|| NO_POWER.to_string()));
            }
        }
        window.nodes.push(idle);
    }
    let measured: Vec<f64> = window.nodes.iter().filter_map(|n| n.window_joules).collect();
    window.energy_joules = (!measured.is_empty()).then(|| measured.iter().sum());
    window
}

/// Per node: the mean power over its measured windows without other jobs, else its agent's
/// own idle power from `nodes` (the node list at the end of the benchmark).
pub fn baselines(windows: &[IdleWindow], nodes: &[Node]) -> Vec<NodeBaseline> {
    let mut ids: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.id.to_string(), n.registration.name.clone()))
        .collect();
    for n in windows.iter().flat_map(|w| &w.nodes) {
        if !ids.iter().any(|(id, _)| *id == n.node_id) {
            ids.push((n.node_id.clone(), n.node.clone()));
        }
    }
    ids.into_iter()
        .map(|(id, name)| {
            let usable: Vec<&NodeIdle> = windows
                .iter()
                .flat_map(|w| &w.nodes)
                .filter(|n| n.node_id == id && n.jobs_seen == 0 && n.joules.is_some() && n.seconds.is_some())
                .collect();
            let joules: f64 = usable.iter().filter_map(|n| n.joules).sum();
            let seconds: f64 = usable.iter().filter_map(|n| n.seconds).sum();
            let agent = nodes
                .iter()
                .find(|n| n.id.to_string() == id)
                .and_then(|n| n.power.as_ref())
                .and_then(|p| p.idle_watts);
            let (watts, source, count) = if seconds > 0.0 {
                (Some(joules / seconds), "idle-windows", usable.len())
            } else if agent.is_some() {
                (agent, "agent-idle-watts", 0)
            } else {
                (None, "none", 0)
            };
            NodeBaseline {
                node_id: id,
                node: name,
                watts,
                source: source.to_string(),
                windows: count,
            }
        })
        .collect()
}

/// A one-line account of the idle windows' energy for `meta.json` and the summary.
pub fn describe(windows: &[IdleWindow], baselines: &[NodeBaseline], basis: &str) -> String {
    if windows.is_empty() {
        let fallback: Vec<String> = baselines
            .iter()
            .filter_map(|b| b.watts.map(|w| format!("{} {} W", b.node, fmt_num(w))))
            .collect();
        return if fallback.is_empty() {
            format!("no idle windows ({basis}); no node reported its own idle power either")
        } else {
            format!(
                "no idle windows ({basis}); baseline from the agents' own idle power: {}",
                fallback.join(", ")
            )
        };
    }
    let mut parts = Vec::new();
    for w in windows {
        let nodes: Vec<String> = w
            .nodes
            .iter()
            .map(|n| match (n.mean_watts, n.joules, n.seconds) {
                (Some(watts), Some(j), Some(s)) => format!(
                    "{} {} W ({} J in a {} s span{}){}",
                    n.node,
                    fmt_num(watts),
                    fmt_num(j),
                    fmt_num(s),
                    n.window_joules
                        .map(|wj| format!(", {} J per window", fmt_num(wj)))
                        .unwrap_or_default(),
                    if n.jobs_seen > 0 {
                        " (other jobs ran: not idle)"
                    } else {
                        ""
                    }
                ),
                _ => format!(
                    "{} not measured: {}",
                    n.node,
                    n.unavailable_reason.as_deref().unwrap_or("unknown")
                ),
            })
            .collect();
        let body = match (&w.note, nodes.is_empty()) {
            (Some(note), _) => note.clone(),
            (None, true) => "no online node".to_string(),
            (None, false) => nodes.join("; "),
        };
        parts.push(format!("{} {} s window: {body}", w.phase, fmt_num(w.length_s)));
    }
    format!(
        "measured by the nodes' meters ({basis}; each node's mean power over its span between two heartbeat \
         snapshots, which is up to one heartbeat interval longer than the window): {}",
        parts.join(" | ")
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use ffrtmp_core::NodeRegistration;

    /// A RAPL snapshot that has counted `energy_joules` over `measured_s` since the agent's
    /// counting began at 1 ms; nothing else set.
    pub(crate) fn snapshot(energy_joules: f64, measured_s: f64) -> NodePower {
        NodePower {
            source: "rapl".into(),
            energy_joules,
            measured_s,
            watts: None,
            idle_watts: None,
            counting_since_ms: 1,
            sampled_at_ms: 1 + (measured_s * 1000.0) as u64,
            cpus: None,
        }
    }

    /// An online 4-core node, with a snapshot giving `idle_watts` when set.
    pub(crate) fn node(name: &str, idle_watts: Option<f64>) -> Node {
        Node {
            id: NodeId::new(),
            registration: NodeRegistration {
                name: name.into(),
                cpu_cores: 4,
                memory_mb: 1024,
                max_concurrent_jobs: 1,
                encoders: vec![],
                engines: vec![],
                version: String::new(),
                enforces_limits: false,
                quality_metrics: Vec::new(),
            },
            status: NodeStatus::Online,
            active_jobs: 0,
            registered_at_ms: 0,
            last_seen_ms: 0,
            power: idle_watts.map(|w| NodePower {
                idle_watts: Some(w),
                ..snapshot(0.0, 0.0)
            }),
        }
    }

    fn measured(n: &Node, joules: f64, seconds: f64, jobs_seen: u32) -> NodeIdle {
        NodeIdle {
            node_id: n.id.to_string(),
            node: n.registration.name.clone(),
            source: Some("rapl".into()),
            joules: Some(joules),
            seconds: Some(seconds),
            mean_watts: Some(joules / seconds),
            window_joules: Some(joules / seconds * 5.0),
            jobs_seen,
            unavailable_reason: None,
        }
    }

    fn window(phase: &str, nodes: Vec<NodeIdle>) -> IdleWindow {
        IdleWindow {
            phase: phase.into(),
            start_ms: 0,
            end_ms: 1000,
            length_s: 5.0,
            elapsed_s: Some(5.0),
            energy_joules: None,
            nodes,
            note: None,
        }
    }

    #[test]
    fn baselines_average_idle_windows_and_fall_back_to_the_agent() {
        let (a, b, c) = (node("a", Some(9.0)), node("b", Some(7.0)), node("c", None));
        let windows = vec![
            window("before", vec![measured(&a, 100.0, 10.0, 0), measured(&b, 50.0, 5.0, 2)]),
            window("after", vec![measured(&a, 60.0, 5.0, 0)]),
        ];
        let bl = baselines(&windows, &[a.clone(), b, c]);
        assert_eq!(bl.len(), 3);
        // Energy-weighted: 160 J over 15 s.
        assert_eq!(
            (bl[0].watts, bl[0].source.as_str(), bl[0].windows),
            (Some(160.0 / 15.0), "idle-windows", 2)
        );
        // b's only window had other jobs: the agent's own idle power is used instead.
        assert_eq!((bl[1].watts, bl[1].source.as_str()), (Some(7.0), "agent-idle-watts"));
        assert_eq!((bl[2].watts, bl[2].source.as_str()), (None, "none"));
        let text = describe(&windows, &bl, "given 1 s");
        assert!(
            text.contains("before 5.00 s window: a 10.00 W (100.0 J in a 10.00 s span, 50.00 J per window)"),
            "{text}"
        );
        assert!(text.contains("other jobs ran: not idle"), "{text}");
        let agents = baselines(&[], &[a]);
        assert_eq!(agents[0].source, "agent-idle-watts");
        let text = describe(&[], &agents, "--idle-window 0s");
        assert!(text.contains("agents' own idle power: a 9.00 W"), "{text}");
    }

    #[test]
    fn spans_refuse_meters_that_went_backwards() {
        let a = snapshot(10.0, 1.0);
        let back = NodePower {
            energy_joules: 5.0,
            measured_s: 2.0,
            ..a.clone()
        };
        assert!(span(&a, &back).unwrap_err().contains("did not move forward"));
        assert!(span(&a, &a).is_err(), "no time between the snapshots");
        let other = NodePower {
            source: "nvml".into(),
            measured_s: 2.0,
            ..a.clone()
        };
        assert!(span(&a, &other).unwrap_err().contains("source changed"));
    }

    #[test]
    fn spans_refuse_figures_that_are_not_numbers_or_give_infinite_power() {
        let a = snapshot(10.0, 1.0);
        let later = |energy_joules: f64, measured_s: f64| NodePower {
            energy_joules,
            measured_s,
            ..a.clone()
        };
        for (j, s) in [
            (f64::NAN, 2.0),
            (20.0, f64::NAN),
            (f64::INFINITY, 2.0),
            (20.0, f64::INFINITY),
            // A finite energy over a span so short that the mean power is infinite.
            (1e300, 1.0 + f64::EPSILON),
        ] {
            let e = span(&a, &later(j, s)).unwrap_err();
            assert!(e.contains("did not move forward"), "{j} J, {s} s: {e}");
        }
        assert_eq!(span(&a, &later(30.0, 3.0)), Ok((20.0, 2.0)));
    }

    #[test]
    fn only_newer_snapshots_open_or_close_a_window() {
        let at = |measured_s: f64| snapshot(measured_s * 10.0, measured_s);
        assert!(is_newer(Some(&Some(at(1.0))), Some(&at(2.0))));
        assert!(!is_newer(Some(&Some(at(2.0))), Some(&at(1.0))), "an older, delayed one");
        assert!(!is_newer(Some(&Some(at(2.0))), Some(&at(2.0))), "the same");
        assert!(is_newer(Some(&None), Some(&at(1.0))), "a first snapshot");
        assert!(!is_newer(Some(&Some(at(1.0))), None), "none now");
        assert!(!is_newer(None, Some(&at(1.0))), "not listed at the first read");
    }
}
