//! The ffrtmp command line: submit and inspect jobs, list nodes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use ffrtmp::bench::{self, parse_threshold};
use ffrtmp::cli::jobs::JobsCommand;
use ffrtmp::cli::nodes::NodesCommand;
use ffrtmp::cli::print_json;
use ffrtmp::parse_duration;
use ffrtmp_http::{ApiClient, ClientConfig};

/// ffrtmp: energy-aware distributed transcoding.
#[derive(Parser, Debug)]
#[command(name = "ffrtmp", version)]
struct Cli {
    /// Master URL.
    #[arg(long, global = true, default_value = "https://127.0.0.1:8443", env = "FFRTMP_MASTER")]
    master: String,
    /// API key of the master.
    #[arg(
        long,
        global = true,
        env = "MASTER_API_KEY",
        hide_env_values = true,
        default_value = ""
    )]
    api_key: String,
    /// File holding the API key (the first key in it), instead of --api-key: keeps the key
    /// out of `ps`.
    #[arg(long, global = true, env = "MASTER_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// CA or certificate (PEM) to trust for the master. Default: the system trust store.
    #[arg(long, global = true, env = "FFRTMP_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Allow an http:// master URL (the API key then travels unencrypted).
    #[arg(long, global = true)]
    insecure_plaintext: bool,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
    /// Flags of the original Go command line.
    #[command(flatten)]
    go: ffrtmp::compat::CliFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Tables and text (`text` is the same).
    #[value(alias = "text")]
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Worker nodes.
    #[command(subcommand)]
    Nodes(NodesCommand),
    /// Scenario names the master accepts.
    Scenarios,
    /// SLA compliance from job history, per classification and queue (`--window 24h`).
    Sla(ffrtmp::cli::sla::SlaArgs),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Configuration help.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run a workload non-owning in its own session and cgroup (`-- program args…`); it keeps
    /// running with its limits if this wrapper is killed. SIGINT/SIGTERM are forwarded to it.
    Run(ffrtmp::edge::RunArgs),
    /// Move a running process into a governed cgroup, renice it and wait for it to exit.
    Attach(ffrtmp::edge::AttachArgs),
    /// Scan /proc for processes matching YAML rules and attach each once.
    Watch(ffrtmp::edge::WatchArgs),
    /// Print the shell completion script of this command (`ffrtmp completions bash >
    /// /etc/bash_completion.d/ffrtmp`); `ffrtmp-master` and `ffrtmp-agent` take `--completions`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: ffrtmp::completions::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Suggest ffrtmp-agent settings for this machine (cores, memory, encoders, energy), with
    /// reasons. `--output json` for JSON.
    Recommend(ffrtmp::compat::RecommendFlags),
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Scheduler load: no-op job lifecycles/s in-process and over HTTPS on loopback, claim
    /// latency of idle agents, against raw SQLite durable transactions in the same run.
    Load {
        #[arg(long, default_value_t = 5000)]
        jobs: usize,
        #[arg(long, default_value_t = 4)]
        agents: usize,
        /// Most jobs one claim takes.
        #[arg(long, default_value_t = 16)]
        batch: u32,
        /// Use synchronous=NORMAL instead of durable commits.
        #[arg(long)]
        no_durable: bool,
        #[arg(long, default_value_t = 200)]
        latency_samples: usize,
        /// Concurrent submitting clients (the offered load), each submitting one job at a time.
        #[arg(long, default_value_t = ffrtmp::load::DEFAULT_SUBMITTERS)]
        clients: usize,
    },
    /// Scheduler costs at growing queue sizes: fills a store to each size of queued jobs and
    /// measures submit, claim (by idle agents that can run nothing and by one that can),
    /// sweep, filtered listing and master memory, with each figure's ratio largest/smallest.
    Scale {
        /// Queued jobs at each measuring point, e.g. 1k,10k,100k,1m.
        #[arg(long, default_value = "1k,10k,100k,1m", value_parser = ffrtmp::cli::scale::parse_sizes)]
        sizes: ffrtmp::cli::scale::Sizes,
        /// `sqlite` (a scratch file) or a postgres:// URL of an empty scratch database.
        #[arg(long, default_value = "sqlite")]
        store: String,
        /// Timed requests per figure and size.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Agents that can run none of the queued jobs, long-polling throughout.
        #[arg(long, default_value_t = 4)]
        idle_agents: usize,
    },
    /// Placement policies compared on a farm started here: a master per run and one agent per
    /// simulated node (each its own powercap tree, advanced by this bench at that node's
    /// wattage), the same seeded stream of short real encodes for every policy; total
    /// attributed joules and makespan per policy with 95% intervals, and the change.
    Placement(ffrtmp::cli::placement::PlacementArgs),
    /// Run a benchmark matrix on the master's nodes and write per-run results (runs.json,
    /// runs.csv, meta.json) into --out.
    Run(BenchRunArgs),
    /// Compare two result files (JSON or CSV by extension).
    ///
    /// Per metric, the verdict comes from the confidence interval of the change: better or
    /// worse when it lies wholly beyond the threshold, no change when it lies wholly within
    /// ±threshold, inconclusive otherwise (with about how many runs per side would decide).
    ///
    /// Exit status: 0 no regression and nothing inconclusive; 1 a scenario regressed beyond the
    /// threshold; 2 the files could not be compared; 3 no regression, but some metric is
    /// inconclusive (0 with --allow-inconclusive).
    Compare {
        /// Baseline results.
        base: PathBuf,
        /// Results to judge.
        test: PathBuf,
        /// Relative change that counts, e.g. 3% or 0.03.
        #[arg(long, default_value = "3%", value_parser = parse_threshold)]
        threshold: f64,
        /// Exit 0 instead of 3 when nothing regressed but some metric is inconclusive.
        #[arg(long)]
        allow_inconclusive: bool,
        /// Compare even when one side's energy is estimated from a power model (`--power-model`
        /// on the agent) and the other's measured, or estimated with another model; without
        /// it such files are refused (exit 2).
        #[arg(long)]
        allow_estimated: bool,
    },
    /// Write a self-contained HTML report (inline SVG charts) of one or more result files,
    /// and each chart as a PNG beside it (`<out name>-fps.png`, …); every file after the first
    /// is compared against the first.
    Report {
        /// Result files (JSON or CSV by extension), each as `LABEL=PATH` to name it; a plain
        /// path is named by its directory (for runs.json) or its file name.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// The HTML file to write.
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        /// Relative change that counts in comparisons, e.g. 3% or 0.03.
        #[arg(long, default_value = "3%", value_parser = parse_threshold)]
        threshold: f64,
        /// Page title.
        #[arg(long, default_value = "ffrtmp bench report")]
        title: String,
    },
}

#[derive(ClapArgs, Debug)]
struct BenchRunArgs {
    /// Matrix file (JSON), e.g. {"scenarios":["720p-h264"],"bitrates":["2M","5M"],"duration":3}.
    #[arg(long)]
    matrix: PathBuf,
    /// Recorded runs per cell.
    #[arg(long, default_value_t = 5)]
    repeat: u32,
    /// Unrecorded warm-up runs per cell, before the recorded ones.
    #[arg(long, default_value_t = 1)]
    warmup: u32,
    /// Idle window after the warm-ups and after the runs (nothing submitted), measured with
    /// the nodes' energy meters: `auto` (the mean wall time of the warm-up runs, so both are of
    /// equal length), a length such as 10s, or 0s to skip them.
    #[arg(long, default_value = "auto", value_parser = bench::idle::IdleLength::parse)]
    idle_window: bench::idle::IdleLength,
    /// How long an idle window waits for each node's next power snapshot (its next
    /// heartbeat); more than the agents' heartbeat interval.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    snapshot_wait: Duration,
    /// Most runs in flight at once (1: runs never share a node).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Deadline for the whole benchmark; unfinished runs are canceled.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
    /// Directory for runs.json, runs.csv and meta.json.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    ffrtmp::term::exit_status(run())
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.go.check::<Cli>();
    let json = cli.output == Output::Json;
    // Commands that need no master.
    match &cli.command {
        Command::Bench(BenchCommand::Load {
            jobs,
            agents,
            batch,
            no_durable,
            latency_samples,
            clients,
        }) => {
            let config = ffrtmp::load::LoadConfig {
                jobs: *jobs,
                agents: (*agents).max(1),
                batch: (*batch).max(1),
                durable: !no_durable,
                latency_samples: (*latency_samples).max(1),
                submitters: (*clients).max(1),
            };
            return ffrtmp::cli::load::run(config, json).await;
        }
        Command::Bench(BenchCommand::Scale {
            sizes,
            store,
            samples,
            idle_agents,
        }) => {
            let config = bench::scale::ScaleConfig {
                sizes: sizes.0.clone(),
                samples: (*samples).max(1),
                idle_agents: *idle_agents,
                fill_parallel: 64,
            };
            return ffrtmp::cli::scale::run(store, config, json).await;
        }
        Command::Bench(BenchCommand::Placement(args)) => {
            return ffrtmp::cli::placement::run(args, json).await;
        }
        Command::Bench(BenchCommand::Compare {
            base,
            test,
            threshold,
            allow_inconclusive,
            allow_estimated,
        }) => {
            // 0: no regression, 1: a regression beyond the threshold, 2: could not compare,
            // 3: inconclusive (0 with --allow-inconclusive).
            let allow = (*allow_inconclusive, *allow_estimated);
            let code = bench_compare(base, test, *threshold, allow, json).unwrap_or_else(|e| {
                eprintln!("Error: {}", ffrtmp::term::strip_controls(&format!("{e:#}")));
                2
            });
            std::io::stdout().flush()?;
            std::process::exit(code);
        }
        Command::Bench(BenchCommand::Report {
            results,
            out,
            threshold,
            title,
        }) => {
            let files = bench::report::write_report(results, out, *threshold, title)?;
            println!("wrote {}", files.html.display());
            for png in &files.pngs {
                println!("wrote {}", png.display());
            }
            for e in &files.png_errors {
                eprintln!("warning: chart without a PNG ({e}); the page shows its SVG");
            }
            if files.font.is_none() {
                eprintln!("warning: no font installed, so the PNG charts carry no text (e.g. apt-get install fonts-dejavu-core)");
            }
            return Ok(());
        }
        Command::Config(ConfigCommand::Recommend(go)) => {
            for note in go.notes() {
                eprintln!("note: {note}");
            }
            let r = ffrtmp::recommend::recommend(&ffrtmp::recommend::detect().await);
            if json {
                return print_json(&r);
            }
            print!("{}", ffrtmp::recommend::render_text(&r));
            return Ok(());
        }
        Command::Run(args) => {
            args.go.check::<Cli>();
            std::process::exit(ffrtmp::edge::run(args, json).await)
        }
        Command::Attach(args) => std::process::exit(ffrtmp::edge::attach(args, json).await),
        Command::Watch(args) => std::process::exit(ffrtmp::edge::watch(args, json).await),
        Command::Completions { shell } => {
            ffrtmp::completions::print::<Cli>(*shell)?;
            return Ok(());
        }
        _ => {}
    }
    let api_key = ffrtmp::keys::client_key(Some(&cli.api_key), cli.api_key_file.as_deref())?.unwrap_or_default();
    let mut config = ClientConfig::new(cli.master.clone(), api_key);
    config.allow_plaintext = cli.insecure_plaintext;
    config.ca_cert = cli.ca_cert.clone();
    let api = ApiClient::new(config).context("building the HTTPS client")?;
    match cli.command {
        Command::Jobs(command) => ffrtmp::cli::jobs::run(&api, command, json).await?,
        Command::Nodes(command) => ffrtmp::cli::nodes::run(&api, command, json).await?,
        Command::Bench(BenchCommand::Run(args)) => bench_run(&api, &cli.master, &args, json).await?,
        Command::Bench(_) | Command::Config(_) => unreachable!("handled before connecting"),
        Command::Run(_) | Command::Attach(_) | Command::Watch(_) => unreachable!("handled before connecting"),
        Command::Completions { .. } => unreachable!("handled before connecting"),
        Command::Scenarios => ffrtmp::cli::scenarios::run(&api).await?,
        Command::Sla(args) => ffrtmp::cli::sla::run(&api, &args, json).await?,
    }
    Ok(())
}

async fn bench_run(api: &ApiClient, master: &str, args: &BenchRunArgs, json: bool) -> anyhow::Result<()> {
    let matrix = bench::matrix::Matrix::load(&args.matrix)?;
    let config = bench::run::RunConfig {
        repeat: args.repeat,
        warmup: args.warmup,
        idle_window: args.idle_window,
        snapshot_wait: args.snapshot_wait,
        parallel: args.parallel.max(1),
        timeout: args.timeout,
        poll: Duration::from_millis(250),
    };
    let outcome = bench::run::run(api, master, &matrix, &config, &mut |line| eprintln!("{line}")).await?;
    let files = bench::run::write_results(&args.out, &outcome)?;
    if json {
        print_json(&serde_json::json!({ "files": files, "meta": outcome.meta }))?;
    } else {
        print!("{}", bench::run::render_summary(&outcome, &args.out));
    }
    if outcome.meta.deadline_passed {
        bail!("the deadline passed before every run finished (partial results written)");
    }
    Ok(())
}

fn bench_compare(
    base: &Path,
    test: &Path,
    threshold: f64,
    (allow_inconclusive, allow_estimated): (bool, bool),
    json: bool,
) -> anyhow::Result<i32> {
    let (comparison, mixed) = bench::compare::compare_files(base, test, threshold, allow_estimated)?;
    if let Some(kinds) = mixed {
        eprintln!("warning: comparing energy of different kinds ({kinds})");
    }
    if json {
        let (b, t) = (base.display().to_string(), test.display().to_string());
        print_json(&bench::compare::json_report(
            &b,
            &t,
            &comparison,
            threshold,
            allow_inconclusive,
        ))?;
    } else {
        println!("baseline {}  test {}", base.display(), test.display());
        print!("{}", bench::compare::render_text(&comparison, threshold));
    }
    Ok(bench::compare::exit_status(&comparison, threshold, allow_inconclusive))
}
