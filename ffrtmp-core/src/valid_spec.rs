//! A [`JobSpec`] checked once, where it enters, with its effective [`Scenario`].
//!
//! Consumers (executors, metrics, claim matching, energy attribution) read
//! [`ValidSpec::scenario`] instead of parsing the scenario name again. The wire format is
//! the [`JobSpec`]'s: a `ValidSpec` serializes exactly as the spec it holds.

use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

use crate::scenario::{Scenario, ScenarioError};
use crate::spec::{JobSpec, SpecError};

/// A [`JobSpec`] that passed [`JobSpec::validate`], and the scenario that check produced.
///
/// It reads as the spec it holds (`Deref<Target = JobSpec>`) but cannot be changed: a
/// change would have to be validated again, so it goes through a [`JobSpec`].
///
/// ```
/// use ffrtmp_core::{JobSpec, ValidSpec};
/// let spec: ValidSpec = serde_json::from_str(r#"{"scenario":"720p-h264","parameters":{"fps":60}}"#).unwrap();
/// assert_eq!((spec.scenario().width, spec.scenario().fps), (1280, 60));
/// assert_eq!(spec.parameters.fps, Some(60));
/// // Out-of-bounds values fail at parse time: no unchecked value exists.
/// let err = serde_json::from_str::<ValidSpec>(r#"{"scenario":"720p-h264","max_retries":1000}"#).unwrap_err();
/// assert!(err.to_string().contains("max_retries"), "{err}");
/// // It serializes as the spec it holds.
/// assert_eq!(serde_json::to_value(&spec).unwrap(), serde_json::to_value(spec.as_spec()).unwrap());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "JobSpec", into = "JobSpec")]
pub struct ValidSpec {
    spec: JobSpec,
    scenario: Scenario,
    /// Why today's bounds refuse a spec read back with [`ValidSpec::stored`]; `None` for
    /// every spec validated on entry.
    outdated: Option<SpecError>,
}

impl ValidSpec {
    /// A validated spec for `scenario` with every other field at its default.
    ///
    /// ```
    /// assert_eq!(ffrtmp_core::ValidSpec::new("720p-h264").unwrap().scenario().height, 720);
    /// assert!(ffrtmp_core::ValidSpec::new("hd-h264").is_err());
    /// ```
    pub fn new(scenario: impl Into<String>) -> Result<ValidSpec, SpecError> {
        ValidSpec::try_from(JobSpec::new(scenario))
    }

    /// The effective scenario: the named one with the spec's parameters applied.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The effective scenario, or why today's bounds refuse this spec (only a spec read
    /// back with [`ValidSpec::stored`] can be refused). Whatever runs the job checks this,
    /// so a spec stored under looser bounds is listed but not run.
    pub fn check(&self) -> Result<&Scenario, &SpecError> {
        match &self.outdated {
            None => Ok(&self.scenario),
            Some(e) => Err(e),
        }
    }

    /// The spec as submitted.
    pub fn as_spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The spec as submitted, to change and validate again.
    pub fn into_spec(self) -> JobSpec {
        self.spec
    }

    /// A spec read back from storage, accepted under the bounds it was submitted with.
    ///
    /// Bounds may tighten between releases; a job accepted before must still load, list and
    /// list, so only the scenario name has to parse here. When the current bounds refuse the
    /// spec, the parameters that still parse (fps, resolution, codec) are applied to the
    /// scenario and [`check`](Self::check) keeps the refusal, which executors honour.
    ///
    /// ```
    /// use ffrtmp_core::{JobSpec, ValidSpec};
    /// let mut old = JobSpec::new("720p-h264");
    /// old.max_retries = 1000; // beyond today's bound
    /// old.parameters.fps = Some(50);
    /// let stored = ValidSpec::stored(old.clone()).unwrap();
    /// assert_eq!((stored.max_retries, stored.scenario().fps), (1000, 50));
    /// assert!(stored.check().unwrap_err().to_string().contains("max_retries"));
    /// assert!(ValidSpec::try_from(old).is_err(), "a new submission is held to today's bounds");
    /// assert!(ValidSpec::stored(JobSpec::new("hd-h264")).is_err(), "the scenario must still parse");
    /// ```
    pub fn stored(spec: JobSpec) -> Result<ValidSpec, ScenarioError> {
        let outdated = match spec.validate() {
            Ok(scenario) => {
                return Ok(ValidSpec {
                    spec,
                    scenario,
                    outdated: None,
                })
            }
            Err(e) => e,
        };
        let scenario = spec.parameters.apply_lenient(Scenario::parse(&spec.scenario)?);
        Ok(ValidSpec {
            spec,
            scenario,
            outdated: Some(outdated),
        })
    }

    /// Deserializes a stored or relayed spec with [`ValidSpec::stored`]: for a job that a
    /// master already accepted, e.g. `#[serde(deserialize_with = "ValidSpec::deserialize_stored")]`.
    pub fn deserialize_stored<'de, D: Deserializer<'de>>(d: D) -> Result<ValidSpec, D::Error> {
        ValidSpec::stored(JobSpec::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<JobSpec> for ValidSpec {
    type Error = SpecError;

    fn try_from(spec: JobSpec) -> Result<ValidSpec, SpecError> {
        let scenario = spec.validate()?;
        Ok(ValidSpec {
            spec,
            scenario,
            outdated: None,
        })
    }
}

impl From<ValidSpec> for JobSpec {
    fn from(v: ValidSpec) -> JobSpec {
        v.spec
    }
}

impl Deref for ValidSpec {
    type Target = JobSpec;

    fn deref(&self) -> &JobSpec {
        &self.spec
    }
}

impl AsRef<JobSpec> for ValidSpec {
    fn as_ref(&self) -> &JobSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Job;

    #[test]
    fn a_spec_out_of_bounds_fails_at_parse_not_at_use() {
        for (json, field) in [
            (
                r#"{"scenario":"720p-h264","resource_limits":{"timeout_sec":604801}}"#,
                "timeout_sec",
            ),
            (r#"{"scenario":"720p-h264","parameters":{"duration":-1}}"#, "duration"),
            (r#"{"scenario":"hd-h264"}"#, "hd-h264"),
        ] {
            let err = serde_json::from_str::<ValidSpec>(json).unwrap_err().to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn the_wire_form_is_unchanged() {
        let json = r#"{"scenario":"1080p-h264","parameters":{"duration":2.0,"bitrate":"5M"},"queue":"live","priority":"high","engine":"auto","classification":"test","max_retries":1,"resource_limits":{}}"#;
        let raw: JobSpec = serde_json::from_str(json).unwrap();
        let valid: ValidSpec = serde_json::from_str(json).unwrap();
        assert_eq!(
            serde_json::to_string(&valid).unwrap(),
            serde_json::to_string(&raw).unwrap()
        );
        assert_eq!(valid.scenario().height, 1080);
    }

    #[test]
    fn a_job_read_back_keeps_a_spec_that_today_s_bounds_refuse() {
        let mut old = JobSpec::new("720p-h264");
        old.resource_limits.timeout_sec = Some(u64::MAX);
        old.parameters.resolution = Some("640x360".into());
        let job = Job::submitted(crate::JobId::new(), 1, ValidSpec::stored(old).unwrap(), 0);
        let text = serde_json::to_string(&job).unwrap();
        let back: Job = serde_json::from_str(&text).unwrap();
        assert_eq!(back.spec.resource_limits.timeout_sec, Some(u64::MAX));
        assert_eq!((back.spec.scenario().width, back.spec.scenario().height), (640, 360));
        let refusal = back.spec.check().unwrap_err().to_string();
        assert!(refusal.contains("resource_limits.timeout_sec"), "{refusal}");
        // A spec whose scenario no longer parses cannot be a job.
        let bad = text.replace("720p-h264", "hd-h264");
        assert!(serde_json::from_str::<Job>(&bad).is_err());
    }
}
