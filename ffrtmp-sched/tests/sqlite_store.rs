//! End-to-end behaviour of the SQLite store on real database files.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ffrtmp_core::{
    ClaimRequest, ErrorKind, Heartbeat, JobError, JobEvent, JobQuery, JobReport, JobState, JobStore, Priority, Queue,
    RunningJob, StoreError,
};
use ffrtmp_sched::{SchedConfig, SqliteStore};

#[tokio::test]
async fn lifecycle_is_recorded_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let node = store.register_node(registration("n1", 2)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&store, &node, 1).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].job.id, job.id);
    assert_eq!(a[0].job.attempt, 1);
    store
        .report(&JobReport {
            job_id: job.id,
            node_id: node.id,
            attempt: 1,
            event: JobEvent::Started,
        })
        .await
        .unwrap();
    let done = store.report(&completed(&a[0], &node, 60)).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.unwrap().frames, 60);
    let full = store.get(job.id).await.unwrap();
    let states: Vec<JobState> = full.history.iter().map(|h| h.to).collect();
    assert_eq!(
        states,
        [
            JobState::Queued,
            JobState::Assigned,
            JobState::Running,
            JobState::Completed
        ]
    );
}

#[tokio::test]
async fn stale_attempts_and_other_nodes_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let n1 = store.register_node(registration("n1", 1)).await.unwrap();
    let n2 = store.register_node(registration("n2", 1)).await.unwrap();
    store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&store, &n1, 1).await.remove(0);

    let mut wrong_attempt = completed(&a, &n1, 1);
    wrong_attempt.attempt = 7;
    assert!(matches!(
        store.report(&wrong_attempt).await,
        Err(StoreError::Fenced { .. })
    ));
    let wrong_node = completed(&a, &n2, 1);
    assert!(matches!(
        store.report(&wrong_node).await,
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(store.get(a.job.id).await.unwrap().state, JobState::Assigned);

    // Completing twice: the second report is refused and changes nothing.
    store.report(&completed(&a, &n1, 10)).await.unwrap();
    assert!(matches!(
        store.report(&completed(&a, &n1, 99)).await,
        Err(StoreError::Fenced { .. })
    ));
    assert_eq!(store.get(a.job.id).await.unwrap().result.unwrap().frames, 10);
}

#[tokio::test]
async fn order_is_queue_then_priority_then_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let node = store.register_node(registration("n", 64)).await.unwrap();
    let mut submitted = Vec::new();
    for (queue, priority) in [
        (Queue::Batch, Priority::High),
        (Queue::Default, Priority::Low),
        (Queue::Default, Priority::High),
        (Queue::Live, Priority::Low),
        (Queue::Default, Priority::Medium),
        (Queue::Default, Priority::High),
    ] {
        let mut s = spec("720p-h264");
        s.queue = queue;
        s.priority = priority;
        submitted.push(store.submit(s).await.unwrap().seq);
    }
    let order: Vec<u64> = claim(&store, &node, 64).await.iter().map(|a| a.job.seq).collect();
    let s = &submitted;
    assert_eq!(order, vec![s[3], s[2], s[5], s[4], s[1], s[0]]);
}

#[tokio::test]
async fn claims_respect_concurrency_and_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let node = store.register_node(registration("n", 2)).await.unwrap();
    for _ in 0..5 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    let req = ClaimRequest {
        node_id: node.id,
        claim_id: "claim-1".into(),
        max_jobs: 10,
        wait_ms: 0,
    };
    let first = store.claim(&req).await.unwrap();
    assert_eq!(first.len(), 2, "never more than the node's concurrency");
    let again = store.claim(&req).await.unwrap();
    let ids = |v: &Vec<ffrtmp_core::Assignment>| v.iter().map(|a| (a.job.id, a.job.attempt)).collect::<Vec<_>>();
    assert_eq!(ids(&first), ids(&again), "a repeated claim returns the same assignment");
    assert!(claim(&store, &node, 10).await.is_empty(), "slots are full");
    store.report(&completed(&first[0], &node, 1)).await.unwrap();
    assert_eq!(claim(&store, &node, 10).await.len(), 1);
}

#[tokio::test]
async fn cancel_reaches_the_node_through_its_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let queued = store.submit(spec("720p-h264")).await.unwrap();
    let running = store.submit(spec("720p-h264")).await.unwrap();
    // The first job is claimed; cancel the other while it is queued.
    let a = claim(&store, &node, 1).await.remove(0);
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
    };
    assert!(store.heartbeat(node.id, &hb).await.unwrap().cancel.is_empty());
    store.cancel(a.job.id, "user").await.unwrap();
    assert_eq!(store.heartbeat(node.id, &hb).await.unwrap().cancel, vec![a.job.id]);
    assert!(matches!(
        store.report(&completed(&a, &node, 1)).await,
        Err(StoreError::Fenced { .. })
    ));

    // An operator may queue a canceled job again; it gets a new attempt.
    assert_eq!(store.retry(a.job.id).await.unwrap().state, JobState::Queued);
    let again = claim(&store, &node, 1).await.remove(0);
    assert_eq!((again.job.id, again.job.attempt), (a.job.id, 2));
}

#[tokio::test]
async fn a_lost_node_loses_its_jobs_and_its_late_report_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = open(&dir, clock.config());
    let dead = store.register_node(registration("dead", 1)).await.unwrap();
    let alive = store.register_node(registration("alive", 1)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&store, &dead, 1).await.remove(0);

    clock.advance(Duration::from_secs(60));
    store.heartbeat(alive.id, &Heartbeat::default()).await.unwrap();
    assert_eq!(store.sweep().await.unwrap().nodes_lost, 0, "60 s < 3 intervals");
    clock.advance(Duration::from_secs(31));
    let s = store.sweep().await.unwrap();
    assert_eq!((s.nodes_lost, s.jobs_requeued), (1, 1));
    let j = store.get(job.id).await.unwrap();
    assert_eq!(j.state, JobState::Retrying);
    assert_eq!(j.error.unwrap().kind, ErrorKind::NodeLost);

    // Backoff: not claimable until it ends (5 s nominal, jitter within [2.5, 5] s).
    assert!(claim(&store, &alive, 1).await.is_empty());
    clock.advance(Duration::from_secs(6));
    assert_eq!(store.sweep().await.unwrap().jobs_released, 1);
    let b = claim(&store, &alive, 1).await.remove(0);
    assert_eq!((b.job.id, b.job.attempt), (job.id, 2));

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
    };
    assert_eq!(store.heartbeat(dead.id, &hb).await.unwrap().cancel, vec![job.id]);
    store.report(&completed(&b, &alive, 7)).await.unwrap();
    let done = store.get(job.id).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.unwrap().frames, 7);
    let completions = done.history.iter().filter(|h| h.to == JobState::Completed).count();
    assert_eq!(completions, 1);
}

#[tokio::test]
async fn transient_failures_retry_until_exhausted_and_terminal_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new();
    let store = open(&dir, clock.config());
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let mut s = spec("720p-h264");
    s.max_retries = 1;
    let job = store.submit(s).await.unwrap();
    let fail = |a: &ffrtmp_core::Assignment, kind| JobReport {
        job_id: a.job.id,
        node_id: node.id,
        attempt: a.job.attempt,
        event: JobEvent::Failed {
            error: JobError::new(kind, "boom"),
        },
    };
    let a = claim(&store, &node, 1).await.remove(0);
    assert_eq!(
        store.report(&fail(&a, ErrorKind::Internal)).await.unwrap().state,
        JobState::Retrying
    );
    clock.advance(Duration::from_secs(10));
    store.sweep().await.unwrap();
    let a = claim(&store, &node, 1).await.remove(0);
    assert_eq!(a.job.attempt, 2);
    let j = store.report(&fail(&a, ErrorKind::Internal)).await.unwrap();
    assert_eq!(j.state, JobState::Failed, "max_retries = 1: two attempts in all");
    assert_eq!(job.id, j.id);

    let other = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&store, &node, 1).await.remove(0);
    assert_eq!(a.job.id, other.id);
    let j = store.report(&fail(&a, ErrorKind::EncodeError)).await.unwrap();
    assert_eq!(j.state, JobState::Failed, "an encode error is terminal");
    assert_eq!(j.error.unwrap().kind, ErrorKind::EncodeError);
}

#[tokio::test]
async fn jobs_and_states_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (queued, done, assigned) = {
        let store = open(&dir, SchedConfig::default());
        let node = store.register_node(registration("n", 4)).await.unwrap();
        let done = store.submit(spec("720p-h264")).await.unwrap();
        let assigned = store.submit(spec("1080p-h265")).await.unwrap();
        let queued = store.submit(spec("4K-h265")).await.unwrap();
        let a = claim(&store, &node, 2).await;
        store.report(&completed(&a[0], &node, 3)).await.unwrap();
        (queued.id, done.id, assigned.id)
    };
    let store = open(&dir, SchedConfig::default());
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

#[tokio::test]
async fn listing_is_paginated_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    let node = store.register_node(registration("n", 2)).await.unwrap();
    for _ in 0..25 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    claim(&store, &node, 2).await;
    let mut seen = HashSet::new();
    let mut q = JobQuery {
        limit: Some(10),
        ..Default::default()
    };
    loop {
        let page = store.list(&q).await.unwrap();
        assert!(page.jobs.len() <= 10);
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
}

#[tokio::test]
async fn invalid_specs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, SchedConfig::default());
    assert!(matches!(
        store.submit(spec("1080p-mpeg2")).await,
        Err(StoreError::InvalidSpec(_))
    ));
    assert!(store.list(&JobQuery::default()).await.unwrap().jobs.is_empty());
}

/// 8 threads race to claim 2,000 jobs: every job is claimed exactly once.
#[test]
fn claim_race_hands_out_each_job_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(rt.block_on(async {
        let store = SqliteStore::open(&dir.path().join("race.db")).unwrap();
        let mut handles = Vec::new();
        for _ in 0..2000 {
            let s = store.clone();
            handles.push(tokio::spawn(async move { s.submit(spec("720p-h264")).await.unwrap() }));
        }
        for h in handles {
            h.await.unwrap();
        }
        store
    }));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let node = store.register_node(registration(&format!("n{i}"), 16)).await.unwrap();
                    let mut mine = Vec::new();
                    loop {
                        let got = claim(store.as_ref(), &node, 16).await;
                        if got.is_empty() {
                            break;
                        }
                        for a in got {
                            store.report(&completed(&a, &node, 1)).await.unwrap();
                            mine.push(a.job.id);
                        }
                    }
                    mine
                })
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 2000, "every job claimed");
    assert_eq!(unique.len(), 2000, "no job claimed twice");
    let left = rt.block_on(store.list(&JobQuery {
        state: Some(JobState::Queued),
        ..Default::default()
    }));
    assert!(left.unwrap().jobs.is_empty());
}
