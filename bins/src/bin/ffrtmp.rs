//! The ffrtmp command line: submit and inspect jobs, list nodes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use ffrtmp::bench::{self, parse_threshold};
use ffrtmp::parse_duration;
use ffrtmp_core::{
    Classification, EngineChoice, Job, JobId, JobQuery, JobSpec, JobState, OutputMode, Parameters, Priority, Queue,
    ResourceLimits,
};
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
    /// CA or certificate (PEM) to trust for the master. Default: the system trust store.
    #[arg(long, global = true, env = "FFRTMP_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
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
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Suggest ffrtmp-agent settings for this machine (cores, memory, encoders, energy), with
    /// reasons. `--output json` for JSON.
    Recommend,
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
    },
    /// Run a benchmark matrix on the master's nodes and write per-run results (runs.json,
    /// runs.csv, meta.json) into --out.
    Run(BenchRunArgs),
    /// Compare two result files (JSON or CSV by extension). Exit status: 0 no regression, 1 a
    /// scenario regressed beyond the threshold, 2 the files could not be compared.
    Compare {
        /// Baseline results.
        base: PathBuf,
        /// Results to judge.
        test: PathBuf,
        /// Relative change that counts, e.g. 3% or 0.03.
        #[arg(long, default_value = "3%", value_parser = parse_threshold)]
        threshold: f64,
    },
    /// Write a self-contained HTML report (inline SVG charts) of one or more result files;
    /// every file after the first is compared against the first.
    Report {
        /// Result files (JSON or CSV by extension).
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
    /// Idle window before and after the runs (nothing submitted), e.g. 10s; 0s skips it.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle_window: Duration,
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

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// Submit a job.
    Submit(Box<SubmitArgs>),
    /// Show one job with its history.
    Status { id: JobId },
    /// List jobs, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_enum)]
        queue: Option<QueueArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Show jobs older than this sequence number (the cursor of the previous page).
        #[arg(long)]
        before: Option<u64>,
    },
    /// Cancel a job.
    Cancel { id: JobId },
    /// Queue a failed or canceled job again.
    Retry { id: JobId },
    /// Wait until the jobs finish; exits non-zero if any did not complete.
    Wait {
        ids: Vec<JobId>,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Subcommand, Debug)]
enum NodesCommand {
    /// List registered nodes.
    List,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum QueueArg {
    Live,
    Default,
    Batch,
}

impl From<QueueArg> for Queue {
    fn from(q: QueueArg) -> Queue {
        match q {
            QueueArg::Live => Queue::Live,
            QueueArg::Default => Queue::Default,
            QueueArg::Batch => Queue::Batch,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PriorityArg {
    High,
    Medium,
    Low,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutputModeArg {
    File,
    Null,
    Rtmp,
}

#[derive(ClapArgs, Debug)]
struct SubmitArgs {
    /// Scenario, e.g. 720p-h264, 1080p60-h265, 4K-h265.
    #[arg(long)]
    scenario: String,
    /// Seconds of video.
    #[arg(long)]
    duration: Option<f64>,
    /// Bitrate, e.g. 5M.
    #[arg(long)]
    bitrate: Option<String>,
    /// Encoder preset, e.g. veryfast.
    #[arg(long)]
    preset: Option<String>,
    /// Frame rate override.
    #[arg(long)]
    fps: Option<u32>,
    /// Size override, e.g. 1280x720.
    #[arg(long)]
    resolution: Option<String>,
    /// Codec override: h264, h265, av1, vp9.
    #[arg(long)]
    codec: Option<String>,
    /// A specific encoder, e.g. h264_nvenc; only nodes advertising it run the job.
    #[arg(long)]
    encoder: Option<String>,
    /// Input file relative to the agent's input directory (default: synthetic source).
    #[arg(long)]
    input: Option<String>,
    /// Where the output goes.
    #[arg(long, value_enum)]
    output_mode: Option<OutputModeArg>,
    #[arg(long, value_enum, default_value = "default")]
    queue: QueueArg,
    #[arg(long, value_enum, default_value = "medium")]
    priority: PriorityArg,
    /// CPU limit in percent of one core.
    #[arg(long)]
    max_cpu_percent: Option<u32>,
    /// Memory limit in MiB.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Wall-clock limit in seconds.
    #[arg(long)]
    timeout_sec: Option<u64>,
    /// Retries after transient failures.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
}

impl SubmitArgs {
    fn spec(&self) -> JobSpec {
        JobSpec {
            scenario: self.scenario.clone(),
            confidence: None,
            parameters: Parameters {
                duration: self.duration,
                bitrate: self.bitrate.clone(),
                preset: self.preset.clone(),
                fps: self.fps,
                resolution: self.resolution.clone(),
                codec: self.codec.clone(),
                encoder: self.encoder.clone(),
                input: self.input.clone(),
                output_mode: self.output_mode.map(|m| match m {
                    OutputModeArg::File => OutputMode::File,
                    OutputModeArg::Null => OutputMode::Null,
                    OutputModeArg::Rtmp => OutputMode::Rtmp,
                }),
            },
            resource_limits: ResourceLimits {
                max_cpu_percent: self.max_cpu_percent,
                max_memory_mb: self.max_memory_mb,
                max_disk_mb: None,
                timeout_sec: self.timeout_sec,
            },
            queue: self.queue.into(),
            priority: match self.priority {
                PriorityArg::High => Priority::High,
                PriorityArg::Medium => Priority::Medium,
                PriorityArg::Low => Priority::Low,
            },
            engine: EngineChoice::Auto,
            classification: Classification::default(),
            max_retries: self.max_retries,
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    print!("{}", bench::text_table(headers, rows));
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn job_row(j: &Job) -> Vec<String> {
    let r = j.result.as_ref();
    vec![
        j.seq.to_string(),
        j.id.to_string(),
        j.spec.scenario.clone(),
        j.state.to_string(),
        j.attempt.to_string(),
        opt(r.map(|r| format!("{:.2}", r.wall_s))),
        opt(r.map(|r| format!("{:.1}", r.avg_fps))),
        opt(r.map(|r| r.frames)),
        opt(r.map(|r| format!("{:.2}", r.output_bytes as f64 / 1e6))),
        opt(r.and_then(|r| r.energy.energy_joules).map(|e| format!("{e:.1}"))),
        opt(j.error.as_ref().map(|e| format!("{:?}", e.kind))),
    ]
}

const JOB_HEADERS: [&str; 11] = [
    "SEQ", "ID", "SCENARIO", "STATE", "ATT", "WALL_S", "FPS", "FRAMES", "OUT_MB", "JOULES", "ERROR",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let json = cli.output == Output::Json;
    // Commands that need no master.
    match &cli.command {
        Command::Bench(BenchCommand::Load {
            jobs,
            agents,
            batch,
            no_durable,
            latency_samples,
        }) => {
            let config = ffrtmp::load::LoadConfig {
                jobs: *jobs,
                agents: (*agents).max(1),
                batch: (*batch).max(1),
                durable: !no_durable,
                latency_samples: (*latency_samples).max(1),
            };
            return bench_load(config, json).await;
        }
        Command::Bench(BenchCommand::Compare { base, test, threshold }) => {
            // 0: no regression, 1: a regression beyond the threshold, 2: could not compare.
            let code = bench_compare(base, test, *threshold, json).unwrap_or_else(|e| {
                eprintln!("Error: {e:?}");
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
            bench::report::write_report(results, out, *threshold, title)?;
            println!("wrote {}", out.display());
            return Ok(());
        }
        Command::Config(ConfigCommand::Recommend) => {
            let r = ffrtmp::recommend::recommend(&ffrtmp::recommend::detect().await);
            if json {
                return print_json(&r);
            }
            print!("{}", ffrtmp::recommend::render_text(&r));
            return Ok(());
        }
        Command::Run(args) => std::process::exit(ffrtmp::edge::run(args, json).await),
        Command::Attach(args) => std::process::exit(ffrtmp::edge::attach(args, json).await),
        Command::Watch(args) => std::process::exit(ffrtmp::edge::watch(args, json).await),
        _ => {}
    }
    let mut config = ClientConfig::new(cli.master.clone(), cli.api_key.clone());
    config.ca_cert = cli.ca_cert.clone();
    let api = ApiClient::new(config).context("building the HTTPS client")?;
    match cli.command {
        Command::Jobs(JobsCommand::Submit(args)) => {
            let job = api.submit(&args.spec()).await?;
            if json {
                print_json(&job)?;
            } else {
                println!("{}", job.id);
            }
        }
        Command::Jobs(JobsCommand::Status { id }) => {
            let job = api.get(id).await?;
            if json {
                return print_json(&job);
            }
            table(&JOB_HEADERS, vec![job_row(&job)]);
            if let Some(p) = &job.progress {
                println!(
                    "\nprogress: frame {} fps {:.1} speed {:.2}x {:.0}%",
                    p.frame, p.fps, p.speed, p.percent
                );
            }
            if let Some(r) = &job.result {
                println!(
                    "\nresult: {} frames, {:.2} s, {:.1} fps, {} output bytes, encoder {}, limits {}",
                    r.frames, r.wall_s, r.avg_fps, r.output_bytes, r.encoder, r.limits
                );
                println!(
                    "cpu: user {} s, sys {} s, peak rss {} MB; input {} bytes, compression {}x, speed {}x",
                    opt(r.user_s.map(|v| format!("{v:.2}"))),
                    opt(r.sys_s.map(|v| format!("{v:.2}"))),
                    opt(r.peak_rss_mb.map(|v| format!("{v:.1}"))),
                    opt(r.input_bytes),
                    opt(r.compression_ratio.map(|v| format!("{v:.1}"))),
                    opt(r.speed.map(|v| format!("{v:.2}")))
                );
                match (&r.energy.energy_joules, &r.energy.unavailable_reason) {
                    (Some(j), _) => println!(
                        "energy: {j:.2} J ({}), {} W avg, {} J/frame",
                        r.energy.source,
                        opt(r.energy.avg_watts.map(|w| format!("{w:.1}"))),
                        opt(r.energy.joules_per_frame.map(|w| format!("{w:.4}")))
                    ),
                    (None, reason) => println!("energy: unavailable ({})", opt(reason.as_deref())),
                }
            }
            if let Some(e) = &job.error {
                println!("\nerror: {:?}: {}", e.kind, e.message);
            }
            println!("\nhistory:");
            for h in &job.history {
                println!(
                    "  {}  {} -> {}  attempt {}  {}",
                    h.at_ms,
                    opt(h.from),
                    h.to,
                    h.attempt,
                    h.reason
                );
            }
        }
        Command::Jobs(JobsCommand::List {
            state,
            queue,
            limit,
            before,
        }) => {
            let state = state
                .map(|s| s.parse::<JobState>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let page = api
                .list(&JobQuery {
                    state,
                    queue: queue.map(Into::into),
                    node_id: None,
                    before_seq: before,
                    limit: Some(limit),
                })
                .await?;
            if json {
                return print_json(&page);
            }
            table(&JOB_HEADERS, page.jobs.iter().map(job_row).collect());
            if let Some(c) = page.next_cursor {
                println!("(more: --before {c})");
            }
        }
        Command::Jobs(JobsCommand::Cancel { id }) => {
            let job = api.cancel(id).await?;
            if json {
                return print_json(&job);
            }
            println!("{} {}", job.id, job.state);
        }
        Command::Jobs(JobsCommand::Retry { id }) => {
            let job = api.retry(id).await?;
            if json {
                return print_json(&job);
            }
            println!("{} {}", job.id, job.state);
        }
        Command::Jobs(JobsCommand::Wait { ids, timeout }) => {
            let deadline = Instant::now() + timeout;
            let mut done = Vec::new();
            for id in ids {
                loop {
                    let job = api.get(id).await?;
                    if job.state.is_terminal() {
                        done.push(job);
                        break;
                    }
                    if Instant::now() >= deadline {
                        bail!("timed out waiting for job {id} (state {})", job.state);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            let all_ok = done.iter().all(|j| j.state == JobState::Completed);
            if json {
                print_json(&done)?;
            } else {
                table(&JOB_HEADERS, done.iter().map(job_row).collect());
            }
            if !all_ok {
                bail!("not every job completed");
            }
        }
        Command::Nodes(NodesCommand::List) => {
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
                    ]
                })
                .collect();
            table(&["ID", "NAME", "STATUS", "JOBS", "CORES", "ENCODERS"], rows);
        }
        Command::Bench(BenchCommand::Run(args)) => bench_run(&api, &cli.master, &args, json).await?,
        Command::Bench(_) | Command::Config(_) => unreachable!("handled before connecting"),
        Command::Run(_) | Command::Attach(_) | Command::Watch(_) => unreachable!("handled before connecting"),
        Command::Scenarios => {
            let v = api.scenarios().await?;
            print_json(&v)?;
        }
    }
    Ok(())
}

async fn bench_load(config: ffrtmp::load::LoadConfig, json: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let r = ffrtmp::load::run(config, dir.path()).await?;
    if json {
        return print_json(&r);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "load: {} jobs, {} agents, durable={}, {cores} cores",
        r.jobs, r.agents, r.durable
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
    Ok(())
}

async fn bench_run(api: &ApiClient, master: &str, args: &BenchRunArgs, json: bool) -> anyhow::Result<()> {
    let matrix = bench::matrix::Matrix::load(&args.matrix)?;
    let config = bench::run::RunConfig {
        repeat: args.repeat,
        warmup: args.warmup,
        idle_window: args.idle_window,
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

fn bench_compare(base: &Path, test: &Path, threshold: f64, json: bool) -> anyhow::Result<i32> {
    let comparison = bench::compare::compare_files(base, test, threshold)?;
    if json {
        let (b, t) = (base.display().to_string(), test.display().to_string());
        print_json(&bench::compare::json_report(&b, &t, &comparison, threshold))?;
    } else {
        println!("baseline {}  test {}", base.display(), test.display());
        print!("{}", bench::compare::render_text(&comparison, threshold));
    }
    Ok(comparison.exit_code(threshold))
}
