//! Claims under a placement policy: the store supplies what the policy asks for, a deferred
//! job leaves the others free to go, and no policy can run a worse rank first.

use std::sync::{Arc, Mutex};

use ffrtmp_core::{JobState, Placement, PlacementCandidate, PlacementNeeds, PlacementNode, Priority, Queue};

use super::support::*;
use super::Backend;
use crate::SchedConfig;

/// Defers jobs of `scenario` on nodes named `small*`; takes the rest in reverse claim order
/// (as a policy may: the store must still serve ranks in order). Records what it was shown.
struct Test {
    scenario: &'static str,
    seen: Mutex<Option<(PlacementNode, Vec<PlacementCandidate>)>>,
}

impl Placement for Test {
    fn name(&self) -> &str {
        "test"
    }
    fn needs(&self) -> PlacementNeeds {
        PlacementNeeds {
            scenario: true,
            peers: true,
            lookahead: 4,
        }
    }
    fn choose(&self, node: &PlacementNode, candidates: &[PlacementCandidate], _now_ms: u64) -> Vec<usize> {
        *self.seen.lock().unwrap() = Some((node.clone(), candidates.to_vec()));
        let small = node.name.starts_with("small");
        (0..candidates.len())
            .rev()
            .filter(|&i| !small || candidates[i].scenario != self.scenario)
            .collect()
    }
}

fn test_policy() -> Arc<Test> {
    Arc::new(Test {
        scenario: "1080p-h264",
        seen: Mutex::new(None),
    })
}

async fn open_with(b: &dyn Backend, policy: Arc<Test>) -> Arc<dyn ffrtmp_core::JobStore> {
    b.open(SchedConfig {
        placement: policy,
        ..SchedConfig::default()
    })
    .await
}

/// Jobs a policy defers stay queued for other nodes, and the jobs behind them (fetched
/// past the node's free slots) still go out, in rank order.
pub async fn a_deferred_job_leaves_the_jobs_behind_it_free_to_go(b: &dyn Backend) {
    let store = open_with(b, test_policy()).await;
    let small = store.register_node(registration("small", 2)).await.unwrap();
    let big = store.register_node(registration("big", 4)).await.unwrap();
    let mut deferred = Vec::new();
    for _ in 0..3 {
        deferred.push(store.submit(spec("1080p-h264")).await.unwrap());
    }
    let mid = store.submit(spec("720p-h264")).await.unwrap();
    let mut low = spec("720p-h264");
    (low.queue, low.priority) = (Queue::Batch, Priority::Low);
    let low = store.submit(low).await.unwrap();

    let got: Vec<u64> = claim(&*store, &small, 2).await.iter().map(|a| a.job.seq).collect();
    assert_eq!(
        got,
        vec![mid.seq, low.seq],
        "the 1080p jobs are left, the rest go in rank order"
    );
    let mut got: Vec<u64> = claim(&*store, &big, 4).await.iter().map(|a| a.job.seq).collect();
    got.sort_unstable();
    let seqs: Vec<u64> = deferred.iter().map(|j| j.seq).collect();
    assert_eq!(got, seqs, "the deferred jobs go to another node");
    for job in deferred {
        let job = store.get(job.id).await.unwrap();
        assert_eq!(
            (job.state, job.attempt, job.node_id),
            (JobState::Assigned, 1, Some(big.id))
        );
    }
}

/// A policy that prefers later jobs reorders within a rank only: a better rank still goes
/// first. The store shows the policy each candidate's scenario and rank, and the other
/// online nodes with their free slots.
pub async fn a_policy_reorders_within_a_rank_and_sees_what_it_asked_for(b: &dyn Backend) {
    let policy = test_policy();
    let store = open_with(b, policy.clone()).await;
    let node = store.register_node(registration("n", 1)).await.unwrap();
    let peer = store.register_node(registration("peer", 3)).await.unwrap();
    let mut low = spec("720p-h264");
    (low.queue, low.priority) = (Queue::Batch, Priority::Low);
    let low = store.submit(low).await.unwrap();
    let first = store.submit(spec("720p-vp9")).await.unwrap();
    let second = store.submit(spec("720p-h264")).await.unwrap();

    let got = claim(&*store, &node, 1).await;
    assert_eq!(
        got[0].job.seq, second.seq,
        "within rank the policy's order; never the low job first"
    );
    let (view, shown) = policy.seen.lock().unwrap().clone().expect("the policy was asked");
    assert_eq!((view.id, view.name.as_str(), view.free_slots), (node.id, "n", 1));
    let peers: Vec<_> = view
        .peers
        .iter()
        .map(|p| (p.id, p.name.as_str(), p.free_slots))
        .collect();
    assert_eq!(peers, vec![(peer.id, "peer", 3)]);
    let shown: Vec<_> = shown
        .iter()
        .map(|c| (c.seq, c.scenario.as_str(), c.aged_rank))
        .collect();
    let (mid_rank, low_rank) = (
        crate::policy::claim::rank(Queue::Default, Priority::Medium),
        crate::policy::claim::rank(Queue::Batch, Priority::Low),
    );
    assert_eq!(
        shown,
        vec![
            (first.seq, "720p-vp9", mid_rank),
            (second.seq, "720p-h264", mid_rank),
            (low.seq, "720p-h264", low_rank)
        ]
    );
    assert_eq!(claim(&*store, &node, 1).await.len(), 0, "one slot, held");
}
