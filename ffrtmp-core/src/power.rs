//! The [`PowerSource`] trait: cumulative energy counters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ids::JobId;
use crate::job::{EnergyReport, Job, JobResult};
use crate::node::NodePower;

/// Cumulative energy of one zone, corrected for counter wraps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneEnergy {
    /// Zone name, e.g. `package-0`, `dram` (from the zone's `name` file).
    pub zone: String,
    /// Microjoules since the source was opened, monotone.
    pub energy_uj: u64,
}

/// One reading of every zone a source measures. Zones never overlap, so they may be summed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnergySample {
    /// Per zone.
    pub zones: Vec<ZoneEnergy>,
    /// Counter wraps corrected so far.
    pub wraps: u64,
}

impl EnergySample {
    /// Sum over zones, in microjoules.
    pub fn total_uj(&self) -> u64 {
        self.zones.iter().map(|z| z.energy_uj).sum()
    }

    /// Joules used between `earlier` and `self` (zones matched by name).
    ///
    /// ```
    /// use ffrtmp_core::{EnergySample, ZoneEnergy};
    /// let a = EnergySample { zones: vec![ZoneEnergy { zone: "package-0".into(), energy_uj: 1_000_000 }], wraps: 0 };
    /// let b = EnergySample { zones: vec![ZoneEnergy { zone: "package-0".into(), energy_uj: 3_500_000 }], wraps: 0 };
    /// assert_eq!(b.joules_since(&a), 2.5);
    /// ```
    pub fn joules_since(&self, earlier: &EnergySample) -> f64 {
        let mut uj = 0u64;
        for z in &self.zones {
            if let Some(e) = earlier.zones.iter().find(|e| e.zone == z.zone) {
                uj += z.energy_uj.saturating_sub(e.energy_uj);
            }
        }
        uj as f64 / 1e6
    }
}

/// Why a power source cannot give readings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    /// The source does not exist or cannot be read on this host; the reason says which.
    #[error("energy unavailable: {0}")]
    Unavailable(String),
    /// A counter that used to be readable failed to read.
    #[error("energy read failed: {0}")]
    Read(String),
}

/// A source of cumulative energy counters (RAPL powercap, NVML, a file tree).
///
/// ```
/// use ffrtmp_core::{EnergySample, PowerError, PowerSource};
/// struct Unavailable;
/// impl PowerSource for Unavailable {
///     fn name(&self) -> &str { "none" }
///     fn sample(&self) -> Result<EnergySample, PowerError> {
///         Err(PowerError::Unavailable("no meter".into()))
///     }
/// }
/// assert!(Unavailable.sample().is_err());
/// ```
pub trait PowerSource: Send + Sync {
    /// Short name recorded in results (`rapl`, `nvml`, …).
    fn name(&self) -> &str;
    /// Reads every zone now.
    fn sample(&self) -> Result<EnergySample, PowerError>;

    /// Reads every zone now into `into`, reusing its allocations: what a sampler calls at every
    /// tick, so that a source reading the same zones each time can overwrite the values in place
    /// and a tick allocates nothing. The default replaces `into` with [`sample`](Self::sample).
    /// After an error `into` may hold anything; only a successful call leaves a reading in it.
    ///
    /// ```
    /// use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
    /// struct Fixed;
    /// impl PowerSource for Fixed {
    ///     fn name(&self) -> &str { "fixed" }
    ///     fn sample(&self) -> Result<EnergySample, PowerError> {
    ///         Ok(EnergySample { zones: vec![ZoneEnergy { zone: "package-0".into(), energy_uj: 7 }], wraps: 0 })
    ///     }
    /// }
    /// let mut reading = EnergySample::default();
    /// Fixed.sample_into(&mut reading).unwrap();
    /// assert_eq!(reading.total_uj(), 7);
    /// ```
    fn sample_into(&self, into: &mut EnergySample) -> Result<(), PowerError> {
        *into = self.sample()?;
        Ok(())
    }

    /// Counter resets detected so far: a counter that restarted (its driver reloaded, or it
    /// jumped backwards further than any plausible power could explain, which a wrap
    /// correction would turn into an absurd figure). The energy between the last reading
    /// before a reset and the first after it is unknown: a sampler drops that interval and
    /// marks the jobs in it partial. The default, for sources that cannot tell, is 0.
    fn resets(&self) -> u64 {
        0
    }
}

/// A source that is known to be unavailable, carrying the reason into every result.
///
/// ```
/// use ffrtmp_core::{PowerSource, power::UnavailableSource};
/// let s = UnavailableSource::new("no powercap interface (a VM)");
/// assert_eq!(s.sample().unwrap_err().to_string(), "energy unavailable: no powercap interface (a VM)");
/// ```
#[derive(Clone, Debug)]
pub struct UnavailableSource {
    reason: String,
}

impl UnavailableSource {
    /// A source that always answers [`PowerError::Unavailable`] with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        UnavailableSource { reason: reason.into() }
    }
}

impl PowerSource for UnavailableSource {
    fn name(&self) -> &str {
        "unavailable"
    }

    fn sample(&self) -> Result<EnergySample, PowerError> {
        Err(PowerError::Unavailable(self.reason.clone()))
    }
}

/// Measures the energy of individual jobs on an agent. The agent calls
/// [`started`](JobEnergyMeter::started) before a job runs and
/// [`finished`](JobEnergyMeter::finished) after it, for every job whatever its outcome.
pub trait JobEnergyMeter: Send + Sync {
    /// The job is about to run.
    fn started(&self, job: &Job);
    /// The job ended with `result` (`None` when it did not complete); returns its energy, or
    /// a report saying why there is none. A job that failed, timed out or was stopped used
    /// energy too: its report carries it (the agent sends it with the failure), with the
    /// figures that need a result, such as joules per frame, left out.
    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport;
    /// The energy of the job's quality pass (`parameters.quality`), measured apart from the
    /// encode's (the executor runs it in the cgroup named by
    /// [`quality_pass_key`](crate::quality::quality_pass_key)); `result` is the completed
    /// job's, whose quality report gives the pass's wall time. `None` (the default) where the
    /// meter cannot tell the pass apart from the encode.
    fn quality_pass(&self, job: &Job, result: &JobResult) -> Option<EnergyReport> {
        let _ = (job, result);
        None
    }
    /// The whole node's energy meter now, sent with every heartbeat; `None` (the default)
    /// when the meter cannot say, e.g. no energy source. Called from the heartbeat task: it
    /// must not block.
    fn node_power(&self) -> Option<NodePower> {
        None
    }
}

/// A report that says energy is unavailable, and why.
pub fn unavailable_energy(reason: impl Into<String>) -> EnergyReport {
    EnergyReport {
        source: "unavailable".into(),
        unavailable_reason: Some(reason.into()),
        ..Default::default()
    }
}

/// Whole-node energy over each job's wall time, from any [`PowerSource`]: the simplest
/// meter, exact for one job at a time and an over-count when jobs overlap (each is charged
/// everything the node used meanwhile). Reports say `attribution: whole-node`.
///
/// ```
/// use std::sync::Arc;
/// use ffrtmp_core::power::{JobEnergyMeter, UnavailableSource, WholeNodeEnergy};
/// use ffrtmp_core::{Job, JobId, JobResult, JobSpec, JobState};
/// let meter = WholeNodeEnergy::new(Arc::new(UnavailableSource::new("no powercap")));
/// let job = Job { id: JobId::new(), seq: 1, spec: JobSpec::new("720p-h264").try_into().unwrap(), state: JobState::Running,
///     attempt: 1, node_id: None, progress: None, result: None, error: None, retry_at_ms: None,
///     created_at_ms: 0, updated_at_ms: 0, history: vec![], attempts_energy: Default::default() };
/// meter.started(&job);
/// let report = meter.finished(&job, Some(&JobResult { frames: 60, ..Default::default() }));
/// assert_eq!(report.unavailable_reason.as_deref(), Some("no powercap"));
/// ```
pub struct WholeNodeEnergy {
    source: Arc<dyn PowerSource>,
    starts: Mutex<HashMap<(JobId, u32), JobStart>>,
}

/// The reading (or its failure) and time at a job's start.
type JobStart = (Result<EnergySample, PowerError>, Instant);

impl WholeNodeEnergy {
    /// A meter over `source`.
    pub fn new(source: Arc<dyn PowerSource>) -> Self {
        WholeNodeEnergy {
            source,
            starts: Mutex::new(HashMap::new()),
        }
    }
}

fn reason(e: &PowerError) -> String {
    match e {
        PowerError::Unavailable(r) => r.clone(),
        PowerError::Read(r) => format!("energy read failed: {r}"),
    }
}

impl JobEnergyMeter for WholeNodeEnergy {
    fn started(&self, job: &Job) {
        let sample = self.source.sample();
        if let Ok(mut starts) = self.starts.lock() {
            starts.insert((job.id, job.attempt), (sample, Instant::now()));
        }
    }

    fn finished(&self, job: &Job, result: Option<&JobResult>) -> EnergyReport {
        let start = self
            .starts
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&(job.id, job.attempt)));
        let Some((before, t0)) = start else {
            return unavailable_energy("the job's start was not measured");
        };
        let before = match before {
            Ok(b) => b,
            Err(e) => return unavailable_energy(reason(&e)),
        };
        let after = match self.source.sample() {
            Ok(a) => a,
            Err(e) => return unavailable_energy(reason(&e)),
        };
        let joules = after.joules_since(&before);
        let secs = t0.elapsed().as_secs_f64();
        let frames = result.map(|r| r.frames).unwrap_or(0);
        EnergyReport {
            source: self.source.name().to_string(),
            energy_joules: Some(joules),
            avg_watts: (secs > 0.0).then(|| joules / secs),
            joules_per_frame: (frames > 0).then(|| joules / frames as f64),
            frames_per_joule: (joules > 0.0 && frames > 0).then(|| frames as f64 / joules),
            attribution: Some("whole-node".into()),
            ..Default::default()
        }
    }
}
