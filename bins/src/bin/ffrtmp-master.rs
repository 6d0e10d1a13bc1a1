//! The reference master: a SQLite job store behind the HTTPS API, plus failure detection.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ffrtmp::keys::{master_keyring, RoleKeyFiles};
use ffrtmp::{init_logging, parse_duration, shutdown_signal, LogFormat};
use ffrtmp_core::JobStore;
use ffrtmp_farm::MasterBuilder;
use ffrtmp_http::TlsSetup;
use ffrtmp_sched::placement::{spawn_efficiency_refresher, EnergyAwareConfig, PlacementKind};
use ffrtmp_sched::{PgStore, SchedConfig, SqliteStore};

/// ffrtmp master: schedules transcode jobs onto pull-based agents.
#[derive(Parser, Debug)]
#[command(name = "ffrtmp-master", version)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 8443, env = "MASTER_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "MASTER_BIND")]
    bind: IpAddr,
    /// Job store: a SQLite database file, or a `postgres://user@host:port/db` URL to share
    /// one PostgreSQL database between several masters.
    #[arg(long, default_value = "ffrtmp-master.db", env = "MASTER_DB")]
    db: PathBuf,
    /// One API key with every role, presented as `Authorization: Bearer <key>`. Visible in
    /// `ps` when given on the command line: prefer --api-key-file.
    #[arg(long, env = "MASTER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// File of API keys with every role, one per line (`#` comments, blank lines skipped).
    #[arg(long, env = "MASTER_API_KEY_FILE")]
    api_key_file: Option<PathBuf>,
    /// File of agent keys (register, heartbeat, claim, report), one per line; repeatable.
    #[arg(long, env = "MASTER_AGENT_KEY_FILE", value_delimiter = ',')]
    agent_key_file: Vec<PathBuf>,
    /// File of user keys (submit, list, cancel, retry, and every read), one per line; repeatable.
    #[arg(long, env = "MASTER_USER_KEY_FILE", value_delimiter = ',')]
    user_key_file: Vec<PathBuf>,
    /// File of read-only keys (GET routes and /metrics), one per line; repeatable.
    #[arg(long, env = "MASTER_READ_KEY_FILE", value_delimiter = ',')]
    read_key_file: Vec<PathBuf>,
    /// CA (PEM) that signs agents' client certificates; clients presenting a certificate it
    /// did not sign fail the TLS handshake.
    #[arg(long, env = "MASTER_CLIENT_CA", conflicts_with = "insecure_plaintext")]
    client_ca: Option<PathBuf>,
    /// Agent routes need a client certificate signed by --client-ca.
    #[arg(long, requires = "client_ca")]
    require_client_cert_for_agents: bool,
    /// Connections one client address may hold at once.
    #[arg(long, default_value_t = 256)]
    max_connections_per_ip: usize,
    /// A TLS handshake must finish within this time.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Request headers must arrive within this time; kept-alive connections idle this long close.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// A request body must arrive within this time (408 otherwise).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    body_read_timeout: Duration,
    /// Offline nodes silent for longer than this are deleted (0 keeps them forever).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    node_retention: Duration,
    /// Directory of the self-signed certificate (generated on first start). Default: beside the database.
    #[arg(long, env = "MASTER_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Extra names (host names or IPs) for the self-signed certificate, which also covers
    /// localhost and the --bind address. A stored self-signed certificate that lacks one is
    /// generated again (clients must then trust the new tls/cert.pem).
    #[arg(long = "tls-name")]
    tls_names: Vec<String>,
    /// Certificate chain (PEM) to use instead of a self-signed one.
    #[arg(long, requires = "tls_key", env = "MASTER_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert", env = "MASTER_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP. Only behind a TLS-terminating proxy.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_plaintext: bool,
    /// Heartbeat interval agents use; nodes silent for 3 intervals are lost.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Heartbeat intervals of silence after which a node is lost.
    #[arg(long, default_value_t = 3)]
    dead_after_intervals: u32,
    /// How often failure detection and retry backoff are checked.
    #[arg(long, default_value = "1s", value_parser = parse_duration, alias = "scheduler-interval")]
    sweep_interval: Duration,
    /// Base delay of job retries after transient failures (doubles per attempt, capped at 5 min).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    retry_base: Duration,
    /// Once listening, write the base URL here (useful with --port 0).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Queued jobs rise one priority level per this interval waited, so nothing starves.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    aging_interval: Duration,
    /// Completed jobs older than this are deleted (0 keeps them forever).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    retention: Duration,
    /// Placement policy: `default` (queue, priority and aging order) or `energy-aware`
    /// (nodes take the work they run for fewer joules per frame, from the efficiency table).
    #[arg(long, default_value = "default", value_name = "POLICY")]
    placement: PlacementKind,
    /// energy-aware: longest a job is left for a more efficient node, from queue entry.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    placement_max_wait: Duration,
    /// energy-aware: how often the efficiency table is rebuilt from the job history.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    placement_refresh: Duration,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// TOML file of settings, keyed by long flag name (`port = 8443`); flags and the
    /// environment override it.
    #[arg(long, env = "FFRTMP_MASTER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (flags, environment, config file, key files, TLS files, job
    /// store), print the outcome and exit: 0 when the master would start.
    #[arg(long)]
    check_config: bool,
    /// Print the completion script for a shell and exit.
    #[arg(long, value_enum, value_name = "SHELL")]
    completions: Option<ffrtmp::completions::Shell>,
    /// Directory of `ffrtmp bench` result sets (subdirectories with runs.json, or runs files)
    /// shown on the web dashboard's Bench tab, each compared against the one named `baseline`.
    #[arg(long, env = "MASTER_BENCH_RESULTS")]
    bench_results: Option<PathBuf>,
    /// Relative threshold of the dashboard's bench verdicts (`3%` or `0.03`).
    #[arg(long, default_value = "3%", value_parser = ffrtmp_bench::parse_threshold)]
    bench_threshold: f64,
    /// How often the dashboard's throughput and power charts are sampled (an hour is kept).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    dashboard_interval: Duration,
    /// Do not serve the web dashboard (`/ui/`, `/dashboard/*`).
    #[arg(long)]
    no_dashboard: bool,
    /// Flags of the original Go master.
    #[command(flatten)]
    go: ffrtmp::compat::MasterFlags,
}

/// The job history the energy-aware policy's efficiency table covers.
const EFFICIENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

fn main() -> std::process::ExitCode {
    ffrtmp::term::exit_status(run())
}

/// The names the self-signed certificate must cover besides the defaults: --tls-name, and the
/// --bind address, so that the URL the master listens on verifies. Bound to every address,
/// there is no one address to add: agents on other hosts need the name they use as --tls-name.
fn self_signed_names(args: &Args) -> Vec<String> {
    let mut names = args.tls_names.clone();
    if !args.bind.is_unspecified() {
        names.push(args.bind.to_string());
    } else if names.is_empty() {
        tracing::warn!(
            bind = %args.bind,
            "the self-signed certificate covers only localhost: pass --tls-name <the host name or IP agents use>"
        );
    }
    names
}

/// The job store `--db` names: a SQLite file, or a PostgreSQL URL.
async fn open_store(args: &Args, config: SchedConfig) -> anyhow::Result<Arc<dyn JobStore>> {
    let db = args.db.to_string_lossy().into_owned();
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let pg = PgStore::connect(&db, config)
            .await
            .context("connecting to PostgreSQL")?;
        tracing::info!(target = pg.target(), "job store: PostgreSQL");
        return Ok(Arc::new(pg));
    }
    let store = SqliteStore::open_with(&args.db, config)
        .with_context(|| format!("opening the job database {}", args.db.display()))?;
    Ok(Arc::new(store))
}

/// The TLS set-up the flags ask for.
fn tls_setup(args: &Args) -> TlsSetup {
    if args.insecure_plaintext {
        TlsSetup::Plaintext
    } else if let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) {
        TlsSetup::Files { cert, key }
    } else {
        let dir = args.tls_dir.clone().unwrap_or_else(|| {
            if args.db.to_string_lossy().contains("://") {
                return PathBuf::from("tls");
            }
            let parent = args.db.parent().filter(|p| !p.as_os_str().is_empty());
            parent.map(|p| p.join("tls")).unwrap_or_else(|| PathBuf::from("tls"))
        });
        TlsSetup::SelfSigned {
            dir,
            extra_names: self_signed_names(args),
        }
    }
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let args: Args = ffrtmp::config::parse("FFRTMP_MASTER_CONFIG")?;
    if let Some(shell) = args.completions {
        ffrtmp::completions::print::<Args>(shell)?;
        return Ok(());
    }
    args.go.check::<Args>();
    init_logging(args.log_format);
    let key_files = RoleKeyFiles {
        all: args.api_key_file.clone(),
        agent: args.agent_key_file.clone(),
        user: args.user_key_file.clone(),
        read: args.read_key_file.clone(),
    };
    let keys = master_keyring(args.api_key.as_deref(), &key_files)?;
    let (placement, efficiency) = args.placement.build(EnergyAwareConfig {
        max_wait: args.placement_max_wait,
        ..EnergyAwareConfig::default()
    });
    let config = SchedConfig {
        heartbeat_interval: args.heartbeat_interval,
        dead_after_intervals: args.dead_after_intervals.max(1),
        job_backoff: ffrtmp_core::Backoff {
            base: args.retry_base,
            ..ffrtmp_core::Backoff::JOB
        },
        aging_interval: args.aging_interval.max(Duration::from_millis(1)),
        retention: (!args.retention.is_zero()).then_some(args.retention),
        node_retention: (!args.node_retention.is_zero()).then_some(args.node_retention),
        placement,
        ..SchedConfig::default()
    };
    if args.check_config {
        check::master(&args, keys.len(), config).await?;
        return Ok(());
    }
    let store = open_store(&args, config).await?;
    tracing::info!(placement = args.placement.as_str(), "placement policy");
    if let Some(table) = efficiency {
        spawn_efficiency_refresher(store.clone(), table, args.placement_refresh, EFFICIENCY_WINDOW);
    }
    let tls = tls_setup(&args);
    if tls == TlsSetup::Plaintext {
        tracing::warn!("TLS is off (--insecure-plaintext): keys and jobs travel in clear text");
    }
    let addr = SocketAddr::new(args.bind, args.port);
    let master = MasterBuilder::new(store, tls)
        .addr(addr)
        .keys(keys)
        .sweep_interval(args.sweep_interval)
        .server_config(|c| {
            c.client_ca = args.client_ca.clone();
            c.require_client_cert_for_agents = args.require_client_cert_for_agents;
            c.limits.per_ip = args.max_connections_per_ip.max(1);
            c.limits.body_read_timeout = args.body_read_timeout;
            c.limits.handshake_timeout = args.handshake_timeout;
            c.limits.header_read_timeout = args.header_read_timeout;
            c.dashboard.enabled = !args.no_dashboard;
            c.dashboard.sample_interval = args.dashboard_interval;
            c.dashboard.bench = args
                .bench_results
                .clone()
                .map(|dir| Arc::new(ffrtmp_bench::dashboard::BenchDir::new(dir, args.bench_threshold)) as _);
        })
        .build()
        .await
        .with_context(|| format!("starting the API server on {addr}"))?;
    tracing::info!(url = %master.base_url(), "master listening");
    if let Some(path) = &args.ready_file {
        // Write then rename, so a reader never sees a partial URL.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, master.base_url()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    master.run(shutdown_signal()).await.context("serving")?;
    tracing::info!("master stopped");
    Ok(())
}

/// `--check-config`: everything the master reads before it serves, without serving.
mod check {
    use super::*;

    pub(super) async fn master(args: &Args, keys: usize, config: SchedConfig) -> anyhow::Result<()> {
        let db = args.db.to_string_lossy().into_owned();
        if db.contains("://") || args.db.exists() {
            open_store(args, config).await?;
        } else {
            // A missing SQLite file is created on start: its directory must take it.
            let parent = args
                .db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            tempfile::NamedTempFile::new_in(parent).with_context(|| {
                format!(
                    "the job database {} cannot be created in {}",
                    args.db.display(),
                    parent.display()
                )
            })?;
        }
        let client_ca = args.client_ca.as_deref();
        let scratch = tempfile::tempdir().context("creating a temporary directory")?;
        let tls = match tls_setup(args) {
            TlsSetup::SelfSigned { dir, .. } if dir.join("cert.pem").exists() => TlsSetup::Files {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            },
            // Generated on first start; the client CA is still checked, against a throw-away certificate.
            TlsSetup::SelfSigned { .. } => TlsSetup::self_signed(scratch.path()),
            other => other,
        };
        tls.server_config_with_client_ca(client_ca).context("TLS")?;
        // No key at all was refused by master_keyring already. A URL may hold a password.
        let store = if db.contains("://") {
            "PostgreSQL".to_string()
        } else {
            args.db.display().to_string()
        };
        println!("configuration OK: {keys} API keys, job store {store}");
        Ok(())
    }
}
