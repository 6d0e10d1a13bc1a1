//! `ffrtmp jobs`: submit, inspect, list, cancel, retry and wait for jobs.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use ffrtmp_core::{
    AttemptsEnergy, Classification, EnergyReport, Enforcement, EngineChoice, Job, JobId, JobQuery, JobSpec, JobState,
    OutputMode, Parameters, Priority, Queue, ResourceLimits,
};
use ffrtmp_http::ApiClient;

use crate::cli::{opt, print_json, table};
use crate::parse_duration;

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// Submit a job.
    Submit(Box<SubmitArgs>),
    /// Show one job with its history.
    Status { id: JobId },
    /// List jobs, newest first.
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long, value_enum)]
        queue: Option<QueueArg>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Show jobs older than this sequence number (the cursor of the previous page).
        #[arg(long)]
        before: Option<u64>,
    },
    /// Cancel a job.
    Cancel { id: JobId },
    /// Queue a failed or canceled job again.
    Retry { id: JobId },
    /// Wait until the jobs finish; exits non-zero if any did not complete.
    Wait {
        ids: Vec<JobId>,
        #[arg(long, default_value = "10m", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum QueueArg {
    Live,
    Default,
    Batch,
}

impl From<QueueArg> for Queue {
    fn from(q: QueueArg) -> Queue {
        match q {
            QueueArg::Live => Queue::Live,
            QueueArg::Default => Queue::Default,
            QueueArg::Batch => Queue::Batch,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PriorityArg {
    High,
    Medium,
    Low,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputModeArg {
    File,
    Null,
    Rtmp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EnforcementArg {
    BestEffort,
    Required,
}

#[derive(ClapArgs, Debug)]
pub struct SubmitArgs {
    /// Scenario, e.g. 720p-h264, 1080p60-h265, 4K-h265.
    #[arg(long)]
    scenario: String,
    /// Seconds of video.
    #[arg(long)]
    duration: Option<f64>,
    /// Bitrate, e.g. 5M.
    #[arg(long)]
    bitrate: Option<String>,
    /// Encoder preset, e.g. veryfast.
    #[arg(long)]
    preset: Option<String>,
    /// Frame rate override.
    #[arg(long)]
    fps: Option<u32>,
    /// Size override, e.g. 1280x720.
    #[arg(long)]
    resolution: Option<String>,
    /// Codec override: h264, h265, av1, vp9.
    #[arg(long)]
    codec: Option<String>,
    /// A specific encoder, e.g. h264_nvenc; only nodes advertising it run the job.
    #[arg(long)]
    encoder: Option<String>,
    /// Input file relative to the agent's input directory (default: synthetic source).
    #[arg(long)]
    input: Option<String>,
    /// Where the output goes.
    #[arg(long, value_enum)]
    output_mode: Option<OutputModeArg>,
    #[arg(long, value_enum, default_value = "default")]
    queue: QueueArg,
    #[arg(long, value_enum, default_value = "medium")]
    priority: PriorityArg,
    /// CPU limit in percent of one core.
    #[arg(long, visible_alias = "cpu-limit")]
    max_cpu_percent: Option<u32>,
    /// Memory limit in MiB.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Wall-clock limit in seconds.
    #[arg(long)]
    timeout_sec: Option<u64>,
    /// best-effort: limits are enforced where the node can, else the job runs unlimited;
    /// required: only nodes that enforce limits run the job.
    #[arg(long, value_enum, default_value = "best-effort")]
    enforcement: EnforcementArg,
    /// Retries after transient failures.
    #[arg(long, default_value_t = 3)]
    max_retries: u32,
    /// Engine: `auto` (the node picks: GStreamer for live work when installed), `ffmpeg` or
    /// `gstreamer`.
    #[arg(long, value_enum, default_value = "auto")]
    engine: EngineArg,
}

/// `--engine` of `jobs submit`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum EngineArg {
    Auto,
    Ffmpeg,
    Gstreamer,
}

impl SubmitArgs {
    fn spec(&self) -> JobSpec {
        JobSpec {
            scenario: self.scenario.clone(),
            confidence: None,
            parameters: Parameters {
                duration: self.duration,
                bitrate: self.bitrate.clone(),
                preset: self.preset.clone(),
                fps: self.fps,
                resolution: self.resolution.clone(),
                codec: self.codec.clone(),
                encoder: self.encoder.clone(),
                input: self.input.clone(),
                output_mode: self.output_mode.map(|m| match m {
                    OutputModeArg::File => OutputMode::File,
                    OutputModeArg::Null => OutputMode::Null,
                    OutputModeArg::Rtmp => OutputMode::Rtmp,
                }),
            },
            resource_limits: ResourceLimits {
                max_cpu_percent: self.max_cpu_percent,
                max_memory_mb: self.max_memory_mb,
                max_disk_mb: None,
                timeout_sec: self.timeout_sec,
                enforcement: match self.enforcement {
                    EnforcementArg::BestEffort => Enforcement::BestEffort,
                    EnforcementArg::Required => Enforcement::Required,
                },
            },
            queue: self.queue.into(),
            priority: match self.priority {
                PriorityArg::High => Priority::High,
                PriorityArg::Medium => Priority::Medium,
                PriorityArg::Low => Priority::Low,
            },
            engine: match self.engine {
                EngineArg::Auto => EngineChoice::Auto,
                EngineArg::Ffmpeg => EngineChoice::Ffmpeg,
                EngineArg::Gstreamer => EngineChoice::Gstreamer,
            },
            classification: Classification::default(),
            max_retries: self.max_retries,
        }
    }
}

pub fn job_row(j: &Job) -> Vec<String> {
    let r = j.result.as_ref();
    vec![
        j.seq.to_string(),
        j.id.to_string(),
        j.spec.scenario.clone(),
        j.state.to_string(),
        j.attempt.to_string(),
        opt(r.map(|r| format!("{:.2}", r.wall_s))),
        opt(r.map(|r| format!("{:.1}", r.avg_fps))),
        opt(r.map(|r| r.frames)),
        opt(r.map(|r| format!("{:.2}", r.output_bytes as f64 / 1e6))),
        opt(job_joules(j).map(|e| format!("{e:.1}"))),
        opt(j.error.as_ref().map(|e| format!("{:?}", e.kind))),
    ]
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
/// assert_eq!(ffrtmp::cli::jobs::attempt_energy_lines(&all), [
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
                format!("{j:.2} J ({}{how}{partial})", e.source)
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
/// assert_eq!(ffrtmp::cli::jobs::energy_lines(&e), [
///     "energy: 100.00 J (rapl+nvml), 50.0 W avg, - J/frame",
///     "energy split: cpu 30.00 J, dram 10.00 J, gpu 60.00 J (cgroup-cpu-share+nvml-process-utilization)",
/// ]);
/// ```
pub fn energy_lines(e: &EnergyReport) -> Vec<String> {
    let mut lines = vec![match (&e.energy_joules, &e.unavailable_reason) {
        (Some(j), _) => format!(
            "energy: {j:.2} J ({}), {} W avg, {} J/frame",
            e.source,
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

pub const JOB_HEADERS: [&str; 11] = [
    "SEQ", "ID", "SCENARIO", "STATE", "ATT", "WALL_S", "FPS", "FRAMES", "OUT_MB", "JOULES", "ERROR",
];

/// Prints one line of a job's details; the text comes from the master and its agents, so
/// terminal control characters are stripped.
fn say(line: String) {
    println!("{}", crate::term::strip_controls(&line));
}

/// Runs `ffrtmp jobs <command>` against the master.
pub async fn run(api: &ApiClient, command: JobsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        JobsCommand::Submit(args) => {
            let job = api.submit(&args.spec()).await?;
            if json {
                print_json(&job)?;
            } else {
                println!("{}", job.id);
            }
        }
        JobsCommand::Status { id } => {
            let job = api.get(id).await?;
            if json {
                return print_json(&job);
            }
            table(&JOB_HEADERS, vec![job_row(&job)]);
            if let Some(p) = &job.progress {
                say(format!(
                    "\nprogress: frame {} fps {:.1} speed {:.2}x {:.0}%",
                    p.frame, p.fps, p.speed, p.percent
                ));
            }
            if let Some(r) = &job.result {
                say(format!(
                    "\nresult: {} frames, {:.2} s, {:.1} fps, {} output bytes, encoder {}, limits {}",
                    r.frames, r.wall_s, r.avg_fps, r.output_bytes, r.encoder, r.limits
                ));
                say(format!(
                    "cpu: user {} s, sys {} s, peak rss {} MB; input {} bytes, compression {}x, speed {}x",
                    opt(r.user_s.map(|v| format!("{v:.2}"))),
                    opt(r.sys_s.map(|v| format!("{v:.2}"))),
                    opt(r.peak_rss_mb.map(|v| format!("{v:.1}"))),
                    opt(r.input_bytes),
                    opt(r.compression_ratio.map(|v| format!("{v:.1}"))),
                    opt(r.speed.map(|v| format!("{v:.2}")))
                ));
                for line in energy_lines(&r.energy) {
                    say(line);
                }
            }
            if let Some(e) = &job.error {
                say(format!("\nerror: {:?}: {}", e.kind, e.message));
                for line in e.energy.iter().flat_map(energy_lines) {
                    say(line);
                }
            }
            let attempts = attempt_energy_lines(&job.attempts_energy);
            if !attempts.is_empty() {
                println!();
            }
            for line in attempts {
                say(line);
            }
            println!("\nhistory:");
            for h in &job.history {
                say(format!(
                    "  {}  {} -> {}  attempt {}  {}",
                    h.at_ms,
                    opt(h.from),
                    h.to,
                    h.attempt,
                    h.reason
                ));
            }
        }
        JobsCommand::List {
            state,
            queue,
            limit,
            before,
        } => {
            let state = state
                .map(|s| s.parse::<JobState>())
                .transpose()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let page = api
                .list(&JobQuery {
                    state,
                    queue: queue.map(Into::into),
                    node_id: None,
                    before_seq: before,
                    limit: Some(limit),
                })
                .await?;
            if json {
                return print_json(&page);
            }
            table(&JOB_HEADERS, page.jobs.iter().map(job_row).collect());
            if let Some(c) = page.next_cursor {
                println!("(more: --before {c})");
            }
        }
        JobsCommand::Cancel { id } => {
            let job = api.cancel(id).await?;
            if json {
                return print_json(&job);
            }
            println!("{} {}", job.id, job.state);
        }
        JobsCommand::Retry { id } => {
            let job = api.retry(id).await?;
            if json {
                return print_json(&job);
            }
            println!("{} {}", job.id, job.state);
        }
        JobsCommand::Wait { ids, timeout } => {
            // A timeout too long to add to the clock waits without one.
            let deadline = Instant::now().checked_add(timeout);
            let mut done = Vec::new();
            for id in ids {
                loop {
                    let job = api.get(id).await?;
                    if job.state.is_terminal() {
                        done.push(job);
                        break;
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        bail!("timed out waiting for job {id} (state {})", job.state);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            let all_ok = done.iter().all(|j| j.state == JobState::Completed);
            if json {
                print_json(&done)?;
            } else {
                table(&JOB_HEADERS, done.iter().map(job_row).collect());
            }
            if !all_ok {
                bail!("not every job completed");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(job_row(&job)[9], "10.0", "the JOULES column");
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
        assert_eq!(job_row(&job)[9], "-");
        let node = ffrtmp_core::NodeId::new();
        for (attempt, outcome, j) in [(1, JobState::Retrying, 2.0), (2, JobState::Canceled, 3.5)] {
            job.attempts_energy.record(ffrtmp_core::AttemptEnergy {
                attempt,
                node_id: node,
                outcome,
                energy: energy(j),
            });
        }
        assert_eq!(job_row(&job)[9], "5.5", "the JOULES column");
        let lines = attempt_energy_lines(&job.attempts_energy);
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert!(
            lines[1].starts_with("  attempt 1  retrying  2.00 J (rapl)"),
            "{lines:?}"
        );
        assert_eq!(lines[3], "  total 5.50 J");
    }
}
