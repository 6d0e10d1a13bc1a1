//! The placement seam: which of the jobs a claiming node could take it takes now.
//!
//! A store's claim gathers candidates (queued jobs the node can run, from the head of each
//! requirement class) and sorts them in claim order: aged rank (queue × priority, aged by
//! the time waited), then queue entry, then `seq`. A [`Placement`] policy then says which of
//! them the node may take now and in which order of preference; a job it leaves out is
//! *deferred*: it stays queued for another node or a later claim.
//!
//! The store, not the policy, keeps the guarantees. Whatever a policy answers, the jobs
//! handed out are taken rank by rank (a job of a worse aged rank is never taken before a job
//! of a better rank that the policy allowed), at most the node's free slots, only jobs the
//! node can run, each with a new attempt (the fencing token). So a policy can only reorder
//! within an aged rank and defer; priorities, aging, concurrency caps and fencing hold
//! under any policy.
//!
//! [`DefaultPlacement`] allows every candidate in claim order: the claim order of a store
//! without a policy.
//!
//! A policy of one's own, in one's own crate, set on the store's configuration
//! (`ffrtmp_sched::SchedConfig::placement`):
//!
//! ```
//! use ffrtmp_core::placement::{Placement, PlacementCandidate, PlacementNeeds, PlacementNode};
//!
//! /// Takes only 720p jobs on nodes whose name starts with "small-"; everything elsewhere.
//! struct SmallNodesTake720p;
//!
//! impl Placement for SmallNodesTake720p {
//!     fn name(&self) -> &str {
//!         "small-720p"
//!     }
//!     fn needs(&self) -> PlacementNeeds {
//!         // Ask for the scenario of each candidate, and two extra jobs per class so that a
//!         // claim still finds work after deferring some.
//!         PlacementNeeds { scenario: true, peers: false, lookahead: 2 }
//!     }
//!     fn choose(&self, node: &PlacementNode, candidates: &[PlacementCandidate], _now_ms: u64) -> Vec<usize> {
//!         let small = node.name.starts_with("small-");
//!         (0..candidates.len())
//!             .filter(|&i| !small || candidates[i].scenario.starts_with("720p"))
//!             .collect()
//!     }
//! }
//!
//! let node = PlacementNode { id: ffrtmp_core::NodeId::new(), name: "small-1".into(), free_slots: 1, peers: vec![] };
//! let c = |seq, scenario: &str| PlacementCandidate {
//!     seq, scenario: scenario.into(), requirements: None, base_rank: 4, aged_rank: 4, queued_at_ms: seq,
//! };
//! let policy: std::sync::Arc<dyn Placement> = std::sync::Arc::new(SmallNodesTake720p);
//! assert_eq!(policy.choose(&node, &[c(1, "1080p-h264"), c(2, "720p-h264")], 0), vec![1]);
//! ```

use crate::ids::NodeId;
use crate::matching::Requirements;

/// A queued job a claiming node could take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementCandidate {
    /// The job's `seq` (its human number, unique in the store).
    pub seq: u64,
    /// The job's scenario, e.g. `720p-h264`; empty unless the policy's
    /// [`PlacementNeeds::scenario`] asked for it.
    pub scenario: String,
    /// What the job asks of its node (engine, codec, pinned encoder); `None` when the
    /// store's row names requirements this build cannot read.
    pub requirements: Option<Requirements>,
    /// Its rank when it entered the queue (queue × priority, lower is served first).
    pub base_rank: i64,
    /// Its rank aged by the time waited, at the claim's `now` (lower is served first).
    pub aged_rank: i64,
    /// When it (last) entered the queue, ms since the Unix epoch.
    pub queued_at_ms: u64,
}

/// Another online node, as a policy sees it when deciding for the claiming one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementPeer {
    /// The node's id.
    pub id: NodeId,
    /// Its registered name.
    pub name: String,
    /// Jobs it could take now (its concurrency less its active jobs).
    pub free_slots: u32,
    /// When it was last heard from, ms since the Unix epoch.
    pub last_seen_ms: u64,
}

/// The claiming node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementNode {
    /// The node's id.
    pub id: NodeId,
    /// Its registered name.
    pub name: String,
    /// Jobs it may take now (its concurrency less its active jobs, at most what it asked for).
    pub free_slots: u32,
    /// The other online nodes; empty unless the policy's [`PlacementNeeds::peers`] asked for
    /// them.
    pub peers: Vec<PlacementPeer>,
}

/// What a policy asks the store to supply with each claim, beyond the claim order. Each
/// costs the claim something, so the default asks for nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlacementNeeds {
    /// Fill [`PlacementCandidate::scenario`]: the store reads each candidate's row instead
    /// of answering from the claim index alone.
    pub scenario: bool,
    /// Fill [`PlacementNode::peers`]: one more query per claim, over the online nodes and
    /// their active jobs.
    pub peers: bool,
    /// Extra jobs fetched per requirement class (beyond the node's free slots), so that a
    /// claim still hands out eligible jobs after the policy deferred some. Stores cap it at
    /// [`MAX_LOOKAHEAD`].
    pub lookahead: u32,
}

/// Largest [`PlacementNeeds::lookahead`] a store honours.
pub const MAX_LOOKAHEAD: u32 = 64;

/// A placement policy: which candidates a claiming node takes now, in which order.
///
/// Object safe, `Send + Sync`: stores hold one as `Arc<dyn Placement>` and call it inside
/// the claim's transaction, so [`choose`](Self::choose) must be quick and must not block
/// (read shared state such as an efficiency table from memory; refresh it elsewhere).
pub trait Placement: Send + Sync {
    /// A short name for logs and health output, e.g. `default`, `energy-aware`.
    fn name(&self) -> &str;

    /// What the store must supply ([`PlacementNeeds`]); nothing extra by default.
    fn needs(&self) -> PlacementNeeds {
        PlacementNeeds::default()
    }

    /// The candidates `node` may take now, as indices into `candidates`, most preferred
    /// first; a candidate left out is deferred. `candidates` come in claim order and
    /// `now_ms` is the claim's time. Indices out of range or repeated are ignored, and the
    /// store takes the allowed jobs rank by rank (see the [module](self)).
    fn choose(&self, node: &PlacementNode, candidates: &[PlacementCandidate], now_ms: u64) -> Vec<usize>;
}

/// Today's order: every candidate, in claim order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DefaultPlacement;

impl Placement for DefaultPlacement {
    fn name(&self) -> &str {
        "default"
    }

    fn choose(&self, _node: &PlacementNode, candidates: &[PlacementCandidate], _now_ms: u64) -> Vec<usize> {
        (0..candidates.len()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_allows_every_candidate_in_claim_order() {
        let node = PlacementNode {
            id: NodeId::new(),
            name: "n".into(),
            free_slots: 1,
            peers: vec![],
        };
        let c = |seq| PlacementCandidate {
            seq,
            scenario: String::new(),
            requirements: None,
            base_rank: 0,
            aged_rank: 0,
            queued_at_ms: 0,
        };
        let p = DefaultPlacement;
        assert_eq!(p.choose(&node, &[c(3), c(1), c(2)], 0), vec![0, 1, 2]);
        assert_eq!(p.name(), "default");
        assert_eq!(p.needs(), PlacementNeeds::default());
    }
}
