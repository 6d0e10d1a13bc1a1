//! The reference agent: registers with a master, claims jobs, runs them with FFmpeg under
//! their limits, measures energy, and reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use ffrtmp::energy::AttributedEnergy;
use ffrtmp::{init_logging, parse_duration, shutdown_signal, LogFormat};
use ffrtmp_core::{Executor, NodeRegistration, Transport};
use ffrtmp_exec::agent::{Agent, AgentConfig};
use ffrtmp_exec::{detect, Cgroups, FfmpegConfig, FfmpegExecutor, NoopExecutor};
use ffrtmp_http::{ClientConfig, HttpTransport};
use ffrtmp_power::{RaplSource, Sampler, SamplerConfig};

/// ffrtmp agent: pulls transcode jobs from a master and runs them.
#[derive(Parser, Debug)]
#[command(name = "ffrtmp-agent", version)]
struct Args {
    /// Master URL.
    #[arg(long, default_value = "https://127.0.0.1:8443", env = "FFRTMP_MASTER")]
    master: String,
    /// API key of the master.
    #[arg(long, env = "MASTER_API_KEY", hide_env_values = true)]
    api_key: String,
    /// CA or certificate (PEM) to trust for the master, e.g. the master's tls/cert.pem.
    /// Default: the system trust store.
    #[arg(long, env = "FFRTMP_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    max_concurrent_jobs: u32,
    /// Node name shown by the master. Default: the host name.
    #[arg(long)]
    name: Option<String>,
    /// Heartbeat interval (must match the master's).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
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
    /// Energy sampling rate in Hz.
    #[arg(long, default_value_t = 10.0)]
    sample_hz: f64,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    if args.max_concurrent_jobs == 0 {
        bail!("--max-concurrent-jobs must be at least 1");
    }
    let cgroups = Cgroups::detect();
    if let Some(reason) = cgroups.unavailable_reason() {
        tracing::warn!(
            reason,
            "job limits will not be enforced and energy cannot be attributed per job"
        );
    }
    let sampler_config = SamplerConfig::hz(args.sample_hz);
    let energy = Arc::new(AttributedEnergy::new(
        |cpu| Sampler::start_or_unavailable(RaplSource::open(&args.powercap_root), cpu, sampler_config),
        cgroups.unavailable_reason().map(String::from),
    ));
    if let Some(reason) = energy.sampler().unavailable_reason() {
        tracing::warn!(reason = %reason, "energy will be reported as unavailable");
    }
    let cgroups = cgroups.with_observer(energy.clone());
    let (executor, encoders, engines): (Arc<dyn Executor>, Vec<String>, Vec<String>) = match args.executor {
        ExecutorKind::Noop => (
            Arc::new(NoopExecutor::new(args.noop_delay)),
            Vec::new(),
            vec!["noop".into()],
        ),
        ExecutorKind::Ffmpeg => {
            let ffmpeg = resolve_ffmpeg(&args.ffmpeg)?;
            for dir in [&args.output_dir, &args.input_dir] {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let encoders = detect::software_encoders(&ffmpeg)
                .await
                .map_err(anyhow::Error::msg)
                .context("detecting encoders")?;
            tracing::info!(ffmpeg = %ffmpeg.display(), encoders = ?encoders, "engine ready");
            let mut exec_config = FfmpegConfig::new(args.input_dir.clone(), args.output_dir.clone());
            exec_config.ffmpeg_path = ffmpeg;
            (
                Arc::new(FfmpegExecutor::with_cgroups(exec_config, cgroups)),
                encoders,
                vec!["ffmpeg".into()],
            )
        }
    };

    let mut client = ClientConfig::new(args.master.clone(), args.api_key.clone());
    client.ca_cert = args.ca_cert.clone();
    client.request_timeout = args.claim_wait + Duration::from_secs(15);
    let transport: Arc<dyn Transport> = Arc::new(HttpTransport::new(client).context("building the HTTPS client")?);

    let registration = NodeRegistration {
        name: args.name.clone().unwrap_or_else(detect::host_name),
        cpu_cores: detect::cpu_cores(),
        memory_mb: detect::memory_mb(),
        max_concurrent_jobs: args.max_concurrent_jobs,
        encoders,
        engines,
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let mut config = AgentConfig::new(registration);
    config.heartbeat_interval = args.heartbeat_interval;
    config.claim_wait = args.claim_wait;
    config.drain_timeout = args.drain_timeout;
    let summary = Agent::new(transport, executor, Some(energy), config)
        .run(shutdown_signal())
        .await;
    tracing::info!(reported = summary.reported, stopped = summary.stopped, "agent stopped");
    Ok(())
}
