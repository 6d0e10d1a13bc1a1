//! The text view of a [`PlacementReport`].

use std::collections::BTreeMap;

use super::stats::{ChangeCi, MeanCi};
use super::PlacementReport;
use crate::{fmt_num, fmt_pct, text_table};

fn mean_ci(m: &MeanCi) -> String {
    if m.n > 1 {
        format!("{} [{}, {}]", fmt_num(m.mean), fmt_num(m.low), fmt_num(m.high))
    } else {
        fmt_num(m.mean)
    }
}

fn change_ci(c: &ChangeCi) -> String {
    if c.low < c.high {
        format!("{} [{}, {}]", fmt_pct(c.change), fmt_pct(c.low), fmt_pct(c.high))
    } else {
        fmt_pct(c.change)
    }
}

fn per_node(counts: &BTreeMap<String, usize>) -> String {
    counts
        .iter()
        .map(|(n, c)| format!("{n}={c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The report as text: the set-up, the simulated-power note, one row per run, one per policy
/// (means with 95 % intervals), and each policy's change against the first with the verdict.
pub fn render_text(r: &PlacementReport) -> String {
    let nodes: Vec<String> = r
        .nodes
        .iter()
        .map(|(n, w)| {
            format!(
                "{n} {} W busy / {} W idle",
                fmt_num(w.busy_watts),
                fmt_num(w.idle_watts)
            )
        })
        .collect();
    let capacity = match r.capacity_jobs_per_s {
        Some(c) => format!("capacity {} jobs/s measured, ", fmt_num(c)),
        None => String::new(),
    };
    let mut out = format!(
        "placement bench: {} nodes ({}), {} jobs arriving at {:.0}% of capacity ({capacity}one every {} s on average), seed {}, {} repeat(s) per policy\n",
        r.nodes.len(),
        nodes.join(", "),
        r.jobs,
        r.load * 100.0,
        fmt_num(r.mean_gap_s),
        r.seed,
        r.repeats,
    );
    out.push_str(&format!("NOTE: {}\n\n", r.note));
    let runs = r
        .runs
        .iter()
        .map(|run| {
            vec![
                run.policy.clone(),
                run.repeat.to_string(),
                fmt_num(run.joules),
                fmt_num(run.makespan_s),
                run.completed.to_string(),
                run.failed.to_string(),
                per_node(&run.jobs_per_node),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &[
            "POLICY",
            "REPEAT",
            "JOULES",
            "MAKESPAN_S",
            "COMPLETED",
            "FAILED",
            "JOBS PER NODE",
        ],
        runs,
    ));
    out.push('\n');
    let policies = r
        .policies
        .iter()
        .map(|p| {
            vec![
                p.policy.clone(),
                mean_ci(&p.joules),
                mean_ci(&p.makespan_s),
                per_node(&p.jobs_per_node),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &[
            "POLICY",
            "JOULES (mean [95% CI])",
            "MAKESPAN_S (mean [95% CI])",
            "JOBS PER NODE (all runs)",
        ],
        policies,
    ));
    for c in &r.changes {
        let verdict = match (c.goal_met, c.goal_met_with_confidence) {
            (true, true) => "met (at 95% confidence)",
            (true, false) => "met by the means, not at 95% confidence",
            (false, _) => "NOT met",
        };
        out.push_str(&format!(
            "\n{} vs {}: joules {}, makespan {}\ngoal ({}): {verdict}\n",
            c.policy,
            c.baseline,
            change_ci(&c.joules),
            change_ci(&c.makespan),
            r.goal
        ));
    }
    let without: usize = r.runs.iter().map(|x| x.without_energy).sum();
    if without > 0 {
        out.push_str(&format!(
            "warning: {without} completed job(s) reported no energy; their joules are missing from the totals\n"
        ));
    }
    out
}
