//! Scheduling policy on the SQLite store: aging, head-of-line skipping, retention, and the
//! restart grace of failure detection.

mod common;

use std::time::Duration;

use common::*;
use ffrtmp_core::{JobQuery, JobState, JobStore, NodeRegistration, Priority, Queue, StoreError};

#[tokio::test]
async fn a_low_batch_job_is_not_starved_by_a_stream_of_high_live_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = open(&dir, clock.config());
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut low = spec("720p-h264");
    low.queue = Queue::Batch;
    low.priority = Priority::Low;
    let starving = store.submit(low).await.unwrap();

    // Every minute a new high-priority live job arrives and the node runs one job.
    let mut ran_low_after = None;
    for minute in 1..=60 {
        let mut high = spec("720p-h264");
        high.queue = Queue::Live;
        high.priority = Priority::High;
        store.submit(high).await.unwrap();
        clock.advance(Duration::from_secs(60));
        store.heartbeat(node.id, &Default::default()).await.unwrap();
        store.sweep().await.unwrap();
        let a = claim(&store, &node, 1).await.remove(0);
        store.report(&completed(&a, &node, 1)).await.unwrap();
        if a.job.id == starving.id {
            ran_low_after = Some(minute);
            break;
        }
    }
    // Rank 8 (batch/low) ages one level per 5 minutes: it reaches the top rank after 40
    // minutes and then wins by age.
    let minute = ran_low_after.expect("the low batch job never ran");
    assert!((40..=45).contains(&minute), "ran after {minute} minutes");
}

#[tokio::test]
async fn a_job_for_hardware_the_node_lacks_does_not_block_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Default::default());
    let cpu = store
        .register_node(NodeRegistration {
            encoders: vec!["libx264".into()],
            ..registration("cpu", 4)
        })
        .await
        .unwrap();
    let mut gpu_job = spec("1080p-h264");
    gpu_job.parameters.encoder = Some("h264_nvenc".into());
    gpu_job.priority = Priority::High;
    let gpu_job = store.submit(gpu_job).await.unwrap();
    let av1 = store.submit(spec("720p-av1")).await.unwrap();
    let plain = store.submit(spec("720p-h264")).await.unwrap();

    let got: Vec<_> = claim(&store, &cpu, 4).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![plain.id], "cpu node (libx264 only) skips the NVENC and AV1 jobs");

    let gpu = store
        .register_node(NodeRegistration {
            encoders: vec!["h264_nvenc".into(), "libsvtav1".into()],
            ..registration("gpu", 4)
        })
        .await
        .unwrap();
    let got: Vec<_> = claim(&store, &gpu, 4).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![gpu_job.id, av1.id]);
}

#[tokio::test]
async fn an_encoder_that_does_not_match_the_codec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Default::default());
    let mut s = spec("720p-h265");
    s.parameters.encoder = Some("h264_nvenc".into());
    assert!(matches!(store.submit(s).await, Err(StoreError::InvalidSpec(_))));
}

#[tokio::test]
async fn completed_jobs_are_pruned_after_retention_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let mut cfg = clock.config();
    cfg.retention = Some(Duration::from_secs(3600));
    cfg.prune_batch = 10;
    let store = open(&dir, cfg);
    let node = store.register_node(registration("n", 32)).await.unwrap();
    for _ in 0..25 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    for a in claim(&store, &node, 25).await {
        store.report(&completed(&a, &node, 1)).await.unwrap();
    }
    let kept = store.submit(spec("720p-h264")).await.unwrap();
    clock.advance(Duration::from_secs(3601));
    store.heartbeat(node.id, &Default::default()).await.unwrap();
    let pruned: Vec<u32> = [
        store.sweep().await.unwrap().jobs_pruned,
        store.sweep().await.unwrap().jobs_pruned,
        store.sweep().await.unwrap().jobs_pruned,
        store.sweep().await.unwrap().jobs_pruned,
    ]
    .into();
    assert_eq!(pruned, vec![10, 10, 5, 0]);
    let left = store.list(&JobQuery::default()).await.unwrap().jobs;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].state), (kept.id, JobState::Queued));
}

#[tokio::test]
async fn a_restarted_master_gives_nodes_a_window_to_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let (node, job) = {
        let store = open(&dir, clock.config());
        let node = store.register_node(registration("n", 1)).await.unwrap();
        store.submit(spec("720p-h264")).await.unwrap();
        let a = claim(&store, &node, 1).await.remove(0);
        (node, a.job.id)
    };
    // The master was down for 10 minutes; the node's last heartbeat is that old.
    clock.advance(Duration::from_secs(600));
    let store = open(&dir, clock.config());
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0, "grace after restart");
    store.heartbeat(node.id, &Default::default()).await.unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0);
    assert_eq!(store.get(job).await.unwrap().state, JobState::Assigned);
    // Silent again for longer than 3 intervals: now it is lost.
    clock.advance(Duration::from_secs(91));
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 1);
    assert_eq!(store.get(job).await.unwrap().state, JobState::Retrying);
}
