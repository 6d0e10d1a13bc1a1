//! The reference agent: registers with a master, claims jobs, runs them with FFmpeg under
//! their limits, measures energy, and reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use ffrtmp::{init_logging, parse_duration, shutdown_signal, LogFormat};
use ffrtmp_core::{Executor, Transport};
use ffrtmp_exec::{
    detect, AgentBuilder, AutoExecutor, Cgroups, FfmpegConfig, FfmpegExecutor, GstConfig, GstExecutor, NoopExecutor,
    RunAs,
};
use ffrtmp_farm::AgentProbe;
use ffrtmp_http::{ClientConfig, HttpTransport};
use ffrtmp_power::agent::{gpu_sampler, AttributedEnergy, GpuEnergyMode, MeteredNode};
use ffrtmp_power::{GpuSamplerConfig, RaplSource, Sampler, SamplerConfig};

/// ffrtmp agent: pulls transcode jobs from a master and runs them.
#[derive(Parser, Debug)]
#[command(name = "ffrtmp-agent", version)]
struct Args {
    /// Master URL.
    #[arg(long, default_value = "https://127.0.0.1:8443", env = "FFRTMP_MASTER")]
    master: String,
    /// API key of the master (an agent key, or the all-roles key). Visible in `ps` when
    /// given on the command line: prefer --api-key-file.
    #[arg(long, env = "MASTER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// File holding the API key (the first key in it; `#` comments skipped).
    #[arg(long, env = "MASTER_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// Client certificate (PEM) for masters that check agents' certificates (mutual TLS).
    #[arg(long, env = "FFRTMP_CLIENT_CERT", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Private key (PEM) of --client-cert.
    #[arg(long, env = "FFRTMP_CLIENT_KEY", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// CA or certificate (PEM) to trust for the master, e.g. the master's tls/cert.pem.
    /// Default: the system trust store.
    #[arg(long, env = "FFRTMP_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Allow an http:// master URL (the API key then travels unencrypted).
    #[arg(long)]
    insecure_plaintext: bool,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    max_concurrent_jobs: u32,
    /// Node name shown by the master. Default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// Heartbeat interval (must match the master's).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// How often running jobs' progress and the node's power go to the master; cancels
    /// come back in the answers, so this bounds how long a canceled encode keeps running.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    progress_interval: Duration,
    /// How long one claim waits at the master for work.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    claim_wait: Duration,
    /// On SIGTERM, how long running jobs may finish before they are stopped and handed back.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Directory for job outputs.
    #[arg(long, default_value = "ffrtmp-output")]
    output_dir: PathBuf,
    /// Directory job inputs are resolved in; inputs outside it are refused.
    #[arg(long, default_value = "ffrtmp-input")]
    input_dir: PathBuf,
    /// The ffmpeg binary.
    #[arg(long, default_value = "ffmpeg", env = "FFMPEG")]
    ffmpeg: PathBuf,
    /// Engine that runs jobs: `ffmpeg`, or `noop` (waits --noop-delay and succeeds; for load tests).
    #[arg(long, value_enum, default_value = "ffmpeg")]
    executor: ExecutorKind,
    /// How long each job takes under `--executor noop`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    noop_delay: Duration,
    /// Powercap root to read RAPL energy from.
    #[arg(long, default_value = ffrtmp_power::SYSTEM_POWERCAP)]
    powercap_root: PathBuf,
    /// Power model (TOML or JSON: `name`, `idle_watts`, `full_load_watts`, optional `cores`)
    /// used where there is no RAPL counter: energy is then estimated from CPU utilisation and
    /// every report says `estimated (model <name>)`. RAPL, when present, wins.
    #[arg(long, value_name = "FILE")]
    power_model: Option<PathBuf>,
    /// Address of the status endpoint (/health, /ready, /metrics). Plain HTTP without a key
    /// by default: keep it on loopback, or give --status-key-file (and --status-tls-dir) to
    /// serve it further. `none` turns it off.
    #[arg(long, default_value = "127.0.0.1:9464", value_parser = parse_status_addr)]
    status_addr: StatusAddr,
    /// Once the status endpoint listens, write its URL here (useful with port 0).
    #[arg(long)]
    status_url_file: Option<PathBuf>,
    /// TLS and read-only keys of the status endpoint.
    #[command(flatten)]
    status: ffrtmp::status::StatusFlags,
    /// Window over which idle power is measured at start (0s: don't).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    idle_window: Duration,
    /// Energy sampling rate in Hz.
    #[arg(long, default_value_t = 10.0)]
    sample_hz: f64,
    /// Most power one RAPL zone can plausibly draw, in watts: a counter that goes backwards is
    /// corrected as a wrap only below this mean power since the last reading; above, it is a
    /// reset, whose sampling interval is dropped and whose jobs' energy is marked partial.
    #[arg(long, default_value_t = ffrtmp_power::DEFAULT_MAX_ZONE_WATTS, value_parser = parse_watts)]
    max_zone_watts: f64,
    /// Per-job GPU energy: `auto` reads NVIDIA GPUs through NVML (agent built with the `nvml`
    /// feature) and splits their energy by each job's GPU processes; `off` does not. NVML names
    /// processes by host pid, so the agent must see the host's /proc (in a container: the host's
    /// PID namespace), or no GPU energy is charged to jobs.
    #[arg(long, value_enum, default_value = "auto")]
    gpu_energy: GpuEnergyFlag,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// User the workloads run as. Default, when the agent runs as root: the system user
    /// `ffrtmp-worker` (created when missing; the agent stops when it cannot be, rather than
    /// share `nobody` unasked); `root` opts out. Its output directory must not exist yet (it
    /// is created for that user) or already belong to that user. An agent not running as root
    /// runs them as its own user.
    #[arg(long)]
    run_as: Option<String>,
    /// TOML file of settings, keyed by long flag name (`max-concurrent-jobs = 2`); flags and
    /// the environment override it.
    #[arg(long, env = "FFRTMP_AGENT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (flags, environment, config file, key file, TLS files, the
    /// ffmpeg binary), print the outcome and exit: 0 when the agent would start.
    #[arg(long)]
    check_config: bool,
    /// Print the completion script for a shell and exit.
    #[arg(long, value_enum, value_name = "SHELL")]
    completions: Option<ffrtmp::completions::Shell>,
    /// RTMP endpoint of `output_mode: rtmp` jobs that name no `output_url`; `{job_id}` is
    /// replaced by the job id (e.g. `rtmp://127.0.0.1:1935/live/{job_id}`).
    #[arg(long)]
    rtmp_url: Option<String>,
    /// Prefix a job's `parameters.output_url` must start with (`rtmp://host:port/app/`,
    /// `srt://host:port`); repeat or comma-separate. None: jobs push only to --rtmp-url.
    #[arg(long, value_delimiter = ',')]
    allow_output_prefix: Vec<String>,
    /// Prefix a job's live source `parameters.input_url` must start with
    /// (`rtmp://host:port/app/`); repeat or comma-separate. None: no live sources.
    #[arg(long, value_delimiter = ',')]
    allow_input_prefix: Vec<String>,
    /// How long a live push keeps reconnecting after its destination goes away before the
    /// job fails `destination_lost`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    live_reconnect_window: Duration,
    /// How long a live stream may stay behind real time before its QoE flags it
    /// `behind_realtime`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    live_behind_limit: Duration,
    /// Flags of the original Go agent.
    #[command(flatten)]
    go: ffrtmp::compat::AgentFlags,
}

fn main() -> std::process::ExitCode {
    ffrtmp::term::exit_status(start())
}

/// A positive, finite number of watts.
fn parse_watts(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(w) if w.is_finite() && w > 0.0 => Ok(w),
        _ => Err(format!(
            "invalid power {text:?}: give a positive number of watts, e.g. 2000"
        )),
    }
}

/// A status endpoint address, or none.
#[derive(Clone, Copy, Debug)]
struct StatusAddr(Option<std::net::SocketAddr>);

fn parse_status_addr(text: &str) -> Result<StatusAddr, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(StatusAddr(None));
    }
    text.parse()
        .map(|a| StatusAddr(Some(a)))
        .map_err(|e| format!("invalid address {text:?}: {e} (use host:port or none)"))
}

/// The `--gpu-energy` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum GpuEnergyFlag {
    /// Measure GPU energy through NVML when built with the `nvml` feature and a driver answers.
    Auto,
    /// Do not read GPUs; jobs carry no `gpu_joules`.
    Off,
}

impl From<GpuEnergyFlag> for GpuEnergyMode {
    fn from(flag: GpuEnergyFlag) -> Self {
        match flag {
            GpuEnergyFlag::Auto => GpuEnergyMode::Auto,
            GpuEnergyFlag::Off => GpuEnergyMode::Off,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorKind {
    Ffmpeg,
    Noop,
}

fn resolve_ffmpeg(p: &PathBuf) -> anyhow::Result<PathBuf> {
    if p.components().count() > 1 {
        return Ok(p.clone());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| c.is_file())
        .with_context(|| {
            format!(
                "{} not found on PATH: install ffmpeg (e.g. apt-get install ffmpeg)",
                p.display()
            )
        })
}

fn start() -> anyhow::Result<()> {
    // First, while this is the only thread: the key leaves the environment (and the
    // environment block /proc shows), so no workload or probe can read it from there.
    let restored = ffrtmp::secret_env::hide_secrets(&[("--api-key", "MASTER_API_KEY")])?;
    // The key is in this process's memory from here on: workloads and probes running as the
    // same user must not read it through /proc/<pid>/mem, nor attach a debugger.
    ffrtmp::secret_env::forbid_inspection()?;
    let args: Args = ffrtmp::config::parse("FFRTMP_AGENT_CONFIG")?;
    restored.forget();
    if let Some(shell) = args.completions {
        ffrtmp::completions::print::<Args>(shell)?;
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(run(args))
}

/// The user workloads run as (see `--run-as`), with the directories it needs checked (off
/// the runtime: this creates a user and runs checks as it).
async fn workload_user(args: &Args) -> anyhow::Result<Option<RunAs>> {
    let (requested, output, input) = (args.run_as.clone(), args.output_dir.clone(), args.input_dir.clone());
    let user = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<RunAs>> {
        let user = RunAs::for_agent(requested.as_deref())?;
        if let Some(u) = &user {
            std::fs::create_dir_all(&input).with_context(|| format!("creating {}", input.display()))?;
            u.own_dir(&output)?;
            u.check_dir(&output, true)?;
            u.check_dir(&input, false)?;
        }
        Ok(user)
    })
    .await
    .context("checking the workload user")??;
    if let Some(u) = &user {
        tracing::info!(user = %u.name, uid = u.uid, "workloads run as this user");
    }
    Ok(user)
}

/// The client of the master: the key, the master's URL and the TLS files.
fn transport(args: &Args) -> anyhow::Result<HttpTransport> {
    let api_key = ffrtmp::keys::client_key(args.api_key.as_deref(), args.api_key_file.as_deref())?
        .context("no API key: give --api-key-file (MASTER_API_KEY_FILE) or --api-key (MASTER_API_KEY)")?;
    let mut client = ClientConfig::new(args.master.clone(), api_key);
    client.allow_plaintext = args.insecure_plaintext;
    client.client_cert = args.client_cert.clone().zip(args.client_key.clone());
    client.ca_cert = args.ca_cert.clone();
    client.request_timeout = args.claim_wait + Duration::from_secs(15);
    HttpTransport::new(client).context("building the HTTPS client")
}

/// `--check-config`: what the agent reads before it starts, without starting.
fn check_config(args: &Args) -> anyhow::Result<()> {
    transport(args)?;
    if let Some(path) = &args.power_model {
        ffrtmp_power::PowerModel::load(path)?;
    }
    if args.executor == ExecutorKind::Ffmpeg {
        resolve_ffmpeg(&args.ffmpeg)?;
    }
    println!("configuration OK: master {}", args.master);
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    args.go.check::<Args>();
    init_logging(args.log_format);
    for note in args.go.notes() {
        tracing::info!("{note}");
    }
    if args.max_concurrent_jobs == 0 {
        bail!("--max-concurrent-jobs must be at least 1");
    }
    if args.check_config {
        return check_config(&args);
    }
    let cgroups = Cgroups::detect();
    // Groups of jobs whose agent died (it could not remove them); an hour keeps any group
    // another agent on this host is using safe.
    let stale = cgroups.remove_stale(Duration::from_secs(3600));
    if stale > 0 {
        tracing::info!(removed = stale, "removed job cgroups left by agents that died");
    }
    if let Some(reason) = cgroups.unavailable_reason() {
        tracing::warn!(
            reason,
            "job limits will not be enforced and energy cannot be attributed per job"
        );
    }
    let sampler_config = SamplerConfig::hz(args.sample_hz);
    // A bad model file stops the agent: an operator who gave one expects energy.
    let power_model = args
        .power_model
        .as_deref()
        .map(ffrtmp_power::PowerModel::load)
        .transpose()?;
    let energy = Arc::new(
        AttributedEnergy::new(
            |cpu| {
                let rapl =
                    RaplSource::open(&args.powercap_root).map(|r| r.with_max_zone_watts(Some(args.max_zone_watts)));
                match (rapl, power_model) {
                    (Err(why), Some(model)) => {
                        tracing::warn!(reason = %why, model = %model.name, "no RAPL: energy is estimated from the power model");
                        Sampler::start(Arc::new(ffrtmp_power::ModelSource::new(model)), cpu, sampler_config)
                    }
                    (rapl, model) => {
                        if let (Ok(_), Some(model)) = (&rapl, model) {
                            tracing::info!(model = %model.name, "RAPL present: measured energy, the power model is not used");
                        }
                        Sampler::start_or_unavailable(rapl, cpu, sampler_config)
                    }
                }
            },
            cgroups.unavailable_reason().map(String::from),
        )
        .with_gpu("/proc", |processes| {
            gpu_sampler(args.gpu_energy.into(), processes, GpuSamplerConfig::hz(args.sample_hz))
        }),
    );
    if let Some(reason) = energy.sampler().unavailable_reason() {
        tracing::warn!(reason = %reason, "energy will be reported as unavailable");
    }
    match energy.gpu().unavailable_reason() {
        None => tracing::info!("GPU energy per job from NVML (encoder/decoder/SM utilisation of each job's processes)"),
        Some(reason) => tracing::info!(reason = %reason, "no GPU energy; job reports carry no gpu_joules"),
    }
    // Per-job energy plus the node snapshot every heartbeat carries.
    let meter = Arc::new(MeteredNode::new(energy.clone()));
    if !args.idle_window.is_zero() && energy.sampler().unavailable_reason().is_none() {
        // Idle power, measured while the agent starts up and before work arrives; the
        // sampler keeps refining it from every interval in which no job runs.
        let e = energy.clone();
        let m = meter.clone();
        let window = args.idle_window;
        std::thread::spawn(move || match e.sampler().measure_idle(window) {
            Ok(idle) if !idle.jobs_ran => {
                m.set_startup_idle(idle.watts);
                tracing::info!(watts = idle.watts, seconds = idle.seconds, "idle power at start")
            }
            Ok(_) => tracing::info!("a job started during the idle window; idle power comes from later idle intervals"),
            Err(e) => tracing::warn!(error = %e, "idle power not measured"),
        });
    }
    let cgroups = cgroups.with_observer(energy.clone());
    // The workload user first: an output directory it creates is its own, while one created
    // here beforehand would be the agent's and refused.
    let run_as = match args.executor {
        ExecutorKind::Ffmpeg => workload_user(&args).await?,
        ExecutorKind::Noop => None,
    };
    for dir in [&args.output_dir, &args.input_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // The noop executor runs no workload, so it enforces nothing.
    let enforces_limits = matches!(args.executor, ExecutorKind::Ffmpeg) && detect::enforces_limits(&cgroups);
    if !enforces_limits {
        tracing::info!("this node does not enforce limits: jobs whose limits are required go to other nodes");
    }
    let mut engine_path = None;
    let (executor, encoders, engines): (Arc<dyn Executor>, Vec<String>, Vec<String>) = match args.executor {
        ExecutorKind::Noop => (
            Arc::new(NoopExecutor::new(args.noop_delay)),
            Vec::new(),
            vec!["noop".into()],
        ),
        ExecutorKind::Ffmpeg => {
            let ffmpeg = resolve_ffmpeg(&args.ffmpeg)?;
            engine_path = Some(ffmpeg.clone());
            let encoders = detect::software_encoders(&ffmpeg)
                .await
                .map_err(anyhow::Error::msg)
                .context("detecting encoders")?;
            let mut encoders = encoders;
            let probe = detect::HwProbeConfig {
                run_as: run_as.clone(),
                ..Default::default()
            };
            for hw in detect::hardware_encoders(&ffmpeg, &probe).await {
                match hw.rejected {
                    None => encoders.push(hw.name),
                    Some(reason) => tracing::info!(encoder = %hw.name, %reason, "hardware encoder not advertised"),
                }
            }
            tracing::info!(ffmpeg = %ffmpeg.display(), encoders = ?encoders, "engine ready");
            let mut exec_config = FfmpegConfig::new(args.input_dir.clone(), args.output_dir.clone());
            exec_config.ffmpeg_path = ffmpeg;
            exec_config.rtmp_url = args.rtmp_url.clone();
            exec_config.allow_output_prefixes = args.allow_output_prefix.clone();
            exec_config.allow_input_prefixes = args.allow_input_prefix.clone();
            exec_config.live.reconnect.window = args.live_reconnect_window;
            exec_config.live.behind_limit = args.live_behind_limit;
            let gst_config = GstConfig::from_ffmpeg(&exec_config);
            let gst = match GstExecutor::detect_with_cgroups(gst_config, cgroups.clone()).await {
                Ok(g) => Some(g.with_run_as(run_as.clone())),
                Err(e) => {
                    tracing::info!(reason = %e, "GStreamer engine not available; FFmpeg runs every job");
                    None
                }
            };
            let ffmpeg = FfmpegExecutor::with_cgroups(exec_config, cgroups).with_run_as(run_as);
            let auto = AutoExecutor::new(ffmpeg, gst);
            let engines = auto.engines();
            (Arc::new(auto), encoders, engines)
        }
    };

    let quality_metrics = match &engine_path {
        Some(ffmpeg) => detect::quality_metrics(ffmpeg).await,
        None => Vec::new(),
    };
    let transport: Arc<dyn Transport> = Arc::new(transport(&args)?);

    let mut agent = AgentBuilder::new(transport, executor)
        .max_concurrent_jobs(args.max_concurrent_jobs)
        .encoders(encoders)
        .engines(engines)
        .enforces_limits(enforces_limits)
        .quality_metrics(quality_metrics)
        .energy_meter(meter)
        .heartbeat_interval(args.heartbeat_interval)
        .progress_interval(args.progress_interval)
        .claim_wait(args.claim_wait)
        .config(|c| c.drain_timeout = args.drain_timeout);
    if let Some(name) = &args.name {
        agent = agent.name(name.clone());
    }
    let agent = agent.build();
    let status = match args.status_addr.0 {
        Some(addr) => {
            let keys = args.status.keys(addr)?;
            let probe = Arc::new(AgentProbe {
                stats: agent.stats(),
                energy,
                engine: engine_path,
                scratch: args.output_dir.clone(),
                master_silence: args.heartbeat_interval * 3,
            });
            match args.status.bind(addr, probe, keys).await {
                Ok(server) => {
                    let scheme = if server.is_tls() { "https" } else { "http" };
                    let url = format!("{scheme}://{}", server.local_addr());
                    tracing::info!(%url, "status endpoint (/health, /ready, /metrics)");
                    if let Some(path) = &args.status_url_file {
                        std::fs::write(path, &url).with_context(|| format!("writing {}", path.display()))?;
                    }
                    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                    let task = tokio::spawn(server.run(async {
                        let _ = stopped.await;
                    }));
                    Some((stop, task))
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "status endpoint not started");
                    None
                }
            }
        }
        None => None,
    };
    let summary = agent.run(shutdown_signal()).await;
    if let Some((stop, task)) = status {
        let _ = stop.send(());
        let _ = task.await;
    }
    tracing::info!(reported = summary.reported, stopped = summary.stopped, "agent stopped");
    Ok(())
}
