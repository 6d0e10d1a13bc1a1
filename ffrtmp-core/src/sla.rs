//! SLA compliance from job history ([`SlaReport`]): per classification and per queue, the
//! share of finished jobs that met their SLA.
//!
//! A job **met** its SLA when it completed (on its first attempt or after transient retries:
//! terminal failures end a job, so a completed job retried only transient ones), within its
//! `timeout_sec` when it has one (the completing attempt's wall time), and, for a live job,
//! without falling behind real time beyond the node's threshold (`result.live.behind_realtime`).
//! It **missed** when it failed, timed out, or completed late or behind real time. Canceled
//! and rejected jobs are **excluded** (nobody asked for them any more), and so are jobs not
//! finished yet. Compliance is met / (met + missed). A job counts in the window in which it
//! last changed (`updated_at_ms`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::state::JobState;
use crate::store::{JobQuery, JobStore, StoreError};

/// Counts of one group of jobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaFigures {
    /// Jobs that met their SLA.
    pub met: u64,
    /// Jobs that missed it.
    pub missed: u64,
    /// Finished jobs left out (canceled, rejected).
    pub excluded: u64,
    /// `met / (met + missed)` in percent; `None` without any.
    pub compliance_percent: Option<f64>,
    /// Why the missed jobs missed: `failed:<kind>`, `timed_out`, `over_timeout`,
    /// `behind_realtime`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub missed_by_reason: BTreeMap<String, u64>,
}

impl SlaFigures {
    fn add(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Met => self.met += 1,
            Verdict::Missed(why) => {
                self.missed += 1;
                *self.missed_by_reason.entry(why.clone()).or_default() += 1;
            }
            Verdict::Excluded => self.excluded += 1,
        }
        let judged = self.met + self.missed;
        self.compliance_percent = (judged > 0).then(|| self.met as f64 * 100.0 / judged as f64);
    }
}

/// SLA compliance over a window of job history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlaReport {
    /// Start of the window, ms since the Unix epoch.
    pub since_ms: u64,
    /// End of the window, ms since the Unix epoch.
    pub until_ms: u64,
    /// Every job in the window.
    pub total: SlaFigures,
    /// Per classification (`production`, `test`, `benchmark`, `debug`).
    pub by_classification: BTreeMap<String, SlaFigures>,
    /// Per queue (`live`, `default`, `batch`).
    pub by_queue: BTreeMap<String, SlaFigures>,
}

/// What one job counts as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Met its SLA.
    Met,
    /// Missed it, and why.
    Missed(String),
    /// Not counted (canceled, rejected, or not finished).
    Excluded,
}

/// The verdict on one job (see the [module](self) for the definition).
pub fn verdict(job: &Job) -> Verdict {
    match job.state {
        JobState::Completed => {
            let Some(result) = &job.result else {
                return Verdict::Met;
            };
            if let Some(t) = job.spec.resource_limits.timeout_sec {
                if result.wall_s > t as f64 {
                    return Verdict::Missed("over_timeout".into());
                }
            }
            if result.live.as_ref().is_some_and(|l| l.behind_realtime) {
                return Verdict::Missed("behind_realtime".into());
            }
            Verdict::Met
        }
        JobState::Failed => Verdict::Missed(match &job.error {
            Some(e) => format!("failed:{}", label(&e.kind)),
            None => "failed".into(),
        }),
        JobState::TimedOut => Verdict::Missed("timed_out".into()),
        _ => Verdict::Excluded,
    }
}

fn label<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".into(),
    }
}

/// The report over `jobs` that last changed within `since_ms..=until_ms` (others ignored).
pub fn sla_report<'a>(jobs: impl IntoIterator<Item = &'a Job>, since_ms: u64, until_ms: u64) -> SlaReport {
    let mut report = SlaReport {
        since_ms,
        until_ms,
        ..Default::default()
    };
    for job in jobs {
        // A timed-out job may still be retried by hand, but it has missed already.
        let finished = job.state.is_terminal() || job.state == JobState::TimedOut;
        if !(since_ms..=until_ms).contains(&job.updated_at_ms) || !finished {
            continue;
        }
        let v = verdict(job);
        report.total.add(&v);
        report
            .by_classification
            .entry(label(&job.spec.classification))
            .or_default()
            .add(&v);
        report.by_queue.entry(label(&job.spec.queue)).or_default().add(&v);
    }
    report
}

/// Most jobs [`collect`] reads (pages of [`JobQuery::MAX_LIMIT`]).
pub const MAX_JOBS_READ: usize = 200_000;

/// Reads the store's jobs, newest first, and reports on those that changed within `window`
/// before `now_ms`. Stops at [`MAX_JOBS_READ`] jobs.
pub async fn collect(store: &dyn JobStore, window: Duration, now_ms: u64) -> Result<SlaReport, StoreError> {
    let (jobs, since_ms) = jobs_in_window(store, window, now_ms).await?;
    Ok(sla_report(&jobs, since_ms, now_ms))
}

/// The jobs [`collect`] reports on (those that changed within `window` before `now_ms`, at
/// most [`MAX_JOBS_READ`]) and the window's start in ms, for callers that group them
/// otherwise (the master's metrics, per classification and queue together).
pub async fn jobs_in_window(
    store: &dyn JobStore,
    window: Duration,
    now_ms: u64,
) -> Result<(Vec<Job>, u64), StoreError> {
    let since_ms = now_ms.saturating_sub(window.as_millis().min(u128::from(u64::MAX)) as u64);
    let mut jobs = Vec::new();
    let mut query = JobQuery {
        limit: Some(JobQuery::MAX_LIMIT),
        ..Default::default()
    };
    loop {
        let page = store.list(&query).await?;
        // Newest submissions first: once a whole page was last changed before the window,
        // so were (almost surely) the older ones; keep going only while some are inside.
        let any_inside = page.jobs.iter().any(|j| j.updated_at_ms >= since_ms);
        jobs.extend(page.jobs.into_iter().filter(|j| j.updated_at_ms >= since_ms));
        match page.next_cursor {
            Some(c) if any_inside && jobs.len() < MAX_JOBS_READ => query.before_seq = Some(c),
            _ => break,
        }
    }
    Ok((jobs, since_ms))
}

/// Parses a window such as `24h`, `7d`, `90m`, `3600s` or bare seconds (at least 1 s, at
/// most 366 days).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ffrtmp_core::sla::parse_window("24h"), Ok(Duration::from_secs(86_400)));
/// assert!(ffrtmp_core::sla::parse_window("soon").is_err());
/// ```
pub fn parse_window(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid window {text:?}: expected e.g. 24h, 7d, 90m"))?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => return Err(format!("invalid window unit in {text:?}: use s, m, h or d")),
    };
    match secs {
        Some(s) if (1..=366 * 86_400).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(format!("window {text:?} must be between 1 s and 366 days")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{ErrorKind, JobError, JobResult};
    use crate::live::LiveQoe;
    use crate::{JobId, JobSpec};

    fn job(json: &str, state: JobState, at: u64) -> Job {
        let spec: JobSpec = serde_json::from_str(json).unwrap();
        Job {
            state,
            updated_at_ms: at,
            ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0)
        }
    }

    #[test]
    fn compliance_per_classification_and_queue() {
        let batch = r#"{"scenario":"720p-h264","queue":"batch","resource_limits":{"timeout_sec":60}}"#;
        let live = r#"{"scenario":"live-rtmp","queue":"live","classification":"test"}"#;
        let done = |json, wall_s, live: Option<LiveQoe>| Job {
            result: Some(JobResult {
                wall_s,
                live: live.map(Box::new),
                ..Default::default()
            }),
            ..job(json, JobState::Completed, 1_000)
        };
        let behind = LiveQoe {
            behind_realtime: true,
            ..Default::default()
        };
        let failed = Job {
            error: Some(JobError::new(ErrorKind::DestinationLost, "gone")),
            ..job(live, JobState::Failed, 1_500)
        };
        let jobs = vec![
            done(batch, 10.0, None),
            done(batch, 61.0, None),
            job(batch, JobState::TimedOut, 1_200),
            job(batch, JobState::Canceled, 1_200),
            job(batch, JobState::Running, 1_200),
            done(live, 30.0, Some(LiveQoe::default())),
            done(live, 30.0, Some(behind)),
            failed,
            done(batch, 1.0, None),
        ];
        let mut old = done(batch, 1.0, None);
        old.updated_at_ms = 10;
        let mut all = jobs.clone();
        all.push(old);
        let r = sla_report(&all, 500, 2_000);
        assert_eq!((r.total.met, r.total.missed, r.total.excluded), (3, 4, 1));
        let prod = &r.by_classification["production"];
        assert_eq!((prod.met, prod.missed), (2, 2));
        assert_eq!(prod.compliance_percent, Some(50.0));
        assert_eq!(prod.missed_by_reason["over_timeout"], 1);
        assert_eq!(prod.missed_by_reason["timed_out"], 1);
        let test = &r.by_classification["test"];
        assert_eq!((test.met, test.missed), (1, 2));
        assert_eq!(test.missed_by_reason["behind_realtime"], 1);
        assert_eq!(test.missed_by_reason["failed:destination_lost"], 1);
        assert_eq!(r.by_queue["live"].met, 1);
        assert_eq!(r.by_queue["batch"].excluded, 1);
        assert_eq!(sla_report(&[], 0, 1).total.compliance_percent, None);
    }

    #[test]
    fn windows() {
        assert_eq!(parse_window("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_window("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_window("3600"), Ok(Duration::from_secs(3_600)));
        for bad in ["", "0s", "24x", "400d", "-1h", "99999999999999999999d"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
