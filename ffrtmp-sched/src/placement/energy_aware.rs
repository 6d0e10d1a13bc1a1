//! [`EnergyAware`]: a node takes the work it runs efficiently, and leaves a job to a clearly
//! more efficient idle node for a bounded wait.

use std::collections::HashMap;
use std::time::Duration;

use ffrtmp_core::{Placement, PlacementCandidate, PlacementNeeds, PlacementNode, Requirements};

use super::table::{Efficiency, SharedEfficiency};

/// Settings of [`EnergyAware`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnergyAwareConfig {
    /// Longest a job is left for a more efficient node, counted from when it entered the
    /// queue; after it, any node that can run it takes it.
    pub max_wait: Duration,
    /// How much fewer joules per frame another node must need to count as clearly more
    /// efficient (0.15: at least 15 % fewer).
    pub margin: f64,
    /// A (node, encoder, scenario) with fewer energy samples than this is unknown: the node
    /// takes such work (so new nodes and encoders get measured), and is never deferred to
    /// for it.
    pub min_samples: u64,
    /// Extra jobs probed per requirement class, so that a node that defers some still finds
    /// the others.
    pub lookahead: u32,
}

impl Default for EnergyAwareConfig {
    fn default() -> Self {
        EnergyAwareConfig {
            max_wait: Duration::from_secs(10),
            margin: 0.15,
            min_samples: 3,
            lookahead: 8,
        }
    }
}

/// The energy-aware placement policy (`--placement energy-aware`).
///
/// For each candidate, in claim order, a node:
/// - takes it when it has waited [`EnergyAwareConfig::max_wait`] since entering the queue;
/// - takes it when its own J/frame for the job's (encoder, scenario) is unknown (fewer than
///   [`EnergyAwareConfig::min_samples`] samples): exploring;
/// - leaves it when another online node with a free slot needs at least
///   [`EnergyAwareConfig::margin`] fewer J/frame for it, as long as that node has a free slot
///   left for it in this claim (each deferred job uses up one of that node's free slots);
/// - takes it otherwise.
///
/// J/frame are the efficiency table's medians: measured where the node has any, else
/// estimated from its power model. The table is read from memory ([`SharedEfficiency`]),
/// kept fresh by [`spawn_efficiency_refresher`](super::spawn_efficiency_refresher). The
/// policy asks the store for each candidate's scenario and for the peers (see
/// [`PlacementNeeds`]).
pub struct EnergyAware {
    config: EnergyAwareConfig,
    table: SharedEfficiency,
}

impl EnergyAware {
    /// The policy over `table` with `config`.
    pub fn new(config: EnergyAwareConfig, table: SharedEfficiency) -> Self {
        EnergyAware { config, table }
    }

    /// Its settings.
    pub fn config(&self) -> &EnergyAwareConfig {
        &self.config
    }

    /// The table it reads.
    pub fn table(&self) -> &SharedEfficiency {
        &self.table
    }

    /// A known figure: J/frame with at least `min_samples` samples.
    fn known(&self, table: &Efficiency, node: &str, c: &PlacementCandidate) -> Option<f64> {
        let fig = table.figure(node, &c.scenario, c.requirements.as_ref())?;
        (fig.samples >= self.config.min_samples).then_some(fig.joules_per_frame)
    }
}

impl Placement for EnergyAware {
    fn name(&self) -> &str {
        "energy-aware"
    }

    fn needs(&self) -> PlacementNeeds {
        PlacementNeeds {
            scenario: true,
            peers: true,
            lookahead: self.config.lookahead,
        }
    }

    fn choose(&self, node: &PlacementNode, candidates: &[PlacementCandidate], now_ms: u64) -> Vec<usize> {
        let table = self.table.current();
        let me = node.id.to_string();
        let mut free: HashMap<String, u32> = node
            .peers
            .iter()
            .filter(|p| p.free_slots > 0)
            .map(|p| (p.id.to_string(), p.free_slots))
            .collect();
        let max_wait = self.config.max_wait.as_millis().min(u128::from(u64::MAX)) as u64;
        let mut take = Vec::with_capacity(candidates.len());
        for (i, c) in candidates.iter().enumerate() {
            if now_ms.saturating_sub(c.queued_at_ms) >= max_wait {
                take.push(i);
                continue;
            }
            let Some(mine) = self.known(&table, &me, c) else {
                take.push(i);
                continue;
            };
            let better = free
                .iter()
                .filter(|(_, slots)| **slots > 0)
                .filter_map(|(peer, _)| self.known(&table, peer, c).map(|jpf| (peer.clone(), jpf)))
                .filter(|(_, jpf)| *jpf <= mine * (1.0 - self.config.margin))
                .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            match better {
                Some((peer, _)) => {
                    if let Some(slots) = free.get_mut(&peer) {
                        *slots -= 1;
                    }
                }
                None => take.push(i),
            }
        }
        take
    }
}

/// Whether an efficiency row's `encoder` (`engine/encoder`) may have run a job with `req`:
/// the job's pinned engine and encoder, when it names them, must match.
pub(super) fn compatible(encoder: &str, req: Option<&Requirements>) -> bool {
    let Some(req) = req else { return true };
    let (engine, name) = encoder.split_once('/').unwrap_or(("", encoder));
    req.engine.pinned().is_none_or(|e| e == engine) && req.encoder.as_deref().is_none_or(|e| e == name)
}
