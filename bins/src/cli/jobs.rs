//! `ffrtmp jobs`: submit, inspect, list, cancel, retry and wait for jobs.

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Args as ClapArgs, Subcommand, ValueEnum};
use ffrtmp_core::{
    Classification, Enforcement, EngineChoice, Job, JobId, JobQuery, JobSpec, JobState, OutputMode, Parameters,
    Priority, Queue, ResourceLimits,
};
use ffrtmp_http::ApiClient;

use crate::cli::{opt, print_json, table};
use crate::parse_duration;
pub use ffrtmp_power::describe::{attempt_energy_lines, energy_lines, job_energy, job_joules};

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
        /// Show state changes and live progress while waiting (bars on a terminal).
        #[arg(long)]
        follow: bool,
    },
    /// Follow jobs live until they finish: progress bars on a terminal, plain lines
    /// otherwise, JSON lines with `--output json`.
    Watch {
        #[arg(required = true)]
        ids: Vec<JobId>,
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
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
    /// Live destination for `--output-mode rtmp` (`rtmp://…`, `srt://…`); the agent must
    /// allow it (`--allow-output-prefix`). Default: the agent's `--rtmp-url`.
    #[arg(long)]
    output_url: Option<String>,
    /// Live source to pull (`rtmp://…`) instead of a file; the agent must allow it
    /// (`--allow-input-prefix`).
    #[arg(long, conflicts_with = "input")]
    input_url: Option<String>,
    /// Measure the output's quality against its source after the encode (file output only):
    /// `psnr`, `ssim`, or `vmaf` where the node's ffmpeg has libvmaf.
    #[arg(long, value_parser = ["psnr", "ssim", "vmaf"])]
    quality: Option<String>,
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
                output_url: self.output_url.clone(),
                input_url: self.input_url.clone(),
                quality: self.quality.as_deref().and_then(|q| q.parse().ok()),
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
                if let Some(live) = &r.live {
                    say(format!("live QoE: {}", live.line()));
                }
                if let Some(line) = ffrtmp_power::describe::quality_line(r) {
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
        JobsCommand::Watch { ids, timeout } => {
            let style = crate::cli::watch::Style::detect(json);
            crate::cli::watch::follow_jobs(api, &ids, timeout, style).await?;
        }
        JobsCommand::Wait { ids, timeout, follow } if follow => {
            let style = crate::cli::watch::Style::detect(json);
            let done = crate::cli::watch::follow_jobs(api, &ids, timeout, style).await?;
            if json {
                // One more JSON line, so the output stays JSON lines.
                println!("{}", serde_json::to_string(&done)?);
            } else {
                table(&JOB_HEADERS, done.iter().map(job_row).collect());
            }
            if !done.iter().all(|j| j.state == JobState::Completed) {
                bail!("not every job completed");
            }
        }
        JobsCommand::Wait { ids, timeout, .. } => {
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
