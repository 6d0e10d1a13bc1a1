//! Identifiers of jobs and nodes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $make:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random identifier.
            pub fn new() -> Self {
                Self($make)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifier of a job (a UUID).
    ///
    /// ```
    /// use ffrtmp_core::JobId;
    /// let id = JobId::new();
    /// let parsed: JobId = id.to_string().parse().unwrap();
    /// assert_eq!(id, parsed);
    /// ```
    ///
    /// Job ids are UUIDv7: time-ordered, so stores index new jobs at the end of their
    /// B-trees instead of at random pages.
    JobId,
    Uuid::now_v7()
);

uuid_id!(
    /// Identifier of a worker node, assigned by the master at registration.
    NodeId,
    Uuid::new_v4()
);

/// One attempt of one job: the unit an agent runs, fences and cleans up.
///
/// A job handed to a node again (after the node was declared lost, say) is a new attempt;
/// everything an agent keeps about running work (slots, cgroups, energy meters) is keyed by
/// this pair, so a stale attempt never touches a newer one. It displays as
/// `<job>-a<attempt>`, which is also the name of the attempt's cgroup directory and parses
/// back. In JSON it is `{"job_id": …, "attempt": …}`, the shape of a heartbeat's entries.
///
/// ```
/// use ffrtmp_core::{AttemptKey, JobId};
/// let key = AttemptKey::new(JobId::new(), 3);
/// let text = key.to_string();
/// assert!(text.ends_with("-a3"));
/// assert_eq!(text.parse::<AttemptKey>().unwrap(), key);
/// assert!("not-a-key".parse::<AttemptKey>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttemptKey {
    /// The job.
    #[serde(rename = "job_id")]
    pub job: JobId,
    /// Its attempt number (the fencing token the master handed out with the claim).
    pub attempt: u32,
}

impl AttemptKey {
    /// The key of `attempt` of `job`.
    pub fn new(job: JobId, attempt: u32) -> Self {
        AttemptKey { job, attempt }
    }
}

impl fmt::Display for AttemptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-a{}", self.job, self.attempt)
    }
}

/// Why a text is not an [`AttemptKey`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an attempt key (expected <job uuid>-a<attempt>): {0:?}")]
pub struct ParseAttemptKeyError(String);

impl FromStr for AttemptKey {
    type Err = ParseAttemptKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseAttemptKeyError(s.to_string());
        let (job, attempt) = s.rsplit_once("-a").ok_or_else(bad)?;
        // Digits only: `u32::from_str` would also take a leading `+`.
        if attempt.is_empty() || !attempt.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(AttemptKey {
            job: job.parse().map_err(|_| bad())?,
            attempt: attempt.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_keys_round_trip_as_text_and_json() {
        let key = AttemptKey::new(JobId::new(), u32::MAX);
        assert_eq!(key.to_string().parse::<AttemptKey>().unwrap(), key);
        let json = serde_json::to_value(key).unwrap();
        assert_eq!(json["job_id"], key.job.to_string());
        assert_eq!(json["attempt"], u32::MAX);
        assert_eq!(serde_json::from_value::<AttemptKey>(json).unwrap(), key);
        let job = key.job;
        for bad in [
            format!("{job}"),
            format!("{job}-a"),
            format!("{job}-a+1"),
            format!("{job}-a4294967296"),
            "x-a1".to_string(),
        ] {
            assert!(bad.parse::<AttemptKey>().is_err(), "{bad}");
        }
    }
}
