//! The seam between whatever creates job cgroups (the executor in `ffrtmp-exec`) and whatever
//! measures through them (the per-job energy meter in `ffrtmp-power`): the two only share these
//! paths, so neither crate depends on the other.

use std::path::{Path, PathBuf};

/// Where a job cgroup lives: the directory that accounts its CPU time and every directory of
/// the group (one per v1 hierarchy, one on v2).
///
/// ```
/// use std::path::{Path, PathBuf};
/// use ffrtmp_core::CgroupPaths;
/// let group = CgroupPaths::new(Some(PathBuf::from("/sys/fs/cgroup/ffrtmp/j-a1")), vec![PathBuf::from("/sys/fs/cgroup/ffrtmp/j-a1")]);
/// assert_eq!(group.cpu_accounting_dir(), Some(Path::new("/sys/fs/cgroup/ffrtmp/j-a1")));
/// assert_eq!(group.paths().len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupPaths {
    cpu_accounting: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl CgroupPaths {
    /// A group whose CPU time `cpu_accounting` counts (v1 `cpuacct`, v2 the group itself; `None`
    /// without CPU accounting) and whose directories are `dirs`.
    pub fn new(cpu_accounting: Option<PathBuf>, dirs: Vec<PathBuf>) -> Self {
        CgroupPaths { cpu_accounting, dirs }
    }

    /// The directory whose CPU accounting counts this group (v1 `cpuacct`, v2 the group).
    pub fn cpu_accounting_dir(&self) -> Option<&Path> {
        self.cpu_accounting.as_deref()
    }

    /// The directories of this group (one per v1 hierarchy, one on v2).
    pub fn paths(&self) -> &[PathBuf] {
        &self.dirs
    }
}

/// Told when job cgroups come and go: e.g. an energy sampler that attributes power by each
/// group's CPU time starts reading a group when it is created and takes its final reading
/// just before it is removed. `name` is the group's name, the job attempt's
/// [`AttemptKey`](crate::AttemptKey) (`<job id>-a<attempt>`).
pub trait CgroupObserver: Send + Sync {
    /// The group `name` exists and has its limits; the workload has not started yet.
    fn created(&self, name: &str, cgroup: &CgroupPaths);
    /// The group's workload has ended and the group is about to be removed. May block (e.g. on
    /// a final power reading): callers call it on a blocking thread.
    fn removing(&self, name: &str, cgroup: &CgroupPaths);
    /// The workload could not join the group and runs (or ran) outside it: what was measured
    /// through the group is not the job's. Called instead of [`removing`](Self::removing); the
    /// group is removed next. Does nothing unless implemented.
    fn abandoned(&self, name: &str, cgroup: &CgroupPaths) {
        let _ = (name, cgroup);
    }
}
