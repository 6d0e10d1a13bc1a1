//! The reference master: a SQLite job store behind the HTTPS API, plus failure detection.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use ffrtmp::{init_logging, parse_duration, shutdown_signal, LogFormat};
use ffrtmp_core::JobStore;
use ffrtmp_http::{Server, ServerConfig, TlsSetup};
use ffrtmp_sched::{spawn_sweeper, PgStore, SchedConfig, SqliteStore};

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
    /// API key agents and users must present as `Authorization: Bearer <key>`.
    #[arg(long, env = "MASTER_API_KEY", hide_env_values = true)]
    api_key: String,
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
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Flags of the original Go master.
    #[command(flatten)]
    go: ffrtmp::compat::MasterFlags,
}

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

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    args.go.check::<Args>();
    init_logging(args.log_format);
    if args.api_key.len() < 16 {
        bail!("--api-key must be at least 16 characters");
    }
    let config = SchedConfig {
        heartbeat_interval: args.heartbeat_interval,
        dead_after_intervals: args.dead_after_intervals.max(1),
        job_backoff: ffrtmp_core::Backoff {
            base: args.retry_base,
            ..ffrtmp_core::Backoff::JOB
        },
        aging_interval: args.aging_interval.max(Duration::from_millis(1)),
        retention: (!args.retention.is_zero()).then_some(args.retention),
        ..SchedConfig::default()
    };
    let db = args.db.to_string_lossy().into_owned();
    let store: Arc<dyn JobStore> = if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        let pg = PgStore::connect(&db, config)
            .await
            .context("connecting to PostgreSQL")?;
        tracing::info!(target = pg.target(), "job store: PostgreSQL");
        Arc::new(pg)
    } else {
        let store = SqliteStore::open_with(&args.db, config)
            .with_context(|| format!("opening the job database {}", args.db.display()))?;
        Arc::new(store)
    };

    let tls = if args.insecure_plaintext {
        tracing::warn!("TLS is off (--insecure-plaintext): keys and jobs travel in clear text");
        TlsSetup::Plaintext
    } else if let (Some(cert), Some(key)) = (args.tls_cert.clone(), args.tls_key.clone()) {
        TlsSetup::Files { cert, key }
    } else {
        let dir = args.tls_dir.clone().unwrap_or_else(|| {
            if db.contains("://") {
                return PathBuf::from("tls");
            }
            let parent = args.db.parent().filter(|p| !p.as_os_str().is_empty());
            parent.map(|p| p.join("tls")).unwrap_or_else(|| PathBuf::from("tls"))
        });
        TlsSetup::SelfSigned {
            dir,
            extra_names: self_signed_names(&args),
        }
    };
    let addr = SocketAddr::new(args.bind, args.port);
    let server = Server::bind(ServerConfig::new(addr, tls, args.api_key.clone(), store.clone()))
        .await
        .with_context(|| format!("starting the API server on {addr}"))?;
    tracing::info!(url = %server.base_url(), "master listening");
    if let Some(path) = &args.ready_file {
        // Write then rename, so a reader never sees a partial URL.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, server.base_url()).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    }
    let sweeper = spawn_sweeper(store, args.sweep_interval);
    server.run(shutdown_signal()).await.context("serving")?;
    sweeper.abort();
    tracing::info!("master stopped");
    Ok(())
}
