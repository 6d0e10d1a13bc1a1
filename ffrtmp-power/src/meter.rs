//! [`EnergyMeter`]: energy samples around a job turned into an [`EnergyReport`].

use std::fmt;
use std::sync::Arc;

use ffrtmp_core::{EnergyReport, EnergySample, PowerError, PowerSource};

use crate::rapl::RaplSource;

/// The `source` of a report without energy.
pub const UNAVAILABLE_SOURCE: &str = "unavailable";

/// Measures the energy of jobs with one [`PowerSource`], or records why it cannot.
///
/// The energy reported is **whole-node** energy over the job's interval: every zone the source
/// reads, from [`start`](Self::start) to [`finish`](Self::finish). Jobs running side by side are
/// each charged the whole node; [`Sampler`](crate::Sampler) splits energy between jobs by their
/// cgroup CPU share.
///
/// ```
/// use ffrtmp_core::PowerError;
/// use ffrtmp_power::EnergyMeter;
///
/// let meter = EnergyMeter::unavailable(PowerError::Unavailable("no meter on this host".into()));
/// let interval = meter.start();
/// let report = meter.finish(interval, 10.0, 300);
/// assert_eq!(report.source, "unavailable");
/// assert_eq!(report.energy_joules, None);
/// assert_eq!(report.unavailable_reason.as_deref(), Some("no meter on this host"));
/// ```
#[derive(Clone)]
pub struct EnergyMeter {
    source: Result<Arc<dyn PowerSource>, PowerError>,
}

/// The start of a measured interval, from [`EnergyMeter::start`].
#[derive(Clone, Debug)]
pub struct EnergyInterval {
    start: Result<EnergySample, PowerError>,
}

impl EnergyInterval {
    /// The sample taken at the start, or why there is none.
    pub fn start_sample(&self) -> Result<&EnergySample, &PowerError> {
        self.start.as_ref()
    }
}

impl EnergyMeter {
    /// A meter reading `source`.
    pub fn new(source: Arc<dyn PowerSource>) -> Self {
        EnergyMeter { source: Ok(source) }
    }

    /// A meter without a source: every report is unavailable, with `err` as the reason.
    pub fn unavailable(err: PowerError) -> Self {
        EnergyMeter { source: Err(err) }
    }

    /// A meter from the result of opening a source, e.g. `EnergyMeter::from_result(RaplSource::open(root))`.
    pub fn from_result<S: PowerSource + 'static>(source: Result<S, PowerError>) -> Self {
        match source {
            Ok(s) => Self::new(Arc::new(s)),
            Err(e) => Self::unavailable(e),
        }
    }

    /// A meter over the host's RAPL zones ([`RaplSource::system`]), unavailable where there are none.
    pub fn system() -> Self {
        Self::from_result(RaplSource::system())
    }

    /// The source's name (`rapl`, …), or `unavailable`.
    pub fn source_name(&self) -> &str {
        match &self.source {
            Ok(s) => s.name(),
            Err(_) => UNAVAILABLE_SOURCE,
        }
    }

    /// Why the meter has no source, if it has none.
    pub fn unavailable_error(&self) -> Option<&PowerError> {
        self.source.as_ref().err()
    }

    /// Samples the source at the start of a job.
    pub fn start(&self) -> EnergyInterval {
        EnergyInterval {
            start: match &self.source {
                Ok(s) => s.sample(),
                Err(e) => Err(e.clone()),
            },
        }
    }

    /// Samples the source at the end of a job and reports the energy since `interval` began.
    ///
    /// `wall_s` is the job's wall time (for `avg_watts`), `frames` the frames it encoded (for
    /// `joules_per_frame`); either is left out of the report when zero. Any failure gives the
    /// unavailable report with its reason, never zero joules.
    pub fn finish(&self, interval: EnergyInterval, wall_s: f64, frames: u64) -> EnergyReport {
        let source = match &self.source {
            Ok(s) => s,
            Err(e) => return unavailable_report(e),
        };
        let start = match interval.start {
            Ok(s) => s,
            Err(e) => return unavailable_report(&e),
        };
        match source.sample() {
            Ok(end) => energy_report(source.name(), &start, &end, wall_s, frames),
            Err(e) => unavailable_report(&e),
        }
    }
}

impl fmt::Debug for EnergyMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("EnergyMeter");
        match &self.source {
            Ok(s) => d.field("source", &s.name()),
            Err(e) => d.field("unavailable", e),
        };
        d.finish()
    }
}

/// The report of a job that ran between samples `start` and `end` of the source named `source`.
///
/// Both samples must come from the same source, `start` first: if their zones differ or a counter
/// went backwards the report is unavailable with the reason. `avg_watts` is left out unless
/// `wall_s` is positive, `joules_per_frame` unless `frames` is.
///
/// ```
/// use ffrtmp_core::{EnergySample, ZoneEnergy};
/// use ffrtmp_power::energy_report;
///
/// let at = |uj| EnergySample { zones: vec![ZoneEnergy { zone: "package-0".into(), energy_uj: uj }], wraps: 0 };
/// let report = energy_report("rapl", &at(1_000_000), &at(51_000_000), 2.0, 100);
/// assert_eq!(report.energy_joules, Some(50.0));
/// assert_eq!(report.avg_watts, Some(25.0));
/// assert_eq!(report.joules_per_frame, Some(0.5));
/// ```
pub fn energy_report(source: &str, start: &EnergySample, end: &EnergySample, wall_s: f64, frames: u64) -> EnergyReport {
    if let Err(reason) = check_samples(start, end) {
        return EnergyReport {
            source: UNAVAILABLE_SOURCE.to_string(),
            unavailable_reason: Some(reason),
            ..EnergyReport::default()
        };
    }
    let joules = end.joules_since(start);
    EnergyReport {
        source: source.to_string(),
        energy_joules: Some(joules),
        avg_watts: (wall_s.is_finite() && wall_s > 0.0).then(|| joules / wall_s),
        joules_per_frame: (frames > 0).then(|| joules / frames as f64),
        unavailable_reason: None,
        estimated: crate::model::model_name(source).is_some(),
        model: crate::model::model_name(source).map(String::from),
        ..Default::default()
    }
}

/// The report of a job whose energy could not be measured: source `unavailable`, no numbers, and
/// the reason (the text of [`PowerError::Unavailable`], or the whole read error).
///
/// ```
/// use ffrtmp_core::PowerError;
/// use ffrtmp_power::unavailable_report;
///
/// let report = unavailable_report(&PowerError::Unavailable("no RAPL zones under /x".into()));
/// assert_eq!(report.unavailable_reason.as_deref(), Some("no RAPL zones under /x"));
/// assert_eq!(report.avg_watts, None);
/// ```
pub fn unavailable_report(err: &PowerError) -> EnergyReport {
    let reason = match err {
        PowerError::Unavailable(reason) => reason.clone(),
        PowerError::Read(_) => err.to_string(),
    };
    EnergyReport {
        source: UNAVAILABLE_SOURCE.to_string(),
        unavailable_reason: Some(reason),
        ..EnergyReport::default()
    }
}

/// Checks that `end` can follow `start`: same zones, none going backwards.
fn check_samples(start: &EnergySample, end: &EnergySample) -> Result<(), String> {
    if end.zones.is_empty() {
        return Err("the energy samples have no zones".to_string());
    }
    let same_zones =
        start.zones.len() == end.zones.len() && end.zones.iter().all(|z| start.zones.iter().any(|s| s.zone == z.zone));
    if !same_zones {
        let names = |s: &EnergySample| s.zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "the energy samples cover different zones ([{}] then [{}])",
            names(start),
            names(end)
        ));
    }
    for z in &end.zones {
        if let Some(s) = start.zones.iter().find(|s| s.zone == z.zone) {
            if z.energy_uj < s.energy_uj {
                return Err(format!(
                    "the {} counter went backwards ({} µJ then {} µJ)",
                    z.zone, s.energy_uj, z.energy_uj
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::ZoneEnergy;
    use std::sync::Mutex;

    fn sample(zones: &[(&str, u64)]) -> EnergySample {
        EnergySample {
            zones: zones
                .iter()
                .map(|&(zone, energy_uj)| ZoneEnergy {
                    zone: zone.to_string(),
                    energy_uj,
                })
                .collect(),
            wraps: 0,
        }
    }

    /// Plays back a list of samples or errors.
    struct Script(Mutex<Vec<Result<EnergySample, PowerError>>>);

    impl PowerSource for Script {
        fn name(&self) -> &str {
            "script"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            self.0.lock().unwrap().remove(0)
        }
    }

    fn meter(script: Vec<Result<EnergySample, PowerError>>) -> EnergyMeter {
        EnergyMeter::new(Arc::new(Script(Mutex::new(script))))
    }

    #[test]
    fn report_sums_zones_and_divides() {
        let start = sample(&[("package-0", 1_000_000), ("dram-0", 0)]);
        let end = sample(&[("package-0", 31_000_000), ("dram-0", 10_000_000)]);
        let r = energy_report("rapl", &start, &end, 4.0, 80);
        assert_eq!(r.source, "rapl");
        assert_eq!(r.energy_joules, Some(40.0));
        assert_eq!(r.avg_watts, Some(10.0));
        assert_eq!(r.joules_per_frame, Some(0.5));
        assert_eq!(r.unavailable_reason, None);
    }

    #[test]
    fn zero_frames_or_wall_time_leave_ratios_out() {
        let (start, end) = (sample(&[("package-0", 0)]), sample(&[("package-0", 2_000_000)]));
        let r = energy_report("rapl", &start, &end, 0.0, 0);
        assert_eq!(
            (r.energy_joules, r.avg_watts, r.joules_per_frame),
            (Some(2.0), None, None)
        );
        let r = energy_report("rapl", &start, &end, f64::NAN, 1);
        assert_eq!((r.avg_watts, r.joules_per_frame), (None, Some(2.0)));
    }

    #[test]
    fn mismatched_or_backwards_samples_are_unavailable() {
        let a = sample(&[("package-0", 5)]);
        let b = sample(&[("package-1", 9)]);
        let r = energy_report("rapl", &a, &b, 1.0, 1);
        assert_eq!((r.source.as_str(), r.energy_joules), ("unavailable", None));
        assert!(r.unavailable_reason.unwrap().contains("different zones"));

        let r = energy_report("rapl", &sample(&[("package-0", 9)]), &a, 1.0, 1);
        assert!(r.unavailable_reason.unwrap().contains("went backwards"));

        let r = energy_report("rapl", &sample(&[]), &sample(&[]), 1.0, 1);
        assert!(r.unavailable_reason.unwrap().contains("no zones"));
    }

    #[test]
    fn unavailable_report_keeps_the_reason() {
        let r = unavailable_report(&PowerError::Unavailable(
            "needs root or read access to /x/energy_uj".into(),
        ));
        assert_eq!(
            r,
            EnergyReport {
                source: "unavailable".into(),
                unavailable_reason: Some("needs root or read access to /x/energy_uj".into()),
                ..EnergyReport::default()
            }
        );
        let r = unavailable_report(&PowerError::Read("cannot read /x/energy_uj: gone".into()));
        assert_eq!(
            r.unavailable_reason.as_deref(),
            Some("energy read failed: cannot read /x/energy_uj: gone")
        );
    }

    #[test]
    fn meter_measures_between_start_and_finish() {
        let m = meter(vec![Ok(sample(&[("p", 1_000_000)])), Ok(sample(&[("p", 7_000_000)]))]);
        assert_eq!(m.source_name(), "script");
        let interval = m.start();
        assert!(interval.start_sample().is_ok());
        let r = m.finish(interval, 3.0, 6);
        assert_eq!(
            (r.source.as_str(), r.energy_joules, r.avg_watts),
            ("script", Some(6.0), Some(2.0))
        );
        assert_eq!(r.joules_per_frame, Some(1.0));
    }

    #[test]
    fn meter_failures_become_unavailable_reports() {
        let m = meter(vec![
            Err(PowerError::Unavailable("asleep".into())),
            Ok(sample(&[("p", 1)])),
        ]);
        let r = m.finish(m.start(), 1.0, 1);
        assert_eq!(r.unavailable_reason.as_deref(), Some("asleep"));

        let m = meter(vec![Ok(sample(&[("p", 1)])), Err(PowerError::Read("gone".into()))]);
        let r = m.finish(m.start(), 1.0, 1);
        assert_eq!((r.source.as_str(), r.energy_joules), ("unavailable", None));
        assert_eq!(r.unavailable_reason.as_deref(), Some("energy read failed: gone"));

        let m = EnergyMeter::from_result(RaplSource::open("/nonexistent/powercap"));
        assert_eq!(m.source_name(), "unavailable");
        assert!(m.unavailable_error().is_some());
        assert!(format!("{m:?}").contains("no powercap interface"));
    }
}
