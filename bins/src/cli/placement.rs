//! `ffrtmp bench placement`: runs the placement bench with the master and agent binaries
//! beside this one and prints its table (or JSON).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::bench::placement::{self, PlacementConfig};
use crate::cli::print_json;

/// The flags of `ffrtmp bench placement`.
#[derive(clap::Args, Debug)]
pub struct PlacementArgs {
    /// Jobs in the stream each run submits.
    #[arg(long, default_value_t = 30)]
    pub jobs: usize,
    /// Runs per policy (policies alternate run by run).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Policies to compare (`--placement` of the master), the first being the baseline.
    #[arg(long, value_delimiter = ',', default_value = "default,energy-aware")]
    pub policies: Vec<String>,
    /// `--placement-max-wait` of the masters (their default when not given).
    #[arg(long)]
    pub placement_max_wait: Option<String>,
    /// Busy power of each simulated node, in watts (idle: a tenth of it); one agent per value.
    #[arg(long, value_delimiter = ',', default_value = "15,30,60", value_parser = parse_watts)]
    pub watts: Vec<f64>,
    /// Arrival rate as a fraction of the farm's measured capacity.
    #[arg(long, default_value_t = 0.5)]
    pub load: f64,
    /// Mean gap between arrivals instead of one derived from the measured capacity (`800ms`).
    #[arg(long, value_parser = crate::parse_duration)]
    pub arrival_gap: Option<Duration>,
    /// Energy samples of every node and scenario the warm-up gathers before each run's stream
    /// (at most 8 rounds); the energy-aware policy steers only by figures with 3 or more.
    #[arg(long, default_value_t = 3)]
    pub warmup_samples: u64,
    /// Seed of the job stream.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory holding ffrtmp-master and ffrtmp-agent. Default: this binary's directory.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

/// A positive, finite number of watts.
fn parse_watts(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
        _ => Err(format!("invalid power {text:?}: give positive watts, e.g. 15,30,60")),
    }
}

/// Runs the bench and prints the report.
pub async fn run(args: &PlacementArgs, json: bool) -> anyhow::Result<()> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .context("locating this binary")?
            .parent()
            .context("locating this binary's directory")?
            .to_path_buf(),
    };
    let mut config = PlacementConfig::new(bin_dir);
    config.jobs = args.jobs;
    config.repeats = args.repeats;
    config.policies = args.policies.iter().map(|p| p.trim().to_string()).collect();
    config.max_wait = args.placement_max_wait.clone();
    config.nodes = args.watts.iter().copied().map(placement::busy_watts).collect();
    config.load = args.load;
    config.mean_gap = args.arrival_gap;
    config.seed = args.seed;
    config.warmup_samples = args.warmup_samples;
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let progress = |line: &str| eprintln!("{line}");
    // On SIGINT or SIGTERM the run is dropped, and with it the master and agents it started.
    let report = tokio::select! {
        r = placement::run(&config, dir.path(), &progress) => r.map_err(|e| anyhow::anyhow!(e.chain()))?,
        _ = crate::shutdown_signal() => anyhow::bail!("interrupted: the farm was stopped"),
    };
    if json {
        return print_json(&report);
    }
    print!("{}", placement::render_text(&report));
    Ok(())
}
