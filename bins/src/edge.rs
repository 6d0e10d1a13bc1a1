//! `ffrtmp run`, `ffrtmp attach` and `ffrtmp watch`: the edge wrapper, for workloads started
//! outside the agent. The work is done by [`ffrtmp_exec::wrapper`]; this module parses flags
//! and prints outcomes.
//!
//! `run` is non-owning: the workload gets its own session and a per-run cgroup, and keeps
//! running with its limits if the wrapper is killed (the cgroup is then left for `watch` or
//! an operator to remove). SIGINT/SIGTERM to the wrapper are forwarded to the workload's
//! process group; the wrapper then reports how the workload took them.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use ffrtmp_exec::wrapper::watch::{Event, Watcher};
use ffrtmp_exec::wrapper::{self, EdgeLimits, Outcome, RunRequest, WatchConfig};
use ffrtmp_exec::{Cgroups, ExecError};

use crate::{parse_duration, shutdown_signal};

/// `ffrtmp run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Names the run's cgroup (`edge-run-<ID>-…`) and appears in the report.
    #[arg(long)]
    pub job_id: Option<String>,
    /// CPU quota in percent of one core (200 = two cores).
    #[arg(long)]
    pub cpu_quota: Option<u32>,
    /// Memory limit in MiB.
    #[arg(long)]
    pub memory_limit: Option<u64>,
    /// Relative CPU weight (100 = default).
    #[arg(long)]
    pub cpu_weight: Option<u32>,
    /// Niceness of the workload (set before exec).
    #[arg(long, allow_hyphen_values = true)]
    pub nice: Option<i32>,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Flags of the original Go wrapper.
    #[command(flatten)]
    pub go: crate::compat::RunFlags,
    /// The workload: `-- program args…`.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<OsString>,
}

/// `ffrtmp attach`.
#[derive(Args, Debug)]
pub struct AttachArgs {
    /// The running process to govern.
    #[arg(long)]
    pub pid: i32,
    /// A name for the workload, shown in the report (`job: …`, `job_id` in JSON).
    #[arg(long)]
    pub job_id: Option<String>,
    /// Relative CPU weight (100 = default; v1: 100 ≈ 1024 cpu.shares).
    #[arg(long)]
    pub cpu_weight: Option<u32>,
    /// CPU quota in percent of one core.
    #[arg(long)]
    pub cpu_quota: Option<u32>,
    /// Memory limit in MiB.
    #[arg(long)]
    pub memory_limit: Option<u64>,
    /// Niceness to set on every thread of the process.
    #[arg(long, allow_hyphen_values = true)]
    pub nice: Option<i32>,
    /// How often to check whether the process is still there.
    #[arg(long, value_parser = parse_duration, default_value = "200ms")]
    pub poll: Duration,
    /// Print the outcome as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `ffrtmp watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Time between scans of /proc.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub scan_interval: Duration,
    /// YAML rules: `rules: [{match: ffmpeg, args_contain: ["-c:v"], cpu_quota: 150, …}]`.
    #[arg(long)]
    pub watch_config: PathBuf,
    /// Persist what was attached, so a restarted watch does not attach it again.
    #[arg(long)]
    pub enable_state: bool,
    /// Where the state is kept (with --enable-state).
    #[arg(long, default_value = "/var/lib/ffrtmp/watch-state.json")]
    pub state_file: PathBuf,
    /// One scan, then exit.
    #[arg(long)]
    pub once: bool,
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Flags of the original Go watch daemon.
    #[command(flatten)]
    pub go: crate::compat::WatchFlags,
}

fn print_outcome(outcome: &Outcome, job_id: Option<&str>, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(outcome).unwrap_or_default();
        if let (Some(map), Some(id)) = (value.as_object_mut(), job_id) {
            map.insert("job_id".into(), id.into());
        }
        let _ = writeln!(out, "{value}");
    } else {
        if let Some(id) = job_id {
            let _ = writeln!(out, "job: {id}");
        }
        let _ = write!(out, "{}", outcome.render());
    }
    let _ = out.flush();
}

fn print_error(e: &ExecError, json: bool) {
    if json {
        println!("{}", serde_json::json!({ "error": e.to_string() }));
    }
    eprintln!("Error: {e}");
}

/// Runs `ffrtmp run`; returns the process exit status (the workload's code, 128 + signal,
/// 127 when the program is missing, 126 when it cannot be started).
pub async fn run(args: &RunArgs, json: bool) -> i32 {
    let json = json || args.json;
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let req = RunRequest {
        job_id: args.job_id.clone(),
        program: program.into(),
        args: rest.to_vec(),
        limits: EdgeLimits {
            cpu_quota: args.cpu_quota,
            memory_limit_mb: args.memory_limit,
            cpu_weight: args.cpu_weight,
            nice: args.nice,
        },
    };
    let cgroups = Cgroups::detect();
    let started = |s: &wrapper::run::Started| {
        let dirs: Vec<String> = s.cgroup.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "ffrtmp run: workload pid {} limits: {} cgroup: {}",
            s.pid,
            s.limits,
            dirs.join(" ")
        );
    };
    match wrapper::run(&cgroups, &req, started).await {
        Ok(outcome) => {
            print_outcome(&outcome, args.job_id.as_deref(), json);
            outcome.wrapper_exit_code()
        }
        Err(e) => {
            print_error(&e, json);
            if matches!(e, ExecError::ProgramNotFound { .. }) {
                127
            } else {
                126
            }
        }
    }
}

/// Runs `ffrtmp attach`; returns the exit status (the process's code when visible, else 0;
/// 1 when it cannot be attached; 130 when interrupted, leaving the process governed).
pub async fn attach(args: &AttachArgs, json: bool) -> i32 {
    let json = json || args.json;
    let limits = EdgeLimits {
        cpu_quota: args.cpu_quota,
        memory_limit_mb: args.memory_limit,
        cpu_weight: args.cpu_weight,
        nice: args.nice,
    };
    let attached = match wrapper::attach(&Cgroups::detect(), args.pid, &limits, "attach") {
        Ok(a) => a,
        Err(e) => {
            print_error(&e, json);
            return 1;
        }
    };
    let dirs: Vec<String> = attached.cgroup().iter().map(|p| p.display().to_string()).collect();
    eprintln!(
        "ffrtmp attach: pid {} (start time {}) limits: {} cgroup: {}",
        attached.pid,
        attached.start_time,
        attached.limits,
        dirs.join(" ")
    );
    let pid = attached.pid;
    tokio::select! {
        outcome = attached.wait_exit(args.poll) => {
            print_outcome(&outcome, args.job_id.as_deref(), json);
            outcome.wrapper_exit_code()
        }
        _ = shutdown_signal() => {
            eprintln!("ffrtmp attach: stopped waiting; pid {pid} keeps running in its cgroup");
            130
        }
    }
}

fn print_event(event: &Event, json: bool, once: bool) {
    let value = match event {
        Event::Attached(e) => serde_json::json!({
            "event": "attached", "pid": e.pid, "start_time": e.start_time, "rule": e.rule,
            "limits": e.limits, "cgroup": e.cgroup,
        }),
        // Known processes are reported by one-shot scans only; a running watch stays quiet.
        Event::Known { .. } if !once => return,
        Event::Known { pid, start_time } => serde_json::json!({
            "event": "known", "pid": pid, "start_time": start_time,
        }),
        Event::Skipped { pid, reason } => serde_json::json!({ "event": "skipped", "pid": pid, "reason": reason }),
        Event::Exited { entry, cgroup_removed } => serde_json::json!({
            "event": "exited", "pid": entry.pid, "start_time": entry.start_time, "rule": entry.rule,
            "cgroup_removed": cgroup_removed,
        }),
        Event::StateError(e) => serde_json::json!({ "event": "state_error", "error": e }),
    };
    if json {
        println!("{value}");
        return;
    }
    match event {
        Event::Attached(e) => println!(
            "attached pid {} (start time {}) rule {}: {}",
            e.pid, e.start_time, e.rule, e.limits
        ),
        Event::Known { pid, start_time } => println!("known pid {pid} (start time {start_time}): already attached"),
        Event::Skipped { pid, reason } => println!("skipped pid {pid}: {reason}"),
        Event::Exited { entry, cgroup_removed } => println!(
            "exited pid {} (start time {}) rule {}: cgroup {}",
            entry.pid,
            entry.start_time,
            entry.rule,
            if *cgroup_removed { "removed" } else { "left in place" }
        ),
        Event::StateError(e) => eprintln!("Error: {e}"),
    }
}

/// Runs `ffrtmp watch` until SIGINT/SIGTERM (or one scan with `--once`); returns the exit
/// status (1 on a bad config or state file, or a failed state write with `--once`).
pub async fn watch(args: &WatchArgs, json: bool) -> i32 {
    let json = json || args.json;
    let config = match WatchConfig::load(&args.watch_config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let state_file = args.enable_state.then(|| args.state_file.clone());
    let mut watcher = match Watcher::new(Cgroups::detect(), config, state_file) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("Error: cannot read the state file {}: {e}", args.state_file.display());
            return 1;
        }
    };
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let events = watcher.scan();
        let mut failed = false;
        for event in &events {
            failed |= matches!(event, Event::StateError(_));
            print_event(event, json, args.once);
        }
        let _ = std::io::stdout().flush();
        if args.once {
            return i32::from(failed);
        }
        tokio::select! {
            _ = tokio::time::sleep(args.scan_interval) => {}
            _ = &mut shutdown => return 0,
        }
    }
}
