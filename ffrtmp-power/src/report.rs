//! [`DetailedEnergy`]: a job's [`EnergyReport`] plus the figures core's report has no room for.

use ffrtmp_core::{EnergyReport, PowerError};
use serde::{Deserialize, Serialize};

use crate::gpu::GpuJobEnergy;
use crate::meter::unavailable_report;
use crate::sampler::{JobEnergy, ATTRIBUTION_METHOD};

/// Attribution of an [`EnergyMeter`](crate::EnergyMeter) report: the whole node's energy over the
/// job's interval, whatever else ran.
pub const WHOLE_NODE: &str = "whole-node";

/// A job's energy: core's [`EnergyReport`] (flattened into the same JSON object) and the details.
///
/// Figures are left out (`None`) when they cannot be known, never reported as zero: an
/// unavailable job has only `source: "unavailable"` and `unavailable_reason`.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_power::{detailed_report, JobEnergy};
///
/// let job = JobEnergy {
///     key: "job-1".into(),
///     source: "rapl".into(),
///     joules_cpu: 90.0,
///     joules_dram: 10.0,
///     joules_total: 100.0,
///     cpu_time: Duration::from_secs(7),
///     samples: 40,
///     wall: Duration::from_secs(4),
///     read_errors: 0,
///     partial: false,
///     unavailable: None,
/// };
/// // 500 frames of 1280×720 in 4 s.
/// let d = detailed_report(&job, 500, 4.0, 500 * 1280 * 720);
/// assert_eq!(d.report.energy_joules, Some(100.0));
/// assert_eq!(d.report.avg_watts, Some(25.0));
/// assert_eq!(d.report.joules_per_frame, Some(0.2));
/// assert_eq!(d.frames_per_joule, Some(5.0));
/// assert_eq!(d.pixels_per_joule, Some(4_608_000.0));
/// assert_eq!(d.attribution, "cgroup-cpu-share");
/// let json = serde_json::to_value(&d).unwrap();
/// assert_eq!(json["energy_joules"], 100.0); // core's fields sit at the top level
/// assert_eq!(json["dram_joules"], 10.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailedEnergy {
    /// Core's report: source, energy_joules, avg_watts, joules_per_frame, unavailable_reason.
    #[serde(flatten)]
    pub report: EnergyReport,
    /// How the energy was attributed to the job: [`ATTRIBUTION_METHOD`] (`cgroup-cpu-share`),
    /// that plus the GPU method (`cgroup-cpu-share+nvml-process-utilization`, see
    /// [`detailed_report_with_gpu`]), or [`WHOLE_NODE`].
    pub attribution: String,
    /// Joules of the `package-*` zones (CPU package).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_joules: Option<f64>,
    /// Joules of the `dram-*` zones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram_joules: Option<f64>,
    /// Frames encoded per joule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_per_joule: Option<f64>,
    /// Pixels encoded per joule (frames × width × height / joules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels_per_joule: Option<f64>,
    /// The job's CPU seconds counted by the attribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Wall seconds used for `avg_watts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// Sampling intervals the job took part in.
    #[serde(default)]
    pub intervals: u64,
    /// Failed readings while the job ran.
    #[serde(default)]
    pub read_errors: u64,
    /// Part of the job's time could not be measured.
    #[serde(default)]
    pub partial: bool,
}

impl DetailedEnergy {
    /// Core's report with the attribution, zone split and per-frame/per-pixel figures filled
    /// in, as stored in a job's result.
    pub fn into_report(self) -> EnergyReport {
        EnergyReport {
            attribution: Some(self.attribution),
            cpu_joules: self.cpu_joules,
            dram_joules: self.dram_joules,
            frames_per_joule: self.frames_per_joule,
            pixels_per_joule: self.pixels_per_joule,
            ..self.report
        }
    }

    /// Details of a whole-node report from an [`EnergyMeter`](crate::EnergyMeter), adding the per
    /// frame and per pixel figures.
    pub fn whole_node(report: EnergyReport, frames: u64, wall_s: f64, pixels: u64) -> Self {
        let joules = report.energy_joules;
        DetailedEnergy {
            report,
            attribution: WHOLE_NODE.to_string(),
            frames_per_joule: per_joule(frames, joules),
            pixels_per_joule: per_joule(pixels, joules),
            wall_s: positive(wall_s),
            ..DetailedEnergy::default()
        }
    }
}

impl JobEnergy {
    /// The job's report: [`detailed_report`]`(self, frames, wall_s, pixels)`.
    pub fn report(&self, frames: u64, wall_s: f64, pixels: u64) -> DetailedEnergy {
        detailed_report(self, frames, wall_s, pixels)
    }

    /// The job's report with its GPU energy: [`detailed_report_with_gpu`].
    pub fn report_with_gpu(&self, gpu: Option<&GpuJobEnergy>, frames: u64, wall_s: f64, pixels: u64) -> DetailedEnergy {
        detailed_report_with_gpu(self, gpu, frames, wall_s, pixels)
    }
}

/// Turns a job's attributed energy into its report.
///
/// `frames` and `pixels` (frames × width × height) are what the job encoded, `wall_s` its wall
/// time (when not positive, the time between `job_started` and `job_finished` is used). Ratios
/// whose numerator or denominator is zero are left out. An unavailable job gives
/// [`unavailable_report`] with the typed reason's text.
pub fn detailed_report(job: &JobEnergy, frames: u64, wall_s: f64, pixels: u64) -> DetailedEnergy {
    let wall_s = positive(wall_s).or_else(|| positive(job.wall.as_secs_f64()));
    if let Some(err) = &job.unavailable {
        return DetailedEnergy {
            report: unavailable_report(err),
            attribution: ATTRIBUTION_METHOD.to_string(),
            wall_s,
            intervals: job.samples,
            read_errors: job.read_errors,
            partial: job.partial,
            ..DetailedEnergy::default()
        };
    }
    let joules = job.joules_total;
    DetailedEnergy {
        report: EnergyReport {
            source: job.source.clone(),
            energy_joules: Some(joules),
            avg_watts: wall_s.map(|w| joules / w),
            joules_per_frame: (frames > 0).then(|| joules / frames as f64),
            unavailable_reason: None,
            ..Default::default()
        },
        attribution: ATTRIBUTION_METHOD.to_string(),
        cpu_joules: Some(job.joules_cpu),
        dram_joules: Some(job.joules_dram),
        frames_per_joule: per_joule(frames, Some(joules)),
        pixels_per_joule: per_joule(pixels, Some(joules)),
        cpu_seconds: Some(job.cpu_time.as_secs_f64()),
        wall_s,
        intervals: job.samples,
        read_errors: job.read_errors,
        partial: job.partial,
    }
}

/// [`detailed_report`] plus the job's GPU energy, when `gpu` was measured.
///
/// The GPU joules go to `gpu_joules` and into the total (`energy_joules` and every figure derived
/// from it); the source becomes e.g. `rapl+nvml` and the attribution
/// `cgroup-cpu-share+nvml-process-utilization` (or the GPU's power × time fallback method). When
/// the CPU side is unavailable the total stays unknown: the report keeps the CPU's reason and
/// carries `gpu_joules` alone. An unavailable `gpu` adds only its reason
/// (`gpu_unavailable_reason`), an absent one nothing: GPU energy is never reported as 0 J when it
/// was not measured. A [`partial`](GpuJobEnergy::partial) `gpu` carries its joules and, in
/// `gpu_unavailable_reason`, why the rest is missing (`GPU energy covers part of the job: …`).
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_power::{detailed_report_with_gpu, GpuJobEnergy, JobEnergy};
///
/// let cpu = JobEnergy {
///     key: "job-1".into(), source: "rapl".into(), joules_cpu: 30.0, joules_dram: 10.0,
///     joules_total: 40.0, cpu_time: Duration::from_secs(3), samples: 20, wall: Duration::from_secs(2),
///     read_errors: 0, partial: false, unavailable: None,
/// };
/// let gpu = GpuJobEnergy {
///     key: "job-1".into(), source: "nvml".into(), joules_gpu: 60.0, intervals: 20,
///     wall: Duration::from_secs(2), power_fallback: false, partial: false, partial_reason: None,
///     read_errors: 0, unavailable: None,
/// };
/// let d = detailed_report_with_gpu(&cpu, Some(&gpu), 100, 2.0, 0);
/// assert_eq!(d.report.energy_joules, Some(100.0));
/// assert_eq!(d.report.gpu_joules, Some(60.0));
/// assert_eq!(d.report.avg_watts, Some(50.0));
/// assert_eq!(d.report.source, "rapl+nvml");
/// assert_eq!(d.attribution, "cgroup-cpu-share+nvml-process-utilization");
/// ```
pub fn detailed_report_with_gpu(
    job: &JobEnergy,
    gpu: Option<&GpuJobEnergy>,
    frames: u64,
    wall_s: f64,
    pixels: u64,
) -> DetailedEnergy {
    let mut d = detailed_report(job, frames, wall_s, pixels);
    let Some(gpu) = gpu else {
        return d;
    };
    d.report.gpu_unavailable_reason = gpu_reason(gpu);
    let Some(joules) = gpu.joules() else {
        return d;
    };
    d.report.gpu_joules = Some(joules);
    d.partial |= gpu.partial;
    d.read_errors += gpu.read_errors;
    if job.unavailable.is_some() {
        // Without the CPU side the total is unknown; the CPU's reason stays.
        d.report.unavailable_reason = d
            .report
            .unavailable_reason
            .map(|r| format!("CPU energy unavailable: {r}"));
        d.report.source = gpu.source.clone();
        d.attribution = gpu.method().to_string();
        return d;
    }
    let total = job.joules_total + joules;
    d.report.source = format!("{}+{}", job.source, gpu.source);
    d.attribution = format!("{ATTRIBUTION_METHOD}+{}", gpu.method());
    d.report.energy_joules = Some(total);
    d.report.avg_watts = d.wall_s.map(|w| total / w);
    d.report.joules_per_frame = (frames > 0).then(|| total / frames as f64);
    d.frames_per_joule = per_joule(frames, Some(total));
    d.pixels_per_joule = per_joule(pixels, Some(total));
    d
}

/// Why a job's GPU energy is missing or incomplete, for `gpu_unavailable_reason`.
fn gpu_reason(gpu: &GpuJobEnergy) -> Option<String> {
    if let Some(err) = &gpu.unavailable {
        return Some(reason_text(err));
    }
    gpu.partial.then(|| match &gpu.partial_reason {
        Some(err) => format!("GPU energy covers part of the job: {}", reason_text(err)),
        None => "GPU energy covers part of the job".to_string(),
    })
}

/// The reason as [`unavailable_report`] words it: an unavailable source's own reason, or the
/// whole read error.
fn reason_text(err: &PowerError) -> String {
    match err {
        PowerError::Unavailable(reason) => reason.clone(),
        PowerError::Read(_) => err.to_string(),
    }
}

fn positive(x: f64) -> Option<f64> {
    (x.is_finite() && x > 0.0).then_some(x)
}

fn per_joule(count: u64, joules: Option<f64>) -> Option<f64> {
    let joules = joules.and_then(positive)?;
    (count > 0).then(|| count as f64 / joules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::PowerError;
    use std::time::Duration;

    fn job() -> JobEnergy {
        JobEnergy {
            key: "k".into(),
            source: "rapl".into(),
            joules_cpu: 8.0,
            joules_dram: 2.0,
            joules_total: 10.0,
            cpu_time: Duration::from_millis(1500),
            samples: 3,
            wall: Duration::from_secs(2),
            read_errors: 1,
            partial: false,
            unavailable: None,
        }
    }

    #[test]
    fn wall_falls_back_to_the_sampler_wall() {
        let d = detailed_report(&job(), 0, 0.0, 0);
        assert_eq!((d.wall_s, d.report.avg_watts), (Some(2.0), Some(5.0)));
        assert_eq!(
            (d.report.joules_per_frame, d.frames_per_joule, d.pixels_per_joule),
            (None, None, None)
        );
        assert_eq!((d.cpu_seconds, d.read_errors), (Some(1.5), 1));
    }

    #[test]
    fn unavailable_job_has_no_figures_and_keeps_the_reason() {
        let mut j = job();
        j.unavailable = Some(PowerError::Unavailable(
            "needs root or read access to /x/energy_uj".into(),
        ));
        j.source = "unavailable".into();
        let d = j.report(100, 1.0, 1000);
        assert_eq!(d.report.source, "unavailable");
        assert_eq!(
            d.report.unavailable_reason.as_deref(),
            Some("needs root or read access to /x/energy_uj")
        );
        assert_eq!(
            (d.report.energy_joules, d.report.avg_watts, d.cpu_joules),
            (None, None, None)
        );
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("energy_joules"), "{json}");
        let back: DetailedEnergy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    fn gpu(joules: f64) -> GpuJobEnergy {
        GpuJobEnergy {
            key: "k".into(),
            source: "nvml".into(),
            joules_gpu: joules,
            intervals: 3,
            wall: Duration::from_secs(2),
            power_fallback: false,
            partial: false,
            partial_reason: None,
            read_errors: 0,
            unavailable: None,
        }
    }

    #[test]
    fn gpu_joules_join_the_total_only_when_measured() {
        let with = detailed_report_with_gpu(&job(), Some(&gpu(30.0)), 10, 2.0, 0);
        assert_eq!(
            (with.report.energy_joules, with.report.gpu_joules, with.report.avg_watts),
            (Some(40.0), Some(30.0), Some(20.0))
        );
        assert_eq!(
            (with.report.joules_per_frame, with.frames_per_joule),
            (Some(4.0), Some(0.25))
        );
        assert_eq!(with.report.gpu_unavailable_reason, None);
        let fallback = GpuJobEnergy {
            power_fallback: true,
            partial: true,
            partial_reason: Some(PowerError::Read("GPU 0 has fallen off the bus".into())),
            ..gpu(30.0)
        };
        let d = detailed_report_with_gpu(&job(), Some(&fallback), 10, 2.0, 0);
        assert_eq!(d.attribution, "cgroup-cpu-share+nvml-process-utilization(power-x-time)");
        assert!(d.partial);
        assert_eq!(
            d.report.gpu_unavailable_reason.as_deref(),
            Some("GPU energy covers part of the job: energy read failed: GPU 0 has fallen off the bus")
        );
        // Unmeasured GPU energy adds only its reason: no 0 J pretending to be a reading.
        let unavailable = GpuJobEnergy {
            unavailable: Some(PowerError::Unavailable("no NVIDIA GPU found".into())),
            ..gpu(0.0)
        };
        let d = detailed_report_with_gpu(&job(), Some(&unavailable), 10, 2.0, 0);
        let mut expected = detailed_report(&job(), 10, 2.0, 0);
        expected.report.gpu_unavailable_reason = Some("no NVIDIA GPU found".into());
        assert_eq!(d, expected);
        assert_eq!(
            detailed_report_with_gpu(&job(), None, 10, 2.0, 0),
            detailed_report(&job(), 10, 2.0, 0)
        );
    }

    #[test]
    fn whole_node_details() {
        let report = EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(4.0),
            ..EnergyReport::default()
        };
        let d = DetailedEnergy::whole_node(report, 8, 2.0, 80);
        assert_eq!((d.frames_per_joule, d.pixels_per_joule), (Some(2.0), Some(20.0)));
        assert_eq!(d.attribution, "whole-node");
    }
}
