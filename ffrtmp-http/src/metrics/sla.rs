//! SLA compliance series: what `GET /sla` reports ([`ffrtmp_core::sla`]), over the last
//! [`SLA_WINDOW`], per classification and queue together. The scan of job history is cached
//! ([`SlaCache`]) for [`SLA_CACHE_TTL`], so frequent scrapes do not read the store each time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::sla::{jobs_in_window, sla_report, SlaFigures};
use ffrtmp_core::{Job, JobStore, StoreError};
use prometheus_client::encoding::DescriptorEncoder;

use super::cluster::label;
use super::encode::{gauge_family, Labels};

/// The window of the SLA series.
pub const SLA_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long one scan of job history serves scrapes.
pub const SLA_CACHE_TTL: Duration = Duration::from_secs(30);

/// SLA figures per (classification, queue) over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlaSnapshot {
    /// The window the figures cover.
    pub window: Duration,
    /// Met, missed and excluded jobs per (classification, queue), as `GET /sla` counts them.
    pub groups: BTreeMap<(String, String), SlaFigures>,
}

impl SlaSnapshot {
    /// Groups `jobs` by classification and queue and judges each group like `GET /sla`.
    pub fn from_jobs(jobs: &[Job], window: Duration, since_ms: u64, until_ms: u64) -> SlaSnapshot {
        let mut by_group: BTreeMap<(String, String), Vec<&Job>> = BTreeMap::new();
        for job in jobs {
            let key = (label(&job.spec.classification), label(&job.spec.queue));
            by_group.entry(key).or_default().push(job);
        }
        let groups = by_group
            .into_iter()
            .map(|(key, jobs)| (key, sla_report(jobs, since_ms, until_ms).total))
            .filter(|(_, f)| f.met + f.missed + f.excluded > 0)
            .collect();
        SlaSnapshot { window, groups }
    }

    /// Reads the jobs that changed within `window` and judges them.
    pub async fn read(store: &dyn JobStore, window: Duration) -> Result<SlaSnapshot, StoreError> {
        let now_ms = ffrtmp_core::now_ms();
        let (jobs, since_ms) = jobs_in_window(store, window, now_ms).await?;
        Ok(SlaSnapshot::from_jobs(&jobs, window, since_ms, now_ms))
    }

    /// Encodes `ffrtmp_sla_met_ratio`, `ffrtmp_sla_met_jobs`, `ffrtmp_sla_missed_jobs` and
    /// `ffrtmp_sla_window_seconds`.
    pub(crate) fn encode(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels: Vec<[(&str, &str); 2]> = self
            .groups
            .keys()
            .map(|(c, q)| [("classification", c.as_str()), ("queue", q.as_str())])
            .collect();
        let pick = |f: &dyn Fn(&SlaFigures) -> Option<f64>| -> Vec<(Labels, f64)> {
            self.groups
                .values()
                .zip(&labels)
                .filter_map(|(g, l)| Some((&l[..], f(g)?)))
                .collect()
        };
        gauge_family(
            e,
            "ffrtmp_sla_met_ratio",
            "Share (0..1) of judged jobs that met their SLA over the window, as GET /sla counts; no series without judged jobs.",
            &pick(&|g| g.compliance_percent.map(|p| p / 100.0)),
        )?;
        gauge_family(
            e,
            "ffrtmp_sla_met_jobs",
            "Jobs that met their SLA over the window.",
            &pick(&|g| Some(g.met as f64)),
        )?;
        gauge_family(
            e,
            "ffrtmp_sla_missed_jobs",
            "Jobs that missed their SLA over the window.",
            &pick(&|g| Some(g.missed as f64)),
        )?;
        gauge_family(
            e,
            "ffrtmp_sla_window_seconds",
            "The window of the ffrtmp_sla_* series.",
            &[(&[], self.window.as_secs_f64())],
        )
    }
}

/// One [`SlaSnapshot`] kept for a while: scrapes within the time to live share one scan, and
/// concurrent scrapes wait for the scan in progress instead of starting their own.
#[derive(Debug)]
pub struct SlaCache {
    window: Duration,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, SlaSnapshot)>>,
}

impl Default for SlaCache {
    fn default() -> Self {
        SlaCache::new(SLA_WINDOW, SLA_CACHE_TTL)
    }
}

impl SlaCache {
    /// A cache of figures over `window`, rescanned at most once per `ttl`.
    pub fn new(window: Duration, ttl: Duration) -> SlaCache {
        SlaCache {
            window,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached figures, or fresh ones when they are older than the time to live.
    pub async fn get(&self, store: &Arc<dyn JobStore>) -> Result<SlaSnapshot, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, snap)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(snap.clone());
            }
        }
        let snap = SlaSnapshot::read(store.as_ref(), self.window).await?;
        *cached = Some((Instant::now(), snap.clone()));
        Ok(snap)
    }
}
