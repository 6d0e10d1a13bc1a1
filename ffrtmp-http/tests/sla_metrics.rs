//! The master's SLA series on a real SQLite store: per classification and queue, judged like
//! `GET /sla`, and read from the store at most once per cache period.

use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{
    ClaimRequest, Classification, ErrorKind, JobError, JobEvent, JobReport, JobResult, JobSpec, JobStore,
    NodeRegistration, Queue,
};
use ffrtmp_http::metrics::{ClusterSnapshot, SlaCache, SlaSnapshot};
use ffrtmp_http::Metrics;

/// Submits jobs with these (classification, queue, outcome) and drives them there; outcome
/// `true` completes, `false` fails for good.
async fn finished(store: &Arc<dyn JobStore>, jobs: &[(Classification, Queue, bool)]) {
    let registration: NodeRegistration = serde_json::from_value(serde_json::json!({
        "name": "sla-node", "cpu_cores": 8, "memory_mb": 8192, "max_concurrent_jobs": 16
    }))
    .unwrap();
    let node = store.register_node(registration).await.unwrap();
    let mut wanted = std::collections::HashMap::new();
    for (classification, queue, ok) in jobs {
        let mut spec = JobSpec::new("720p-h264");
        spec.classification = *classification;
        spec.queue = *queue;
        wanted.insert(store.submit(spec).await.unwrap().id, *ok);
    }
    let claim = ClaimRequest {
        node_id: node.id,
        claim_id: format!("sla-{}", node.id),
        max_jobs: jobs.len() as u32,
        wait_ms: 0,
    };
    let assigned = store.claim(&claim).await.unwrap();
    assert_eq!(assigned.len(), jobs.len());
    for a in assigned {
        let report = |event| JobReport {
            job_id: a.job.id,
            node_id: node.id,
            attempt: a.job.attempt,
            event,
        };
        store.report(&report(JobEvent::Started)).await.unwrap();
        let end = match wanted[&a.job.id] {
            true => JobEvent::Completed {
                result: JobResult::default(),
            },
            false => JobEvent::Failed {
                error: JobError::new(ErrorKind::EncodeError, "bad codec"),
            },
        };
        store.report(&report(end)).await.unwrap();
    }
}

fn render(sla: SlaSnapshot) -> String {
    Metrics::default().render_with(&ClusterSnapshot {
        sla: Some(sla),
        ..Default::default()
    })
}

#[tokio::test]
async fn sla_series_per_classification_and_queue_match_get_sla_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(ffrtmp_sched::SqliteStore::open(&dir.path().join("jobs.db")).unwrap());
    use Classification::{Production, Test};
    finished(
        &store,
        &[
            (Production, Queue::Live, true),
            (Production, Queue::Live, true),
            (Production, Queue::Live, true),
            (Production, Queue::Live, false),
            (Test, Queue::Batch, true),
        ],
    )
    .await;
    // Canceled: excluded, like GET /sla does.
    let canceled = store.submit(JobSpec::new("720p-h264")).await.unwrap();
    store.cancel(canceled.id, "not needed").await.unwrap();

    let cache = SlaCache::new(Duration::from_secs(24 * 3600), Duration::from_secs(30));
    let text = render(cache.get(&store).await.unwrap());
    for needle in [
        r#"ffrtmp_sla_met_ratio{classification="production",queue="live"} 0.75"#,
        r#"ffrtmp_sla_met_ratio{classification="test",queue="batch"} 1"#,
        r#"ffrtmp_sla_met_jobs{classification="production",queue="live"} 3"#,
        r#"ffrtmp_sla_missed_jobs{classification="production",queue="live"} 1"#,
        r#"ffrtmp_sla_missed_jobs{classification="test",queue="batch"} 0"#,
        r#"ffrtmp_sla_met_jobs{classification="production",queue="default"} 0"#,
        "ffrtmp_sla_window_seconds 86400",
        "# TYPE ffrtmp_sla_met_ratio gauge",
    ] {
        assert!(text.contains(needle), "lacks {needle}\n{text}");
    }
    // Only excluded jobs: counts, but no ratio to report.
    assert!(
        !text.contains(r#"ffrtmp_sla_met_ratio{classification="production",queue="default"}"#),
        "{text}"
    );
    // The same totals as GET /sla.
    let report = ffrtmp_core::sla::collect(store.as_ref(), Duration::from_secs(24 * 3600), ffrtmp_core::now_ms())
        .await
        .unwrap();
    assert_eq!((report.total.met, report.total.missed), (4, 1));

    // Another failure: within the cache period a scrape still sees the cached scan; a fresh
    // scan sees it.
    finished(&store, &[(Test, Queue::Batch, false)]).await;
    let cached = render(cache.get(&store).await.unwrap());
    assert!(
        cached.contains(r#"ffrtmp_sla_met_ratio{classification="test",queue="batch"} 1"#),
        "{cached}"
    );
    let fresh = SlaCache::new(Duration::from_secs(24 * 3600), Duration::ZERO);
    let text = render(fresh.get(&store).await.unwrap());
    assert!(
        text.contains(r#"ffrtmp_sla_met_ratio{classification="test",queue="batch"} 0.5"#),
        "{text}"
    );
}
