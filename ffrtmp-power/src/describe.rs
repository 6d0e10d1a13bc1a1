//! Energy reports as the lines a person reads (`ffrtmp jobs status`, job tables): one
//! wording for every front end that shows a job's energy.

use ffrtmp_core::{AttemptsEnergy, EnergyReport, Job};

/// `-` for a missing figure.
fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// `, estimated (model <name>)` when the report is a power model's estimate, else nothing.
///
/// ```
/// use ffrtmp_core::EnergyReport;
/// let e = EnergyReport { source: "model:xeon".into(), energy_joules: Some(12.0), estimated: true,
///     model: Some("xeon".into()), ..Default::default() };
/// assert_eq!(ffrtmp_power::describe::energy_lines(&e)[0],
///     "energy: 12.00 J (model:xeon, estimated (model xeon)), - W avg, - J/frame");
/// ```
pub fn estimated_note(e: &EnergyReport) -> String {
    if !e.estimated {
        return String::new();
    }
    format!(", estimated (model {})", e.model.as_deref().unwrap_or("unnamed"))
}

/// How `ffrtmp jobs status` shows the output's quality, when the job asked for it: the score,
/// the quality pass's own time and energy (not in the encode's), and the score per joule of
/// the encode where both exist; or why there is no score.
///
/// ```
/// use ffrtmp_core::quality::{QualityMetric, QualityReport};
/// use ffrtmp_core::{EnergyReport, JobResult};
/// let r = JobResult {
///     energy: EnergyReport { source: "rapl".into(), energy_joules: Some(20.0), ..Default::default() },
///     quality: Some(Box::new(QualityReport { score: Some(41.5), wall_s: Some(0.8),
///         ..QualityReport::unavailable(QualityMetric::Psnr, "") })),
///     ..Default::default()
/// };
/// assert_eq!(ffrtmp_power::describe::quality_line(&r).unwrap(),
///     "quality: psnr 41.500 dB (quality pass 0.80 s, not in the encode's energy), 2.0750 dB/J of the encode");
/// let mut with_pass = r.clone();
/// with_pass.quality.as_mut().unwrap().energy =
///     Some(EnergyReport { source: "rapl".into(), energy_joules: Some(1.5), ..Default::default() });
/// assert_eq!(ffrtmp_power::describe::quality_line(&with_pass).unwrap(),
///     "quality: psnr 41.500 dB (quality pass 0.80 s, 1.50 J (rapl), not in the encode's energy), 2.0750 dB/J of the encode");
/// let none = JobResult { quality: Some(Box::new(QualityReport::unavailable(QualityMetric::Vmaf, "no libvmaf"))),
///     ..Default::default() };
/// assert_eq!(ffrtmp_power::describe::quality_line(&none).unwrap(), "quality: vmaf unavailable (no libvmaf)");
/// ```
pub fn quality_line(r: &ffrtmp_core::JobResult) -> Option<String> {
    let q = r.quality.as_ref()?;
    let (name, unit) = (q.metric.as_str(), q.metric.unit());
    let Some(score) = q.score else {
        return Some(format!(
            "quality: {name} unavailable ({})",
            q.unavailable_reason.as_deref().unwrap_or("no reason given")
        ));
    };
    let pass_joules = q.energy.as_ref().and_then(|e| {
        e.energy_joules
            .map(|j| format!(", {j:.2} J ({}{})", e.source, estimated_note(e)))
    });
    let pass = q
        .wall_s
        .map(|w| {
            let joules = pass_joules.unwrap_or_default();
            format!(" (quality pass {w:.2} s{joules}, not in the encode's energy)")
        })
        .unwrap_or_default();
    let per_joule = q
        .per_joule(r.energy.energy_joules)
        .map(|v| format!(", {v:.4}{unit}/J of the encode{}", estimated_note(&r.energy)))
        .unwrap_or_default();
    Some(format!("quality: {name} {score:.3}{unit}{pass}{per_joule}"))
}

/// The joules the job used: the total over its attempts when they reported energy, else its
/// last attempt's.
pub fn job_joules(j: &Job) -> Option<f64> {
    j.attempts_energy
        .total_joules
        .or_else(|| job_energy(j).and_then(|e| e.energy_joules))
}

/// How `ffrtmp jobs status` lists the energy of every attempt, then their total; nothing
/// when no attempt reported energy.
///
/// ```
/// use ffrtmp_core::{AttemptEnergy, AttemptsEnergy, EnergyReport, JobState, NodeId};
/// let node: NodeId = "0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11".parse().unwrap();
/// let mut all = AttemptsEnergy::default();
/// let energy = EnergyReport { source: "rapl".into(), energy_joules: Some(3.5),
///     attribution: Some("cgroup-cpu-share".into()), ..Default::default() };
/// all.record(AttemptEnergy { attempt: 1, node_id: node, outcome: JobState::Canceled, energy });
/// assert_eq!(ffrtmp_power::describe::attempt_energy_lines(&all), [
///     "energy by attempt:",
///     "  attempt 1  canceled  3.50 J (rapl, cgroup-cpu-share)  node 0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11",
///     "  total 3.50 J",
/// ]);
/// ```
pub fn attempt_energy_lines(all: &AttemptsEnergy) -> Vec<String> {
    if all.is_empty() {
        return Vec::new();
    }
    let mut lines = vec!["energy by attempt:".to_string()];
    for a in &all.attempts {
        let e = &a.energy;
        let figure = match (e.energy_joules, &e.unavailable_reason) {
            (Some(j), _) => {
                let how = e.attribution.as_ref().map(|m| format!(", {m}")).unwrap_or_default();
                let partial = if e.partial { ", partial" } else { "" };
                format!("{j:.2} J ({}{how}{partial}{})", e.source, estimated_note(e))
            }
            (None, why) => format!("unavailable ({})", opt(why.as_deref())),
        };
        lines.push(format!(
            "  attempt {}  {}  {figure}  node {}",
            a.attempt, a.outcome, a.node_id
        ));
    }
    lines.push(format!(
        "  total {}",
        all.total_joules
            .map_or_else(|| "unavailable".to_string(), |j| format!("{j:.2} J"))
    ));
    lines
}

/// The energy of the job's last attempt: its result's, or for a failed or timed-out job the
/// energy its node reported with the failure.
pub fn job_energy(j: &Job) -> Option<&EnergyReport> {
    match (&j.result, &j.error) {
        (Some(r), _) => Some(&r.energy),
        (None, Some(e)) => e.energy.as_ref(),
        (None, None) => None,
    }
}

/// How `ffrtmp jobs get` shows a job's energy: the total (or why it is missing), then the split
/// between CPU package, DRAM and GPU with the attribution method, when known, then why GPU
/// energy is missing or incomplete, when the report says, and why the figures cover only part of
/// the job, when they do.
///
/// ```
/// use ffrtmp_core::EnergyReport;
/// let e = EnergyReport {
///     source: "rapl+nvml".into(), energy_joules: Some(100.0), avg_watts: Some(50.0),
///     cpu_joules: Some(30.0), dram_joules: Some(10.0), gpu_joules: Some(60.0),
///     attribution: Some("cgroup-cpu-share+nvml-process-utilization".into()),
///     ..Default::default()
/// };
/// assert_eq!(ffrtmp_power::describe::energy_lines(&e), [
///     "energy: 100.00 J (rapl+nvml), 50.0 W avg, - J/frame",
///     "energy split: cpu 30.00 J, dram 10.00 J, gpu 60.00 J (cgroup-cpu-share+nvml-process-utilization)",
/// ]);
/// ```
pub fn energy_lines(e: &EnergyReport) -> Vec<String> {
    let mut lines = vec![match (&e.energy_joules, &e.unavailable_reason) {
        (Some(j), _) => format!(
            "energy: {j:.2} J ({}{}), {} W avg, {} J/frame",
            e.source,
            estimated_note(e),
            opt(e.avg_watts.map(|w| format!("{w:.1}"))),
            opt(e.joules_per_frame.map(|w| format!("{w:.4}")))
        ),
        (None, reason) => format!("energy: unavailable ({})", opt(reason.as_deref())),
    }];
    let parts: Vec<String> = [("cpu", e.cpu_joules), ("dram", e.dram_joules), ("gpu", e.gpu_joules)]
        .into_iter()
        .filter_map(|(what, j)| j.map(|j| format!("{what} {j:.2} J")))
        .collect();
    if !parts.is_empty() {
        let method = e.attribution.as_deref().map(|a| format!(" ({a})")).unwrap_or_default();
        lines.push(format!("energy split: {}{method}", parts.join(", ")));
    }
    if let Some(why) = &e.gpu_unavailable_reason {
        let what = if e.gpu_joules.is_some() {
            "incomplete"
        } else {
            "unavailable"
        };
        lines.push(format!("gpu energy: {what} ({why})"));
    }
    if e.partial {
        let why = e
            .partial_reason
            .as_deref()
            .unwrap_or("part of the job was not measured");
        lines.push(format!("energy partial, a lower bound: {why}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobId, JobSpec, JobState};

    #[test]
    fn energy_lines_show_the_gpu_even_when_the_total_is_unknown() {
        let gpu_only = EnergyReport {
            source: "nvml".into(),
            unavailable_reason: Some("CPU energy unavailable: no powercap".into()),
            gpu_joules: Some(12.5),
            attribution: Some("nvml-process-utilization".into()),
            ..Default::default()
        };
        assert_eq!(
            energy_lines(&gpu_only),
            [
                "energy: unavailable (CPU energy unavailable: no powercap)",
                "energy split: gpu 12.50 J (nvml-process-utilization)"
            ]
        );
        let none = EnergyReport {
            source: "unavailable".into(),
            unavailable_reason: Some("no powercap".into()),
            ..Default::default()
        };
        assert_eq!(energy_lines(&none), ["energy: unavailable (no powercap)"]);
    }

    #[test]
    fn energy_lines_say_why_gpu_energy_is_missing_or_incomplete() {
        let cpu_only = EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(40.0),
            cpu_joules: Some(30.0),
            dram_joules: Some(10.0),
            attribution: Some("cgroup-cpu-share".into()),
            gpu_unavailable_reason: Some("no NVIDIA GPU found".into()),
            ..Default::default()
        };
        assert_eq!(
            energy_lines(&cpu_only)[1..],
            [
                "energy split: cpu 30.00 J, dram 10.00 J (cgroup-cpu-share)",
                "gpu energy: unavailable (no NVIDIA GPU found)"
            ]
        );
        let partial = EnergyReport {
            gpu_joules: Some(5.0),
            gpu_unavailable_reason: Some("GPU energy covers part of the job: energy read failed: lost".into()),
            ..cpu_only
        };
        assert_eq!(
            energy_lines(&partial)[2],
            "gpu energy: incomplete (GPU energy covers part of the job: energy read failed: lost)"
        );
    }

    #[test]
    fn partial_energy_says_why_and_a_failed_jobs_energy_is_shown() {
        let partial = EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(10.0),
            partial: true,
            partial_reason: Some("the final reading failed: energy read failed: gone".into()),
            ..Default::default()
        };
        assert_eq!(
            energy_lines(&partial)[1..],
            ["energy partial, a lower bound: the final reading failed: energy read failed: gone"]
        );
        let job = Job {
            state: JobState::Failed,
            error: Some(ffrtmp_core::JobError {
                energy: Some(partial.clone()),
                ..ffrtmp_core::JobError::new(ffrtmp_core::ErrorKind::EncodeError, "unknown encoder")
            }),
            ..Job::submitted(JobId::new(), 3, JobSpec::new("720p-h264").try_into().unwrap(), 0)
        };
        assert_eq!(job_energy(&job), Some(&partial));
        assert_eq!(
            opt(job_joules(&job).map(|e| format!("{e:.1}"))),
            "10.0",
            "the JOULES column"
        );
    }

    #[test]
    fn a_canceled_jobs_joules_are_its_attempts_total() {
        let energy = |j: f64| EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(j),
            ..Default::default()
        };
        let mut job = Job {
            state: JobState::Canceled,
            ..Job::submitted(JobId::new(), 4, JobSpec::new("720p-h264").try_into().unwrap(), 0)
        };
        assert_eq!(opt(job_joules(&job).map(|e| format!("{e:.1}"))), "-");
        let node = ffrtmp_core::NodeId::new();
        for (attempt, outcome, j) in [(1, JobState::Retrying, 2.0), (2, JobState::Canceled, 3.5)] {
            job.attempts_energy.record(ffrtmp_core::AttemptEnergy {
                attempt,
                node_id: node,
                outcome,
                energy: energy(j),
            });
        }
        assert_eq!(
            opt(job_joules(&job).map(|e| format!("{e:.1}"))),
            "5.5",
            "the JOULES column"
        );
        let lines = attempt_energy_lines(&job.attempts_energy);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[1].starts_with("  attempt 1  retrying  2.00 J (rapl)"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "  total 5.50 J");
    }
}
