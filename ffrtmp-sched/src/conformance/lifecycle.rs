//! Lifecycle, fencing, claim order and claim idempotency.

use std::time::Duration;

use ffrtmp_core::{ClaimRequest, Heartbeat, JobEvent, JobReport, JobState, Priority, Queue, RunningJob, StoreError};

use super::support::*;
use super::Backend;
use crate::SchedConfig;

/// Lifecycle is recorded in history.
pub async fn lifecycle_is_recorded_in_history(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n1", 2)).await.unwrap();
    let job = store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &node, 1).await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].job.id, job.id);
    assert_eq!(a[0].job.attempt, 1);
    assert_eq!(a[0].job.state, JobState::Assigned);
    assert_eq!(a[0].job.node_id, Some(node.id));
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
    let reasons: Vec<&str> = full.history.iter().map(|h| h.reason.as_str()).collect();
    assert_eq!(reasons, ["submitted", "claimed", "workload started", "completed"]);
    assert_eq!(full.history[0].from, None);
    assert_eq!(full.history[1].node_id, Some(node.id));
    assert_eq!(full.history[3].attempt, 1);
}

/// Stale attempts and other nodes are fenced.
pub async fn stale_attempts_and_other_nodes_are_fenced(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let n1 = store.register_node(registration("n1", 1)).await.unwrap();
    let n2 = store.register_node(registration("n2", 1)).await.unwrap();
    store.submit(spec("720p-h264")).await.unwrap();
    let a = claim(&*store, &n1, 1).await.remove(0);

    let mut wrong_attempt = completed(&a, &n1, 1);
    wrong_attempt.attempt = 7;
    match store.report(&wrong_attempt).await {
        Err(StoreError::Fenced {
            job_id,
            attempt,
            node_id,
            state,
            current_attempt,
        }) => {
            assert_eq!((job_id, attempt, node_id), (a.job.id, 7, n1.id));
            assert_eq!((state, current_attempt), (JobState::Assigned, 1));
        }
        other => panic!("expected Fenced, got {other:?}"),
    }
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
    let job = store.get(a.job.id).await.unwrap();
    assert_eq!(job.result.unwrap().frames, 10);
    assert_eq!(job.history.len(), 4, "the refused report left no history");
}

/// Order is queue then priority then fifo.
pub async fn order_is_queue_then_priority_then_fifo(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
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
    let order: Vec<u64> = claim(&*store, &node, 64).await.iter().map(|a| a.job.seq).collect();
    let s = &submitted;
    assert_eq!(order, vec![s[3], s[2], s[5], s[4], s[1], s[0]]);
}

/// Claims respect concurrency and are idempotent.
pub async fn claims_respect_concurrency_and_are_idempotent(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n", 2)).await.unwrap();
    for _ in 0..5 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    let req = claim_request(&node, "claim-1", 10);
    let first = store.claim(&req).await.unwrap();
    assert_eq!(first.len(), 2, "never more than the node's concurrency");
    let again = store.claim(&req).await.unwrap();
    assert_eq!(ids(&first), ids(&again), "a repeated claim returns the same assignment");
    assert!(claim(&*store, &node, 10).await.is_empty(), "slots are full");
    store.report(&completed(&first[0], &node, 1)).await.unwrap();
    assert_eq!(claim(&*store, &node, 10).await.len(), 1);
}

/// A repeated claim returns the jobs the node still holds, in the order first returned,
/// even when that is not the claim order any more; another node cannot replay it.
pub async fn repeated_claims_keep_their_first_order(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("n", 8)).await.unwrap();
    let other = store.register_node(registration("o", 8)).await.unwrap();
    let mut seqs = Vec::new();
    for priority in [Priority::Low, Priority::High, Priority::Medium, Priority::High] {
        let mut s = spec("720p-h264");
        s.priority = priority;
        seqs.push(store.submit(s).await.unwrap().seq);
    }
    let req = claim_request(&node, "same-claim", 4);
    let first = store.claim(&req).await.unwrap();
    let order: Vec<u64> = first.iter().map(|a| a.job.seq).collect();
    assert_eq!(order, vec![seqs[1], seqs[3], seqs[2], seqs[0]]);
    for _ in 0..3 {
        assert_eq!(ids(&store.claim(&req).await.unwrap()), ids(&first));
    }
    // Jobs no longer held drop out; the rest keep their order.
    store.report(&completed(&first[1], &node, 1)).await.unwrap();
    store.cancel(first[2].job.id, "user").await.unwrap();
    let again = store.claim(&req).await.unwrap();
    assert_eq!(ids(&again), vec![ids(&first)[0], ids(&first)[3]]);
    assert!(again.iter().all(|a| a.job.state == JobState::Assigned));
    // The same claim id from another node is a different claim (and finds nothing queued).
    assert!(store
        .claim(&claim_request(&other, "same-claim", 4))
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.claim(&claim_request(&node, "", 1)).await,
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.claim(&claim_request(&node, &"x".repeat(129), 1)).await,
        Err(StoreError::InvalidRequest(_))
    ));
    let unknown = ClaimRequest {
        node_id: ffrtmp_core::NodeId::new(),
        ..claim_request(&node, "c", 1)
    };
    assert!(matches!(
        store.claim(&unknown).await,
        Err(StoreError::NotFound { what: "node", .. })
    ));
}

/// Claim memory lasts an hour; after that a repeated claim id is a new claim.
pub async fn claims_are_forgotten_after_an_hour(b: &dyn Backend) {
    let clock = ManualClock::new();
    let store = b.open(clock.config()).await;
    let node = store.register_node(registration("n", 4)).await.unwrap();
    for _ in 0..3 {
        store.submit(spec("720p-h264")).await.unwrap();
    }
    let req = claim_request(&node, "old", 1);
    let first = store.claim(&req).await.unwrap();
    assert_eq!(first.len(), 1);
    // The node keeps listing the job it runs, so it keeps holding it.
    let hb = Heartbeat {
        running: vec![RunningJob {
            job_id: first[0].job.id,
            attempt: first[0].job.attempt,
            progress: None,
        }],
        power: None,
    };
    clock.advance(Duration::from_secs(30 * 60));
    store.heartbeat(node.id, &hb).await.unwrap();
    store.sweep().await.unwrap();
    assert_eq!(ids(&store.claim(&req).await.unwrap()), ids(&first), "still remembered");
    clock.advance(Duration::from_secs(31 * 60));
    store.heartbeat(node.id, &hb).await.unwrap();
    store.sweep().await.unwrap();
    let second = store.claim(&req).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].job.id, first[0].job.id, "a forgotten claim id claims anew");
}
