//! Worker nodes, their heartbeats and claims.

use serde::{Deserialize, Serialize};

use crate::ids::{AttemptKey, JobId, NodeId};
use crate::job::{EnergyReport, Job, JobError, JobResult, Progress};

/// What an agent tells the master when it registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRegistration {
    /// Host name or operator-chosen name.
    pub name: String,
    /// Logical CPU cores.
    pub cpu_cores: u32,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// How many jobs the node runs at once; the master never assigns more.
    pub max_concurrent_jobs: u32,
    /// Encoders validated on the node (e.g. `libx264`, `h264_nvenc`).
    #[serde(default)]
    pub encoders: Vec<String>,
    /// Engines installed (`ffmpeg`, `gstreamer`).
    #[serde(default)]
    pub engines: Vec<String>,
    /// Agent version.
    #[serde(default)]
    pub version: String,
    /// Whether the node enforces jobs' CPU and memory limits (it has a writable cgroup
    /// hierarchy with the cpu and memory controllers). Only such nodes are given jobs whose
    /// limits are [`Required`](crate::Enforcement::Required). Absent: `false`.
    #[serde(default)]
    pub enforces_limits: bool,
    /// Quality metrics (`parameters.quality`) the node's ffmpeg can compute: `psnr` and `ssim`
    /// with any ffmpeg, `vmaf` only where it has the `libvmaf` filter. Advisory: claims do not
    /// depend on it (a job asking for VMAF on a node without it completes with the score
    /// unavailable, and why). Absent (older agents): not known.
    #[serde(default)]
    pub quality_metrics: Vec<crate::quality::QualityMetric>,
}

/// Liveness of a node as judged by the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Heartbeating.
    Online,
    /// Silent for longer than the dead-node threshold; its jobs were requeued.
    Offline,
}

/// A registered node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Identifier given at registration.
    pub id: NodeId,
    /// What the node said about itself.
    pub registration: NodeRegistration,
    /// Liveness.
    pub status: NodeStatus,
    /// Jobs the master believes the node holds.
    pub active_jobs: u32,
    /// Registration time (ms since epoch).
    pub registered_at_ms: u64,
    /// Last heartbeat, claim or report (ms since epoch).
    pub last_seen_ms: u64,
    /// The node's energy meter as of its last heartbeat; `None` when that heartbeat carried
    /// none (no meter, energy unavailable, an agent without this field) or before any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<NodePower>,
}

/// A snapshot of a node's whole-machine energy meter, sent with each heartbeat so that the
/// master (and `ffrtmp bench run` through `GET /nodes`) can see energy outside jobs, such as
/// an idle baseline: the mean power between two snapshots of the same meter is
/// `Δenergy_joules / Δmeasured_s`.
///
/// ```
/// use ffrtmp_core::NodePower;
/// let p = NodePower {
///     source: "rapl".into(),
///     energy_joules: 120.0,
///     measured_s: 10.0,
///     watts: Some(12.5),
///     idle_watts: Some(11.0),
///     counting_since_ms: 1_700_000_000_000,
///     sampled_at_ms: 1_700_000_010_000,
///     cpus: Some(8),
/// };
/// assert!(p.validate().is_ok());
/// assert!(NodePower { energy_joules: -1.0, ..p }.validate().is_err());
/// ```
///
/// Unknown fields are refused, as in [`Heartbeat`]: a misspelt field is an error rather than
/// a figure silently missing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodePower {
    /// The energy source (`rapl`, …).
    pub source: String,
    /// Joules of the package (+ DRAM) zones since `counting_since_ms`: wrap-corrected, never
    /// overlapping zones, and monotone for one meter (a restarted agent starts again at 0,
    /// with a new `counting_since_ms`).
    pub energy_joules: f64,
    /// Seconds covered by `energy_joules`, on the agent's monotonic clock: differences of it
    /// are immune to wall-clock steps.
    pub measured_s: f64,
    /// Current power: the mean over about the last second; `None` before the first interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watts: Option<f64>,
    /// Idle power: measured over the agent's start-up window when no job ran in it, else the
    /// mean of the meter's job-free intervals so far; `None` until either exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_watts: Option<f64>,
    /// When the cumulative count started (the agent's start), ms since the Unix epoch.
    pub counting_since_ms: u64,
    /// When the snapshot was taken, ms since the Unix epoch (the agent's clock).
    pub sampled_at_ms: u64,
    /// The CPUs the node's energy split is over: the machine's CPU time that job shares are
    /// taken of is these CPUs × wall time (the host's online CPUs, which may differ from the
    /// CPUs the agent may use). `None` from agents that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
}

impl NodePower {
    /// Longest accepted `source`.
    pub const MAX_SOURCE_LEN: usize = 64;
    /// Largest accepted `watts` and `idle_watts`: a megawatt, far above any one machine.
    pub const MAX_WATTS: f64 = 1e6;
    /// Largest accepted `energy_joules`: 1 PJ, about 30 years at a megawatt.
    pub const MAX_JOULES: f64 = 1e15;
    /// Seconds by which `measured_s` may exceed the wall-clock time from `counting_since_ms`
    /// to `sampled_at_ms`: the count starts with the sampler's first reading, taken during
    /// the agent's start-up just before `counting_since_ms` is read, and the two clocks round
    /// differently. A wall clock stepped back by more than this makes snapshots invalid
    /// until the agent restarts.
    pub const MEASURED_SLACK_S: f64 = 10.0;

    /// Checks that the snapshot is plausible; the stores refuse a heartbeat whose snapshot
    /// fails this:
    ///
    /// - the source is 1..=[`Self::MAX_SOURCE_LEN`] bytes;
    /// - every figure is finite and non-negative, `energy_joules` at most
    ///   [`Self::MAX_JOULES`], `watts` and `idle_watts` at most [`Self::MAX_WATTS`];
    /// - `sampled_at_ms` is not before `counting_since_ms`, and `measured_s` is at most the
    ///   wall-clock time between them plus [`Self::MEASURED_SLACK_S`].
    ///
    /// ```
    /// use ffrtmp_core::NodePower;
    /// let p = NodePower { source: "rapl".into(), energy_joules: 50.0, measured_s: 5.0, watts: None,
    ///     idle_watts: None, counting_since_ms: 1_000, sampled_at_ms: 6_000, cpus: None };
    /// assert!(p.validate().is_ok());
    /// assert!(NodePower { energy_joules: 1e308, ..p.clone() }.validate().is_err());
    /// assert!(NodePower { sampled_at_ms: 999, ..p.clone() }.validate().is_err());
    /// assert!(NodePower { measured_s: 3600.0, ..p }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        if self.source.is_empty() || self.source.len() > Self::MAX_SOURCE_LEN {
            return Err(format!("power.source must be 1..={} bytes", Self::MAX_SOURCE_LEN));
        }
        let figures = [
            ("energy_joules", Some(self.energy_joules), Self::MAX_JOULES),
            ("measured_s", Some(self.measured_s), f64::MAX),
            ("watts", self.watts, Self::MAX_WATTS),
            ("idle_watts", self.idle_watts, Self::MAX_WATTS),
        ];
        for (name, value, max) in figures {
            if let Some(v) = value {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(format!("power.{name} must be a finite non-negative number, not {v}"));
                }
                if v > max {
                    return Err(format!("power.{name} of {v} is implausible (more than {max})"));
                }
            }
        }
        let Some(elapsed_ms) = self.sampled_at_ms.checked_sub(self.counting_since_ms) else {
            return Err(format!(
                "power.sampled_at_ms ({}) is before power.counting_since_ms ({})",
                self.sampled_at_ms, self.counting_since_ms
            ));
        };
        let elapsed_s = elapsed_ms as f64 / 1000.0;
        if self.measured_s > elapsed_s + Self::MEASURED_SLACK_S {
            return Err(format!(
                "power.measured_s ({} s) is longer than the {elapsed_s} s since power.counting_since_ms",
                self.measured_s
            ));
        }
        Ok(())
    }

    /// Whether this snapshot is newer than `stored`, so that it replaces it as a node's
    /// latest: it comes from another meter (`counting_since_ms` differs: the agent
    /// restarted), or from the same meter further on (`measured_s` greater). A delayed or
    /// retried heartbeat's older snapshot, or the same snapshot again, is not.
    ///
    /// ```
    /// use ffrtmp_core::NodePower;
    /// let old = NodePower { source: "rapl".into(), energy_joules: 50.0, measured_s: 5.0, watts: None,
    ///     idle_watts: None, counting_since_ms: 1_000, sampled_at_ms: 6_000, cpus: None };
    /// let new = NodePower { energy_joules: 60.0, measured_s: 6.0, sampled_at_ms: 7_000, ..old.clone() };
    /// assert!(new.supersedes(&old));
    /// assert!(!old.supersedes(&new) && !new.supersedes(&new));
    /// let restarted = NodePower { measured_s: 1.0, counting_since_ms: 9_000, sampled_at_ms: 10_000, ..old.clone() };
    /// assert!(restarted.supersedes(&new));
    /// ```
    pub fn supersedes(&self, stored: &NodePower) -> bool {
        self.counting_since_ms != stored.counting_since_ms || self.measured_s > stored.measured_s
    }
}

/// A job the agent is running, as listed in a heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    /// The job.
    pub job_id: JobId,
    /// The attempt the agent runs.
    pub attempt: u32,
    /// Its progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// Periodic liveness report from an agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Everything the agent is running right now.
    #[serde(default)]
    pub running: Vec<RunningJob>,
    /// The node's energy meter now. The master keeps the newest snapshot as [`Node::power`]:
    /// one that does not [supersede](NodePower::supersedes) the stored one (from a delayed or
    /// retried heartbeat) is ignored. A heartbeat without one clears it, so a meter that
    /// stopped working is never shown with a stale reading; such a heartbeat carries nothing
    /// to order it by, so a delayed one also clears a newer snapshot, until the next
    /// heartbeat. Left out of the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<NodePower>,
}

/// The master's answer to a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Jobs the agent must stop: canceled, or fenced (no longer this node's attempt).
    /// Kept for agents that predate [`cancel_attempts`](HeartbeatReply::cancel_attempts).
    pub cancel: Vec<JobId>,
    /// The same, per listed attempt: an agent stops exactly these, never a newer attempt
    /// of the same job that it started after sending the heartbeat. Empty (and absent on
    /// the wire) from masters that predate it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancel_attempts: Vec<AttemptKey>,
}

/// A request for work. Repeating a request with the same `claim_id` returns the same
/// assignments, so a lost response never orphans a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The claiming node.
    pub node_id: NodeId,
    /// Chosen by the client, unique per claim.
    pub claim_id: String,
    /// At most this many jobs (the agent's free slots).
    pub max_jobs: u32,
    /// How long the master may hold the request open waiting for work, in milliseconds.
    #[serde(default)]
    pub wait_ms: u64,
}

/// A job handed to a node. `job.attempt` is the fencing token for every later report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The job, in state `assigned`.
    pub job: Job,
}

/// What happened to an assigned job, as told by its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// Events are built, sent once and dropped; boxing the completed result would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum JobEvent {
    /// The workload started.
    Started,
    /// Progress update.
    Progress {
        /// The progress.
        progress: Progress,
    },
    /// Finished successfully.
    Completed {
        /// The outcome.
        result: JobResult,
    },
    /// Finished unsuccessfully; the error kind decides about retries.
    Failed {
        /// The failure.
        error: JobError,
    },
    /// Ran past its own `timeout_sec` and was stopped.
    TimedOut {
        /// Details.
        message: String,
        /// Energy the attempt used until it was stopped (stored with the job's error).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        energy: Option<EnergyReport>,
    },
    /// The energy an attempt used, sent once its workload has ended when no other report
    /// carried it: the job was canceled, handed to another attempt, or the agent was
    /// drained (its `interrupted` report goes before the workload has stopped). Unlike the
    /// other events it is accepted after the job has left the node, from the node that held
    /// that attempt only, and it changes nothing but that attempt's energy record.
    Energy {
        /// The attempt's energy.
        energy: EnergyReport,
    },
}

/// A report about one attempt of one job. Refused unless `(job_id, attempt, node_id)` is
/// the job's current holder ([`JobEvent::Energy`]: unless that node held that attempt).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job.
    pub job_id: JobId,
    /// The reporting node.
    pub node_id: NodeId,
    /// The attempt the node was given.
    pub attempt: u32,
    /// What happened.
    #[serde(flatten)]
    pub event: JobEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power() -> NodePower {
        NodePower {
            source: "rapl".into(),
            energy_joules: 42.5,
            measured_s: 3.0,
            watts: Some(14.0),
            idle_watts: None,
            counting_since_ms: 1,
            sampled_at_ms: 3001,
            cpus: None,
        }
    }

    #[test]
    fn heartbeats_without_power_still_parse_and_none_is_left_out() {
        let hb: Heartbeat = serde_json::from_str(r#"{"running":[]}"#).unwrap();
        assert_eq!(hb.power, None);
        assert_eq!(serde_json::to_string(&hb).unwrap(), r#"{"running":[]}"#);
        let with = Heartbeat {
            running: vec![],
            power: Some(power()),
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(!text.contains("idle_watts"), "{text}");
        assert_eq!(serde_json::from_str::<Heartbeat>(&text).unwrap(), with);
        assert!(serde_json::from_str::<Heartbeat>(r#"{"running":[],"watts":3}"#).is_err());
    }

    #[test]
    fn invalid_snapshots_are_refused() {
        assert!(power().validate().is_ok());
        for bad in [
            NodePower {
                source: String::new(),
                ..power()
            },
            NodePower {
                source: "x".repeat(65),
                ..power()
            },
            NodePower {
                measured_s: f64::INFINITY,
                ..power()
            },
            NodePower {
                watts: Some(f64::NAN),
                ..power()
            },
            NodePower {
                idle_watts: Some(-0.5),
                ..power()
            },
            NodePower {
                energy_joules: 1e308,
                ..power()
            },
            NodePower {
                energy_joules: NodePower::MAX_JOULES * 1.01,
                ..power()
            },
            NodePower {
                watts: Some(NodePower::MAX_WATTS * 2.0),
                ..power()
            },
            NodePower {
                idle_watts: Some(1e300),
                ..power()
            },
            NodePower {
                sampled_at_ms: 0,
                ..power()
            },
            NodePower {
                measured_s: 3.0 + NodePower::MEASURED_SLACK_S + 0.5,
                ..power()
            },
            NodePower {
                measured_s: f64::NAN,
                ..power()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        // The limits themselves are accepted, and the start-up slack.
        let edge = NodePower {
            energy_joules: NodePower::MAX_JOULES,
            watts: Some(NodePower::MAX_WATTS),
            measured_s: 3.0 + NodePower::MEASURED_SLACK_S,
            ..power()
        };
        assert_eq!(edge.validate(), Ok(()));
        let instant = NodePower {
            measured_s: 0.0,
            sampled_at_ms: 1,
            ..power()
        };
        assert_eq!(instant.validate(), Ok(()));
    }

    #[test]
    fn the_cpu_count_is_optional_and_left_out_when_unknown() {
        let text = serde_json::to_string(&power()).unwrap();
        assert!(!text.contains("cpus"), "{text}");
        let with = NodePower {
            cpus: Some(16),
            ..power()
        };
        let text = serde_json::to_string(&with).unwrap();
        assert!(text.contains(r#""cpus":16"#), "{text}");
        assert_eq!(serde_json::from_str::<NodePower>(&text).unwrap(), with);
    }

    #[test]
    fn snapshots_with_unknown_fields_are_refused() {
        let text = serde_json::to_string(&power()).unwrap();
        assert_eq!(serde_json::from_str::<NodePower>(&text).unwrap(), power());
        let extra = text.replacen('{', r#"{"joules":1,"#, 1);
        assert!(serde_json::from_str::<NodePower>(&extra).is_err(), "{extra}");
    }

    #[test]
    fn only_a_newer_snapshot_or_another_meters_supersedes() {
        let later = NodePower {
            energy_joules: 60.0,
            measured_s: 4.0,
            sampled_at_ms: 4001,
            ..power()
        };
        assert!(later.supersedes(&power()));
        assert!(!power().supersedes(&later), "a delayed older snapshot");
        assert!(!later.supersedes(&later), "the same snapshot again");
        let restarted = NodePower {
            measured_s: 0.5,
            counting_since_ms: 2,
            ..power()
        };
        assert!(restarted.supersedes(&later), "another meter, even with less counted");
    }
}
