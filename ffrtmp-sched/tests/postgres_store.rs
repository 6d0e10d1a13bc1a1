//! The PostgreSQL store against the store conformance suite (`ffrtmp_sched::conformance`), each test
//! in a fresh database on the server named by `FFRTMP_TEST_PG_URL` (`scripts/test.sh` starts
//! a private one), plus what only PostgreSQL has: URLs, migrations, the sweep lock.
//!
//! Without `FFRTMP_TEST_PG_URL` these tests fail, unless `FFRTMP_SKIP_PG=1`.
#![cfg(feature = "postgres")]

mod common;

use std::time::Duration;

use common::*;
use ffrtmp_core::{Heartbeat, JobQuery, JobSpec, JobState, JobStore, StoreError};
use ffrtmp_sched::conformance::pg::{with_database, PgBackend};
use ffrtmp_sched::conformance::Backend;
use ffrtmp_sched::conformance_tests;
use ffrtmp_sched::{PgStore, SchedConfig};

conformance_tests!(PgBackend::create().await);

/// The whole suite again, every store claiming under the energy-aware placement policy.
mod energy_aware {
    use ffrtmp_sched::conformance::pg::PgBackend;
    use ffrtmp_sched::conformance::WithPlacement;
    ffrtmp_sched::conformance_tests!(PgBackend::create().await.map(WithPlacement::energy_aware));
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

/// Needs no server: nothing reaches one.
#[tokio::test]
async fn errors_never_show_the_password() {
    let cfg = SchedConfig::default;
    // (URL, whether it parses: connect errors name the target, parse errors the option.)
    for (url, parses) in [
        ("postgres://ffrtmp:hunter2@127.0.0.1:1/db?connect_timeout=2", true),
        ("postgres://ffrtmp:hunter2@127.0.0.1:notaport/db", false),
        (
            "host=127.0.0.1 port=1 user=ffrtmp password=hunter2 dbname=db connect_timeout=2",
            true,
        ),
        ("postgres://ffrtmp:hunter2@127.0.0.1:1/db?bogus=1", false),
    ] {
        let err = match PgStore::connect(url, cfg()).await {
            Ok(_) => panic!("{url}: connected"),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Backend(_)), "{msg}");
        assert!(!msg.contains("hunter2"), "password in {msg:?}");
        if parses {
            assert!(
                msg.contains("cannot connect to PostgreSQL at ffrtmp@127.0.0.1:1/db"),
                "{msg}"
            );
        } else {
            assert!(msg.contains("invalid PostgreSQL URL"), "{msg}");
        }
    }
}

#[test]
fn test_urls_name_the_test_database() {
    assert_eq!(
        with_database("postgres://u@127.0.0.1:5432/postgres", "t_1"),
        "postgres://u@127.0.0.1:5432/t_1"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/postgres?sslmode=disable", "t_1"),
        "postgresql://u:p@h/t_1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h", "t_1"), "postgres://u@h/t_1");
    assert_eq!(with_database("host=h user=u", "t_1"), "host=h user=u dbname=t_1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_newer_schemas_are_refused() {
    let Some(b) = PgBackend::create().await else { return };
    // Masters starting together migrate once.
    let (x, y, z) = tokio::join!(
        PgStore::connect(b.url(), SchedConfig::default()),
        PgStore::connect(b.url(), SchedConfig::default()),
        PgStore::connect(b.url(), SchedConfig::default()),
    );
    let (x, _y, _z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert!(x
        .target()
        .ends_with(&format!("/{}", b.url().rsplit('/').next().unwrap())));
    let db = admin(b.url()).await;
    let versions: Vec<i64> = db
        .query("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![5]);
    db.execute("UPDATE schema_version SET version = 99", &[]).await.unwrap();
    let err = PgStore::connect(b.url(), SchedConfig::default()).await.err().unwrap();
    assert!(err.to_string().contains("newer than this build supports"), "{err}");
}

/// While another master holds the sweep lock, a sweep changes nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_defers_to_the_master_holding_the_lock() {
    let Some(b) = PgBackend::create().await else { return };
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    claim(&*store, &node, 1).await;
    clock.advance(Duration::from_secs(120));

    let other = admin(b.url()).await;
    other
        .execute("SELECT pg_advisory_lock($1)", &[&PgStore::SWEEP_LOCK_KEY])
        .await
        .unwrap();
    assert_eq!(store.sweep().await.unwrap(), Default::default());
    assert_eq!(store.get(job.id).await.unwrap().state, JobState::Assigned);
    other
        .execute("SELECT pg_advisory_unlock($1)", &[&PgStore::SWEEP_LOCK_KEY])
        .await
        .unwrap();
    let s = store.sweep().await.unwrap();
    assert_eq!((s.nodes_lost, s.jobs_requeued), (1, 1));
    assert_eq!(store.get(job.id).await.unwrap().state, JobState::Retrying);
    assert!(store.heartbeat(node.id, &Heartbeat::default()).await.is_ok());
}

/// A store keeps working when the runtime that opened it is gone.
#[test]
fn a_store_outlives_the_runtime_that_opened_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(b) = rt.block_on(PgBackend::create()) else {
        return;
    };
    let store = rt.block_on(PgStore::connect(b.url(), SchedConfig::default())).unwrap();
    let job = rt.block_on(store.submit(spec("720p-h264"))).unwrap();
    drop(rt);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(store.get(job.id)).unwrap().state, JobState::Queued);
}

/// Connections the server drops (restart, failover, an administrator) are replaced: the
/// next operations succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_replaces_connections_the_server_dropped() {
    let Some(b) = PgBackend::create().await else { return };
    let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    // Several concurrent reads leave several idle connections in the pool.
    let reads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(job.id).await })
        })
        .collect();
    for r in reads {
        r.await.unwrap().unwrap();
    }
    let db = admin(b.url()).await;
    let killed: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1);
    for _ in 0..8 {
        assert_eq!(store.get(job.id).await.unwrap().state, JobState::Queued);
    }
    store.submit(spec("720p-h264")).await.unwrap();
}

/// A job pinned to an engine before version 3 keeps its engine after the migration, so a
/// node without that engine still never claims it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_pinned_before_version_3_keep_their_engine() {
    let Some(b) = PgBackend::create().await else { return };
    let pinned = {
        let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
        let mut s = spec("720p-h264");
        s.engine = ffrtmp_core::EngineChoice::Gstreamer;
        store.submit(s).await.unwrap().id
    };
    // Back to version 2, where the spec JSON was the only record of the engine.
    let db = admin(b.url()).await;
    db.batch_execute(
        "DROP INDEX jobs_queue_seq; DROP INDEX jobs_node_seq; ALTER TABLE jobs DROP COLUMN req_class; \
         CREATE INDEX jobs_claim ON jobs (rank, seq) WHERE state = 'queued'; \
         ALTER TABLE jobs DROP COLUMN engine; ALTER TABLE jobs DROP COLUMN needs_enforcement; \
         ALTER TABLE jobs DROP COLUMN attempts_energy; UPDATE schema_version SET version = 2;",
    )
    .await
    .unwrap();
    let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
    let engine: String = db
        .query_one("SELECT engine FROM jobs WHERE id = $1", &[&pinned.to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(engine, "gstreamer");
    let ffmpeg_only = store.register_node(registration("ff", 1)).await.unwrap();
    assert!(claim(&store, &ffmpeg_only, 1).await.is_empty());
    assert_eq!(store.get(pinned).await.unwrap().state, JobState::Queued);
}

/// Jobs stored before version 4 read with no per-attempt energy, and gain it as attempts
/// report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_stored_before_version_4_read_with_no_attempts_energy() {
    let Some(b) = PgBackend::create().await else { return };
    let id = {
        let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
        store.submit(spec("720p-h264")).await.unwrap().id
    };
    let db = admin(b.url()).await;
    db.batch_execute(
        "DROP INDEX jobs_queue_seq; DROP INDEX jobs_node_seq; ALTER TABLE jobs DROP COLUMN req_class; \
         CREATE INDEX jobs_claim ON jobs (rank, seq) WHERE state = 'queued'; \
         ALTER TABLE jobs DROP COLUMN attempts_energy; UPDATE schema_version SET version = 3;",
    )
    .await
    .unwrap();
    let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
    let job = store.get(id).await.unwrap();
    assert!(job.attempts_energy.is_empty());
    assert_eq!(job.attempts_energy.total_joules, None);
}

/// As on SQLite: a spec stored before today's bounds still reads back, lists and keeps its
/// values, `check()` says why it would be refused now, and an unparsable scenario is
/// reported as corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_stored_under_looser_bounds_still_load() {
    let Some(b) = PgBackend::create().await else { return };
    let store = PgStore::connect(b.url(), SchedConfig::default()).await.unwrap();
    let old = store.submit(JobSpec::new("720p-h264")).await.unwrap();
    let lost = store.submit(JobSpec::new("720p-h264")).await.unwrap();
    let raw = admin(b.url()).await;
    let set = |id: String, spec: &'static str| {
        let raw = &raw;
        async move {
            raw.execute("UPDATE jobs SET spec = $1 WHERE id = $2", &[&spec, &id])
                .await
                .unwrap()
        }
    };
    set(
        old.id.to_string(),
        r#"{"scenario":"720p-h264","parameters":{"fps":50},"max_retries":1000,"resource_limits":{"timeout_sec":99999999}}"#,
    )
    .await;
    let back = store.get(old.id).await.unwrap();
    assert_eq!(back.spec.max_retries, 1000);
    assert_eq!(back.spec.resource_limits.timeout_sec, Some(99_999_999));
    assert_eq!(back.spec.scenario().fps, 50);
    let why = back.spec.check().unwrap_err().to_string();
    assert!(why.contains("resource_limits.timeout_sec"), "{why}");

    set(lost.id.to_string(), r#"{"scenario":"hd-h264"}"#).await;
    match store.get(lost.id).await {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("corrupt job spec"), "{msg}"),
        other => panic!("{other:?}"),
    }
    set(lost.id.to_string(), r#"{"scenario":"1080p-h264"}"#).await;
    let page = store.list(&JobQuery::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 2);
}

/// A sweep pass with nothing due only reads: while another session holds every table
/// against writers (a bulk import, a long migration), it still returns at once, and once
/// something is due the pass does its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_with_nothing_due_does_not_wait_for_writers() {
    let Some(b) = PgBackend::create().await else { return };
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    assert_eq!(claim(&*store, &node, 1).await.len(), 1);

    let mut other = admin(b.url()).await;
    let tx = other.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE jobs, nodes, claims, job_history IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let swept = tokio::time::timeout(Duration::from_secs(10), store.sweep()).await;
    let swept = swept.expect("a sweep with nothing due waited for the writers' lock");
    assert_eq!(swept.unwrap(), Default::default());
    tx.rollback().await.unwrap();

    clock.advance(Duration::from_secs(120));
    let s = store.sweep().await.unwrap();
    assert_eq!((s.nodes_lost, s.jobs_requeued), (1, 1));
    assert_eq!(store.get(job.id).await.unwrap().state, JobState::Retrying);
}

/// Claims are forgotten after an hour even when nothing else is due: a sweep with only old
/// claims to delete still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_forgets_old_claims_when_nothing_else_is_due() {
    let Some(b) = PgBackend::create().await else { return };
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    store.submit(spec("720p-h264")).await.unwrap();
    let got = claim(&*store, &node, 1).await;
    store.report(&completed(&got[0], &node, 1)).await.unwrap();
    let db = admin(b.url()).await;
    let claims = || async {
        db.query_one("SELECT count(*) FROM claims", &[])
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    assert_eq!(claims().await, 1);
    assert_eq!(store.sweep().await.unwrap(), Default::default());
    assert_eq!(claims().await, 1, "a claim younger than an hour is remembered");
    clock.advance(Duration::from_secs(3601));
    store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
    assert_eq!(store.sweep().await.unwrap(), Default::default());
    assert_eq!(claims().await, 0, "the hour-old claim was forgotten");
}
