//! What the status endpoint reports: [`StatusProbe`], implemented by the agent, and its checks.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::PromText;

/// One readiness check: `{"name":"disk","ok":false,"detail":"93 % used"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Short stable name (`ffmpeg`, `disk`, `master`…).
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// For people: what was found, or why it fails.
    pub detail: String,
}

impl Check {
    /// A passing check.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    /// A failing check.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// What `GET /ready` reports.
///
/// ```
/// use ffrtmp_http::status::{Check, ReadyReport};
/// let r = ReadyReport::from_checks(vec![Check::pass("ffmpeg", "5.1"), Check::fail("disk", "96 % used")]);
/// assert!(!r.ok);
/// assert_eq!(r.failing().collect::<Vec<_>>(), ["disk"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReport {
    /// Whether the node is ready (200) or not (503).
    pub ok: bool,
    /// The individual checks.
    pub checks: Vec<Check>,
}

impl ReadyReport {
    /// A report that is ready exactly when every check passes.
    pub fn from_checks(checks: Vec<Check>) -> Self {
        ReadyReport {
            ok: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// Names of the failing checks.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str())
    }
}

/// What the status server asks the agent. Called from a blocking-task thread, at most
/// 5 s is waited for an answer; keep both calls cheap (cached state,
/// a `statvfs`), never a network round trip.
pub trait StatusProbe: Send + Sync {
    /// Readiness and its checks.
    fn ready(&self) -> ReadyReport;
    /// The Prometheus text exposition (see [`PromText`]).
    fn metrics(&self) -> String;
}
