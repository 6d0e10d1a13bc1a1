//! Cancels, heartbeats, lost nodes, retries, restarts, listings and refused input.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ffrtmp_core::{
    Backoff, ErrorKind, Heartbeat, JobEvent, JobQuery, JobReport, JobState, NodeStatus, Progress, Queue, RunningJob,
    StoreError,
};

use super::support::*;
use super::Backend;
use crate::SchedConfig;

/// Cancel reaches the node through its heartbeat.
pub async fn cancel_reaches_the_node_through_its_heartbeat(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let queued = store.submit(spec("720p-h264")).await.unwrap();
    let running = store.submit(spec("720p-h264")).await.unwrap();
    // The first job is claimed; cancel the other while it is queued.
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, queued.id);
    assert_eq!(
        store.cancel(running.id, "user").await.unwrap().state,
        JobState::Canceled
    );
    assert!(matches!(
        store.cancel(running.id, "again").await,
        Err(StoreError::InvalidTransition(_))
    ));

    let hb = Heartbeat {
        running: vec![RunningJob {
            job_id: a.job.id,
            attempt: a.job.attempt,
            progress: None,
        }],
        power: None,
    };
    assert!(store.heartbeat(node.id, &hb).await.unwrap().cancel.is_empty());
    let canceled = store.cancel(a.job.id, "user").await.unwrap();
    assert_eq!(canceled.node_id, Some(node.id), "the node stays on the job until told");
    assert_eq!(store.heartbeat(node.id, &hb).await.unwrap().cancel, vec![a.job.id]);
    assert!(matches!(
        store.report(&completed(&a, &node, 1)).await,
        Err(StoreError::Fenced { .. })
    ));
    let history = store.get(a.job.id).await.unwrap().history;
    assert_eq!(history.last().unwrap().reason, "user");

    // An operator may queue a canceled job again; it gets a new attempt.
    assert_eq!(store.retry(a.job.id).await.unwrap().state, JobState::Queued);
    let again = claim(&*store, &node, 1).await.remove(0);
    assert_eq!((again.job.id, again.job.attempt), (a.job.id, 2));
}

/// Heartbeats store progress of held jobs, tell the node to stop anything else, and refuse
/// unknown nodes.
pub async fn heartbeats_store_progress_and_fence_the_rest(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n", 2)).await.unwrap();
    let other = store.register_node(registration("o", 2)).await.unwrap();
    store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    let progress = Progress {
        frame: 120,
        fps: 60.0,
        speed: 2.0,
        percent: 40.0,
        out_time_s: 4.0,
        live: None,
    };
    let unknown = ffrtmp_core::JobId::new();
    let hb = Heartbeat {
        running: vec![
            RunningJob {
                job_id: a.job.id,
                attempt: a.job.attempt,
                progress: Some(progress.clone()),
            },
            RunningJob {
                job_id: unknown,
                attempt: 1,
                progress: None,
            },
        ],
        power: None,
    };
    assert_eq!(store.heartbeat(node.id, &hb).await.unwrap().cancel, vec![unknown]);
    let job = store.get(a.job.id).await.unwrap();
    assert_eq!(job.progress, Some(progress.clone()));
    assert_eq!(job.state, JobState::Assigned, "a heartbeat does not change state");
    // Another node claiming to run it, or a stale attempt, is told to stop; nothing changes.
    let stolen = Heartbeat {
        running: vec![RunningJob {
            job_id: a.job.id,
            attempt: a.job.attempt,
            progress: Some(Progress::default()),
        }],
        power: None,
    };
    assert_eq!(store.heartbeat(other.id, &stolen).await.unwrap().cancel, vec![a.job.id]);
    assert_eq!(store.get(a.job.id).await.unwrap().progress, Some(progress));
    assert!(matches!(
        store.heartbeat(ffrtmp_core::NodeId::new(), &Heartbeat::default()).await,
        Err(StoreError::NotFound { what: "node", .. })
    ));
    // Progress reports move an assigned job to running.
    let r = store
        .report(&JobReport {
            job_id: a.job.id,
            node_id: node.id,
            attempt: a.job.attempt,
            event: JobEvent::Progress {
                progress: Progress {
                    frame: 7,
                    ..Default::default()
                },
            },
        })
        .await
        .unwrap();
    assert_eq!(r.state, JobState::Running);
    assert_eq!(r.progress.unwrap().frame, 7);
    assert_eq!(
        store.get(a.job.id).await.unwrap().history.last().unwrap().reason,
        "progress reported"
    );
}

/// A lost node loses its jobs and its late report is refused.
pub async fn a_lost_node_loses_its_jobs_and_its_late_report_is_refused(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let dead = store.register_node(registration("dead", 1)).await.unwrap();
    let alive = store.register_node(registration("alive", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &dead, 1).await.remove(0);

    clock.advance(Duration::from_secs(60));
    store.heartbeat(alive.id, &Heartbeat::default()).await.unwrap();
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0, "60 s < 3 intervals");
    clock.advance(Duration::from_secs(31));
    let s = store.sweep().await.unwrap();
    assert_eq!((s.nodes_lost, s.jobs_requeued), (1, 1));
    let j = store.get(job.id).await.unwrap();
    assert_eq!(j.state, JobState::Retrying);
    assert_eq!(j.error.unwrap().kind, ErrorKind::NodeLost);
    let nodes = store.list_nodes().await.unwrap();
    let status: HashMap<_, _> = nodes.iter().map(|n| (n.id, (n.status, n.active_jobs))).collect();
    assert_eq!(status[&dead.id], (NodeStatus::Offline, 0));
    assert_eq!(status[&alive.id], (NodeStatus::Online, 0));
    assert_eq!(
        store.sweep().await.unwrap(),
        Default::default(),
        "a lost node is lost once"
    );

    // Backoff: not claimable until it ends (5 s nominal, jitter within [2.5, 5] s).
    assert!(claim(&*store, &alive, 1).await.is_empty());
    clock.advance(Duration::from_secs(6));
    assert_eq!(store.sweep().await.unwrap().jobs_released, 1);
    let b2 = claim(&*store, &alive, 1).await.remove(0);
    assert_eq!((b2.job.id, b2.job.attempt), (job.id, 2));

    // The dead node comes back with its old result: refused, nothing changes.
    assert!(matches!(
        store.report(&completed(&a, &dead, 5)).await,
        Err(StoreError::Fenced { .. })
    ));
    let hb = Heartbeat {
        running: vec![RunningJob {
            job_id: a.job.id,
            attempt: 1,
            progress: None,
        }],
        power: None,
    };
    assert_eq!(store.heartbeat(dead.id, &hb).await.unwrap().cancel, vec![job.id]);
    store.report(&completed(&b2, &alive, 7)).await.unwrap();
    let done = store.get(job.id).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.unwrap().frames, 7);
    let completions = done.history.iter().filter(|h| h.to == JobState::Completed).count();
    assert_eq!(completions, 1);
    let reasons: Vec<&str> = done.history.iter().map(|h| h.reason.as_str()).collect();
    assert_eq!(reasons[3], "backoff ended");
    assert!(reasons[2].starts_with("NodeLost: node "), "{reasons:?}");
}

/// Transient failures retry until exhausted and terminal ones do not.
pub async fn transient_failures_retry_until_exhausted_and_terminal_ones_do_not(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut s = spec("720p-h264");
    s.max_retries = 1;
    let job = store.submit(s).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    let retrying = store.report(&failed(&a, &node, ErrorKind::Internal)).await.unwrap();
    assert_eq!(retrying.state, JobState::Retrying);
    let at = retrying.retry_at_ms.expect("retry time");
    let now = clock.0.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (now + 2_500..=now + 5_000).contains(&at),
        "first backoff is 5 s with jitter"
    );
    clock.advance(Duration::from_secs(10));
    store.sweep().await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.attempt, 2);
    let j = store.report(&failed(&a, &node, ErrorKind::Internal)).await.unwrap();
    assert_eq!(j.state, JobState::Failed, "max_retries = 1: two attempts in all");
    assert_eq!(job.id, j.id);
    assert!(store
        .get(j.id)
        .await
        .unwrap()
        .history
        .last()
        .unwrap()
        .reason
        .starts_with("retries exhausted"));

    let other = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, other.id);
    let j = store.report(&failed(&a, &node, ErrorKind::EncodeError)).await.unwrap();
    assert_eq!(j.state, JobState::Failed, "an encode error is terminal");
    assert_eq!(j.error.unwrap().kind, ErrorKind::EncodeError);
}

/// An operator retry starts a fresh retry budget; a timeout fails without retry.
pub async fn operator_retry_resets_the_budget_and_timeouts_fail(b: &dyn Backend) {
    let clock = ManualClock::new();
    let mut cfg = clock.config();
    cfg.job_backoff = Backoff {
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_retries: 0,
    };
    let store = b.open(cfg).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut s = spec("720p-h264");
    s.max_retries = 0;
    let job = store.submit(s).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    let j = store
        .report(&failed(&a, &node, ErrorKind::NodeUnavailable))
        .await
        .unwrap();
    assert_eq!(j.state, JobState::Failed, "max_retries = 0: no retry");
    assert!(matches!(
        store.retry(ffrtmp_core::JobId::new()).await,
        Err(StoreError::NotFound { what: "job", .. })
    ));
    let q = store.retry(job.id).await.unwrap();
    assert_eq!((q.state, q.attempt), (JobState::Queued, 1));
    assert_eq!(
        store.get(job.id).await.unwrap().history.last().unwrap().reason,
        "re-queued by operator"
    );
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.attempt, 2);
    // Timed out: terminal even though retries would count from the re-queue.
    let j = store
        .report(&JobReport {
            job_id: a.job.id,
            node_id: node.id,
            attempt: 2,
            event: JobEvent::TimedOut {
                message: "ran past 10 s".into(),
                energy: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.error.as_ref().unwrap().kind, ErrorKind::Timeout);
    let h = store.get(job.id).await.unwrap().history;
    let tail: Vec<(JobState, &str)> = h.iter().rev().take(2).map(|e| (e.to, e.reason.as_str())).collect();
    assert_eq!(
        tail,
        [
            (JobState::Failed, "timed out; not retried"),
            (JobState::TimedOut, "ran past 10 s")
        ]
    );
    // Completed jobs cannot be re-queued.
    let done = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, done.id);
    store.report(&completed(&a, &node, 1)).await.unwrap();
    assert!(matches!(
        store.retry(done.id).await,
        Err(StoreError::InvalidTransition(_))
    ));
}

/// Jobs and states survive a restart.
pub async fn jobs_and_states_survive_a_restart(b: &dyn Backend) {
    let (queued, done, assigned) = {
        let store = b.open(SchedConfig::default()).await;
        let node = store.register_node(registration("n", 4)).await.unwrap();
        let done = store.submit(spec("720p-h264")).await.unwrap();
        let assigned = store.submit(spec("1080p-h265")).await.unwrap();
        let queued = store.submit(spec("4K-h265")).await.unwrap();
        let a = claim(&*store, &node, 2).await;
        store.report(&completed(&a[0], &node, 3)).await.unwrap();
        (queued.id, done.id, assigned.id)
    };
    let store = b.open(SchedConfig::default()).await;
    assert_eq!(store.get(queued).await.unwrap().state, JobState::Queued);
    assert_eq!(store.get(done).await.unwrap().state, JobState::Completed);
    let a = store.get(assigned).await.unwrap();
    assert_eq!(
        (a.state, a.attempt, a.spec.scenario.as_str()),
        (JobState::Assigned, 1, "1080p-h265")
    );
    assert_eq!(store.list_nodes().await.unwrap().len(), 1);
    let page = store.list(&JobQuery::default()).await.unwrap();
    assert_eq!(page.jobs.len(), 3);
}

/// Listing is paginated and filtered.
pub async fn listing_is_paginated_and_filtered(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n", 2)).await.unwrap();
    for i in 0..25 {
        let mut s = spec("720p-h264");
        if i % 5 == 0 {
            s.queue = Queue::Batch;
        }
        store.submit(s).await.unwrap();
    }
    claim(&*store, &node, 2).await;
    let mut seen = HashSet::new();
    let mut last_seq = u64::MAX;
    let mut q = JobQuery {
        limit: Some(10),
        ..Default::default()
    };
    loop {
        let page = store.list(&q).await.unwrap();
        assert!(page.jobs.len() <= 10);
        for j in &page.jobs {
            assert!(j.seq < last_seq, "newest first");
            assert!(j.history.is_empty(), "lists leave history out");
            last_seq = j.seq;
        }
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(c) => q.before_seq = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let assigned = store
        .list(&JobQuery {
            state: Some(JobState::Assigned),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(assigned.jobs.len(), 2);
    let on_node = store
        .list(&JobQuery {
            node_id: Some(node.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(on_node.jobs.len(), 2);
    let batch = store
        .list(&JobQuery {
            queue: Some(Queue::Batch),
            state: Some(JobState::Queued),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(batch.jobs.len(), 5);
    assert_eq!(batch.next_cursor, None);
    let one = store
        .list(&JobQuery {
            limit: Some(0),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(one.jobs.len(), 1, "limits are clamped to at least one");
    assert!(one.next_cursor.is_some());
}

/// Invalid specs and registrations are refused.
pub async fn invalid_specs_and_registrations_are_refused(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    assert!(matches!(
        store.submit(spec("1080p-mpeg2")).await,
        Err(StoreError::InvalidSpec(_))
    ));
    assert!(store.list(&JobQuery::default()).await.unwrap().jobs.is_empty());
    assert!(matches!(
        store.get(ffrtmp_core::JobId::new()).await,
        Err(StoreError::NotFound { what: "job", .. })
    ));
    assert!(matches!(
        store.register_node(registration("n", 0)).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.register_node(registration("", 1)).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(store.list_nodes().await.unwrap().is_empty());
}

/// A job its node stops listing in heartbeats (the agent dropped it) goes back to the queue
/// without using a retry; a job claimed moments ago is spared, its claim may be in flight.
pub async fn a_job_the_node_stopped_listing_goes_back_to_the_queue(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 2)).await.unwrap();
    let mut s = spec("720p-h264");
    s.max_retries = 0;
    let dropped = store.submit(s).await.unwrap();
    let a = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, dropped.id);
    clock.advance(Duration::from_secs(61));
    let fresh = store.submit(spec("720p-h264")).await.unwrap();
    let b2 = claim(&*store, &node, 1).await.remove(0);
    assert_eq!(b2.job.id, fresh.id);
    // The node lists neither job: the one claimed 61 s ago (> 2 intervals) is taken back.
    store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
    let j = store.get(dropped.id).await.unwrap();
    assert_eq!(
        j.state,
        JobState::Retrying,
        "max_retries 0, yet a hand-back costs no retry"
    );
    assert_eq!(j.error.unwrap().kind, ErrorKind::Interrupted);
    assert_eq!(
        store.get(fresh.id).await.unwrap().state,
        JobState::Assigned,
        "just claimed: spared"
    );
    // Its late report is fenced.
    assert!(matches!(
        store.report(&completed(&a, &node, 1)).await,
        Err(StoreError::Fenced { .. })
    ));
}

/// A node handed a job again (it was declared lost, then came back) may still list the old
/// attempt while stopping it: the reply names that attempt, never the newer one, and the
/// newer attempt counts as dropped only when the node stops listing it.
pub async fn a_reassigned_jobs_stale_attempt_is_fenced_by_attempt(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 2)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let first = claim(&*store, &node, 1).await.remove(0);
    clock.advance(Duration::from_secs(91));
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 1);
    clock.advance(Duration::from_secs(6));
    assert_eq!(store.sweep().await.unwrap().jobs_released, 1);
    store.heartbeat(node.id, &Heartbeat::default()).await.unwrap();
    let second = claim(&*store, &node, 1).await.remove(0);
    assert_eq!((second.job.id, second.job.attempt), (job.id, 2));

    let listing = |attempts: &[u32]| Heartbeat {
        running: attempts
            .iter()
            .map(|&attempt| RunningJob {
                job_id: job.id,
                attempt,
                progress: None,
            })
            .collect(),
        power: None,
    };
    let reply = store.heartbeat(node.id, &listing(&[1, 2])).await.unwrap();
    assert_eq!(reply.cancel, vec![job.id]);
    assert_eq!(reply.cancel_attempts, vec![first.job.attempt_key()]);
    assert_eq!(store.get(job.id).await.unwrap().state, JobState::Assigned);

    // Past the claim's grace, the node lists only the stale attempt: it does not run the
    // current one, which goes back.
    clock.advance(Duration::from_secs(61));
    let reply = store.heartbeat(node.id, &listing(&[1])).await.unwrap();
    assert_eq!(reply.cancel_attempts, vec![first.job.attempt_key()]);
    let j = store.get(job.id).await.unwrap();
    assert_eq!(j.state, JobState::Retrying, "{:?}", j.history);
    assert_eq!(j.error.unwrap().kind, ErrorKind::Interrupted);
}
