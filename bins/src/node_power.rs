//! The agent's whole-node energy snapshot for its heartbeats ([`NodePower`]), from the
//! energy sampler the agent already runs for per-job attribution. The master keeps the latest
//! one per node, so `ffrtmp bench run` can measure idle baselines through `GET /nodes`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ffrtmp_core::{EnergyReport, Job, JobEnergyMeter, JobResult, NodePower};

use crate::energy::AttributedEnergy;

/// "Current" power is the mean over this much of the most recent sampling intervals.
const CURRENT_WINDOW: Duration = Duration::from_secs(1);

/// The agent's [`JobEnergyMeter`]: per-job energy from [`AttributedEnergy`], plus the node's
/// snapshot for every heartbeat.
pub struct MeteredNode {
    energy: Arc<AttributedEnergy>,
    counting_since_ms: u64,
    startup_idle: OnceLock<f64>,
}

impl MeteredNode {
    /// Wraps the meter; the cumulative count is taken to start now (the sampler's first
    /// reading happens when it is built, just before).
    pub fn new(energy: Arc<AttributedEnergy>) -> Self {
        MeteredNode {
            energy,
            counting_since_ms: ffrtmp_core::now_ms(),
            startup_idle: OnceLock::new(),
        }
    }

    /// Records the idle power measured over the agent's start-up window (only when no job ran
    /// in it). Later calls are ignored: the start-up figure is measured once.
    pub fn set_startup_idle(&self, watts: f64) {
        if watts.is_finite() && watts >= 0.0 {
            let _ = self.startup_idle.set(watts);
        }
    }

    /// The snapshot now; `None` while the sampler has no energy reading (no powercap, no
    /// permission, not read yet).
    pub fn snapshot(&self) -> Option<NodePower> {
        let sampler = self.energy.sampler();
        if sampler.unavailable_reason().is_some() {
            return None;
        }
        let totals = sampler.totals();
        let idle_watts = self
            .startup_idle
            .get()
            .copied()
            .or_else(|| sampler.idle_power().map(|p| p.watts));
        Some(NodePower {
            source: totals.source,
            energy_joules: totals.total_joules,
            measured_s: totals.measured_seconds,
            watts: sampler.recent_watts(CURRENT_WINDOW),
            idle_watts,
            counting_since_ms: self.counting_since_ms,
            sampled_at_ms: ffrtmp_core::now_ms(),
        })
    }
}

impl JobEnergyMeter for MeteredNode {
    fn started(&self, job: &Job) {
        self.energy.started(job)
    }

    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport {
        self.energy.finished(job, result)
    }

    fn node_power(&self) -> Option<NodePower> {
        self.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
    use ffrtmp_power::{Sampler, SamplerConfig};

    use super::*;

    /// A package counter the test moves by hand.
    struct Counter(Mutex<u64>);

    impl PowerSource for Counter {
        fn name(&self) -> &str {
            "fake"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            Ok(EnergySample {
                zones: vec![ZoneEnergy {
                    zone: "package-0".into(),
                    energy_uj: *self.0.lock().unwrap(),
                }],
                wraps: 0,
            })
        }
    }

    #[test]
    fn the_snapshot_carries_cumulative_energy_and_idle_power() {
        let counter = Arc::new(Counter(Mutex::new(1_000_000)));
        let source = counter.clone();
        let energy = Arc::new(AttributedEnergy::new(
            move |cpu| Sampler::manual(source, cpu, SamplerConfig::default()),
            None,
        ));
        let node = MeteredNode::new(energy.clone());
        *counter.0.lock().unwrap() += 5_000_000;
        energy.sampler().tick().unwrap();
        let p = node.snapshot().expect("a reading exists");
        assert_eq!(p.source, "fake");
        assert_eq!(p.energy_joules, 5.0, "counted from the first reading");
        assert!(p.measured_s > 0.0 && p.watts.is_some(), "{p:?}");
        assert!(p.idle_watts.is_some(), "no job ran: the interval was idle");
        assert!(p.sampled_at_ms >= p.counting_since_ms);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            node.node_power().map(|q| q.energy_joules),
            Some(5.0),
            "what heartbeats send"
        );

        node.set_startup_idle(7.5);
        node.set_startup_idle(99.0);
        assert_eq!(
            node.snapshot().unwrap().idle_watts,
            Some(7.5),
            "measured once, at start"
        );
    }

    #[test]
    fn no_snapshot_without_an_energy_source() {
        let energy = Arc::new(AttributedEnergy::new(
            |_| Sampler::unavailable(PowerError::Unavailable("no powercap".into())),
            None,
        ));
        let node = MeteredNode::new(energy);
        node.set_startup_idle(3.0);
        assert_eq!(node.node_power(), None);
    }
}
