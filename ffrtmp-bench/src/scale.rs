//! The scale harness behind `ffrtmp bench scale`: fills a store to growing numbers of queued
//! jobs and measures, at each size, what must not grow with the queue: submit and claim
//! latency (by a node that can run none of the queued jobs and by one that can), the
//! store's sweep pass, filtered `GET /jobs` listings and the master's resident memory, all
//! against a real master serving HTTPS on loopback in this process, with idle agents
//! long-polling throughout.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{
    ClaimRequest, EngineChoice, JobEvent, JobId, JobQuery, JobReport, JobResult, JobSpec, JobState, JobStore,
    NodeRegistration, Queue, Transport,
};
use ffrtmp_http::{ApiClient, ClientConfig, HttpTransport, Server, ServerConfig, TlsSetup};

use crate::error::{BenchError, Context, Result};

/// The largest queue ratio the goals allow between the largest and the smallest size.
pub const RATIO_GOAL: f64 = 2.0;
/// Longest sweep pass (p99, milliseconds) allowed at the largest size.
pub const SWEEP_GOAL_MS: f64 = 5.0;
/// Most master resident memory (MB) allowed at the largest size.
pub const RSS_GOAL_MB: f64 = 150.0;

const KEY: &str = "scale-harness-key-0123456789abcdef";

/// Scale parameters.
#[derive(Clone, Debug)]
pub struct ScaleConfig {
    /// Queued jobs at each measuring point, ascending (e.g. 1 000, 10 000, 100 000, 1 000 000).
    pub sizes: Vec<usize>,
    /// Timed requests per figure and size.
    pub samples: usize,
    /// Agents that can run none of the queued jobs, long-polling the whole time.
    pub idle_agents: usize,
    /// Submissions in flight at once while filling.
    pub fill_parallel: usize,
}

impl ScaleConfig {
    /// The default sizes: 1k, 10k, 100k and 1M queued jobs.
    pub const DEFAULT_SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
}

/// What one size measured. Latencies are milliseconds, client-side over HTTPS, except the
/// sweep, which is the store's own pass timed in the master's process.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScaleRow {
    /// Queued jobs when the measurements began.
    pub queued: usize,
    /// Seconds it took to add the jobs since the previous size.
    pub fill_s: f64,
    /// Jobs added per second while filling.
    pub fill_per_s: f64,
    /// Median `POST /jobs`.
    pub submit_p50_ms: f64,
    /// 99th percentile of the same.
    pub submit_p99_ms: f64,
    /// Median claim by a node that can run none of the queued jobs (it gets nothing).
    pub claim_idle_p50_ms: f64,
    /// 99th percentile of the same.
    pub claim_idle_p99_ms: f64,
    /// Median claim of one job by a node that can run the queued jobs.
    pub claim_busy_p50_ms: f64,
    /// 99th percentile of the same.
    pub claim_busy_p99_ms: f64,
    /// Median sweep pass.
    pub sweep_p50_ms: f64,
    /// 99th percentile of the same.
    pub sweep_p99_ms: f64,
    /// Median `GET /jobs` filtered by queue, by state, or by both (in turn).
    pub list_p50_ms: f64,
    /// 99th percentile of the same.
    pub list_p99_ms: f64,
    /// The master's resident memory (this process's `VmRSS`) after the measurements, MB.
    pub rss_mb: f64,
}

impl ScaleRow {
    /// The figures that must not grow with the queue, by name (the JSON field names).
    pub fn figures(&self) -> [(&'static str, f64); 11] {
        [
            ("submit_p50_ms", self.submit_p50_ms),
            ("submit_p99_ms", self.submit_p99_ms),
            ("claim_idle_p50_ms", self.claim_idle_p50_ms),
            ("claim_idle_p99_ms", self.claim_idle_p99_ms),
            ("claim_busy_p50_ms", self.claim_busy_p50_ms),
            ("claim_busy_p99_ms", self.claim_busy_p99_ms),
            ("sweep_p50_ms", self.sweep_p50_ms),
            ("sweep_p99_ms", self.sweep_p99_ms),
            ("list_p50_ms", self.list_p50_ms),
            ("list_p99_ms", self.list_p99_ms),
            ("rss_mb", self.rss_mb),
        ]
    }
}

/// One figure at the largest size against the same at the smallest.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Ratio {
    /// The figure's name, as in [`ScaleRow::figures`].
    pub figure: String,
    /// Its value at the smallest size.
    pub smallest: f64,
    /// Its value at the largest size.
    pub largest: f64,
    /// `largest / smallest`.
    pub ratio: f64,
    /// Whether the ratio is within [`RATIO_GOAL`].
    pub ok: bool,
}

/// A goal and whether the run met it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Goal {
    /// What the goal asks, in words.
    pub goal: String,
    /// The measured value.
    pub value: f64,
    /// The limit it must not exceed.
    pub limit: f64,
    /// Whether `value <= limit`.
    pub met: bool,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScaleReport {
    /// Which store (`sqlite`, or `postgres` with the database).
    pub store: String,
    /// Timed requests per figure and size.
    pub samples: usize,
    /// Idle long-polling agents during the measurements.
    pub idle_agents: usize,
    /// One row per size, ascending.
    pub rows: Vec<ScaleRow>,
    /// Each figure at the largest size against the smallest (empty with a single size).
    pub ratios: Vec<Ratio>,
    /// The goals: every ratio, the sweep and the memory at the largest size.
    pub goals: Vec<Goal>,
}

/// Ratios and goals of `rows` (ascending sizes).
pub fn judge(rows: &[ScaleRow]) -> (Vec<Ratio>, Vec<Goal>) {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return (Vec::new(), Vec::new());
    };
    let mut ratios = Vec::new();
    if rows.len() > 1 {
        for ((figure, smallest), (_, largest)) in first.figures().into_iter().zip(last.figures()) {
            // A figure of 0 (below the clock's resolution) counts as flat.
            let ratio = if smallest > 0.0 { largest / smallest } else { 1.0 };
            ratios.push(Ratio {
                figure: figure.to_string(),
                smallest,
                largest,
                ratio,
                ok: ratio <= RATIO_GOAL,
            });
        }
    }
    let worst = ratios.iter().map(|r| r.ratio).fold(0.0, f64::max);
    let mut goals = Vec::new();
    if !ratios.is_empty() {
        goals.push(goal(format!("every ratio <= {RATIO_GOAL}"), worst, RATIO_GOAL));
    }
    goals.push(goal(
        format!("sweep p99 <= {SWEEP_GOAL_MS} ms at {} queued", last.queued),
        last.sweep_p99_ms,
        SWEEP_GOAL_MS,
    ));
    goals.push(goal(
        format!("master RSS <= {RSS_GOAL_MB} MB at {} queued", last.queued),
        last.rss_mb,
        RSS_GOAL_MB,
    ));
    (ratios, goals)
}

fn goal(goal: String, value: f64, limit: f64) -> Goal {
    Goal {
        goal,
        value,
        limit,
        met: value <= limit,
    }
}

/// The spec every queued job has: pinned to GStreamer, so the idle agents (FFmpeg only) can
/// run none of them, spread over the three queues so the queue filter selects a third.
fn queued_spec(i: usize) -> JobSpec {
    let mut spec = JobSpec::new("720p-h264");
    spec.engine = EngineChoice::Gstreamer;
    spec.queue = [Queue::Live, Queue::Default, Queue::Batch][i % 3];
    spec
}

fn registration(name: String, engine: &str, slots: u32) -> NodeRegistration {
    NodeRegistration {
        name,
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: slots,
        encoders: Vec::new(),
        engines: vec![engine.into()],
        version: env!("CARGO_PKG_VERSION").into(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    }
}

/// Adds `count` queued jobs with `parallel` submissions in flight, so the store commits them
/// in groups.
async fn fill(store: &Arc<dyn JobStore>, from: usize, count: usize, parallel: usize) -> Result<()> {
    let parallel = parallel.clamp(1, count.max(1));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..parallel {
        let store = store.clone();
        tasks.spawn(async move {
            let mut i = w;
            while i < count {
                store.submit(queued_spec(from + i)).await?;
                i += parallel;
            }
            Ok::<(), BenchError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| BenchError::invalid(format!("a fill task failed: {e}")))??;
    }
    Ok(())
}

/// `p`-quantile (0..=1) of `values` (sorted here), nearest rank.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// This process's resident memory in MB, from `/proc/self/status`.
pub fn rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .ok_or_else(|| BenchError::invalid("no VmRSS line in /proc/self/status"))?;
    Ok(kb / 1024.0)
}

/// The clients of one run: the user API, a node that can run nothing, one that can run
/// everything queued.
struct Clients {
    api: ApiClient,
    idle: Arc<dyn Transport>,
    idle_id: ffrtmp_core::NodeId,
    busy: Arc<dyn Transport>,
    busy_id: ffrtmp_core::NodeId,
}

async fn measure(store: &Arc<dyn JobStore>, c: &Clients, samples: usize, next: &mut usize) -> Result<[f64; 10]> {
    let (mut submit, mut idle, mut busy, mut sweep, mut list) = (vec![], vec![], vec![], vec![], vec![]);
    for i in 0..samples {
        let t = Instant::now();
        c.api
            .submit(&queued_spec(*next))
            .await
            .context("submitting over HTTPS")?;
        submit.push(ms(t));
        *next += 1;

        let t = Instant::now();
        let got = c
            .idle
            .claim(&claim(c.idle_id, 1))
            .await
            .context("claiming (idle node)")?;
        idle.push(ms(t));
        if !got.is_empty() {
            return Err(BenchError::invalid(
                "a node without GStreamer was given a GStreamer job",
            ));
        }

        let t = Instant::now();
        let got = c
            .busy
            .claim(&claim(c.busy_id, 1))
            .await
            .context("claiming (able node)")?;
        busy.push(ms(t));
        let Some(a) = got.into_iter().next() else {
            return Err(BenchError::invalid("a node able to run the queued jobs got none"));
        };
        c.busy
            .report(&JobReport {
                job_id: a.job.id,
                node_id: c.busy_id,
                attempt: a.job.attempt,
                event: JobEvent::Completed {
                    result: JobResult::default(),
                },
            })
            .await
            .context("reporting a claimed job")?;

        let query = JobQuery {
            queue: (i % 3 != 1).then_some(Queue::Batch),
            state: (i % 3 != 0).then_some(JobState::Queued),
            limit: Some(100),
            ..JobQuery::default()
        };
        let t = Instant::now();
        let page = c.api.list(&query).await.context("listing jobs over HTTPS")?;
        list.push(ms(t));
        if page.jobs.is_empty() {
            return Err(BenchError::invalid("a filtered listing of a full queue was empty"));
        }

        let t = Instant::now();
        store.sweep().await.context("sweeping")?;
        sweep.push(ms(t));
    }
    Ok([
        percentile(&mut submit, 0.5),
        percentile(&mut submit, 0.99),
        percentile(&mut idle, 0.5),
        percentile(&mut idle, 0.99),
        percentile(&mut busy, 0.5),
        percentile(&mut busy, 0.99),
        percentile(&mut sweep, 0.5),
        percentile(&mut sweep, 0.99),
        percentile(&mut list, 0.5),
        percentile(&mut list, 0.99),
    ])
}

fn claim(node_id: ffrtmp_core::NodeId, max_jobs: u32) -> ClaimRequest {
    ClaimRequest {
        node_id,
        claim_id: JobId::new().to_string(),
        max_jobs,
        wait_ms: 0,
    }
}

/// Agents that can run none of the queued jobs, each long-polling in a loop until aborted.
async fn idle_agents(client: &dyn Fn() -> Result<ClientConfig>, n: usize) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut agents = Vec::new();
    for i in 0..n {
        let t = HttpTransport::new(client()?)?;
        let node = t
            .register(&registration(format!("scale-idle-{i}"), "ffmpeg", 4))
            .await
            .context("registering an idle agent")?;
        agents.push(tokio::spawn(async move {
            loop {
                let request = ClaimRequest {
                    wait_ms: 5_000,
                    ..claim(node.id, 4)
                };
                if t.claim(&request).await.is_err() {
                    // The server is going away at the end of the run.
                    return;
                }
            }
        }));
    }
    Ok(agents)
}

/// Brings a store to a steady state after a fill, before it is measured (PostgreSQL:
/// `VACUUM (ANALYZE)` and a checkpoint, which autovacuum and the checkpointer would otherwise
/// run at some moment of the measurement); resolves to a line saying what it did.
pub type Settle = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String>> + Send>> + Send + Sync>;

/// Runs the harness on `store`, which must hold no jobs; `dir` holds the master's TLS files.
/// `settle`, when given, runs after each fill; `progress` is told what happens (one line
/// per step).
pub async fn run(
    store: Arc<dyn JobStore>,
    store_name: &str,
    cfg: ScaleConfig,
    dir: &Path,
    settle: Option<Settle>,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<ScaleReport> {
    let mut sizes = cfg.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.is_empty() || sizes[0] == 0 {
        return Err(BenchError::invalid(
            "sizes must be one or more positive numbers of jobs",
        ));
    }
    let existing = store
        .list(&JobQuery {
            limit: Some(1),
            ..JobQuery::default()
        })
        .await?;
    if !existing.jobs.is_empty() {
        return Err(BenchError::invalid(
            "the store already holds jobs: bench scale needs an empty scratch store",
        ));
    }
    let samples = cfg.samples.max(1);
    let server = Server::bind(ServerConfig::new(
        "127.0.0.1:0".parse()?,
        TlsSetup::self_signed(dir.join("tls")),
        KEY,
        store.clone(),
    ))
    .await
    .context("starting the HTTPS server")?;
    let url = server.base_url();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let ca = dir.join("tls").join("cert.pem");
    let client = move || -> Result<ClientConfig> {
        let mut c = ClientConfig::new(url.clone(), KEY).with_ca_cert(ca.clone());
        c.request_timeout = Duration::from_secs(60);
        Ok(c)
    };
    let agents = idle_agents(&client, cfg.idle_agents).await?;
    let idle: Arc<dyn Transport> = Arc::new(HttpTransport::new(client()?)?);
    let busy: Arc<dyn Transport> = Arc::new(HttpTransport::new(client()?)?);
    let clients = Clients {
        api: ApiClient::new(client()?)?,
        idle_id: idle.register(&registration("scale-idle".into(), "ffmpeg", 1)).await?.id,
        busy_id: busy
            .register(&registration("scale-able".into(), "gstreamer", 1))
            .await?
            .id,
        idle,
        busy,
    };
    let fill = Fill {
        parallel: cfg.fill_parallel,
        settle,
    };
    let result = measure_sizes(&store, &clients, &sizes, samples, &fill, progress).await;
    for a in agents {
        a.abort();
    }
    let _ = stop.send(());
    let _ = serving.await;
    let rows = result?;
    let (ratios, goals) = judge(&rows);
    Ok(ScaleReport {
        store: store_name.to_string(),
        samples,
        idle_agents: cfg.idle_agents,
        rows,
        ratios,
        goals,
    })
}

/// How the store is filled between sizes.
struct Fill {
    parallel: usize,
    settle: Option<Settle>,
}

async fn measure_sizes(
    store: &Arc<dyn JobStore>,
    clients: &Clients,
    sizes: &[usize],
    samples: usize,
    how: &Fill,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<ScaleRow>> {
    // Each sample submits one job and the able node takes one: the queue stays at its size.
    let mut queued = 0usize;
    let mut next = 0usize;
    let mut rows = Vec::new();
    for &size in sizes {
        let add = size - queued;
        progress(&format!("filling to {size} queued jobs (+{add})"));
        let t = Instant::now();
        fill(store, next, add, how.parallel)
            .await
            .context("filling the store")?;
        let fill_s = t.elapsed().as_secs_f64();
        if let Some(settle) = &how.settle {
            let t = Instant::now();
            let did = settle().await.context("settling the store after the fill")?;
            progress(&format!("settled: {did} ({:.1} s)", t.elapsed().as_secs_f64()));
        }
        next += add;
        queued = size;
        progress(&format!("measuring at {size} queued ({fill_s:.1} s to fill)"));
        let m = measure(store, clients, samples, &mut next).await?;
        rows.push(ScaleRow {
            queued: size,
            fill_s,
            fill_per_s: add as f64 / fill_s.max(1e-9),
            submit_p50_ms: m[0],
            submit_p99_ms: m[1],
            claim_idle_p50_ms: m[2],
            claim_idle_p99_ms: m[3],
            claim_busy_p50_ms: m[4],
            claim_busy_p99_ms: m[5],
            sweep_p50_ms: m[6],
            sweep_p99_ms: m[7],
            list_p50_ms: m[8],
            list_p99_ms: m[9],
            rss_mb: rss_mb()?,
        });
        // A long run's early sizes stay visible even if a later size is interrupted.
        if let Some(row) = rows.last() {
            let figures: Vec<String> = row.figures().iter().map(|(n, v)| format!("{n}={v:.2}")).collect();
            progress(&format!("at {size} queued: {}", figures.join(" ")));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(queued: usize, scale: f64) -> ScaleRow {
        ScaleRow {
            queued,
            fill_s: 1.0,
            fill_per_s: queued as f64,
            submit_p50_ms: 2.0 * scale,
            submit_p99_ms: 4.0,
            claim_idle_p50_ms: 0.0,
            claim_idle_p99_ms: 1.0,
            claim_busy_p50_ms: 1.0,
            claim_busy_p99_ms: 1.0,
            sweep_p50_ms: 1.0,
            sweep_p99_ms: 6.0,
            list_p50_ms: 1.0,
            list_p99_ms: 1.0,
            rss_mb: 40.0 * scale,
        }
    }

    #[test]
    fn ratios_compare_the_largest_size_with_the_smallest() {
        let (ratios, goals) = judge(&[row(1000, 1.0), row(10_000, 1.5), row(100_000, 3.0)]);
        let submit = ratios.iter().find(|r| r.figure == "submit_p50_ms").unwrap();
        assert_eq!((submit.smallest, submit.largest, submit.ratio), (2.0, 6.0, 3.0));
        assert!(!submit.ok);
        let idle = ratios.iter().find(|r| r.figure == "claim_idle_p50_ms").unwrap();
        assert_eq!(idle.ratio, 1.0, "0 ms is flat, not a division by zero");
        assert_eq!(ratios.len(), 11);
        assert!(!goals[0].met && goals[0].value == 3.0, "{goals:?}");
        assert!(!goals[1].met, "a 6 ms sweep misses the 5 ms goal");
        assert!(goals[2].met && goals[2].value == 120.0);
        assert!(goals[1].goal.contains("100000"));
    }

    #[test]
    fn one_size_has_no_ratios() {
        let (ratios, goals) = judge(&[row(1000, 1.0)]);
        assert!(ratios.is_empty());
        assert_eq!(goals.len(), 2);
    }

    #[test]
    fn rss_is_read_from_proc() {
        let mb = rss_mb().unwrap();
        assert!(mb > 1.0 && mb < 100_000.0, "{mb}");
    }
}
