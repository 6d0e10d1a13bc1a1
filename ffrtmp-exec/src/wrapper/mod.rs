//! The edge wrapper: governing processes this node did not start through the agent.
//!
//! - [`mod@run`]: start a workload NON-OWNING — in its own session (`setsid`) and a per-run
//!   cgroup joined before exec, wait for it and report how it ended. The wrapper holds no
//!   lifeline over it: no `PR_SET_PDEATHSIG`, no kill on drop, no group kill on exit. If the
//!   wrapper is killed, the workload keeps running with its limits, and its cgroup is left
//!   for `watch` or an operator to remove. SIGINT/SIGTERM to the wrapper are forwarded to the
//!   workload's process group (and the wrapper keeps waiting for it).
//! - [`mod@attach`]: move a running process into a governed cgroup, renice it and wait for its
//!   exit, telling a reused PID apart by its start time (`/proc/P/stat` field 22).
//! - [`watch`]: scan `/proc` for processes matching YAML rules and attach each once,
//!   optionally persisting what was attached ([`state`]) so that a restart does not attach
//!   the same process twice.
//!
//! The original's "non-owning" wrapper killed its workload when it exited; every cgroup
//! handle here is therefore held in [`Governed`], which never kills on drop and removes the
//! group only once it is empty.

use std::fs;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ffrtmp_core::ResourceLimits;
use serde::{Deserialize, Serialize};

use crate::cgroup::{CgroupMode, Cgroups, JobCgroup};
use crate::error::ExecError;

pub mod attach;
pub mod proc;
pub mod run;
pub mod state;
pub mod watch;

pub use attach::{attach, Attached};
pub use proc::{ProcStat, StartTime};
pub use run::{run, RunRequest};
pub use state::{StateEntry, WatchState};
pub use watch::{Rule, WatchConfig};

/// Limits put on a governed process. All optional; none set means the group only contains
/// and accounts the process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeLimits {
    /// CPU quota in percent of one core (200 = two cores).
    pub cpu_quota: Option<u32>,
    /// Memory limit in MiB.
    pub memory_limit_mb: Option<u64>,
    /// Relative CPU weight, 100 = default (v2 `cpu.weight`; v1 `cpu.shares` scaled so that
    /// 100 ≈ 1024 shares).
    pub cpu_weight: Option<u32>,
    /// Niceness set on every thread of the process (`attach`/`watch` only).
    pub nice: Option<i32>,
}

impl EdgeLimits {
    fn resource_limits(&self) -> ResourceLimits {
        ResourceLimits {
            max_cpu_percent: self.cpu_quota,
            max_memory_mb: self.memory_limit_mb,
            ..Default::default()
        }
    }
}

/// v1 `cpu.shares` for a v2-style weight: 100 ≈ 1024 shares, clamped to the kernel's range.
pub fn weight_to_shares(weight: u32) -> u64 {
    (u64::from(weight) * 1024 / 100).clamp(2, 262_144)
}

/// A cgroup created for an edge process. Unlike a bare [`JobCgroup`], dropping it does
/// nothing: the process in it is not ours to kill. [`Governed::release`] removes it once it is
/// empty and otherwise leaves it in place.
#[derive(Debug)]
pub struct Governed {
    cg: ManuallyDrop<JobCgroup>,
    enforced: String,
}

impl Governed {
    /// Creates the group `name` with `limits` (quota and memory read back by
    /// [`Cgroups::create`], then the CPU weight written and read back).
    ///
    /// The group must not exist yet ([`Cgroups::create_exclusive`]): an existing group of that
    /// name belongs to a process already governed and is never emptied by killing.
    pub fn create(cgroups: &Cgroups, name: &str, limits: &EdgeLimits) -> Result<Governed, ExecError> {
        let cg = ManuallyDrop::new(cgroups.create_exclusive(name, &limits.resource_limits())?);
        let mut governed = Governed {
            cg,
            enforced: String::new(),
        };
        let mut text = governed
            .cg
            .enforced()
            .map(str::to_string)
            .unwrap_or_else(|| format!("cgroup {}", mode_label(governed.cg.mode())));
        if let Some(weight) = limits.cpu_weight {
            if let Err(e) = governed.apply_weight(weight) {
                governed.discard();
                return Err(e);
            }
            text.push_str(&format!(" cpu_weight={weight}"));
        }
        if !text.contains('=') {
            text.push_str(" (no limits requested)");
        }
        governed.enforced = text;
        Ok(governed)
    }

    fn apply_weight(&self, weight: u32) -> Result<(), ExecError> {
        let (file, value) = match self.cg.mode() {
            CgroupMode::V1 => ("cpu.shares", weight_to_shares(weight)),
            CgroupMode::V2 => ("cpu.weight", u64::from(weight.clamp(1, 10_000))),
        };
        let dir = self
            .cg
            .paths()
            .iter()
            .find(|d| d.join(file).exists())
            .ok_or_else(|| ExecError::NodeUnavailable(format!("no {file} in the cgroup (no cpu controller)")))?;
        write_checked(&dir.join(file), &value.to_string())
    }

    /// What is enforced, e.g. `cgroup v1 cpu=50% memory=100MiB cpu_weight=150`.
    pub fn enforced(&self) -> &str {
        &self.enforced
    }

    /// The group's directories, one per hierarchy.
    pub fn paths(&self) -> &[PathBuf] {
        self.cg.paths()
    }

    /// Processes in the group.
    pub fn pids(&self) -> Vec<i32> {
        self.cg.pids()
    }

    /// OOM kills inside the group so far.
    pub fn oom_kills(&self) -> u64 {
        self.cg.oom_kills()
    }

    /// Moves the whole process `pid` (all its threads) into the group.
    pub fn add_pid(&self, pid: i32) -> Result<(), ExecError> {
        for dir in self.cg.paths() {
            let path = dir.join("cgroup.procs");
            fs::write(&path, pid.to_string()).map_err(|source| ExecError::Cgroup {
                op: "move into",
                path,
                source,
            })?;
        }
        Ok(())
    }

    /// Opens the group's `cgroup.procs` files, for a child to join between fork and exec.
    pub fn join_files(&self) -> Result<Vec<fs::File>, ExecError> {
        self.cg.join_files()
    }

    /// Removes the group if it is empty and says whether it did; a group that still holds
    /// processes is left as it is (nothing is killed).
    pub async fn release(self) -> bool {
        // Plain rmdir only: the kernel refuses a group that still holds processes (or child
        // groups), and the `JobCgroup` is never dropped, since its removal and drop kill.
        let mut all = true;
        for dir in self.cg.paths() {
            match fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => all = false,
            }
        }
        all
    }

    /// Removes a group that never held a process (creation failed half-way).
    fn discard(&mut self) {
        for dir in self.cg.paths() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Removes the directories of an edge cgroup known only by its paths (e.g. from a state
/// file), if empty. Only directories named `edge-…` below a `ffrtmp` parent are touched.
/// Returns whether every directory is gone.
pub fn remove_edge_dirs(paths: &[PathBuf]) -> bool {
    let mut all = true;
    for dir in paths {
        if !is_edge_dir(dir) {
            all = false;
            continue;
        }
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => all = false,
        }
    }
    all
}

fn is_edge_dir(dir: &Path) -> bool {
    let name_ok = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("edge-"));
    let parent_ok = dir.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "ffrtmp");
    name_ok && parent_ok
}

fn mode_label(mode: CgroupMode) -> &'static str {
    match mode {
        CgroupMode::V1 => "v1",
        CgroupMode::V2 => "v2",
    }
}

fn write_checked(path: &Path, value: &str) -> Result<(), ExecError> {
    fs::write(path, value).map_err(|source| ExecError::Cgroup {
        op: "write",
        path: path.to_path_buf(),
        source,
    })?;
    let found = fs::read_to_string(path).map_err(|source| ExecError::Cgroup {
        op: "read back",
        path: path.to_path_buf(),
        source,
    })?;
    if found.trim() != value {
        return Err(ExecError::CgroupReadBack {
            path: path.to_path_buf(),
            wrote: value.to_string(),
            found: found.trim().to_string(),
        });
    }
    Ok(())
}

/// A cgroup name component from free text: `[A-Za-z0-9._-]` kept, anything else `_`, at most
/// 64 characters.
pub fn sanitize_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// How a governed process ended, as `run` and `attach` report it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The process id.
    pub pid: i32,
    /// Its exit code, when it exited and the code is known.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when known.
    pub signal: Option<i32>,
    /// `exited N`, `killed by signal S (NAME)`, `OOM-killed under its memory limit` …
    pub reason: String,
    /// Whether the kernel's OOM killer acted in its cgroup.
    pub oom_killed: bool,
    /// Wall-clock time the wrapper saw it run (for `attach`: since attaching).
    pub duration_ms: u64,
    /// What was enforced, or `not enforced: <reason>`.
    pub limits: String,
    /// The cgroup directories used (empty when not enforced).
    pub cgroup: Vec<PathBuf>,
    /// Whether the cgroup was removed afterwards (left when processes remain in it).
    pub cgroup_removed: bool,
    /// A signal the wrapper forwarded to the workload's group (`run` only).
    pub forwarded_signal: Option<i32>,
}

impl Outcome {
    /// The wrapper's own exit status mirroring the workload: its code, or 128 + signal.
    pub fn wrapper_exit_code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 0,
        }
    }

    /// The human-readable report, one `key: value` per line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("pid: {}\n", self.pid));
        match self.exit_code {
            Some(c) => out.push_str(&format!("exit code: {c}\n")),
            None => out.push_str("exit code: -\n"),
        }
        out.push_str(&format!("reason: {}\n", self.reason));
        out.push_str(&format!("duration: {:.3}s\n", self.duration_ms as f64 / 1000.0));
        out.push_str(&format!("limits: {}\n", self.limits));
        if !self.cgroup.is_empty() {
            let state = if self.cgroup_removed {
                "removed"
            } else {
                "left in place"
            };
            let dirs: Vec<String> = self.cgroup.iter().map(|p| p.display().to_string()).collect();
            out.push_str(&format!("cgroup: {} ({state})\n", dirs.join(" ")));
        }
        if let Some(s) = self.forwarded_signal {
            out.push_str(&format!("forwarded signal: {s} ({})\n", signal_name(s)));
        }
        out
    }
}

/// `SIGTERM` for 15 and so on; `signal N` when unknown.
pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// The reason text for an exit status and the group's OOM kills.
pub fn reason_for(exit_code: Option<i32>, signal: Option<i32>, oom_kills: u64) -> (String, bool) {
    let oom = oom_kills > 0;
    let text = match (exit_code, signal) {
        (_, Some(9)) if oom => "OOM-killed under its memory limit".to_string(),
        (_, Some(s)) => format!("killed by signal {s} ({})", signal_name(s)),
        (Some(c), None) if oom => format!("exited {c} (after an OOM kill in its cgroup)"),
        (Some(c), None) => format!("exited {c}"),
        (None, None) if oom => "OOM-killed under its memory limit".to_string(),
        (None, None) => "exited (status not visible to a non-parent)".to_string(),
    };
    (text, oom)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_scale() {
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(150), 1536);
        assert_eq!(weight_to_shares(0), 2);
        assert_eq!(weight_to_shares(100_000), 262_144);
    }

    #[test]
    fn reasons() {
        assert_eq!(reason_for(Some(0), None, 0).0, "exited 0");
        assert_eq!(reason_for(None, Some(15), 0).0, "killed by signal 15 (SIGTERM)");
        assert_eq!(
            reason_for(None, Some(9), 1),
            ("OOM-killed under its memory limit".into(), true)
        );
        assert_eq!(
            reason_for(None, None, 0).0,
            "exited (status not visible to a non-parent)"
        );
        assert_eq!(sanitize_name("job 1/a"), "job_1_a");
    }

    #[test]
    fn edge_dirs_only() {
        assert!(is_edge_dir(Path::new("/sys/fs/cgroup/cpu/ffrtmp/edge-run-1")));
        assert!(!is_edge_dir(Path::new("/sys/fs/cgroup/cpu/ffrtmp/job-a1")));
        assert!(!is_edge_dir(Path::new("/sys/fs/cgroup/cpu/edge-run-1")));
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("ffrtmp/edge-x");
        fs::create_dir_all(&dir).unwrap();
        assert!(remove_edge_dirs(std::slice::from_ref(&dir)));
        assert!(!dir.exists());
        assert!(!remove_edge_dirs(&[root.path().to_path_buf()]));
    }
}
