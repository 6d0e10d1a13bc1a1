//! Per-job cgroups: CPU quota and memory limit, CPU accounting, OOM detection, cleanup.
//!
//! Both hierarchies are supported. cgroup v1 (`cpu.cfs_quota_us`, `memory.limit_in_bytes`,
//! `memory.oom_control`, and `cpuacct.usage` in the `cpuacct` hierarchy, which may be a
//! separate mount) and cgroup v2 (`cpu.max`, `memory.max`, `memory.events`, `cpu.stat`).
//! [`Cgroups::detect`] reads `/proc/self/mountinfo` and `/proc/self/cgroup` and prepares a
//! parent group `ffrtmp` below this process's own cgroup (v2: below the root when the own
//! group holds processes and so cannot delegate controllers). Each job attempt gets a child
//! `<parent>/<name>` per hierarchy; limits are written and read back before the job starts.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::ResourceLimits;
pub use ffrtmp_core::{CgroupObserver, CgroupPaths};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::ExecError;

mod mount;

use mount::{plan, Layout};

/// CFS period used for CPU quotas, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Which cgroup hierarchy is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupMode {
    /// Legacy per-controller hierarchies.
    V1,
    /// The unified hierarchy.
    V2,
}

impl CgroupMode {
    fn label(self) -> &'static str {
        match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
        }
    }
}

/// The node's cgroup support: where job groups go, or why there are none.
///
/// ```no_run
/// use ffrtmp_exec::Cgroups;
/// let cgroups = Cgroups::detect();
/// match cgroups.unavailable_reason() {
///     None => println!("job cgroups ({:?})", cgroups.mode()),
///     Some(reason) => println!("limits not enforced: {reason}"),
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Cgroups {
    layout: Result<Layout, String>,
    observer: ObserverSlot,
}

/// The cgroup name of a job attempt, its [`AttemptKey`](ffrtmp_core::AttemptKey)
/// (`<job id>-a<attempt>`): every engine names its groups so, which lets observers match a
/// group to the attempt it runs, and a stale attempt's group never collides with a newer one's.
pub fn job_cgroup_name(job: &ffrtmp_core::Job) -> String {
    job.attempt_key().to_string()
}

#[derive(Clone, Default)]
struct ObserverSlot(Option<Arc<dyn CgroupObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(observer)" } else { "None" })
    }
}

impl Cgroups {
    /// Detects the hierarchy from `/proc/self/mountinfo` and prepares the `ffrtmp` parent
    /// group (creating it, and on v2 enabling `+cpu +memory` for its children). Never fails:
    /// when nothing usable is found, [`Cgroups::unavailable_reason`] says why.
    pub fn detect() -> Cgroups {
        let read = |p: &str| fs::read_to_string(p).map_err(|e| format!("cannot read {p}: {e}"));
        let candidates = read("/proc/self/mountinfo")
            .and_then(|mi| read("/proc/self/cgroup").map(|cg| (mi, cg)))
            .and_then(|(mi, cg)| plan(&mi, &cg));
        let mut first_error = None;
        match candidates {
            Ok(candidates) => {
                for layout in candidates {
                    let cgroups = match layout {
                        Layout::V1 { cpu, cpuacct, memory } => Cgroups::v1(cpu, cpuacct, memory),
                        Layout::V2 { parent } => Cgroups::v2(parent),
                    };
                    match cgroups.unavailable_reason() {
                        None => return cgroups,
                        Some(_) if first_error.is_some() => {}
                        Some(_) => first_error = Some(cgroups),
                    }
                }
                first_error.unwrap_or_else(|| Cgroups::disabled("no cgroup candidates"))
            }
            Err(reason) => Cgroups::disabled(reason),
        }
    }

    /// cgroup v1 with explicit parent directories (one per hierarchy; `None` where the
    /// controller is absent). The directories are created if needed.
    pub fn v1(cpu: Option<PathBuf>, cpuacct: Option<PathBuf>, memory: Option<PathBuf>) -> Cgroups {
        if cpu.is_none() && memory.is_none() {
            return Cgroups::disabled("no cgroup v1 cpu or memory hierarchy");
        }
        for dir in [&cpu, &cpuacct, &memory].into_iter().flatten() {
            if let Err(e) = fs::create_dir_all(dir) {
                return Cgroups::disabled(format!("cannot create {}: {e}", dir.display()));
            }
        }
        Cgroups {
            layout: Ok(Layout::V1 { cpu, cpuacct, memory }),
            observer: ObserverSlot::default(),
        }
    }

    /// cgroup v2 with an explicit parent directory, created if needed; `cpu` and `memory` are
    /// enabled in its `cgroup.subtree_control` (its own parent must already offer them).
    pub fn v2(parent: impl Into<PathBuf>) -> Cgroups {
        let parent = parent.into();
        let prepare = || -> Result<(), String> {
            let container = parent.parent().ok_or("cgroup v2 parent has no parent")?;
            let offered = fs::read_to_string(container.join("cgroup.controllers"))
                .map_err(|e| format!("cannot read {}/cgroup.controllers: {e}", container.display()))?;
            let wanted: Vec<&str> = ["cpu", "memory"]
                .into_iter()
                .filter(|c| offered.split_whitespace().any(|o| o == *c))
                .collect();
            if wanted.is_empty() {
                return Err(format!(
                    "cgroup v2 at {} offers neither cpu nor memory (controllers: {:?})",
                    container.display(),
                    offered.trim()
                ));
            }
            let enable: String = wanted.iter().map(|c| format!("+{c} ")).collect();
            enable_controllers(container, enable.trim())?;
            fs::create_dir_all(&parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            enable_controllers(&parent, enable.trim())
        };
        match prepare() {
            Ok(()) => Cgroups {
                layout: Ok(Layout::V2 { parent }),
                observer: ObserverSlot::default(),
            },
            Err(reason) => Cgroups::disabled(reason),
        }
    }

    /// No cgroups; jobs run without limits and report `not enforced: <reason>`.
    pub fn disabled(reason: impl Into<String>) -> Cgroups {
        Cgroups {
            layout: Err(reason.into()),
            observer: ObserverSlot::default(),
        }
    }

    /// The hierarchy in use, or `None` when disabled.
    pub fn mode(&self) -> Option<CgroupMode> {
        match &self.layout {
            Ok(Layout::V1 { .. }) => Some(CgroupMode::V1),
            Ok(Layout::V2 { .. }) => Some(CgroupMode::V2),
            Err(_) => None,
        }
    }

    /// Removes job groups left behind by agents that died (a killed agent cannot remove the
    /// group of the job it ran): empty groups older than `min_age`, never `edge-*` groups
    /// (the edge wrapper's, which `watch` and operators own). The age keeps a group another
    /// agent on this host just created, and not yet filled, safe. Returns how many were
    /// removed.
    pub fn remove_stale(&self, min_age: Duration) -> usize {
        let parents: Vec<&PathBuf> = match &self.layout {
            Ok(Layout::V1 { cpu, cpuacct, memory }) => [cpu, cpuacct, memory].into_iter().flatten().collect(),
            Ok(Layout::V2 { parent }) => vec![parent],
            Err(_) => return 0,
        };
        let mut removed = 0;
        for parent in parents {
            let Ok(entries) = fs::read_dir(parent) else { continue };
            for entry in entries.flatten() {
                let dir = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if !dir.is_dir() || name.starts_with("edge-") {
                    continue;
                }
                let old_enough = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age);
                let empty = fs::read_to_string(dir.join("cgroup.procs")).is_ok_and(|t| t.trim().is_empty());
                if old_enough && empty && fs::remove_dir(&dir).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Why job cgroups are unavailable, or `None` when they are available.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.layout.as_ref().err().map(String::as_str)
    }

    /// Whether the memory controller is available (v1 hierarchy present, or v2).
    pub fn has_memory(&self) -> bool {
        match &self.layout {
            Ok(Layout::V1 { memory, .. }) => memory.is_some(),
            Ok(Layout::V2 { parent }) => controller_enabled(parent, "memory"),
            Err(_) => false,
        }
    }

    /// Whether the CPU controller is available.
    pub fn has_cpu(&self) -> bool {
        match &self.layout {
            Ok(Layout::V1 { cpu, .. }) => cpu.is_some(),
            Ok(Layout::V2 { parent }) => controller_enabled(parent, "cpu"),
            Err(_) => false,
        }
    }

    /// The same support, with `observer` told about every group created from now on.
    pub fn with_observer(mut self, observer: Arc<dyn CgroupObserver>) -> Cgroups {
        self.observer = ObserverSlot(Some(observer));
        self
    }

    /// Creates the group `name` (a single path component, e.g. `<job>-a<attempt>`) and applies
    /// `limits` (`max_cpu_percent`, `max_memory_mb`), reading each one back. A stale group of
    /// the same name is emptied and replaced. On error nothing is left behind.
    pub fn create(&self, name: &str, limits: &ResourceLimits) -> Result<JobCgroup, ExecError> {
        self.create_group(name, limits, true)
    }

    /// Like [`Cgroups::create`], but a group of that name that already exists is an error
    /// (`AlreadyExists`) and is left untouched: for groups of processes that are not ours,
    /// whose existing group must never be emptied by killing.
    pub fn create_exclusive(&self, name: &str, limits: &ResourceLimits) -> Result<JobCgroup, ExecError> {
        self.create_group(name, limits, false)
    }

    fn create_group(&self, name: &str, limits: &ResourceLimits, replace: bool) -> Result<JobCgroup, ExecError> {
        let layout = self
            .layout
            .as_ref()
            .map_err(|reason| ExecError::NodeUnavailable(format!("no job cgroups: {reason}")))?;
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            return Err(ExecError::InvalidParameter(format!("bad cgroup name {name:?}")));
        }
        let mut cg = match layout {
            Layout::V1 { cpu, cpuacct, memory } => JobCgroup {
                mode: CgroupMode::V1,
                cpu: cpu.as_ref().map(|p| p.join(name)),
                acct: cpuacct.as_ref().or(cpu.as_ref()).map(|p| p.join(name)),
                memory: memory.as_ref().map(|p| p.join(name)),
                dirs: Vec::new(),
                enforced: None,
                name: name.to_string(),
                observer: ObserverSlot::default(),
            },
            Layout::V2 { parent } => {
                let dir = parent.join(name);
                JobCgroup {
                    mode: CgroupMode::V2,
                    cpu: Some(dir.clone()),
                    acct: Some(dir.clone()),
                    memory: Some(dir),
                    dirs: Vec::new(),
                    enforced: None,
                    name: name.to_string(),
                    observer: ObserverSlot::default(),
                }
            }
        };
        let mut dirs: Vec<PathBuf> = [&cg.cpu, &cg.acct, &cg.memory].into_iter().flatten().cloned().collect();
        dirs.sort();
        dirs.dedup();
        for dir in dirs {
            if dir.exists() {
                if !replace {
                    return Err(ExecError::Cgroup {
                        op: "create",
                        path: dir,
                        source: io::Error::new(io::ErrorKind::AlreadyExists, "the group already exists"),
                    });
                }
                kill_pids_in(&dir);
                let _ = fs::remove_dir(&dir);
            }
            match fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(ExecError::Cgroup {
                        op: "create",
                        path: dir,
                        source,
                    })
                }
            }
            cg.dirs.push(dir);
        }
        cg.apply(limits)?;
        if let Some(observer) = &self.observer.0 {
            observer.created(name, &cg.observed());
            cg.observer = self.observer.clone();
        }
        Ok(cg)
    }
}

/// One job attempt's cgroup (a directory per hierarchy). Remove it with
/// [`JobCgroup::remove`] once the workload has exited; dropping it makes one best-effort
/// attempt.
#[derive(Debug)]
pub struct JobCgroup {
    mode: CgroupMode,
    cpu: Option<PathBuf>,
    acct: Option<PathBuf>,
    memory: Option<PathBuf>,
    dirs: Vec<PathBuf>,
    enforced: Option<String>,
    name: String,
    observer: ObserverSlot,
}

impl JobCgroup {
    /// The directory whose CPU accounting counts this group (v1 `cpuacct`, v2 the group).
    pub fn cpu_accounting_dir(&self) -> Option<&Path> {
        self.acct.as_deref()
    }

    /// The group's paths, as its [`CgroupObserver`] sees them.
    pub fn observed(&self) -> CgroupPaths {
        CgroupPaths::new(self.acct.clone(), self.dirs.clone())
    }

    /// Tells the observer, once, that the group is going away.
    fn notify_removing(&mut self) {
        if let Some(observer) = self.observer.0.take() {
            observer.removing(&self.name, &self.observed());
        }
    }

    /// Gives the group up because the workload could not join it: the observer is told
    /// [`abandoned`](CgroupObserver::abandoned) (not `removing`), then the group is removed as on
    /// drop.
    pub fn abandon(mut self) {
        if let Some(observer) = self.observer.0.take() {
            observer.abandoned(&self.name, &self.observed());
        }
    }

    /// The hierarchy.
    pub fn mode(&self) -> CgroupMode {
        self.mode
    }

    /// The directories of this group (one per v1 hierarchy, one on v2).
    pub fn paths(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// What was enforced, e.g. `cgroup v1 cpu=50% memory=100MiB`; `None` when no limit was
    /// requested (the group then only accounts CPU time and contains the workload).
    pub fn enforced(&self) -> Option<&str> {
        self.enforced.as_deref()
    }

    /// Opens every `cgroup.procs` of the group for writing, so that a child can join between
    /// fork and exec with a plain `write(fd, "0")` (see [`crate::supervise::ProcessSpec::join`]).
    pub fn join_files(&self) -> Result<Vec<File>, ExecError> {
        self.dirs
            .iter()
            .map(|d| {
                let path = d.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| ExecError::Cgroup {
                        op: "open",
                        path,
                        source,
                    })
            })
            .collect()
    }

    /// Process ids currently in the group (any hierarchy).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = self.dirs.iter().flat_map(|d| read_pids(d)).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// OOM kills inside the group: v1 `oom_kill` of `memory.oom_control`, v2 `oom_kill` of
    /// `memory.events`. 0 without a memory controller.
    pub fn oom_kills(&self) -> u64 {
        let Some(mem) = &self.memory else { return 0 };
        let file = match self.mode {
            CgroupMode::V1 => "memory.oom_control",
            CgroupMode::V2 => "memory.events",
        };
        fs::read_to_string(mem.join(file))
            .ok()
            .and_then(|text| keyed_u64(&text, "oom_kill"))
            .unwrap_or(0)
    }

    /// CPU time used by the group so far: v1 `cpuacct.usage`, v2 `usage_usec` of `cpu.stat`.
    pub fn cpu_usage(&self) -> Option<Duration> {
        let acct = self.acct.as_ref()?;
        match self.mode {
            CgroupMode::V1 => fs::read_to_string(acct.join("cpuacct.usage"))
                .ok()?
                .trim()
                .parse()
                .ok()
                .map(Duration::from_nanos),
            CgroupMode::V2 => {
                keyed_u64(&fs::read_to_string(acct.join("cpu.stat")).ok()?, "usage_usec").map(Duration::from_micros)
            }
        }
    }

    /// CFS throttling so far as `(nr_periods, nr_throttled)` from the CPU controller's
    /// `cpu.stat`; `None` without a CPU controller.
    pub fn cpu_throttling(&self) -> Option<(u64, u64)> {
        let text = fs::read_to_string(self.cpu.as_ref()?.join("cpu.stat")).ok()?;
        Some((keyed_u64(&text, "nr_periods")?, keyed_u64(&text, "nr_throttled")?))
    }

    /// Sends SIGKILL to every process in the group (v2: through `cgroup.kill` where present).
    pub fn kill_all(&self) {
        for dir in &self.dirs {
            kill_pids_in(dir);
        }
    }

    /// Kills what is left in the group and removes its directories, retrying for up to two
    /// seconds while exiting tasks drain.
    pub async fn remove(self) -> Result<(), ExecError> {
        // The observer may block (a final GPU reading can stall): keep it off the async workers.
        if self.observer.0.is_none() {
            return self.remove_dirs().await;
        }
        let path = self.dirs.first().cloned().unwrap_or_default();
        let notified = tokio::task::spawn_blocking(move || {
            let mut cg = self;
            cg.notify_removing();
            cg
        })
        .await;
        match notified {
            Ok(cg) => cg.remove_dirs().await,
            // The group was dropped with the task, which removed what it could.
            Err(e) => Err(ExecError::Cgroup {
                op: "remove",
                path,
                source: io::Error::other(format!("the cgroup observer failed: {e}")),
            }),
        }
    }

    /// Removes the directories (the observer has been told), retrying while tasks drain.
    async fn remove_dirs(mut self) -> Result<(), ExecError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            match self.try_remove() {
                Ok(()) => return Ok(()),
                Err((path, source)) if tokio::time::Instant::now() >= deadline => {
                    return Err(ExecError::Cgroup {
                        op: "remove",
                        path,
                        source,
                    })
                }
                Err(_) => {
                    self.kill_all();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn try_remove(&mut self) -> Result<(), (PathBuf, io::Error)> {
        let mut failed = None;
        self.dirs.retain(|dir| match fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                failed.get_or_insert((dir.clone(), e));
                true
            }
        });
        failed.map_or(Ok(()), Err)
    }

    fn apply(&mut self, limits: &ResourceLimits) -> Result<(), ExecError> {
        let mut parts = Vec::new();
        if let Some(pct) = limits.max_cpu_percent {
            let dir = self.cpu.clone().ok_or_else(|| missing("cpu"))?;
            let quota = u64::from(pct) * CPU_PERIOD_US / 100;
            match self.mode {
                CgroupMode::V1 => {
                    write_checked(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write_checked(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
                }
                CgroupMode::V2 => write_checked(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?,
            }
            parts.push(format!("cpu={pct}%"));
        }
        if let Some(mb) = limits.max_memory_mb {
            let dir = self.memory.clone().ok_or_else(|| missing("memory"))?;
            let bytes = mb.saturating_mul(1024 * 1024).to_string();
            match self.mode {
                CgroupMode::V1 => {
                    write_checked(&dir.join("memory.limit_in_bytes"), &bytes)?;
                    // Without swap accounting the file is absent; then there is nothing to cap.
                    let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &bytes);
                }
                CgroupMode::V2 => {
                    write_checked(&dir.join("memory.max"), &bytes)?;
                    let _ = fs::write(dir.join("memory.swap.max"), "0");
                }
            }
            parts.push(format!("memory={mb}MiB"));
        }
        if !parts.is_empty() {
            self.enforced = Some(format!("cgroup {} {}", self.mode.label(), parts.join(" ")));
        }
        Ok(())
    }
}

impl Drop for JobCgroup {
    /// Tells the observer (if [`remove`](JobCgroup::remove) did not) on the dropping thread, which
    /// may block it for a final reading: drop cannot hand that to a blocking thread.
    fn drop(&mut self) {
        self.notify_removing();
        if !self.dirs.is_empty() {
            self.kill_all();
            let _ = self.try_remove();
        }
    }
}

fn missing(controller: &str) -> ExecError {
    ExecError::NodeUnavailable(format!("no {controller} controller in the job cgroup"))
}

/// Writes `value` and reads it back; v2 `cpu.max` reads back as written, and memory limits in
/// whole MiB are page-aligned so they read back exactly.
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

fn read_pids(dir: &Path) -> Vec<i32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

fn kill_pids_in(dir: &Path) {
    if fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let me = std::process::id() as i32;
    for pid in read_pids(dir) {
        if pid > 0 && pid != me {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// `key N` from a flat-keyed cgroup file.
fn keyed_u64(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn controller_enabled(dir: &Path, controller: &str) -> bool {
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .map(|t| t.split_whitespace().any(|c| c == controller))
        .unwrap_or(false)
}

fn enable_controllers(dir: &Path, enable: &str) -> Result<(), String> {
    let path = dir.join("cgroup.subtree_control");
    let wanted: Vec<&str> = enable.split_whitespace().map(|c| c.trim_start_matches('+')).collect();
    if wanted.iter().all(|c| controller_enabled(dir, c)) {
        return Ok(());
    }
    fs::write(&path, enable).map_err(|e| format!("cannot enable {enable} in {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(keyed_u64(oom, "oom_kill"), Some(1));
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_u64(events, "oom_kill"), Some(2));
        assert_eq!(keyed_u64("usage_usec 1500\nuser_usec 1000\n", "usage_usec"), Some(1500));
        assert_eq!(keyed_u64("", "oom_kill"), None);
    }

    #[test]
    fn v1_in_a_plain_directory_writes_and_reads_back() {
        // A tmpfs-like directory stands in for cgroupfs: files are created on write.
        let root = tempfile::tempdir().unwrap();
        let cg = Cgroups::v1(Some(root.path().join("cpu")), None, Some(root.path().join("mem")));
        assert_eq!(cg.mode(), Some(CgroupMode::V1));
        let limits = ResourceLimits {
            max_cpu_percent: Some(150),
            max_memory_mb: Some(64),
            ..Default::default()
        };
        let job = cg.create("job-a1", &limits).unwrap();
        assert_eq!(job.enforced(), Some("cgroup v1 cpu=150% memory=64MiB"));
        let cpu = root.path().join("cpu/job-a1");
        assert_eq!(fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(), "150000");
        assert_eq!(
            fs::read_to_string(root.path().join("mem/job-a1/memory.limit_in_bytes")).unwrap(),
            "67108864"
        );
        assert_eq!(job.oom_kills(), 0);
        assert_eq!(job.paths().len(), 2);
        assert!(cg.create("../x", &limits).is_err());
        let none = cg.create("job-a2", &ResourceLimits::default()).unwrap();
        assert_eq!(none.enforced(), None);
        assert!(Cgroups::disabled("nope").create("x", &limits).is_err());
    }

    /// Records what it is told, and on which thread.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<(&'static str, String, std::thread::ThreadId)>>);

    impl Recorder {
        fn push(&self, event: &'static str, name: &str) {
            self.0
                .lock()
                .unwrap()
                .push((event, name.to_string(), std::thread::current().id()));
        }
        fn events(&self) -> Vec<(&'static str, String)> {
            self.0.lock().unwrap().iter().map(|(e, n, _)| (*e, n.clone())).collect()
        }
    }

    impl CgroupObserver for Recorder {
        fn created(&self, name: &str, _cgroup: &CgroupPaths) {
            self.push("created", name);
        }
        fn removing(&self, name: &str, _cgroup: &CgroupPaths) {
            self.push("removing", name);
        }
        fn abandoned(&self, name: &str, _cgroup: &CgroupPaths) {
            self.push("abandoned", name);
        }
    }

    #[tokio::test]
    async fn remove_tells_the_observer_off_the_async_thread_and_abandon_says_abandoned() {
        let root = tempfile::tempdir().unwrap();
        let recorder = Arc::new(Recorder::default());
        let cg = Cgroups::v1(Some(root.path().join("cpu")), None, None).with_observer(recorder.clone());
        let limits = ResourceLimits::default();
        cg.create("job-a1", &limits).unwrap().remove().await.unwrap();
        cg.create("job-a2", &limits).unwrap().abandon();
        assert_eq!(
            recorder.events(),
            [
                ("created", "job-a1".to_string()),
                ("removing", "job-a1".to_string()),
                ("created", "job-a2".to_string()),
                ("abandoned", "job-a2".to_string()),
            ]
        );
        let here = std::thread::current().id();
        let removing_thread = recorder.0.lock().unwrap()[1].2;
        assert_ne!(removing_thread, here, "removing ran on a blocking thread");
        // (Only the removed one: abandoning kills through `cgroup.kill`, a plain file here.)
        assert!(!root.path().join("cpu/job-a1").exists());
    }
}
