//! Job lifecycles (submit → claim → complete) per second on the SQLite store, printed beside
//! raw single-row durable SQLite update transactions measured in the same run.
//!
//! Run: `cargo bench -p ffrtmp-benches --bench claim`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ffrtmp_core::{ClaimRequest, JobEvent, JobReport, JobResult, JobSpec, JobStore, NodeRegistration};
use ffrtmp_sched::SqliteStore;

fn raw_sqlite_tx_per_sec(dir: &std::path::Path, n: usize) -> f64 {
    ffrtmp_sched::baseline::raw_update_tx_per_s(dir, n, true).unwrap()
}

/// Concurrent submitting clients.
const CLIENTS: usize = 32;

/// Lifecycles with `workers` concurrent agents, each claiming up to 16 and completing them.
async fn lifecycles_per_sec(store: Arc<SqliteStore>, jobs: usize, workers: usize) -> f64 {
    let start = Instant::now();
    let mut submitters = Vec::new();
    let claimed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..CLIENTS {
        let s = store.clone();
        submitters.push(tokio::spawn(async move {
            for _ in 0..jobs / CLIENTS {
                s.submit(JobSpec::new("720p-h264")).await.unwrap();
            }
        }));
    }
    let mut agents = Vec::new();
    for w in 0..workers {
        let s = store.clone();
        let claimed = claimed.clone();
        agents.push(tokio::spawn(async move {
            let node = s
                .register_node(NodeRegistration {
                    name: format!("bench-{w}"),
                    cpu_cores: 2,
                    memory_mb: 1024,
                    max_concurrent_jobs: 16,
                    encoders: vec![],
                    engines: vec![],
                    version: String::new(),
                    enforces_limits: false,
                    quality_metrics: Vec::new(),
                })
                .await
                .unwrap();
            let mut done = 0usize;
            while claimed.load(std::sync::atomic::Ordering::Relaxed) < jobs / CLIENTS * CLIENTS {
                let got = s
                    .claim(&ClaimRequest {
                        node_id: node.id,
                        claim_id: uuid::Uuid::new_v4().to_string(),
                        max_jobs: 16,
                        wait_ms: 0,
                    })
                    .await
                    .unwrap();
                if got.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                claimed.fetch_add(got.len(), std::sync::atomic::Ordering::Relaxed);
                let reports = got.into_iter().map(|a| {
                    let s = s.clone();
                    async move {
                        s.report(&JobReport {
                            job_id: a.job.id,
                            node_id: node.id,
                            attempt: a.job.attempt,
                            event: JobEvent::Completed {
                                result: JobResult::default(),
                            },
                        })
                        .await
                        .unwrap()
                    }
                });
                done += futures_join(reports).await;
            }
            done
        }));
    }
    for s in submitters {
        s.await.unwrap();
    }
    let mut total = 0;
    for a in agents {
        total += a.await.unwrap();
    }
    assert_eq!(total, jobs / CLIENTS * CLIENTS);
    total as f64 / start.elapsed().as_secs_f64()
}

async fn futures_join<F>(futs: impl Iterator<Item = F>) -> usize
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let n = handles.len();
    for h in handles {
        h.await.unwrap();
    }
    n
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let raw = raw_sqlite_tx_per_sec(dir.path(), 2000);
    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db")).unwrap());
    let lifecycles = rt.block_on(lifecycles_per_sec(store.clone(), 4000, 4));
    println!(
        "claim: {lifecycles:.0} job lifecycles/s (submit+claim+complete, durable) vs raw SQLite {raw:.0} \
         single-row durable tx/s: ratio {:.2}",
        lifecycles / raw
    );

    let mut group = c.benchmark_group("claim");
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    group.bench_function("lifecycle_x1000", |b| {
        b.iter(|| rt.block_on(lifecycles_per_sec(store.clone(), 1000, 4)));
    });
    group.bench_function("raw_sqlite_tx_x1000", |b| {
        b.iter(|| raw_sqlite_tx_per_sec(dir.path(), 1000));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
