//! `ffrtmp nodes efficiency`: median J/frame, fps and quality per (node, encoder, scenario)
//! from the master's job history (the definition is in `ffrtmp_core::efficiency`).

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;
use ffrtmp_core::efficiency::{EfficiencyRow, EfficiencyTable};
use ffrtmp_http::ApiClient;

use crate::cli::{print_json, table};

/// Arguments of `ffrtmp nodes efficiency`.
#[derive(Args, Debug)]
pub struct EfficiencyArgs {
    /// How far back to look: e.g. 24h, 7d, 90m.
    #[arg(long, default_value = "24h", value_parser = ffrtmp_core::sla::parse_window)]
    pub window: Duration,
}

/// Runs `ffrtmp nodes efficiency` against the master.
pub async fn run(api: &ApiClient, args: &EfficiencyArgs, json: bool) -> anyhow::Result<()> {
    let report = api.efficiency(args.window).await?;
    if json {
        return print_json(&report);
    }
    // Names make the table readable; a node gone from the list keeps its id.
    let names: HashMap<String, String> = api
        .nodes()
        .await?
        .into_iter()
        .map(|n| (n.id.to_string(), n.registration.name))
        .collect();
    table(
        &[
            "NODE",
            "ENCODER",
            "SCENARIO",
            "JOBS",
            "FPS",
            "J/FRAME",
            "J/FRAME EST",
            "QUALITY",
        ],
        rows(&report, &names),
    );
    if report.rows.iter().any(|r| r.estimated_samples > 0) {
        println!("J/FRAME EST: estimated from a node's power model, not measured");
    }
    if report.rows.iter().any(|r| {
        r.quality
            .values()
            .any(|q| q.per_joule.is_some() || q.estimated_per_joule.is_some())
    }) {
        println!("QUALITY /J: median score per joule of the encode (/J-est: from estimated energy)");
    }
    Ok(())
}

fn figure(v: Option<f64>, samples: u64, digits: usize) -> String {
    match v {
        Some(v) => format!("{v:.digits$} (n={samples})"),
        None => "-".into(),
    }
}

fn row(r: &EfficiencyRow, names: &HashMap<String, String>) -> Vec<String> {
    let quality: Vec<String> = r
        .quality
        .iter()
        .map(|(metric, q)| {
            let mut cell = format!("{metric}={:.3} (n={})", q.median, q.samples);
            if let Some(v) = q.per_joule {
                cell.push_str(&format!(" {v:.4}/J"));
            }
            if let Some(v) = q.estimated_per_joule {
                cell.push_str(&format!(" {v:.4}/J-est"));
            }
            cell
        })
        .collect();
    vec![
        names.get(&r.node_id).cloned().unwrap_or_else(|| r.node_id.clone()),
        r.encoder.clone(),
        r.scenario.clone(),
        r.samples.to_string(),
        r.median_fps.map_or_else(|| "-".into(), |f| format!("{f:.1}")),
        figure(r.joules_per_frame, r.energy_samples, 4),
        figure(r.estimated_joules_per_frame, r.estimated_samples, 4),
        if quality.is_empty() {
            "-".into()
        } else {
            quality.join(" ")
        },
    ]
}

/// The table: one line per (node, encoder, scenario), medians with their sample counts.
pub fn rows(report: &EfficiencyTable, names: &HashMap<String, String>) -> Vec<Vec<String>> {
    report.rows.iter().map(|r| row(r, names)).collect()
}
