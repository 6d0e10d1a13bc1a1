//! `ffrtmp nodes`: the worker nodes registered with the master.

use clap::Subcommand;
use ffrtmp_http::ApiClient;

use crate::cli::{print_json, table};

#[derive(Subcommand, Debug)]
pub enum NodesCommand {
    /// List registered nodes.
    List,
    /// Follow nodes' status, running jobs and power live (bars on a terminal, plain lines
    /// otherwise, JSON lines with `--output json`).
    Watch {
        /// Stop after this long (default: until interrupted).
        #[arg(long, value_parser = crate::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Median J/frame, fps and quality per (node, encoder, scenario) from completed jobs.
    Efficiency(crate::cli::efficiency::EfficiencyArgs),
}

/// Runs `ffrtmp nodes <command>` against the master.
pub async fn run(api: &ApiClient, command: NodesCommand, json: bool) -> anyhow::Result<()> {
    match command {
        NodesCommand::Efficiency(args) => crate::cli::efficiency::run(api, &args, json).await?,
        NodesCommand::Watch { duration } => {
            let style = crate::cli::watch::Style::detect(json);
            crate::cli::watch::watch_nodes(api, duration, style).await?;
        }
        NodesCommand::List => {
            let nodes = api.nodes().await?;
            if json {
                return print_json(&nodes);
            }
            let rows = nodes
                .iter()
                .map(|n| {
                    vec![
                        n.id.to_string(),
                        n.registration.name.clone(),
                        format!("{:?}", n.status).to_lowercase(),
                        format!("{}/{}", n.active_jobs, n.registration.max_concurrent_jobs),
                        n.registration.cpu_cores.to_string(),
                        n.registration.encoders.join(","),
                        quality_metrics(&n.registration),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "STATUS", "JOBS", "CORES", "ENCODERS", "QUALITY"], rows);
        }
    }
    Ok(())
}

/// The quality metrics a node advertises (`vmaf` only where its ffmpeg has libvmaf); `-`
/// where it advertises none (an older agent, or an engine without a quality pass).
fn quality_metrics(r: &ffrtmp_core::NodeRegistration) -> String {
    if r.quality_metrics.is_empty() {
        return "-".into();
    }
    let names: Vec<&str> = r.quality_metrics.iter().map(|m| m.as_str()).collect();
    names.join(",")
}
