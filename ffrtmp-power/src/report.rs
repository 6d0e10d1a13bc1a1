//! A job's [`EnergyReport`] from what the samplers attributed to it: core's report is the one
//! report type from the sampler to the stored job, with the split, per-frame and per-pixel
//! figures and whether (and why) the figures cover only part of the job.

use ffrtmp_core::{EnergyReport, PowerError};

use crate::gpu::GpuJobEnergy;
use crate::meter::unavailable_report;
use crate::model::model_name;
use crate::sampler::{JobEnergy, ATTRIBUTION_METHOD};

/// Attribution of an [`EnergyMeter`](crate::EnergyMeter) report: the whole node's energy over the
/// job's interval, whatever else ran.
pub const WHOLE_NODE: &str = "whole-node";

impl JobEnergy {
    /// The job's report: [`detailed_report`]`(self, frames, wall_s, pixels)`.
    pub fn report(&self, frames: u64, wall_s: f64, pixels: u64) -> EnergyReport {
        detailed_report(self, frames, wall_s, pixels)
    }

    /// The job's report with its GPU energy: [`detailed_report_with_gpu`].
    pub fn report_with_gpu(&self, gpu: Option<&GpuJobEnergy>, frames: u64, wall_s: f64, pixels: u64) -> EnergyReport {
        detailed_report_with_gpu(self, gpu, frames, wall_s, pixels)
    }
}

/// Turns a job's attributed energy into its report.
///
/// `frames` and `pixels` (frames × width × height) are what the job encoded, `wall_s` its wall
/// time (when not positive, the time between `job_started` and `job_finished` is used). Ratios
/// whose numerator or denominator is zero are left out, never reported as zero. An unavailable
/// job gives [`unavailable_report`] with the typed reason's text; a partial one carries its
/// figures, `partial: true` and the reason.
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
///     partial_reason: None,
///     unavailable: None,
/// };
/// // 500 frames of 1280×720 in 4 s.
/// let r = detailed_report(&job, 500, 4.0, 500 * 1280 * 720);
/// assert_eq!(r.energy_joules, Some(100.0));
/// assert_eq!(r.avg_watts, Some(25.0));
/// assert_eq!(r.joules_per_frame, Some(0.2));
/// assert_eq!(r.frames_per_joule, Some(5.0));
/// assert_eq!(r.pixels_per_joule, Some(4_608_000.0));
/// assert_eq!(r.attribution.as_deref(), Some("cgroup-cpu-share"));
/// assert!(!r.partial);
/// let json = serde_json::to_value(&r).unwrap();
/// assert_eq!(json["energy_joules"], 100.0);
/// assert_eq!(json["dram_joules"], 10.0);
/// ```
pub fn detailed_report(job: &JobEnergy, frames: u64, wall_s: f64, pixels: u64) -> EnergyReport {
    let wall_s = positive(wall_s).or_else(|| positive(job.wall.as_secs_f64()));
    let partial_reason = job.partial.then(|| {
        job.partial_reason
            .clone()
            .unwrap_or_else(|| "part of the job's time was not measured".to_string())
    });
    if let Some(err) = &job.unavailable {
        return EnergyReport {
            attribution: Some(ATTRIBUTION_METHOD.to_string()),
            wall_s,
            intervals: job.samples,
            read_errors: job.read_errors,
            partial: job.partial,
            partial_reason,
            ..unavailable_report(err)
        };
    }
    let joules = job.joules_total;
    EnergyReport {
        source: job.source.clone(),
        energy_joules: Some(joules),
        avg_watts: wall_s.map(|w| joules / w),
        joules_per_frame: (frames > 0).then(|| joules / frames as f64),
        unavailable_reason: None,
        attribution: Some(ATTRIBUTION_METHOD.to_string()),
        cpu_joules: Some(job.joules_cpu),
        dram_joules: Some(job.joules_dram),
        frames_per_joule: per_joule(frames, Some(joules)),
        pixels_per_joule: per_joule(pixels, Some(joules)),
        cpu_seconds: Some(job.cpu_time.as_secs_f64()),
        wall_s,
        intervals: job.samples,
        read_errors: job.read_errors,
        partial: job.partial,
        partial_reason,
        estimated: model_name(&job.source).is_some(),
        model: model_name(&job.source).map(String::from),
        ..Default::default()
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
/// `gpu_unavailable_reason`, why the rest is missing (`GPU energy covers part of the job: …`),
/// and makes the whole report partial.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_power::{detailed_report_with_gpu, GpuJobEnergy, JobEnergy};
///
/// let cpu = JobEnergy {
///     key: "job-1".into(), source: "rapl".into(), joules_cpu: 30.0, joules_dram: 10.0,
///     joules_total: 40.0, cpu_time: Duration::from_secs(3), samples: 20, wall: Duration::from_secs(2),
///     read_errors: 0, partial: false, partial_reason: None, unavailable: None,
/// };
/// let gpu = GpuJobEnergy {
///     key: "job-1".into(), source: "nvml".into(), joules_gpu: 60.0, intervals: 20,
///     wall: Duration::from_secs(2), power_fallback: false, partial: false, partial_reason: None,
///     read_errors: 0, unavailable: None,
/// };
/// let d = detailed_report_with_gpu(&cpu, Some(&gpu), 100, 2.0, 0);
/// assert_eq!(d.energy_joules, Some(100.0));
/// assert_eq!(d.gpu_joules, Some(60.0));
/// assert_eq!(d.avg_watts, Some(50.0));
/// assert_eq!(d.source, "rapl+nvml");
/// assert_eq!(d.attribution.as_deref(), Some("cgroup-cpu-share+nvml-process-utilization"));
/// ```
pub fn detailed_report_with_gpu(
    job: &JobEnergy,
    gpu: Option<&GpuJobEnergy>,
    frames: u64,
    wall_s: f64,
    pixels: u64,
) -> EnergyReport {
    let mut d = detailed_report(job, frames, wall_s, pixels);
    let Some(gpu) = gpu else {
        return d;
    };
    d.gpu_unavailable_reason = gpu_reason(gpu);
    let Some(joules) = gpu.joules() else {
        return d;
    };
    d.gpu_joules = Some(joules);
    if gpu.partial {
        d.partial = true;
        if d.partial_reason.is_none() {
            d.partial_reason = d.gpu_unavailable_reason.clone();
        }
    }
    d.read_errors += gpu.read_errors;
    if job.unavailable.is_some() {
        // Without the CPU side the total is unknown; the CPU's reason stays.
        d.unavailable_reason = d.unavailable_reason.map(|r| format!("CPU energy unavailable: {r}"));
        d.source = gpu.source.clone();
        d.attribution = Some(gpu.method().to_string());
        return d;
    }
    let total = job.joules_total + joules;
    d.source = format!("{}+{}", job.source, gpu.source);
    d.attribution = Some(format!("{ATTRIBUTION_METHOD}+{}", gpu.method()));
    d.energy_joules = Some(total);
    d.avg_watts = d.wall_s.map(|w| total / w);
    d.joules_per_frame = (frames > 0).then(|| total / frames as f64);
    d.frames_per_joule = per_joule(frames, Some(total));
    d.pixels_per_joule = per_joule(pixels, Some(total));
    d
}

/// A whole-node report from an [`EnergyMeter`](crate::EnergyMeter) with its attribution
/// ([`WHOLE_NODE`]), wall time and per-frame and per-pixel figures filled in.
pub fn whole_node_report(report: EnergyReport, frames: u64, wall_s: f64, pixels: u64) -> EnergyReport {
    let joules = report.energy_joules;
    EnergyReport {
        attribution: Some(WHOLE_NODE.to_string()),
        frames_per_joule: per_joule(frames, joules),
        pixels_per_joule: per_joule(pixels, joules),
        wall_s: positive(wall_s),
        ..report
    }
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
            partial_reason: None,
            unavailable: None,
        }
    }

    #[test]
    fn wall_falls_back_to_the_sampler_wall() {
        let d = detailed_report(&job(), 0, 0.0, 0);
        assert_eq!((d.wall_s, d.avg_watts), (Some(2.0), Some(5.0)));
        assert_eq!(
            (d.joules_per_frame, d.frames_per_joule, d.pixels_per_joule),
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
        assert_eq!(d.source, "unavailable");
        assert_eq!(
            d.unavailable_reason.as_deref(),
            Some("needs root or read access to /x/energy_uj")
        );
        assert_eq!((d.energy_joules, d.avg_watts, d.cpu_joules), (None, None, None));
        let json = serde_json::to_string(&d).unwrap();
        assert!(!json.contains("energy_joules"), "{json}");
        let back: EnergyReport = serde_json::from_str(&json).unwrap();
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
            (with.energy_joules, with.gpu_joules, with.avg_watts),
            (Some(40.0), Some(30.0), Some(20.0))
        );
        assert_eq!((with.joules_per_frame, with.frames_per_joule), (Some(4.0), Some(0.25)));
        assert_eq!(with.gpu_unavailable_reason, None);
        let fallback = GpuJobEnergy {
            power_fallback: true,
            partial: true,
            partial_reason: Some(PowerError::Read("GPU 0 has fallen off the bus".into())),
            ..gpu(30.0)
        };
        let d = detailed_report_with_gpu(&job(), Some(&fallback), 10, 2.0, 0);
        assert_eq!(
            d.attribution.as_deref(),
            Some("cgroup-cpu-share+nvml-process-utilization(power-x-time)")
        );
        assert!(d.partial);
        assert_eq!(
            d.gpu_unavailable_reason.as_deref(),
            Some("GPU energy covers part of the job: energy read failed: GPU 0 has fallen off the bus")
        );
        // Unmeasured GPU energy adds only its reason: no 0 J pretending to be a reading.
        let unavailable = GpuJobEnergy {
            unavailable: Some(PowerError::Unavailable("no NVIDIA GPU found".into())),
            ..gpu(0.0)
        };
        let d = detailed_report_with_gpu(&job(), Some(&unavailable), 10, 2.0, 0);
        let mut expected = detailed_report(&job(), 10, 2.0, 0);
        expected.gpu_unavailable_reason = Some("no NVIDIA GPU found".into());
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
        let d = whole_node_report(report, 8, 2.0, 80);
        assert_eq!((d.frames_per_joule, d.pixels_per_joule), (Some(2.0), Some(20.0)));
        assert_eq!(d.attribution.as_deref(), Some("whole-node"));
    }
}
