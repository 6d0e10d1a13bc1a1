//! Encode efficiency from job history ([`EfficiencyTable`]): per (node, encoder, scenario),
//! the median joules per frame, frames per second and output quality of completed jobs.
//!
//! Only completed jobs with a result and a node count, in the window in which they last
//! changed (`updated_at_ms`). Every such job counts in `samples` and in the fps median.
//! Measured energy (RAPL, NVML, file counters) and energy estimated from a power model
//! (`EnergyReport::estimated`) never share a median: they have their own columns. A partial
//! energy report is a lower bound, so it is left out of the J/frame medians (the job still
//! counts for fps). Quality medians are per metric, over the jobs whose quality pass gave a
//! score; so is quality per joule (score per joule of the encode), measured and estimated
//! apart.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::job::Job;
use crate::state::JobState;
use crate::store::{JobQuery, JobStore, StoreError};

/// The median score of one quality metric in a group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QualityFigures {
    /// Median score (PSNR in dB, SSIM 0–1, VMAF 0–100).
    pub median: f64,
    /// Jobs with a score of this metric.
    pub samples: u64,
    /// Median quality per joule ([`QualityReport::per_joule`](crate::quality::QualityReport::per_joule):
    /// the score per joule of the encode) over the jobs with a score and measured energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_joule: Option<f64>,
    /// The same over jobs whose encode energy was estimated from a power model, apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_per_joule: Option<f64>,
}

/// One (node, encoder, scenario) group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyRow {
    /// The node that ran the jobs.
    pub node_id: String,
    /// The engine and encoder, e.g. `ffmpeg/libx264` (`unknown` when the result names none).
    pub encoder: String,
    /// The scenario the jobs asked for.
    pub scenario: String,
    /// Completed jobs in the group.
    pub samples: u64,
    /// Median of the jobs' mean frames per second; `None` when no job reported any.
    pub median_fps: Option<f64>,
    /// Median measured joules per frame; `None` without a measurement.
    pub joules_per_frame: Option<f64>,
    /// Jobs with measured (not estimated, not partial) joules per frame.
    pub energy_samples: u64,
    /// Median joules per frame estimated from a power model, apart from measured energy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_joules_per_frame: Option<f64>,
    /// Jobs with estimated joules per frame.
    #[serde(default)]
    pub estimated_samples: u64,
    /// Per metric (`psnr`, `ssim`, `vmaf`): the median score.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quality: BTreeMap<String, QualityFigures>,
}

/// The efficiency table over a window of job history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EfficiencyTable {
    /// Start of the window, ms since the Unix epoch.
    pub since_ms: u64,
    /// End of the window, ms since the Unix epoch.
    pub until_ms: u64,
    /// One row per (node, encoder, scenario), sorted by node, encoder, scenario.
    pub rows: Vec<EfficiencyRow>,
}

/// The raw figures of one group before the medians.
#[derive(Default)]
struct Group {
    samples: u64,
    fps: Vec<f64>,
    measured: Vec<f64>,
    estimated: Vec<f64>,
    quality: BTreeMap<String, Scores>,
}

/// The scores of one metric in a group, and their quality per joule by kind of energy.
#[derive(Default)]
struct Scores {
    scores: Vec<f64>,
    per_joule: Vec<f64>,
    estimated_per_joule: Vec<f64>,
}

/// The median of `values` (the mean of the two middle ones for an even count); `None` when
/// empty.
///
/// ```
/// assert_eq!(ffrtmp_core::efficiency::median(vec![3.0, 1.0, 2.0]), Some(2.0));
/// assert_eq!(ffrtmp_core::efficiency::median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
/// assert_eq!(ffrtmp_core::efficiency::median(vec![]), None);
/// ```
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn usable(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x > 0.0)
}

/// The table over the completed `jobs` that last changed within `since_ms..=until_ms`
/// (others ignored).
pub fn efficiency_table<'a>(jobs: impl IntoIterator<Item = &'a Job>, since_ms: u64, until_ms: u64) -> EfficiencyTable {
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    for job in jobs {
        if job.state != JobState::Completed || !(since_ms..=until_ms).contains(&job.updated_at_ms) {
            continue;
        }
        let (Some(result), Some(node)) = (&job.result, &job.node_id) else {
            continue;
        };
        let encoder = if result.encoder.is_empty() {
            "unknown".to_string()
        } else {
            result.encoder.clone()
        };
        let group = groups
            .entry((node.to_string(), encoder, job.spec.scenario.clone()))
            .or_default();
        group.samples += 1;
        group.fps.extend(usable(Some(result.avg_fps)));
        let energy = &result.energy;
        if let Some(jpf) = usable(energy.joules_per_frame).filter(|_| !energy.partial) {
            if energy.estimated {
                group.estimated.push(jpf);
            } else {
                group.measured.push(jpf);
            }
        }
        if let Some(q) = &result.quality {
            if let Some(score) = q.score.filter(|s| s.is_finite()) {
                let scores = group.quality.entry(q.metric.as_str().to_string()).or_default();
                scores.scores.push(score);
                let joules = usable(energy.energy_joules).filter(|_| !energy.partial);
                if let Some(per_joule) = q.per_joule(joules) {
                    if energy.estimated {
                        scores.estimated_per_joule.push(per_joule);
                    } else {
                        scores.per_joule.push(per_joule);
                    }
                }
            }
        }
    }
    let rows = groups
        .into_iter()
        .map(|((node_id, encoder, scenario), g)| EfficiencyRow {
            node_id,
            encoder,
            scenario,
            samples: g.samples,
            median_fps: median(g.fps),
            energy_samples: g.measured.len() as u64,
            joules_per_frame: median(g.measured),
            estimated_samples: g.estimated.len() as u64,
            estimated_joules_per_frame: median(g.estimated),
            quality: g
                .quality
                .into_iter()
                .filter_map(|(metric, s)| {
                    let samples = s.scores.len() as u64;
                    let figures = |m| QualityFigures {
                        median: m,
                        samples,
                        per_joule: median(s.per_joule),
                        estimated_per_joule: median(s.estimated_per_joule),
                    };
                    median(s.scores).map(|m| (metric, figures(m)))
                })
                .collect(),
        })
        .collect();
    EfficiencyTable {
        since_ms,
        until_ms,
        rows,
    }
}

/// Most jobs [`collect`] reads (pages of [`JobQuery::MAX_LIMIT`]).
pub const MAX_JOBS_READ: usize = 200_000;

/// Reads the store's completed jobs, newest first, and builds the table over those that
/// changed within `window` before `now_ms`. Stops at [`MAX_JOBS_READ`] jobs.
pub async fn collect(store: &dyn JobStore, window: Duration, now_ms: u64) -> Result<EfficiencyTable, StoreError> {
    let since_ms = now_ms.saturating_sub(window.as_millis().min(u128::from(u64::MAX)) as u64);
    let mut jobs = Vec::new();
    let mut query = JobQuery {
        state: Some(JobState::Completed),
        limit: Some(JobQuery::MAX_LIMIT),
        ..Default::default()
    };
    loop {
        let page = store.list(&query).await?;
        // Newest submissions first: once a whole page was last changed before the window,
        // so were (almost surely) the older ones.
        let any_inside = page.jobs.iter().any(|j| j.updated_at_ms >= since_ms);
        jobs.extend(page.jobs.into_iter().filter(|j| j.updated_at_ms >= since_ms));
        match page.next_cursor {
            Some(c) if any_inside && jobs.len() < MAX_JOBS_READ => query.before_seq = Some(c),
            _ => break,
        }
    }
    Ok(efficiency_table(&jobs, since_ms, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{EnergyReport, JobResult};
    use crate::quality::{QualityMetric, QualityReport};
    use crate::{JobId, JobSpec, NodeId};

    struct Done<'a> {
        node: NodeId,
        scenario: &'a str,
        encoder: &'a str,
        fps: f64,
        jpf: Option<f64>,
        estimated: bool,
        psnr: Option<f64>,
    }

    fn done(d: Done<'_>) -> Job {
        let spec: JobSpec = serde_json::from_str(&format!(r#"{{"scenario":"{}"}}"#, d.scenario)).unwrap();
        Job {
            state: JobState::Completed,
            node_id: Some(d.node),
            updated_at_ms: 1_000,
            result: Some(JobResult {
                avg_fps: d.fps,
                encoder: d.encoder.into(),
                energy: EnergyReport {
                    joules_per_frame: d.jpf,
                    estimated: d.estimated,
                    ..Default::default()
                },
                quality: d.psnr.map(|s| {
                    Box::new(QualityReport {
                        score: Some(s),
                        ..QualityReport::unavailable(QualityMetric::Psnr, "")
                    })
                }),
                ..Default::default()
            }),
            ..Job::submitted(JobId::new(), 1, spec.try_into().unwrap(), 0)
        }
    }

    #[test]
    fn medians_per_node_encoder_and_scenario() {
        let (a, b) = (NodeId::new(), NodeId::new());
        let base = |node, fps, jpf| Done {
            node,
            scenario: "720p-h264",
            encoder: "ffmpeg/libx264",
            fps,
            jpf,
            estimated: false,
            psnr: None,
        };
        let mut jobs = vec![
            done(Done {
                psnr: Some(40.0),
                ..base(a, 100.0, Some(0.5))
            }),
            done(Done {
                psnr: Some(42.0),
                ..base(a, 300.0, Some(1.5))
            }),
            done(base(a, 200.0, Some(1.0))),
            // No energy: counted for fps only.
            done(base(a, 400.0, None)),
            // Estimated energy: its own column.
            done(Done {
                estimated: true,
                ..base(b, 50.0, Some(9.0))
            }),
            done(Done {
                scenario: "1080p-h264",
                ..base(a, 60.0, Some(3.0))
            }),
            done(Done {
                encoder: "ffmpeg/libx265",
                ..base(a, 30.0, Some(4.0))
            }),
        ];
        let mut running = done(base(a, 1.0, Some(100.0)));
        running.state = JobState::Running;
        let mut old = done(base(a, 1.0, Some(100.0)));
        old.updated_at_ms = 10;
        jobs.extend([running, old]);

        let t = efficiency_table(&jobs, 500, 2_000);
        assert_eq!(t.rows.len(), 4, "{:#?}", t.rows);
        let row = |node: NodeId, enc: &str, sc: &str| {
            t.rows
                .iter()
                .find(|r| r.node_id == node.to_string() && r.encoder == enc && r.scenario == sc)
                .unwrap_or_else(|| panic!("no row {node} {enc} {sc}"))
        };
        let x264 = row(a, "ffmpeg/libx264", "720p-h264");
        assert_eq!(x264.samples, 4);
        assert_eq!(x264.median_fps, Some(250.0));
        assert_eq!((x264.joules_per_frame, x264.energy_samples), (Some(1.0), 3));
        assert_eq!((x264.estimated_joules_per_frame, x264.estimated_samples), (None, 0));
        assert_eq!(
            x264.quality["psnr"],
            QualityFigures {
                median: 41.0,
                samples: 2,
                per_joule: None,
                estimated_per_joule: None,
            }
        );
        let est = row(b, "ffmpeg/libx264", "720p-h264");
        assert_eq!((est.joules_per_frame, est.energy_samples), (None, 0));
        assert_eq!((est.estimated_joules_per_frame, est.estimated_samples), (Some(9.0), 1));
        assert_eq!(row(a, "ffmpeg/libx264", "1080p-h264").joules_per_frame, Some(3.0));
        assert_eq!(row(a, "ffmpeg/libx265", "720p-h264").median_fps, Some(30.0));
        assert!(efficiency_table(&[], 0, 1).rows.is_empty());
    }

    #[test]
    fn partial_energy_is_left_out_of_the_median() {
        let mut job = done(Done {
            node: NodeId::new(),
            scenario: "720p-h264",
            encoder: "ffmpeg/libx264",
            fps: 10.0,
            jpf: Some(0.1),
            estimated: false,
            psnr: None,
        });
        job.result.as_mut().unwrap().energy.partial = true;
        let t = efficiency_table([&job], 0, 2_000);
        assert_eq!((t.rows[0].samples, t.rows[0].energy_samples), (1, 0));
        assert_eq!(t.rows[0].joules_per_frame, None);
    }

    /// Quality per joule is the score over the encode's joules, its median per metric, with
    /// estimated energy apart and partial energy left out.
    #[test]
    fn quality_per_joule_is_the_median_score_per_joule_of_the_encode() {
        let node = NodeId::new();
        let job = |psnr: f64, joules: f64, estimated: bool, partial: bool| {
            let mut j = done(Done {
                node,
                scenario: "720p-h264",
                encoder: "ffmpeg/libx264",
                fps: 10.0,
                jpf: Some(0.1),
                estimated,
                psnr: Some(psnr),
            });
            let energy = &mut j.result.as_mut().unwrap().energy;
            energy.energy_joules = Some(joules);
            energy.partial = partial;
            j
        };
        let jobs = [
            job(40.0, 10.0, false, false), // 4 dB/J
            job(42.0, 21.0, false, false), // 2 dB/J
            job(45.0, 5.0, false, false),  // 9 dB/J
            job(40.0, 4.0, true, false),   // 10 dB/J, estimated
            job(40.0, 1.0, false, true),   // partial: left out
        ];
        let t = efficiency_table(&jobs, 0, 2_000);
        let q = &t.rows[0].quality["psnr"];
        assert_eq!((q.samples, q.median), (5, 40.0));
        assert_eq!(q.per_joule, Some(4.0));
        assert_eq!(q.estimated_per_joule, Some(10.0));
    }
}
