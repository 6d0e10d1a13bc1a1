//! The load harness behind `ffrtmp bench load`: no-op job lifecycles (submit → claim →
//! complete) per second in-process and over HTTPS on loopback, the enqueue-to-claim latency
//! of idle long-polling agents, and raw SQLite durable transactions per second measured in
//! the same run as the baseline.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{BenchError, Context, Result};
use ffrtmp_core::{
    Assignment, ClaimRequest, JobEvent, JobId, JobReport, JobResult, JobSpec, JobStore, NodeRegistration, Transport,
};
use ffrtmp_http::{ApiClient, ClientConfig, HttpTransport, Server, ServerConfig, TlsSetup};
use ffrtmp_sched::{SchedConfig, SqliteStore, StoreTransport};

/// Concurrent submitting clients in the throughput runs unless told otherwise.
pub const DEFAULT_SUBMITTERS: usize = 32;

/// What one run measured.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadReport {
    /// Raw SQLite single-row durable update transactions per second (the baseline).
    pub raw_sqlite_tx_per_s: f64,
    /// Lifecycles per second with agents calling the store in-process.
    pub in_process_per_s: f64,
    /// Lifecycles per second with agents and submitters over HTTPS on loopback.
    pub https_per_s: f64,
    /// Median enqueue-to-claim latency with idle long-polling agents, milliseconds.
    pub claim_latency_p50_ms: f64,
    /// 99th percentile of the same.
    pub claim_latency_p99_ms: f64,
    /// Mean number of writes committed per transaction in the in-process run (group commit).
    pub in_process_mean_group: f64,
    /// The same in the HTTPS run.
    #[serde(default)]
    pub https_mean_group: f64,
    /// Mean number of writes made durable by one WAL flush in the in-process run (0 when
    /// commits are not durable).
    #[serde(default)]
    pub in_process_writes_per_flush: f64,
    /// The same in the HTTPS run.
    #[serde(default)]
    pub https_writes_per_flush: f64,
    /// CPU time (user + system, all threads) of this process per lifecycle in-process, ms.
    #[serde(default)]
    pub in_process_cpu_ms: f64,
    /// The same over HTTPS (client and server both run in this process).
    #[serde(default)]
    pub https_cpu_ms: f64,
    /// Where the HTTPS run's requests went: per route, requests and mean server time.
    #[serde(default)]
    pub https_routes: Vec<RouteTime>,
    /// Jobs per throughput run.
    pub jobs: usize,
    /// Concurrent agents.
    pub agents: usize,
    /// Concurrent submitting clients.
    #[serde(default)]
    pub submitters: usize,
    /// Whether commits were durable (`synchronous=FULL`).
    pub durable: bool,
}

/// Requests of one route in the HTTPS run and the server's mean time to answer them.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RouteTime {
    /// Route template, e.g. `/jobs/{id}/report`.
    pub route: String,
    /// Requests answered.
    pub requests: u64,
    /// Mean time from the request's arrival to its answer, ms.
    pub mean_ms: f64,
}

/// CPU time (user + system) this process has used so far, seconds.
fn cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// Load parameters.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Jobs per throughput run.
    pub jobs: usize,
    /// Concurrent agents.
    pub agents: usize,
    /// Most jobs one claim takes.
    pub batch: u32,
    /// Durable commits.
    pub durable: bool,
    /// Submissions timed for the latency figure.
    pub latency_samples: usize,
    /// Concurrent submitting clients in the throughput runs, each submitting one job at a
    /// time: the offered load (too few leave a master waiting on its clients).
    pub submitters: usize,
}

fn registration(i: usize, slots: u32) -> NodeRegistration {
    NodeRegistration {
        name: format!("load-{i}"),
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: slots,
        encoders: Vec::new(),
        engines: vec!["noop".into()],
        version: env!("CARGO_PKG_VERSION").into(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    }
}

fn sched_config(durable: bool) -> SchedConfig {
    SchedConfig {
        durable,
        retention: None,
        ..SchedConfig::default()
    }
}

async fn agent_loop(transport: Arc<dyn Transport>, index: usize, batch: u32, target: usize, done: Arc<Mutex<usize>>) {
    let node = transport.register(&registration(index, batch)).await.expect("register");
    loop {
        if *done.lock().unwrap() >= target {
            return;
        }
        let got = match transport
            .claim(&ClaimRequest {
                node_id: node.id,
                claim_id: uuid_like(),
                max_jobs: batch,
                wait_ms: 200,
            })
            .await
        {
            Ok(g) => g,
            Err(e) => panic!("claim failed: {e}"),
        };
        let n = got.len();
        let reports: Vec<_> = got
            .into_iter()
            .map(|a: Assignment| {
                let t = transport.clone();
                tokio::spawn(async move {
                    t.report(&JobReport {
                        job_id: a.job.id,
                        node_id: node.id,
                        attempt: a.job.attempt,
                        event: JobEvent::Completed {
                            result: JobResult::default(),
                        },
                    })
                    .await
                    .expect("report")
                })
            })
            .collect();
        for r in reports {
            r.await.expect("report task");
        }
        *done.lock().unwrap() += n;
    }
}

fn uuid_like() -> String {
    JobId::new().to_string()
}

async fn throughput(
    submit: Arc<dyn Fn(JobSpec) -> futures_lite::BoxFuture<()> + Send + Sync>,
    transports: Vec<Arc<dyn Transport>>,
    cfg: &LoadConfig,
) -> f64 {
    let done = Arc::new(Mutex::new(0usize));
    let start = Instant::now();
    let mut agents = Vec::new();
    for (i, t) in transports.into_iter().enumerate() {
        agents.push(tokio::spawn(agent_loop(t, i, cfg.batch, cfg.jobs, done.clone())));
    }
    let submitters: Vec<_> = (0..cfg.submitters)
        .map(|_| {
            let submit = submit.clone();
            let n = cfg.jobs / cfg.submitters;
            tokio::spawn(async move {
                for _ in 0..n {
                    submit(JobSpec::new("720p-h264")).await;
                }
            })
        })
        .collect();
    for s in submitters {
        s.await.expect("submitter");
    }
    for a in agents {
        a.await.expect("agent");
    }
    (cfg.jobs / cfg.submitters * cfg.submitters) as f64 / start.elapsed().as_secs_f64()
}

/// Small boxed-future helper so the submit path can be either the store or the HTTPS API.
mod futures_lite {
    pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
}

/// Runs the whole harness in a scratch directory.
pub async fn run(cfg: LoadConfig, dir: &Path) -> Result<LoadReport> {
    let submitters = cfg.submitters.max(1);
    let cfg = LoadConfig {
        jobs: cfg.jobs.max(submitters) / submitters * submitters,
        submitters,
        ..cfg
    };
    let raw = ffrtmp_sched::baseline::raw_update_tx_per_s(dir, 2000, cfg.durable)?;

    // In-process.
    let store = Arc::new(SqliteStore::open_with(
        &dir.join("inproc.db"),
        sched_config(cfg.durable),
    )?);
    let s = store.clone();
    let submit: Arc<dyn Fn(JobSpec) -> futures_lite::BoxFuture<()> + Send + Sync> = Arc::new(move |spec| {
        let s = s.clone();
        Box::pin(async move {
            s.submit(spec).await.expect("submit");
        })
    });
    let transports: Vec<Arc<dyn Transport>> = (0..cfg.agents)
        .map(|_| Arc::new(StoreTransport::new(store.clone())) as Arc<dyn Transport>)
        .collect();
    let cpu = cpu_s();
    let in_process = throughput(submit, transports, &cfg).await;
    let in_process_cpu_ms = (cpu_s() - cpu) * 1000.0 / cfg.jobs as f64;
    let (ops, groups) = store.write_counts();
    let mean_group = ops as f64 / groups.max(1) as f64;
    let per_flush = |ops: u64, flushes: u64| if flushes == 0 { 0.0 } else { ops as f64 / flushes as f64 };
    let in_process_writes_per_flush = per_flush(ops, store.flush_count());

    // HTTPS on loopback.
    let key = "load-harness-key-0123456789abcdef";
    let https_store = Arc::new(SqliteStore::open_with(
        &dir.join("https.db"),
        sched_config(cfg.durable),
    )?);
    let server = Server::bind(ServerConfig::new(
        "127.0.0.1:0".parse()?,
        TlsSetup::self_signed(dir.join("tls")),
        key,
        https_store.clone() as Arc<dyn JobStore>,
    ))
    .await
    .context("starting the HTTPS server")?;
    let url = server.base_url();
    let metrics = server.metrics();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let client = |timeout: Duration| {
        let mut c = ClientConfig::new(url.clone(), key);
        c.ca_cert = Some(dir.join("tls").join("cert.pem"));
        c.request_timeout = timeout;
        c
    };
    let api = Arc::new(ApiClient::new(client(Duration::from_secs(30)))?);
    let a = api.clone();
    let submit: Arc<dyn Fn(JobSpec) -> futures_lite::BoxFuture<()> + Send + Sync> = Arc::new(move |spec| {
        let a = a.clone();
        Box::pin(async move {
            a.submit(&spec).await.expect("submit over HTTPS");
        })
    });
    let mut transports: Vec<Arc<dyn Transport>> = Vec::new();
    for _ in 0..cfg.agents {
        transports.push(Arc::new(HttpTransport::new(client(Duration::from_secs(30)))?));
    }
    let (ops, groups) = https_store.write_counts();
    let flushes = https_store.flush_count();
    let cpu = cpu_s();
    let https = throughput(submit, transports, &cfg).await;
    let https_cpu_ms = (cpu_s() - cpu) * 1000.0 / cfg.jobs as f64;
    let (ops_after, groups_after) = https_store.write_counts();
    let https_mean_group = (ops_after - ops) as f64 / (groups_after - groups).max(1) as f64;
    let https_writes_per_flush = per_flush(ops_after - ops, https_store.flush_count() - flushes);
    let https_routes = metrics
        .route_totals()
        .into_iter()
        .filter(|(_, n, _)| *n > 0)
        .map(|(route, requests, sum)| RouteTime {
            route: route.to_string(),
            requests,
            mean_ms: sum * 1000.0 / requests as f64,
        })
        .collect();

    // Latency: idle agents long-poll; submit one job at a time and time until a claim has it.
    let claimed: Arc<Mutex<HashMap<JobId, Instant>>> = Arc::default();
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut waiters = Vec::new();
    for i in 0..cfg.agents {
        let t: Arc<dyn Transport> = Arc::new(HttpTransport::new(client(Duration::from_secs(30)))?);
        let claimed = claimed.clone();
        let notify = notify.clone();
        waiters.push(tokio::spawn(async move {
            let node = t.register(&registration(100 + i, 1)).await.expect("register");
            loop {
                let got = t
                    .claim(&ClaimRequest {
                        node_id: node.id,
                        claim_id: uuid_like(),
                        max_jobs: 1,
                        wait_ms: 5_000,
                    })
                    .await
                    .expect("claim");
                let now = Instant::now();
                for a in got {
                    claimed.lock().unwrap().insert(a.job.id, now);
                    notify.notify_waiters();
                    t.report(&JobReport {
                        job_id: a.job.id,
                        node_id: node.id,
                        attempt: a.job.attempt,
                        event: JobEvent::Completed {
                            result: JobResult::default(),
                        },
                    })
                    .await
                    .expect("report");
                }
            }
        }));
    }
    // Let every agent reach its long poll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::with_capacity(cfg.latency_samples);
    for _ in 0..cfg.latency_samples {
        let t0 = Instant::now();
        let job = api.submit(&JobSpec::new("720p-h264")).await?;
        let deadline = t0 + Duration::from_secs(10);
        let at = loop {
            let wait = notify.notified();
            if let Some(at) = claimed.lock().unwrap().get(&job.id).copied() {
                break at;
            }
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "job {} was not claimed within 10 s",
                    job.id
                )));
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), wait).await;
        };
        latencies.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    for w in waiters {
        w.abort();
    }
    let _ = stop.send(());
    let _ = serving.await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok(LoadReport {
        raw_sqlite_tx_per_s: raw,
        in_process_per_s: in_process,
        in_process_mean_group: mean_group,
        https_mean_group,
        in_process_writes_per_flush,
        https_writes_per_flush,
        in_process_cpu_ms,
        https_cpu_ms,
        https_routes,
        https_per_s: https,
        claim_latency_p50_ms: pct(0.5),
        claim_latency_p99_ms: pct(0.99),
        jobs: cfg.jobs,
        agents: cfg.agents,
        submitters: cfg.submitters,
        durable: cfg.durable,
    })
}
