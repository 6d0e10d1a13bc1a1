//! The agent's whole-node energy snapshot for its heartbeats ([`NodePower`]), from the
//! energy sampler the agent already runs for per-job attribution. The master keeps the latest
//! one per node, so `ffrtmp bench run` can measure idle baselines through `GET /nodes`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ffrtmp_core::{EnergyReport, Job, JobEnergyMeter, JobResult, NodePower};

use super::AttributedEnergy;

/// "Current" power is the mean over this much of the most recent sampling intervals.
const CURRENT_WINDOW: Duration = Duration::from_secs(1);

/// A last good reading older than this many sampling intervals means the meter stopped: a
/// heartbeat then carries no snapshot rather than a stale one shown as current.
const STALE_INTERVALS: u32 = 5;

/// The shortest staleness limit, so that a fast sampler on a busy host is not cut off by one
/// late tick.
const MIN_STALE: Duration = Duration::from_secs(2);

/// The agent's [`JobEnergyMeter`]: per-job energy from [`AttributedEnergy`], plus the node's
/// snapshot for every heartbeat.
pub struct MeteredNode {
    energy: Arc<AttributedEnergy>,
    counting_since_ms: u64,
    startup_idle: OnceLock<f64>,
    /// Readings older than this are stale.
    stale_after: Duration,
}

impl MeteredNode {
    /// Wraps the meter; the cumulative count is taken to start now (the sampler's first
    /// reading happens when it is built, just before).
    pub fn new(energy: Arc<AttributedEnergy>) -> Self {
        let stale_after = stale_after(energy.sampler().config().interval);
        MeteredNode {
            energy,
            counting_since_ms: ffrtmp_core::now_ms(),
            startup_idle: OnceLock::new(),
            stale_after,
        }
    }

    /// Records the idle power measured over the agent's start-up window (only when no job ran
    /// in it). Later calls are ignored: the start-up figure is measured once.
    pub fn set_startup_idle(&self, watts: f64) {
        if watts.is_finite() && watts >= 0.0 {
            let _ = self.startup_idle.set(watts);
        }
    }

    /// The snapshot as of the sampler's last good reading, which gives `sampled_at_ms`;
    /// `None` while there is none (no powercap, no permission, not read yet) and once it is
    /// older than 5 sampling intervals (at least 2 s): a meter that stopped working is not
    /// shown as a current one.
    pub fn snapshot(&self) -> Option<NodePower> {
        let sampler = self.energy.sampler();
        let totals = sampler.totals();
        let age_s = totals.last_reading_age_s?;
        if age_s > self.stale_after.as_secs_f64() {
            return None;
        }
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
            sampled_at_ms: read_at_ms(ffrtmp_core::now_ms(), age_s, self.counting_since_ms),
            cpus: Some(self.energy.cpus()),
        })
    }
}

/// How old the last good reading may be: [`STALE_INTERVALS`] sampling intervals, at least
/// [`MIN_STALE`].
fn stale_after(interval: Duration) -> Duration {
    interval.saturating_mul(STALE_INTERVALS).max(MIN_STALE)
}

/// When a reading `age_s` old was taken, in ms since the epoch, given the time now: not before
/// the count started (the sampler's first reading comes just before `counting_since_ms` is read).
fn read_at_ms(now_ms: u64, age_s: f64, counting_since_ms: u64) -> u64 {
    let age_ms = (age_s * 1000.0) as u64; // saturating: NaN gives 0, infinity u64::MAX
    now_ms.saturating_sub(age_ms).max(counting_since_ms)
}

impl JobEnergyMeter for MeteredNode {
    fn started(&self, job: &Job) {
        self.energy.started(job)
    }

    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport {
        self.energy.finished(job, result)
    }

    fn quality_pass(&self, job: &Job, result: &JobResult) -> Option<EnergyReport> {
        self.energy.quality_pass(job, result)
    }

    fn node_power(&self) -> Option<NodePower> {
        self.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crate::{Sampler, SamplerConfig};
    use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};

    use super::*;

    /// A package counter the test moves by hand; `None` fails its readings.
    struct Counter(Mutex<Option<u64>>);

    impl PowerSource for Counter {
        fn name(&self) -> &str {
            "fake"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            let uj = self
                .0
                .lock()
                .unwrap()
                .ok_or_else(|| PowerError::Read("meter gone".into()))?;
            Ok(EnergySample {
                zones: vec![ZoneEnergy {
                    zone: "package-0".into(),
                    energy_uj: uj,
                }],
                wraps: 0,
            })
        }
    }

    fn metered(uj: u64) -> (Arc<Counter>, Arc<AttributedEnergy>, MeteredNode) {
        let counter = Arc::new(Counter(Mutex::new(Some(uj))));
        let source = counter.clone();
        let energy = Arc::new(AttributedEnergy::new(
            move |cpu| Sampler::manual(source, cpu, SamplerConfig::default()),
            None,
        ));
        let node = MeteredNode::new(energy.clone());
        (counter, energy, node)
    }

    #[test]
    fn the_snapshot_carries_cumulative_energy_and_idle_power() {
        let (counter, energy, node) = metered(1_000_000);
        // A few mJ: the interval lasts microseconds, and the snapshot's watts must stay plausible.
        *counter.0.lock().unwrap() = Some(1_002_000);
        energy.sampler().tick().unwrap();
        let p = node.snapshot().expect("a reading exists");
        assert_eq!(p.source, "fake");
        assert_eq!(p.energy_joules, 0.002, "counted from the first reading");
        assert!(p.measured_s > 0.0 && p.watts.is_some(), "{p:?}");
        assert!(p.idle_watts.is_some(), "no job ran: the interval was idle");
        assert!(p.sampled_at_ms >= p.counting_since_ms && p.sampled_at_ms <= ffrtmp_core::now_ms());
        assert_eq!(p.cpus, Some(energy.cpus()), "the CPUs the split is over");
        assert!(energy.cpus() >= 1);
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(
            node.node_power().map(|q| q.energy_joules),
            Some(0.002),
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
    fn a_meter_that_stopped_gives_no_snapshot_once_its_reading_is_stale() {
        let (counter, energy, mut node) = metered(1_000_000);
        assert_eq!(node.stale_after, Duration::from_millis(2_000), "10 Hz: the 2 s floor");
        *counter.0.lock().unwrap() = Some(2_000_000);
        energy.sampler().tick().unwrap();
        let good = node.snapshot().expect("fresh");
        *counter.0.lock().unwrap() = None;
        assert!(energy.sampler().tick().is_err());
        let p = node
            .snapshot()
            .expect("a failed tick within the limit is not stale yet");
        assert_eq!(p.energy_joules, good.energy_joules);

        // A limit that any reading passes at once stands for the default one some seconds on.
        node.stale_after = Duration::from_nanos(1);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while node.snapshot().is_some() {
            assert!(std::time::Instant::now() < deadline, "the reading never went stale");
        }
        assert_eq!(node.node_power(), None, "what heartbeats send");

        // The meter comes back: fresh again under the default limit.
        node.stale_after = stale_after(energy.sampler().config().interval);
        *counter.0.lock().unwrap() = Some(3_000_000);
        energy.sampler().tick().unwrap();
        assert_eq!(node.snapshot().map(|p| p.energy_joules), Some(2.0));
    }

    #[test]
    fn staleness_limits_and_reading_times() {
        assert_eq!(stale_after(Duration::from_millis(100)), Duration::from_secs(2));
        assert_eq!(stale_after(Duration::from_secs(1)), Duration::from_secs(5));
        assert_eq!(stale_after(Duration::MAX), Duration::MAX);
        // The reading's time, not the snapshot's, and never before the count started.
        assert_eq!(read_at_ms(10_000, 1.5, 0), 8_500);
        assert_eq!(read_at_ms(10_000, 1.5, 9_000), 9_000);
        assert_eq!(read_at_ms(10_000, f64::INFINITY, 5), 5);
        assert_eq!(read_at_ms(10_000, f64::NAN, 5), 10_000);
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
