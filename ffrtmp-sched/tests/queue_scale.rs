//! Costs that do not grow with the queue, on both stores: with 50,000 queued jobs that a
//! node cannot run, that node's claims read nothing of the queue (answered from memory),
//! a node that can run one class reads only that class's head, and no sweep rewrites a
//! queued row to age it (nor is one needed: claims age ranks themselves). The queue is filled by copying one job the store wrote, in one
//! transaction, so the rows are exactly the store's own.

mod common;

use std::time::Duration;

use common::*;
use ffrtmp_core::{Heartbeat, JobSpec, JobState, JobStore, NodeRegistration};
use ffrtmp_sched::{ClaimStats, SqliteStore};

const QUEUED: i64 = 50_000;

/// A job only a node with NVENC can run.
fn nvenc_job() -> JobSpec {
    let mut s = spec("720p-h264");
    s.parameters.encoder = Some("h264_nvenc".into());
    s
}

fn gpu() -> NodeRegistration {
    NodeRegistration {
        encoders: vec!["h264_nvenc".into()],
        ..registration("gpu", 4)
    }
}

/// The columns a copy of a queued job takes over from its original (all but seq and id).
const COPIED: &str = "spec, state, rank, base_rank, queue, attempt, attempt_base, max_retries, created_at_ms, \
     updated_at_ms, queued_at_ms, codec, encoder, engine, needs_enforcement, req_class";

/// What a store under test must show once the queue holds `QUEUED` NVENC jobs (plus the
/// original), `cpu` can run none of them and `gpu` can.
async fn claims_read_only_what_the_node_can_run(
    store: &dyn JobStore,
    stats: &dyn Fn() -> ClaimStats,
    clock: &ManualClock,
    periodic: bool,
) {
    let cpu = store.register_node(registration("cpu", 4)).await.unwrap();
    // A claim may first read which classes the database holds (a PostgreSQL master does so
    // at most every 500 ms); after that, the idle node's claims are answered from memory.
    assert!(claim(store, &cpu, 4).await.is_empty());
    let before = stats();
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert!(claim(store, &cpu, 4).await.is_empty());
    }
    // SQLite reads them only when another connection committed; PostgreSQL every 500 ms.
    let refreshes = if periodic {
        1 + started.elapsed().as_millis() as u64 / 500
    } else {
        0
    };
    let after = stats();
    assert_eq!(
        after.queue_probes, before.queue_probes,
        "a node that can run nothing read the queue: {before:?} -> {after:?}"
    );
    assert_eq!(after.answered_from_memory - before.answered_from_memory, 20);
    assert!(
        after.class_reads - before.class_reads <= refreshes,
        "{before:?} -> {after:?}"
    );

    // A node that can run the class reads its head only: the oldest job, one probe.
    let gpu = store.register_node(gpu()).await.unwrap();
    let before = stats();
    let got = claim(store, &gpu, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.spec.parameters.encoder.as_deref(), Some("h264_nvenc"));
    assert_eq!(stats().queue_probes - before.queue_probes, 1);

    // A job the idle node can run is claimed by it at once, and only its class is read.
    let plain = store.submit(spec("720p-h264")).await.unwrap();
    let before = stats();
    let got = claim(store, &cpu, 4).await;
    assert_eq!(got.iter().map(|a| a.job.id).collect::<Vec<_>>(), vec![plain.id]);
    assert_eq!(stats().queue_probes - before.queue_probes, 1);

    // Hours later the queued jobs have aged to the top rank without a row rewritten: the
    // sweep changes nothing of them, and the oldest still goes first.
    clock.advance(Duration::from_secs(6 * 3600));
    store.heartbeat(gpu.id, &Heartbeat::default()).await.unwrap();
    store.heartbeat(cpu.id, &Heartbeat::default()).await.unwrap();
    let swept = store.sweep().await.unwrap();
    assert_eq!(swept.jobs_aged, 0);
    let fresh = store.submit(spec("720p-h264")).await.unwrap();
    let mut live = nvenc_job();
    live.queue = ffrtmp_core::Queue::Live;
    live.priority = ffrtmp_core::Priority::High;
    let live = store.submit(live).await.unwrap();
    let got = claim(store, &gpu, 1).await;
    assert_ne!(
        got[0].job.id, live.id,
        "the aged queue goes before a fresh live/high job"
    );
    assert_eq!(store.get(fresh.id).await.unwrap().state, JobState::Queued);
}

/// Aging needs no sweep: a claim compares ranks aged to its own instant.
async fn a_waiting_job_wins_by_age_with_no_sweep_at_all(store: &dyn JobStore, clock: &ManualClock) {
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut low = spec("720p-h264");
    low.queue = ffrtmp_core::Queue::Batch;
    low.priority = ffrtmp_core::Priority::Low;
    let low = store.submit(low).await.unwrap();
    let high = || {
        let mut s = spec("720p-h264");
        s.queue = ffrtmp_core::Queue::Live;
        s.priority = ffrtmp_core::Priority::High;
        s
    };
    // Rank 8 after 35 minutes is still rank 1: a fresh live/high job (rank 0) goes first.
    clock.advance(Duration::from_secs(35 * 60));
    let first = store.submit(high()).await.unwrap();
    let a = claim(store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, first.id);
    store.report(&completed(&a, &node, 1)).await.unwrap();
    // After 40 minutes it is at rank 0 and older than any new arrival.
    clock.advance(Duration::from_secs(5 * 60));
    store.submit(high()).await.unwrap();
    assert_eq!(claim(store, &node, 1).await.remove(0).job.id, low.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ages_waiting_jobs_with_no_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = SqliteStore::open_with(&dir.path().join("jobs.db"), clock.config()).unwrap();
    a_waiting_job_wins_by_age_with_no_sweep_at_all(&store, &clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_claims_cost_the_same_whatever_the_queue_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let clock = ManualClock::new();
    let first = SqliteStore::open_with(&path, clock.config()).unwrap();
    let original = first.submit(nvenc_job()).await.unwrap();
    drop(first);
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        let copied = tx
            .execute(
                &format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                     INSERT INTO jobs (id, {COPIED}) \
                     SELECT printf('00000000-0000-4000-8000-%012d', i), {COPIED} FROM jobs, n WHERE jobs.id = ?2"
                ),
                rusqlite::params![QUEUED, original.id.to_string()],
            )
            .unwrap();
        assert_eq!(copied as i64, QUEUED);
        tx.commit().unwrap();
    }
    let store = SqliteStore::open_with(&path, clock.config()).unwrap();
    claims_read_only_what_the_node_can_run(&store, &|| store.claim_stats(), &clock, false).await;
    let rewritten: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND rank <> base_rank",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rewritten, 0, "no queued row was rewritten to age it");
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use ffrtmp_sched::conformance::pg::PgBackend;
    use ffrtmp_sched::PgStore;

    async fn admin(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_claims_cost_the_same_whatever_the_queue_holds() {
        let Some(b) = PgBackend::create().await else { return };
        let clock = ManualClock::new();
        let store = PgStore::connect(b.url(), clock.config()).await.unwrap();
        let original = store.submit(nvenc_job()).await.unwrap();
        let db = admin(b.url()).await;
        let copied = db
            .execute(
                &format!(
                    "INSERT INTO jobs (id, {COPIED}) \
                     SELECT '00000000-0000-4000-8000-' || lpad(i::text, 12, '0'), {COPIED} \
                     FROM jobs, generate_series(1, $1::bigint) AS i WHERE jobs.id = $2"
                ),
                &[&QUEUED, &original.id.to_string()],
            )
            .await
            .unwrap();
        assert_eq!(copied as i64, QUEUED);
        db.batch_execute("ANALYZE jobs").await.unwrap();
        claims_read_only_what_the_node_can_run(&store, &|| store.claim_stats(), &clock, true).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_ages_waiting_jobs_with_no_sweep() {
        let Some(b) = PgBackend::create().await else { return };
        let clock = ManualClock::new();
        let store = PgStore::connect(b.url(), clock.config()).await.unwrap();
        a_waiting_job_wins_by_age_with_no_sweep_at_all(&store, &clock).await;
    }

    /// A job queued through another master reaches a node that claims through this one
    /// within the refresh bound of the class hint, though this master had answered that
    /// node from memory.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_queued_through_another_master_is_claimed_within_the_refresh_bound() {
        let Some(b) = PgBackend::create().await else { return };
        let here = PgStore::connect(b.url(), Default::default()).await.unwrap();
        let there = PgStore::connect(b.url(), Default::default()).await.unwrap();
        let node = here.register_node(registration("n", 1)).await.unwrap();
        assert!(claim(&here, &node, 1).await.is_empty());
        let before = here.claim_stats();
        assert!(claim(&here, &node, 1).await.is_empty());
        assert_eq!(here.claim_stats().answered_from_memory, before.answered_from_memory + 1);

        let job = there.submit(spec("720p-h264")).await.unwrap();
        let submitted = std::time::Instant::now();
        let deadline = submitted + Duration::from_secs(10);
        let got = loop {
            let got = claim(&here, &node, 1).await;
            if !got.is_empty() || std::time::Instant::now() > deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let waited = submitted.elapsed();
        assert_eq!(got.iter().map(|a| a.job.id).collect::<Vec<_>>(), vec![job.id]);
        assert!(
            waited < Duration::from_secs(2),
            "claimed {waited:?} after another master queued it (hint refresh: 500 ms)"
        );
    }
}
