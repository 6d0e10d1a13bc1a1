//! The [`PowerSource`] trait: cumulative energy counters.

use serde::{Deserialize, Serialize};

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
