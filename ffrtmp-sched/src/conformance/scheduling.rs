//! Scheduling policy: aging, capability matching, retention, the restart grace of failure
//! detection.

use std::time::Duration;

use crate::SchedConfig;
use ffrtmp_core::{ErrorKind, Heartbeat, JobQuery, JobState, Priority, Queue, StoreError};

use super::support::*;
use super::Backend;

/// A low batch job is not starved by a stream of high live jobs: it ages one rank per
/// 5 minutes and wins by age once at the top rank. (How a store ages is its own: the
/// built-in ones compute the aged rank when a claim compares jobs and rewrite no row.)
pub async fn a_low_batch_job_is_not_starved_by_a_stream_of_high_live_jobs(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
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
        store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
        store.sweep().await.unwrap();
        let a = claim(&*store, &node, 1).await.remove(0);
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

/// A job re-entering the queue (operator retry, end of backoff) starts again at its own rank.
pub async fn a_requeued_job_ages_from_its_own_rank_again(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut low = spec("720p-h264");
    low.queue = Queue::Batch;
    let old = store.submit(low).await.unwrap();
    // 50 minutes waiting: rank 7 has aged to 0.
    clock.advance(Duration::from_secs(50 * 60));
    store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
    store.sweep().await.unwrap();
    let fresh = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, old.id, "aged to the top");
    store.report(&failed(&a, &node, ErrorKind::EncodeError)).await.unwrap();
    store.retry(old.id).await.unwrap();
    // Back at rank 7 (batch/medium): the default-queue job goes first.
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, fresh.id);
    store.report(&completed(&a, &node, 1)).await.unwrap();
    assert_eq!(claim(&*store, &node, 1).await.remove(0).job.id, old.id);
}

/// A job for hardware the node lacks does not block the queue.
pub async fn a_job_for_hardware_the_node_lacks_does_not_block_the_queue(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let cpu = store
        .register_node(ffrtmp_core::NodeRegistration {
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

    let got: Vec<_> = claim(&*store, &cpu, 4).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(
        got,
        vec![plain.id],
        "cpu node (libx264 only) skips the NVENC and AV1 jobs"
    );

    let gpu = store
        .register_node(ffrtmp_core::NodeRegistration {
            encoders: vec!["h264_nvenc".into(), "libsvtav1".into()],
            ..registration("gpu", 4)
        })
        .await
        .unwrap();
    let got: Vec<_> = claim(&*store, &gpu, 4).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![gpu_job.id, av1.id]);

    // A node that advertises no encoders (a custom executor) takes any job without an
    // explicit encoder, whatever its codec.
    let vp9 = store.submit(spec("720p-vp9")).await.unwrap();
    let mut nvenc = spec("720p-h264");
    nvenc.parameters.encoder = Some("h264_nvenc".into());
    store.submit(nvenc).await.unwrap();
    let custom = store
        .register_node(ffrtmp_core::NodeRegistration {
            encoders: vec![],
            ..registration("custom", 4)
        })
        .await
        .unwrap();
    let got: Vec<_> = claim(&*store, &custom, 4).await.into_iter().map(|a| a.job.id).collect();
    assert_eq!(got, vec![vp9.id]);
}

/// An encoder that does not match the codec is refused.
pub async fn an_encoder_that_does_not_match_the_codec_is_refused(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let mut s = spec("720p-h265");
    s.parameters.encoder = Some("h264_nvenc".into());
    assert!(matches!(store.submit(s).await, Err(StoreError::InvalidSpec(_))));
}

/// Completed jobs are pruned after retention in bounded batches.
pub async fn completed_jobs_are_pruned_after_retention_in_bounded_batches(b: &dyn Backend) {
    let clock = ManualClock::new();
    let mut cfg = clock.config();
    cfg.retention = Some(Duration::from_secs(3600));
    cfg.prune_batch = 10;
    let store = b.open(cfg).await;
    let node = store.register_node(registration("n", 32)).await.unwrap();
    for _ in 0..25 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    let mut done = Vec::new();
    for a in claim(&*store, &node, 25).await {
        done.push(store.report(&completed(&a, &node, 1)).await.unwrap().id);
    }
    let kept = store.submit(spec("720p-h264")).await.unwrap();
    clock.advance(Duration::from_secs(3601));
    store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
    let mut pruned = Vec::new();
    for _ in 0..4 {
        pruned.push(store.sweep().await.unwrap().jobs_pruned);
    }
    assert_eq!(pruned, vec![10, 10, 5, 0]);
    let left = store.list(&JobQuery::default()).await.unwrap().jobs;
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].state), (kept.id, JobState::Queued));
    for id in done {
        assert!(matches!(store.get(id).await, Err(StoreError::NotFound { .. })));
    }
    assert_eq!(store.get(kept.id).await.unwrap().history.len(), 1);
}

/// A restarted master gives nodes a window to come back.
pub async fn a_restarted_master_gives_nodes_a_window_to_come_back(b: &dyn Backend) {
    let clock = ManualClock::new();
    let (node, job) = {
        let store = b.open(clock.config()).await;
        let node = store.register_node(registration("n", 1)).await.unwrap();
        store.submit(spec("720p-h264")).await.unwrap();
        let a = claim(&*store, &node, 1).await.remove(0);
        (node, a.job.id)
    };
    // The master was down for 10 minutes; the node's last heartbeat is that old.
    clock.advance(Duration::from_secs(600));
    let store = b.open(clock.config()).await;
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0, "grace after restart");
    let hb = Heartbeat {
        running: vec![ffrtmp_core::RunningJob {
            job_id: job,
            attempt: 1,
            progress: None,
        }],
        power: None,
    };
    store.heartbeat(node.id, &hb).await.unwrap();
    clock.advance(Duration::from_secs(60));
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0);
    assert_eq!(store.get(job).await.unwrap().state, JobState::Assigned);
    // Silent again for longer than 3 intervals: now it is lost.
    clock.advance(Duration::from_secs(91));
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 1);
    assert_eq!(store.get(job).await.unwrap().state, JobState::Retrying);
}

/// Staleness is judged by the lease (heartbeats), never by the job's age: a two-hour job
/// whose node heartbeats every interval is neither failed nor handed to anyone else.
pub async fn a_two_hour_job_with_healthy_heartbeats_is_never_failed_or_duplicated(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let worker = store.register_node(registration("worker", 1)).await.unwrap();
    let idle = store.register_node(registration("idle", 1)).await.unwrap();
    store.submit(spec("4K-h265")).await.unwrap();
    let a = claim(&*store, &worker, 1).await.remove(0);
    let hb = Heartbeat {
        running: vec![ffrtmp_core::RunningJob {
            job_id: a.job.id,
            attempt: a.job.attempt,
            progress: None,
        }],
        power: None,
    };
    // 2 h in 30 s heartbeats, sweeping after each, with another node asking for work.
    for _ in 0..(2 * 3600 / 30) {
        clock.advance(Duration::from_secs(30));
        assert!(store.heartbeat(worker.id, &hb).await.unwrap().cancel.is_empty());
        store.heartbeat(idle.id, &Heartbeat::default()).await.unwrap();
        let s = store.sweep().await.unwrap();
        assert_eq!((s.nodes_lost, s.jobs_requeued, s.jobs_failed), (0, 0, 0));
        assert!(
            claim(&*store, &idle, 1).await.is_empty(),
            "the running job was handed out again"
        );
    }
    let job = store.get(a.job.id).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Assigned, 1));
    store.report(&completed(&a, &worker, 216_000)).await.unwrap();
    let job = store.get(a.job.id).await.unwrap();
    assert_eq!(job.state, JobState::Completed);
    assert_eq!(job.history.iter().filter(|h| h.to == JobState::Assigned).count(), 1);
}
