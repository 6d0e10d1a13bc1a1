//! The series read from the store at scrape time: queue depth by queue and priority, nodes
//! by status, and each node's power and energy as of its last heartbeat. Taken fresh at each
//! scrape, so they stay right across restarts and with several masters on one store.

use std::collections::HashMap;
use std::sync::Arc;

use ffrtmp_core::{JobQuery, JobState, JobStore, Node, NodeStatus, Priority, Queue, StoreError};
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{gauge_family, Labels};

/// Queued jobs counted at most up to this many (pages of [`JobQuery::MAX_LIMIT`]); beyond,
/// `ffrtmp_queue_depth_truncated` says 1 so a dashboard knows the figure is a floor.
pub const MAX_COUNTED_QUEUED: u64 = 50_000;

/// Most nodes given per-node power series; more are counted by status only.
pub const MAX_NODE_LABELS: usize = 1000;

const QUEUES: [Queue; 3] = [Queue::Live, Queue::Default, Queue::Batch];
const PRIORITIES: [Priority; 3] = [Priority::High, Priority::Medium, Priority::Low];

/// What the store says now about queues and nodes.
#[derive(Clone, Debug, Default)]
pub struct ClusterSnapshot {
    /// Queued jobs per queue and priority.
    pub queued: HashMap<(Queue, Priority), u64>,
    /// Whether counting stopped at [`MAX_COUNTED_QUEUED`].
    pub queued_truncated: bool,
    /// Every registered node.
    pub nodes: Vec<Node>,
    /// SLA figures of the recent past, when they were read ([`super::sla::SlaCache`]).
    pub sla: Option<super::sla::SlaSnapshot>,
    /// The efficiency table of the recent past, when it was read
    /// ([`super::efficiency::EfficiencyCache`]).
    pub efficiency: Option<super::efficiency::EfficiencySnapshot>,
}

impl ClusterSnapshot {
    /// Reads queued jobs (page by page) and nodes from the store.
    pub async fn read(store: &Arc<dyn JobStore>) -> Result<ClusterSnapshot, StoreError> {
        let mut snap = ClusterSnapshot {
            nodes: store.list_nodes().await?,
            ..ClusterSnapshot::default()
        };
        let mut query = JobQuery {
            state: Some(JobState::Queued),
            limit: Some(JobQuery::MAX_LIMIT),
            ..JobQuery::default()
        };
        let mut counted = 0u64;
        loop {
            let page = store.list(&query).await?;
            for job in &page.jobs {
                *snap.queued.entry((job.spec.queue, job.spec.priority)).or_insert(0) += 1;
            }
            counted += page.jobs.len() as u64;
            match page.next_cursor {
                Some(cursor) if counted < MAX_COUNTED_QUEUED => query.before_seq = Some(cursor),
                Some(_) => {
                    snap.queued_truncated = true;
                    break;
                }
                None => break,
            }
        }
        Ok(snap)
    }

    /// Encodes the snapshot's families.
    pub(crate) fn encode(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut depth = Vec::new();
        for q in QUEUES {
            for p in PRIORITIES {
                depth.push((label(&q), label(&p), self.queued.get(&(q, p)).copied().unwrap_or(0)));
            }
        }
        let series: Vec<([(&str, &str); 2], f64)> = depth
            .iter()
            .map(|(q, p, n)| ([("queue", q.as_str()), ("priority", p.as_str())], *n as f64))
            .collect();
        let series: Vec<(Labels, f64)> = series.iter().map(|(l, n)| (&l[..], *n)).collect();
        gauge_family(
            e,
            "ffrtmp_queue_depth",
            "Jobs waiting to be claimed, by queue and priority.",
            &series,
        )?;
        gauge_family(
            e,
            "ffrtmp_queue_depth_truncated",
            "1 when queued jobs were too many to count in full and ffrtmp_queue_depth is a floor.",
            &[(&[], if self.queued_truncated { 1.0 } else { 0.0 })],
        )?;
        let online = self.nodes.iter().filter(|n| n.status == NodeStatus::Online).count();
        gauge_family(
            e,
            "ffrtmp_nodes",
            "Registered nodes, by status.",
            &[
                (&[("status", "online")], online as f64),
                (&[("status", "offline")], (self.nodes.len() - online) as f64),
            ],
        )?;
        if let Some(sla) = &self.sla {
            sla.encode(e)?;
        }
        if let Some(efficiency) = &self.efficiency {
            efficiency.encode(e)?;
        }
        self.encode_power(e)
    }

    /// Per-node power, idle power and energy meter, as of each node's last heartbeat;
    /// nodes without a meter reading have no series (not zeros). A node estimating from a
    /// power model has the label `estimated` with the model's name.
    fn encode_power(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let metered: Vec<(String, String, &ffrtmp_core::NodePower)> = self
            .nodes
            .iter()
            .take(MAX_NODE_LABELS)
            .filter_map(|n| Some((n.id.to_string(), n.registration.name.clone(), n.power.as_ref()?)))
            .collect();
        // A power model's estimate carries `estimated="<model>"`, so it is never read as a
        // measurement (the agent names such a source `model:<name>`).
        let labels: Vec<Vec<(&str, &str)>> = metered
            .iter()
            .map(|(id, name, p)| {
                let mut l = vec![("node", id.as_str()), ("name", name.as_str())];
                if let Some(model) = p.source.strip_prefix(MODEL_SOURCE_PREFIX) {
                    l.push(("estimated", model));
                }
                l
            })
            .collect();
        let pick = |f: &dyn Fn(&ffrtmp_core::NodePower) -> Option<f64>| -> Vec<(Labels, f64)> {
            metered
                .iter()
                .zip(&labels)
                .filter_map(|((_, _, p), l)| Some((&l[..], f(p)?)))
                .collect()
        };
        gauge_family(
            e,
            "ffrtmp_node_power_watts",
            "Mean power of each node's energy meter, from its last heartbeat.",
            &pick(&|p| p.watts),
        )?;
        gauge_family(
            e,
            "ffrtmp_node_idle_watts",
            "Idle power measured by each node, from its last heartbeat.",
            &pick(&|p| p.idle_watts),
        )?;
        // A gauge, not a counter: the meter restarts with the agent.
        gauge_family(
            e,
            "ffrtmp_node_energy_joules",
            "Energy counted by each node's meter since it started counting, from its last heartbeat.",
            &pick(&|p| Some(p.energy_joules)),
        )
    }
}

/// How an agent names a power-model source: `model:<name>` (`ffrtmp_power::model`).
const MODEL_SOURCE_PREFIX: &str = "model:";

/// The lowercase wire name of a queue, priority or classification.
pub(super) fn label<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}
