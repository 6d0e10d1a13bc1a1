//! `ffrtmp sla`: SLA compliance from the master's job history, per classification and queue
//! (the definition is in `ffrtmp_core::sla`).

use std::time::Duration;

use clap::Args;
use ffrtmp_core::sla::{SlaFigures, SlaReport};
use ffrtmp_http::ApiClient;

use crate::cli::{print_json, table};

/// Arguments of `ffrtmp sla`.
#[derive(Args, Debug)]
pub struct SlaArgs {
    /// How far back to look: e.g. 24h, 7d, 90m.
    #[arg(long, default_value = "24h", value_parser = ffrtmp_core::sla::parse_window)]
    pub window: Duration,
}

/// Runs `ffrtmp sla` against the master.
pub async fn run(api: &ApiClient, args: &SlaArgs, json: bool) -> anyhow::Result<()> {
    let report = api.sla(args.window).await?;
    if json {
        return print_json(&report);
    }
    table(
        &["GROUP", "MET", "MISSED", "EXCLUDED", "COMPLIANCE", "MISSED BY"],
        rows(&report),
    );
    Ok(())
}

fn row(group: String, f: &SlaFigures) -> Vec<String> {
    let reasons: Vec<String> = f.missed_by_reason.iter().map(|(k, v)| format!("{k}={v}")).collect();
    vec![
        group,
        f.met.to_string(),
        f.missed.to_string(),
        f.excluded.to_string(),
        f.compliance_percent.map_or_else(|| "-".into(), |p| format!("{p:.1}%")),
        if reasons.is_empty() {
            "-".into()
        } else {
            reasons.join(" ")
        },
    ]
}

/// The table: every classification, every queue, then the total.
pub fn rows(report: &SlaReport) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = report
        .by_classification
        .iter()
        .map(|(c, f)| row(format!("classification={c}"), f))
        .collect();
    rows.extend(report.by_queue.iter().map(|(q, f)| row(format!("queue={q}"), f)));
    rows.push(row("all".into(), &report.total));
    rows
}
