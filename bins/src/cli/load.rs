//! `ffrtmp bench load`: runs the control-plane load test and prints its figures.

use anyhow::Context;

use crate::cli::{print_json, table};
use crate::load::{self, LoadConfig};

/// Runs the load test in a scratch directory and prints the result (a table, or JSON).
pub async fn run(config: LoadConfig, json: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let r = load::run(config, dir.path()).await?;
    if json {
        return print_json(&r);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "load: {} jobs, {} agents, {} submitting clients, durable={}, {cores} cores",
        r.jobs, r.agents, r.submitters, r.durable
    );
    let ratio = |v: f64| format!("{:.2}", v / r.raw_sqlite_tx_per_s);
    table(
        &["MEASURE", "VALUE", "VS RAW SQLITE TX/S"],
        vec![
            vec![
                "raw SQLite single-row tx/s".into(),
                format!("{:.0}", r.raw_sqlite_tx_per_s),
                "1.00".into(),
            ],
            vec![
                "lifecycles/s in-process".into(),
                format!("{:.0}", r.in_process_per_s),
                ratio(r.in_process_per_s),
            ],
            vec![
                "lifecycles/s over HTTPS".into(),
                format!("{:.0}", r.https_per_s),
                ratio(r.https_per_s),
            ],
            vec![
                "writes per commit (in-process)".into(),
                format!("{:.1}", r.in_process_mean_group),
                "-".into(),
            ],
            vec![
                "writes per commit (HTTPS)".into(),
                format!("{:.1}", r.https_mean_group),
                "-".into(),
            ],
            vec![
                "writes per WAL flush (in-process)".into(),
                format!("{:.1}", r.in_process_writes_per_flush),
                "-".into(),
            ],
            vec![
                "writes per WAL flush (HTTPS)".into(),
                format!("{:.1}", r.https_writes_per_flush),
                "-".into(),
            ],
            vec![
                "CPU ms per lifecycle (in-process)".into(),
                format!("{:.3}", r.in_process_cpu_ms),
                "-".into(),
            ],
            vec![
                "CPU ms per lifecycle (HTTPS)".into(),
                format!("{:.3}", r.https_cpu_ms),
                "-".into(),
            ],
            vec![
                "enqueue-to-claim p50 ms".into(),
                format!("{:.2}", r.claim_latency_p50_ms),
                "-".into(),
            ],
            vec![
                "enqueue-to-claim p99 ms".into(),
                format!("{:.2}", r.claim_latency_p99_ms),
                "-".into(),
            ],
        ],
    );
    for route in &r.https_routes {
        println!(
            "HTTPS {}: {} requests, mean {:.2} ms in the server",
            route.route, route.requests, route.mean_ms
        );
    }
    Ok(())
}
