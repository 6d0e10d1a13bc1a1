//! Routing by engine and by enforcement of limits, and the bounds every store refuses
//! (the in-process path, without HTTP in front).

use crate::SchedConfig;
use ffrtmp_core::{
    Enforcement, EngineChoice, Heartbeat, JobEvent, JobQuery, JobReport, JobResult, JobState, NodeRegistration,
    Priority, Progress, RunningJob, StoreError,
};

use super::support::*;
use super::Backend;

fn with(engines: &[&str], enforces_limits: bool, name: &str) -> NodeRegistration {
    NodeRegistration {
        engines: engines.iter().map(|e| e.to_string()).collect(),
        enforces_limits,
        quality_metrics: Vec::new(),
        ..registration(name, 8)
    }
}

/// A job pinned to an engine goes only to nodes advertising it; while it waits, the jobs
/// behind it still go out.
pub async fn a_job_pinned_to_an_engine_goes_only_to_nodes_with_it(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let ffmpeg_only = store.register_node(with(&["ffmpeg"], false, "ff")).await.unwrap();
    let mut gst = spec("720p-h264");
    gst.engine = EngineChoice::Gstreamer;
    gst.priority = Priority::High;
    let gst = store.submit(gst).await.unwrap();
    let auto = store.submit(spec("720p-h264")).await.unwrap();
    let mut ff = spec("720p-h264");
    ff.engine = EngineChoice::Ffmpeg;
    let ff = store.submit(ff).await.unwrap();

    let got: Vec<_> = claim(&*store, &ffmpeg_only, 8)
        .await
        .into_iter()
        .map(|a| a.job.id)
        .collect();
    assert_eq!(got, vec![auto.id, ff.id], "the GStreamer job is skipped, not waited on");
    assert_eq!(store.get(gst.id).await.unwrap().state, JobState::Queued);

    let custom = store.register_node(with(&[], false, "custom")).await.unwrap();
    let plain = store.submit(spec("720p-h264")).await.unwrap();
    let got: Vec<_> = claim(&*store, &custom, 8).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![plain.id], "a node without engines takes only unpinned jobs");

    let both = store
        .register_node(with(&["ffmpeg", "gstreamer"], false, "both"))
        .await
        .unwrap();
    let got: Vec<_> = claim(&*store, &both, 8).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![gst.id]);
}

/// A job whose limits are required goes only to nodes that enforce limits; best-effort
/// limits still go anywhere, and the waiting job does not hold up the queue.
pub async fn a_job_requiring_enforcement_goes_only_to_enforcing_nodes(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let lax = store.register_node(with(&["ffmpeg"], false, "lax")).await.unwrap();
    let mut required = spec("720p-h264");
    required.priority = Priority::High;
    required.resource_limits.max_memory_mb = Some(512);
    required.resource_limits.enforcement = Enforcement::Required;
    let required = store.submit(required).await.unwrap();
    let mut best_effort = spec("720p-h264");
    best_effort.resource_limits.max_memory_mb = Some(512);
    let best_effort = store.submit(best_effort).await.unwrap();
    let plain = store.submit(spec("720p-h264")).await.unwrap();

    let got: Vec<_> = claim(&*store, &lax, 8).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(
        got,
        vec![best_effort.id, plain.id],
        "a non-enforcing node takes best-effort jobs and skips the required one"
    );
    let waiting = store.get(required.id).await.unwrap();
    assert_eq!((waiting.state, waiting.attempt), (JobState::Queued, 0));

    let strict = store.register_node(with(&["ffmpeg"], true, "strict")).await.unwrap();
    let got = claim(&*store, &strict, 8).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job.id, required.id);
    assert_eq!(got[0].job.spec.resource_limits.enforcement, Enforcement::Required);
    // The requirement survives the round trip through the store.
    assert_eq!(
        store.get(required.id).await.unwrap().spec.resource_limits.enforcement,
        Enforcement::Required
    );
}

/// Out-of-bounds numbers are refused by the store itself, and nothing is stored or changed.
pub async fn out_of_bounds_input_is_refused_by_the_store(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let mut forever = spec("720p-h264");
    forever.resource_limits.timeout_sec = Some(u64::MAX);
    match store.submit(forever).await {
        Err(StoreError::InvalidSpec(e)) => assert!(e.to_string().contains("timeout_sec"), "{e}"),
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    let mut huge = spec("720p-h264");
    huge.resource_limits.max_memory_mb = Some(u64::MAX);
    assert!(matches!(store.submit(huge).await, Err(StoreError::InvalidSpec(_))));
    assert!(store.list(&JobQuery::default()).await.unwrap().jobs.is_empty());

    let absurd = NodeRegistration {
        cpu_cores: u32::MAX,
        ..registration("n", 1)
    };
    match store.register_node(absurd).await {
        Err(StoreError::InvalidRequest(m)) => assert!(m.contains("cpu_cores"), "{m}"),
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert!(store.list_nodes().await.unwrap().is_empty());

    let node = store.register_node(registration("n", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let mut long_wait = claim_request(&node, "c", 1);
    long_wait.wait_ms = u64::MAX;
    assert!(matches!(store.claim(&long_wait).await, Err(StoreError::InvalidRequest(m)) if m.contains("wait_ms")));
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, job.id);
    let hb = Heartbeat {
        running: vec![RunningJob {
            job_id: job.id,
            attempt: a.job.attempt,
            progress: Some(Progress {
                percent: 1e300,
                ..Default::default()
            }),
        }],
        power: None,
    };
    assert!(matches!(store.heartbeat(node.id, &hb).await, Err(StoreError::InvalidRequest(m)) if m.contains("percent")));
    let report = JobReport {
        job_id: job.id,
        node_id: node.id,
        attempt: a.job.attempt,
        event: JobEvent::Completed {
            result: JobResult {
                frames: u64::MAX,
                ..Default::default()
            },
        },
    };
    assert!(matches!(store.report(&report).await, Err(StoreError::InvalidRequest(m)) if m.contains("frames")));
    let unchanged = store.get(job.id).await.unwrap();
    assert_eq!((unchanged.state, unchanged.progress), (JobState::Assigned, None));
}
