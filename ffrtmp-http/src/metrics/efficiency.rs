//! Efficiency series: the table of `GET /nodes/efficiency` ([`ffrtmp_core::efficiency`]) over
//! the last [`EFFICIENCY_WINDOW`], one series per (node, encoder, scenario). Measured and
//! estimated (power-model) J/frame are apart, told by the `energy` label. The scan of job
//! history is cached ([`EfficiencyCache`]) for [`EFFICIENCY_CACHE_TTL`], like the SLA series.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::efficiency::{collect, EfficiencyRow, EfficiencyTable};
use ffrtmp_core::{JobStore, StoreError};
use prometheus_client::encoding::DescriptorEncoder;

use super::encode::{gauge_family, Labels};

/// The window of the efficiency series.
pub const EFFICIENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long one scan of job history serves scrapes.
pub const EFFICIENCY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Most (node, encoder, scenario) rows given series; the rest are left out (and counted in
/// `ffrtmp_efficiency_rows_dropped`), so a scrape stays bounded.
pub const MAX_EFFICIENCY_ROWS: usize = 512;

/// The efficiency table over a window, as the series show it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EfficiencySnapshot {
    /// The window the table covers.
    pub window: Duration,
    /// The table.
    pub table: EfficiencyTable,
}

/// The four labels of a row: node, encoder, scenario and one more (`energy` or `metric`).
type RowLabels<'a> = [(&'static str, &'a str); 4];

impl EfficiencySnapshot {
    /// Reads the completed jobs that changed within `window` and builds the table.
    pub async fn read(store: &dyn JobStore, window: Duration) -> Result<EfficiencySnapshot, StoreError> {
        let table = collect(store, window, ffrtmp_core::now_ms()).await?;
        Ok(EfficiencySnapshot { window, table })
    }

    fn rows(&self) -> &[EfficiencyRow] {
        &self.table.rows[..self.table.rows.len().min(MAX_EFFICIENCY_ROWS)]
    }

    /// Series of one figure per row, the fourth label `key` set to `value`.
    fn per_row<'a>(
        &'a self,
        key: &'static str,
        value: &'a str,
        f: impl Fn(&EfficiencyRow) -> Option<f64>,
    ) -> Vec<(RowLabels<'a>, f64)> {
        self.rows()
            .iter()
            .filter_map(|r| Some((row_labels(r, key, value), f(r)?)))
            .collect()
    }

    /// Series of one quality figure per (row, metric), the energy kind as a fifth label.
    fn per_metric<'a>(
        &'a self,
        energy: &'a str,
        f: impl Fn(&ffrtmp_core::efficiency::QualityFigures) -> Option<f64>,
    ) -> Vec<([(&'static str, &'a str); 5], f64)> {
        let mut out = Vec::new();
        for r in self.rows() {
            for (metric, q) in &r.quality {
                if let Some(v) = f(q) {
                    let [a, b, c, d] = row_labels(r, "metric", metric);
                    out.push(([a, b, c, d, ("energy", energy)], v));
                }
            }
        }
        out
    }

    /// Encodes `ffrtmp_efficiency_joules_per_frame` (label `energy`: `measured` or
    /// `estimated`), `ffrtmp_efficiency_fps`, `ffrtmp_efficiency_samples`,
    /// `ffrtmp_efficiency_quality` (label `metric`), `ffrtmp_efficiency_quality_per_joule`
    /// (`metric`, `energy`), `ffrtmp_efficiency_rows_dropped` and
    /// `ffrtmp_efficiency_window_seconds`.
    pub(crate) fn encode(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut jpf = self.per_row("energy", "measured", |r| r.joules_per_frame);
        jpf.extend(self.per_row("energy", "estimated", |r| r.estimated_joules_per_frame));
        gauge_family(
            e,
            "ffrtmp_efficiency_joules_per_frame",
            "Median joules per frame of completed jobs over the window, per node, encoder and scenario; energy=estimated when from a node's power model.",
            &as_series(&jpf),
        )?;
        let fps = self.per_row("energy", "any", |r| r.median_fps);
        gauge_family(
            e,
            "ffrtmp_efficiency_fps",
            "Median frames per second of completed jobs over the window, per node, encoder and scenario.",
            &as_series(&strip(&fps)),
        )?;
        let samples = self.per_row("energy", "any", |r| Some(r.samples as f64));
        gauge_family(
            e,
            "ffrtmp_efficiency_samples",
            "Completed jobs in each node, encoder and scenario row of the efficiency table over the window.",
            &as_series(&strip(&samples)),
        )?;
        let quality: Vec<(RowLabels, f64)> = self
            .per_metric("any", |q| Some(q.median))
            .into_iter()
            .map(|([a, b, c, d, _], v)| ([a, b, c, d], v))
            .collect();
        gauge_family(
            e,
            "ffrtmp_efficiency_quality",
            "Median quality score (PSNR dB, SSIM 0-1, VMAF 0-100) of completed jobs over the window, by metric.",
            &as_series(&quality),
        )?;
        let mut per_joule = self.per_metric("measured", |q| q.per_joule);
        per_joule.extend(self.per_metric("estimated", |q| q.estimated_per_joule));
        let per_joule: Vec<(Labels, f64)> = per_joule.iter().map(|(l, v)| (&l[..], *v)).collect();
        gauge_family(
            e,
            "ffrtmp_efficiency_quality_per_joule",
            "Median quality score per joule of the encode over the window, by metric; energy=estimated when from a node's power model.",
            &per_joule,
        )?;
        let dropped = self.table.rows.len().saturating_sub(MAX_EFFICIENCY_ROWS);
        gauge_family(
            e,
            "ffrtmp_efficiency_rows_dropped",
            "Rows of the efficiency table left out of the ffrtmp_efficiency_* series to bound a scrape.",
            &[(&[], dropped as f64)],
        )?;
        gauge_family(
            e,
            "ffrtmp_efficiency_window_seconds",
            "The window of the ffrtmp_efficiency_* series.",
            &[(&[], self.window.as_secs_f64())],
        )
    }
}

fn row_labels<'a>(r: &'a EfficiencyRow, key: &'static str, value: &'a str) -> RowLabels<'a> {
    [
        ("node", r.node_id.as_str()),
        ("encoder", r.encoder.as_str()),
        ("scenario", r.scenario.as_str()),
        (key, value),
    ]
}

/// The series without their fourth label (for figures that are not by kind of energy).
fn strip<'a>(series: &[(RowLabels<'a>, f64)]) -> Vec<([(&'static str, &'a str); 3], f64)> {
    series.iter().map(|([a, b, c, _], v)| ([*a, *b, *c], *v)).collect()
}

fn as_series<'a, const N: usize>(series: &'a [([(&'static str, &'a str); N], f64)]) -> Vec<(Labels<'a>, f64)> {
    series.iter().map(|(l, v)| (&l[..], *v)).collect()
}

/// One [`EfficiencySnapshot`] kept for a while: scrapes within the time to live share one
/// scan, and concurrent scrapes wait for the scan in progress instead of starting their own.
#[derive(Debug)]
pub struct EfficiencyCache {
    window: Duration,
    ttl: Duration,
    cached: tokio::sync::Mutex<Option<(Instant, EfficiencySnapshot)>>,
}

impl Default for EfficiencyCache {
    fn default() -> Self {
        EfficiencyCache::new(EFFICIENCY_WINDOW, EFFICIENCY_CACHE_TTL)
    }
}

impl EfficiencyCache {
    /// A cache of the table over `window`, rebuilt at most once per `ttl`.
    pub fn new(window: Duration, ttl: Duration) -> EfficiencyCache {
        EfficiencyCache {
            window,
            ttl,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached table, or a fresh one when it is older than the time to live.
    pub async fn get(&self, store: &Arc<dyn JobStore>) -> Result<EfficiencySnapshot, StoreError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, snap)) = cached.as_ref() {
            if at.elapsed() < self.ttl {
                return Ok(snap.clone());
            }
        }
        let snap = EfficiencySnapshot::read(store.as_ref(), self.window).await?;
        *cached = Some((Instant::now(), snap.clone()));
        Ok(snap)
    }
}
