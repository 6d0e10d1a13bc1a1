//! End-to-end behaviour of the SQLite store on real database files: the store conformance
//! suite (`ffrtmp_sched::conformance`), which `tests/postgres_store.rs` runs against PostgreSQL.

use ffrtmp_core::{JobQuery, JobSpec, JobStore, StoreError};
use ffrtmp_sched::conformance::SqliteBackend;
use ffrtmp_sched::{conformance_tests, SqliteStore};

conformance_tests!(Some(SqliteBackend::new()));

/// The whole suite again, every store claiming under the energy-aware placement policy.
mod energy_aware {
    use ffrtmp_sched::conformance::{SqliteBackend, WithPlacement};
    ffrtmp_sched::conformance_tests!(Some(WithPlacement::energy_aware(SqliteBackend::new())));
}

/// A spec stored before today's bounds (here: more retries and a longer timeout than they
/// allow) still reads back, lists and keeps its values; its `check()` says why it would be
/// refused now. A spec whose scenario no longer parses is reported as corrupt, not a panic.
#[tokio::test]
async fn specs_stored_under_looser_bounds_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(&path).unwrap();
    let old = store.submit(JobSpec::new("720p-h264")).await.unwrap();
    let lost = store.submit(JobSpec::new("720p-h264")).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let set = |id: String, spec: &str| {
        raw.execute("UPDATE jobs SET spec = ?1 WHERE id = ?2", rusqlite::params![spec, id])
            .unwrap()
    };
    set(
        old.id.to_string(),
        r#"{"scenario":"720p-h264","parameters":{"fps":50},"max_retries":1000,"resource_limits":{"timeout_sec":99999999}}"#,
    );
    let back = store.get(old.id).await.unwrap();
    assert_eq!(back.spec.max_retries, 1000);
    assert_eq!(back.spec.resource_limits.timeout_sec, Some(99_999_999));
    assert_eq!(back.spec.scenario().fps, 50);
    let why = back.spec.check().unwrap_err().to_string();
    assert!(why.contains("resource_limits.timeout_sec"), "{why}");

    set(lost.id.to_string(), r#"{"scenario":"hd-h264"}"#);
    match store.get(lost.id).await {
        Err(StoreError::Backend(msg)) => assert!(msg.contains("corrupt job spec"), "{msg}"),
        other => panic!("{other:?}"),
    }
    set(lost.id.to_string(), r#"{"scenario":"1080p-h264"}"#);
    let page = store.list(&JobQuery::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 2);
}
