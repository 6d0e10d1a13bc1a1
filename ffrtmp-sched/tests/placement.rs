//! The energy-aware placement policy on a real SQLite store: a history of completed jobs
//! with energy results on two nodes decides which node gets new work.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ffrtmp_core::{Assignment, EnergyReport, JobEvent, JobReport, JobResult, JobStore, Node};
use ffrtmp_sched::placement::{spawn_efficiency_refresher, EnergyAware, EnergyAwareConfig, SharedEfficiency};
use ffrtmp_sched::SchedConfig;

/// A completion of 100 frames by `ffmpeg/libx264` at `jpf` joules per frame.
fn done(a: &Assignment, node: &Node, jpf: f64) -> JobReport {
    JobReport {
        job_id: a.job.id,
        node_id: node.id,
        attempt: a.job.attempt,
        event: JobEvent::Completed {
            result: JobResult {
                frames: 100,
                avg_fps: 50.0,
                encoder: "ffmpeg/libx264".into(),
                energy: EnergyReport {
                    source: "rapl".into(),
                    energy_joules: Some(jpf * 100.0),
                    joules_per_frame: Some(jpf),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
    }
}

/// Runs and completes `n` 720p-h264 jobs on `node`, one at a time, at `jpf` J/frame.
async fn history(store: &dyn JobStore, node: &Node, n: usize, jpf: f64) {
    for _ in 0..n {
        store.submit(spec("720p-h264")).await.unwrap();
        let got = claim(store, node, 1).await;
        assert_eq!(
            got.len(),
            1,
            "{} takes work while the table is empty",
            node.registration.name
        );
        store.report(&done(&got[0], node, jpf)).await.unwrap();
    }
}

fn seqs(v: &[Assignment]) -> Vec<u64> {
    v.iter().map(|a| a.job.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_work_per_the_efficiency_table() {
    let dir = tempfile::tempdir().unwrap();
    // The refresher reads the history window up to the real now: start the store's clock there.
    let clock = ManualClock::new();
    clock.0.store(ffrtmp_core::now_ms(), Ordering::SeqCst);
    let table = SharedEfficiency::new();
    let policy = EnergyAware::new(EnergyAwareConfig::default(), table.clone());
    let max_wait = policy.config().max_wait;
    let config = SchedConfig {
        placement: Arc::new(policy),
        ..clock.config()
    };
    let store: Arc<dyn JobStore> = Arc::new(open(&dir, config));
    let hot = store.register_node(registration("hot", 1)).await.unwrap();
    let cool = store.register_node(registration("cool", 1)).await.unwrap();
    history(store.as_ref(), &hot, 3, 4.0).await;
    history(store.as_ref(), &cool, 3, 1.0).await;

    let refresher = spawn_efficiency_refresher(
        store.clone(),
        table.clone(),
        Duration::from_millis(50),
        Duration::from_secs(3600),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let known = |node: &Node| table.current().figure(&node.id.to_string(), "720p-h264", None);
    while known(&hot).is_none() || known(&cool).is_none() {
        assert!(Instant::now() < deadline, "the refresher never filled the table");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(known(&cool).map(|f| (f.joules_per_frame, f.samples)), Some((1.0, 3)));

    // The cool node is idle: the hot one leaves the job to it.
    let j1 = store.submit(spec("720p-h264")).await.unwrap();
    assert!(
        claim(store.as_ref(), &hot, 1).await.is_empty(),
        "left for the cool node"
    );
    let on_cool = claim(store.as_ref(), &cool, 1).await;
    assert_eq!(seqs(&on_cool), vec![j1.seq]);

    // The cool node is busy: the hot one takes the next job at once.
    let j2 = store.submit(spec("720p-h264")).await.unwrap();
    assert_eq!(seqs(&claim(store.as_ref(), &hot, 1).await), vec![j2.seq]);
    store.report(&done(&on_cool[0], &cool, 1.0)).await.unwrap();

    // A node with no history explores: it takes work the cool node would run better.
    let fresh = store.register_node(registration("fresh", 1)).await.unwrap();
    let j3 = store.submit(spec("720p-h264")).await.unwrap();
    assert_eq!(seqs(&claim(store.as_ref(), &fresh, 1).await), vec![j3.seq]);

    // Left for the idle cool node at most `max_wait` from queue entry, then anyone takes it.
    let hot_job = store.get(j2.id).await.unwrap();
    let hot_job = Assignment { job: hot_job };
    store.report(&done(&hot_job, &hot, 4.0)).await.unwrap();
    let j4 = store.submit(spec("720p-h264")).await.unwrap();
    assert!(
        claim(store.as_ref(), &hot, 1).await.is_empty(),
        "left for the cool node"
    );
    clock.advance(max_wait - Duration::from_millis(1));
    assert!(claim(store.as_ref(), &hot, 1).await.is_empty(), "still within the wait");
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        seqs(&claim(store.as_ref(), &hot, 1).await),
        vec![j4.seq],
        "taken after the wait"
    );
    refresher.abort();
}
