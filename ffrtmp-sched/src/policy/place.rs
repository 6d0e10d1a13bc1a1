//! What a claim hands out once the placement policy has spoken: the one decision both
//! stores call, so the guarantees of the claim order hold under any
//! [`Placement`].
//!
//! A store probes the head of each requirement class its node can run (at most
//! [`probe_limit`] jobs each, in queue-entry order, which within a class is also aging
//! order), and passes them here per class. [`place`] sorts them in claim order
//! ([`order_key`]), asks the policy, and takes the allowed jobs rank by rank.
//!
//! Rank discipline: a job of a worse aged rank is never taken before an allowed job of a
//! better one, and never past the *horizon*: when a class filled its probe, jobs beyond it
//! were not seen, and they may be of the aged rank of its last probed job; so nothing of a
//! worse aged rank than that is taken by this claim. Without deferrals the first `want` jobs
//! all lie within the horizon, so the default policy hands out exactly the claim order.

use std::time::Duration;

use ffrtmp_core::placement::MAX_LOOKAHEAD;
use ffrtmp_core::{Placement, PlacementCandidate, PlacementNode, Requirements};

use super::claim::{order_key, Candidate};
use super::sweep::aged_rank;

/// A probed job: its place in the claim order and what a policy may look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Its claim-order fields.
    pub candidate: Candidate,
    /// Its scenario (empty unless the policy asked for it).
    pub scenario: String,
    /// Its class's requirements.
    pub requirements: Option<Requirements>,
}

/// How many jobs a claim wanting `want` probes per class under `policy`: `want` plus the
/// policy's lookahead (capped at [`MAX_LOOKAHEAD`]).
pub fn probe_limit(policy: &dyn Placement, want: u32) -> u32 {
    want.saturating_add(policy.needs().lookahead.min(MAX_LOOKAHEAD))
}

/// The jobs `node` may take, in the order it takes them: of `classes` (each class's probed
/// jobs in queue-entry order, at most `limit` each), those `policy` allows, rank by rank
/// within the horizon (see the [module](self)). A store takes the first of them it can, up
/// to the node's free slots; the rest stay queued.
pub fn place(
    policy: &dyn Placement,
    node: &PlacementNode,
    classes: Vec<Vec<Head>>,
    limit: u32,
    now: u64,
    aging_interval: Duration,
) -> Vec<Candidate> {
    let aged = |c: &Candidate| aged_rank(c.base_rank, c.queued_at_ms, now, aging_interval);
    let horizon = classes
        .iter()
        .filter(|rows| rows.len() >= limit as usize)
        .filter_map(|rows| rows.last().map(|h| aged(&h.candidate)))
        .min();
    let mut heads: Vec<Head> = classes.into_iter().flatten().collect();
    heads.sort_by_key(|h| order_key(&h.candidate, now, aging_interval));
    let offered: Vec<PlacementCandidate> = heads
        .iter()
        .map(|h| PlacementCandidate {
            seq: h.candidate.seq,
            scenario: h.scenario.clone(),
            requirements: h.requirements.clone(),
            base_rank: h.candidate.base_rank,
            aged_rank: aged(&h.candidate),
            queued_at_ms: h.candidate.queued_at_ms,
        })
        .collect();
    let mut seen = vec![false; heads.len()];
    // (aged rank, the policy's preference) for each allowed job, first mention only.
    let mut allowed: Vec<(i64, usize, usize)> = Vec::new();
    for i in policy.choose(node, &offered, now) {
        if i < heads.len() && !seen[i] {
            seen[i] = true;
            allowed.push((offered[i].aged_rank, allowed.len(), i));
        }
    }
    allowed.sort_unstable();
    allowed
        .into_iter()
        .filter(|(rank, _, _)| horizon.is_none_or(|h| *rank <= h))
        .map(|(_, _, i)| heads[i].candidate)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{DefaultPlacement, NodeId};

    const STEP: Duration = Duration::from_secs(300);

    fn head(seq: u64, base_rank: i64, queued_at_ms: u64) -> Head {
        Head {
            candidate: Candidate {
                seq,
                base_rank,
                queued_at_ms,
            },
            scenario: String::new(),
            requirements: None,
        }
    }

    fn node() -> PlacementNode {
        PlacementNode {
            id: NodeId::new(),
            name: "n".into(),
            free_slots: 2,
            peers: vec![],
        }
    }

    /// A policy answering fixed indices (as a careless or hostile one might).
    struct Fixed(Vec<usize>);
    impl Placement for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn choose(&self, _: &PlacementNode, _: &[PlacementCandidate], _: u64) -> Vec<usize> {
            self.0.clone()
        }
    }

    fn seqs(v: Vec<Candidate>) -> Vec<u64> {
        v.into_iter().map(|c| c.seq).collect()
    }

    #[test]
    fn the_default_policy_hands_out_the_claim_order_exactly() {
        let now = 10_000_000;
        let classes = vec![
            vec![head(1, 8, now - 2_400_000), head(7, 8, now - 10)],
            vec![head(3, 0, now - 1_000), head(9, 0, now)],
            vec![head(5, 4, now - 600_000)],
        ];
        let all: Vec<Candidate> = classes.iter().flatten().map(|h| h.candidate).collect();
        for want in 0..=5 {
            let expected = super::super::claim::pick(all.clone(), want, now, STEP);
            // A store probes `want` jobs per class under the default policy.
            let mut probed = classes.clone();
            probed.iter_mut().for_each(|rows| rows.truncate(want));
            let limit = probe_limit(&DefaultPlacement, want as u32);
            let mut got = place(&DefaultPlacement, &node(), probed, limit, now, STEP);
            got.truncate(want);
            assert_eq!(got, expected, "want {want}");
        }
    }

    #[test]
    fn a_policy_reorders_within_a_rank_but_never_across_ranks() {
        let now = 1_000;
        // Ranks 0, 0, 4 in claim order: seq 1, 2, 3.
        let classes = vec![vec![head(1, 0, 1), head(2, 0, 2)], vec![head(3, 4, 1)]];
        // The policy prefers the rank-4 job, then seq 2, then seq 1; out-of-range and
        // repeated indices are ignored.
        let p = Fixed(vec![2, 1, 9, 1, 0]);
        assert_eq!(seqs(place(&p, &node(), classes.clone(), 3, now, STEP)), vec![2, 1, 3]);
        // Deferring the rank-0 jobs lets the rank-4 one go.
        assert_eq!(seqs(place(&Fixed(vec![2]), &node(), classes, 3, now, STEP)), vec![3]);
    }

    #[test]
    fn nothing_of_a_worse_rank_is_taken_past_a_class_that_may_hold_more() {
        let now = 1_000;
        // Class A filled its probe (limit 2) with rank-0 jobs, so more rank-0 jobs may wait
        // beyond it; the policy defers both seen ones.
        let classes = vec![vec![head(1, 0, 1), head(2, 0, 2)], vec![head(3, 4, 1)]];
        assert!(place(&Fixed(vec![2]), &node(), classes.clone(), 2, now, STEP).is_empty());
        // A class that did not fill its probe holds nothing more: no horizon.
        let classes = vec![vec![head(1, 0, 1)], vec![head(3, 4, 1)]];
        assert_eq!(seqs(place(&Fixed(vec![1]), &node(), classes, 2, now, STEP)), vec![3]);
    }

    #[test]
    fn the_probe_grows_by_the_policys_lookahead_within_a_cap() {
        struct Look(u32);
        impl Placement for Look {
            fn name(&self) -> &str {
                "look"
            }
            fn needs(&self) -> ffrtmp_core::PlacementNeeds {
                ffrtmp_core::PlacementNeeds {
                    lookahead: self.0,
                    ..Default::default()
                }
            }
            fn choose(&self, _: &PlacementNode, c: &[PlacementCandidate], _: u64) -> Vec<usize> {
                (0..c.len()).collect()
            }
        }
        assert_eq!(probe_limit(&DefaultPlacement, 3), 3);
        assert_eq!(probe_limit(&Look(5), 3), 8);
        assert_eq!(probe_limit(&Look(u32::MAX), 3), 3 + MAX_LOOKAHEAD);
    }
}
