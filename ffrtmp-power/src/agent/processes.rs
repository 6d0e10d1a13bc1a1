//! Which job a GPU process belongs to, from cgroup membership: the executor runs every workload
//! in a per-job cgroup named by `ffrtmp_exec::job_cgroup_name`; the kernel lists each group's
//! processes in its `cgroup.procs` and a process's cgroups in `/proc/<pid>/cgroup`.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};

use crate::ProcessJobs;

/// Maps process ids to the running job cgroups (by name) that hold them: every running job's
/// processes from its groups' `cgroup.procs` ([`ProcessJobs::job_processes`], read at every GPU
/// reading), any other process from `<proc root>/<pid>/cgroup`, and start times from
/// `<proc root>/<pid>/stat` to tell a reused pid from an earlier process.
///
/// Pids are those of the PID namespace of the `/proc` read (and of the reader of `cgroup.procs`),
/// while NVML reports host pids: the agent must run in the host's PID namespace for GPU
/// processes to be found.
///
/// ```
/// use ffrtmp_power::agent::CgroupProcessJobs;
/// use ffrtmp_power::ProcessJobs;
///
/// let root = tempfile::tempdir().unwrap();
/// let proc_root = root.path().join("proc");
/// std::fs::create_dir_all(proc_root.join("4242")).unwrap();
/// std::fs::write(proc_root.join("4242/cgroup"), "0::/system.slice/ffrtmp/job-1-a1\n").unwrap();
/// let group = root.path().join("ffrtmp/job-1-a1");
/// std::fs::create_dir_all(&group).unwrap();
/// std::fs::write(group.join("cgroup.procs"), "4242\n4250\n").unwrap();
/// let jobs = CgroupProcessJobs::new(&proc_root);
/// jobs.add("job-1-a1", &[group]);
/// assert_eq!(jobs.job_of(4242).as_deref(), Some("job-1-a1"));
/// assert_eq!(jobs.job_of(4243), None); // no such process
/// let mut listed = jobs.job_processes();
/// listed.sort();
/// assert_eq!(listed, [(4242, "job-1-a1".to_string()), (4250, "job-1-a1".to_string())]);
/// ```
#[derive(Debug)]
pub struct CgroupProcessJobs {
    proc_root: PathBuf,
    /// Running job cgroups: name → the group's directories (one per v1 hierarchy, one on v2).
    jobs: RwLock<HashMap<String, Vec<PathBuf>>>,
}

impl CgroupProcessJobs {
    /// A map reading processes under `proc_root` (`/proc` on a live system).
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        CgroupProcessJobs {
            proc_root: proc_root.into(),
            jobs: RwLock::new(HashMap::new()),
        }
    }

    /// The job cgroup `name` exists, with directories `dirs`: its processes now map to it.
    pub fn add(&self, name: &str, dirs: &[PathBuf]) {
        self.jobs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string(), dirs.to_vec());
    }

    /// The job cgroup `name` is going away.
    pub fn remove(&self, name: &str) {
        self.jobs.write().unwrap_or_else(PoisonError::into_inner).remove(name);
    }
}

impl ProcessJobs for CgroupProcessJobs {
    fn job_of(&self, pid: u32) -> Option<String> {
        // A process that has exited (or a pid of another PID namespace) has no file: no job.
        let text = fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        let jobs = self.jobs.read().unwrap_or_else(PoisonError::into_inner);
        job_in_cgroup_file(&text, |name| jobs.contains_key(name))
    }

    fn job_processes(&self) -> Vec<(u32, String)> {
        let jobs = self.jobs.read().unwrap_or_else(PoisonError::into_inner);
        let mut found = Vec::new();
        for (name, dirs) in jobs.iter() {
            // A workload joins every directory of its group; v1 lists it once per hierarchy.
            let mut pids: Vec<u32> = dirs
                .iter()
                .filter_map(|dir| fs::read_to_string(dir.join("cgroup.procs")).ok())
                .flat_map(|text| parse_pids(&text).collect::<Vec<_>>())
                .collect();
            pids.sort_unstable();
            pids.dedup();
            found.extend(pids.into_iter().map(|pid| (pid, name.clone())));
        }
        found
    }

    fn start_time(&self, pid: u32) -> Option<u64> {
        let text = fs::read_to_string(self.proc_root.join(pid.to_string()).join("stat")).ok()?;
        stat_start_time(&text)
    }
}

/// The pids of a `cgroup.procs` file, one per line (lines that are not pids are skipped).
fn parse_pids(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.lines().filter_map(|line| line.trim().parse().ok())
}

/// A process's start time, clock ticks after boot: field 22 of a `/proc/<pid>/stat` file. The
/// command name (field 2) is in parentheses and may hold spaces and parentheses itself, so fields
/// are counted after the last `)`.
///
/// ```
/// use ffrtmp_power::agent::stat_start_time;
/// let stat = "4242 (ffmpeg (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 12 3 0 0 20 0 4 0 98765 1000 50";
/// assert_eq!(stat_start_time(stat), Some(98765));
/// assert_eq!(stat_start_time("4242 (ffmpeg) S 1"), None);
/// ```
pub fn stat_start_time(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    // `rest` starts at field 3 (state): field 22 is the 20th.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The job cgroup named in a `/proc/<pid>/cgroup` file, if any: the deepest path component, in
/// any hierarchy (v1 lines `4:cpu,cpuacct:/ffrtmp/<name>`, v2 `0::/…/ffrtmp/<name>`), for which
/// `is_job` holds. Components are matched whole, wherever the agent's own cgroup puts the
/// `ffrtmp` parent; nested groups a workload makes below its job's still count as that job.
///
/// ```
/// use ffrtmp_power::agent::job_in_cgroup_file;
/// let v1 = "12:memory:/ffrtmp/j-a2\n4:cpu,cpuacct:/ffrtmp/j-a2\n1:name=systemd:/user.slice\n";
/// assert_eq!(job_in_cgroup_file(v1, |n| n == "j-a2").as_deref(), Some("j-a2"));
/// assert_eq!(job_in_cgroup_file("0::/user.slice/session-1.scope\n", |n| n == "j-a2"), None);
/// ```
pub fn job_in_cgroup_file(text: &str, is_job: impl Fn(&str) -> bool) -> Option<String> {
    text.lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .find_map(|path| path.trim().rsplit('/').find(|c| !c.is_empty() && is_job(c)))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_tree(entries: &[(u32, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (pid, cgroup) in entries {
            let dir = root.path().join(pid.to_string());
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("cgroup"), cgroup).unwrap();
        }
        root
    }

    #[test]
    fn processes_map_to_the_running_job_whose_cgroup_holds_them() {
        let root = proc_tree(&[
            // cgroup v1: the job's group in several hierarchies.
            (
                100,
                "12:memory:/ffrtmp/job-a-a1\n5:cpuacct:/ffrtmp/job-a-a1\n4:cpu:/ffrtmp/job-a-a1\n\
                 1:name=systemd:/system.slice/ffrtmp-agent.service\n",
            ),
            // cgroup v2, below the agent's own group, in a group the workload made itself.
            (200, "0::/system.slice/ffrtmp-agent.service/ffrtmp/job-b-a3/worker\n"),
            // Not a job: the desktop's compositor.
            (300, "0::/user.slice/user-1000.slice/session-2.scope\n"),
            // A job that is not running (any more): not matched.
            (400, "0::/ffrtmp/job-old-a1\n"),
            // Garbage does not panic.
            (500, "not a cgroup file\n::\n"),
        ]);
        let jobs = CgroupProcessJobs::new(root.path());
        jobs.add("job-a-a1", &[]);
        jobs.add("job-b-a3", &[]);
        assert_eq!(jobs.job_of(100).as_deref(), Some("job-a-a1"));
        assert_eq!(jobs.job_of(200).as_deref(), Some("job-b-a3"));
        assert_eq!(jobs.job_of(300), None);
        assert_eq!(jobs.job_of(400), None);
        assert_eq!(jobs.job_of(500), None);
        assert_eq!(jobs.job_of(600), None, "no such process");
        jobs.remove("job-a-a1");
        assert_eq!(jobs.job_of(100), None, "a finished job no longer claims processes");
    }

    #[test]
    fn names_match_whole_components_only() {
        let is_job = |n: &str| n == "job-a1";
        assert_eq!(job_in_cgroup_file("0::/ffrtmp/job-a10\n", is_job), None);
        assert_eq!(job_in_cgroup_file("0::/ffrtmp/xjob-a1\n", is_job), None);
        assert_eq!(
            job_in_cgroup_file("0::/ffrtmp/job-a1\n", is_job).as_deref(),
            Some("job-a1")
        );
        assert_eq!(job_in_cgroup_file("", is_job), None);
    }

    #[test]
    fn job_processes_come_from_every_directory_of_each_running_group() {
        let root = tempfile::tempdir().unwrap();
        let dir = |path: &str, procs: &str| {
            let d = root.path().join(path);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("cgroup.procs"), procs).unwrap();
            d
        };
        // cgroup v1: the same processes in two hierarchies, one more in a third.
        let a = [dir("cpu/job-a", "10\n11\n"), dir("memory/job-a", "11\n10\n12\n")];
        let b = [dir("unified/job-b", "20\nnot a pid\n\n")];
        let jobs = CgroupProcessJobs::new(root.path().join("proc"));
        jobs.add("job-a", &a);
        jobs.add("job-b", &b);
        // A group whose directory is gone lists nothing.
        jobs.add("job-c", &[root.path().join("cpu/job-c")]);
        let mut listed = jobs.job_processes();
        listed.sort();
        let job = |pid, name: &str| (pid, name.to_string());
        assert_eq!(
            listed,
            [job(10, "job-a"), job(11, "job-a"), job(12, "job-a"), job(20, "job-b")]
        );
        jobs.remove("job-a");
        assert_eq!(jobs.job_processes(), [job(20, "job-b")]);
    }

    #[test]
    fn start_times_come_from_proc_stat_and_nonsense_gives_none() {
        let root = tempfile::tempdir().unwrap();
        let fields: Vec<String> = (3..=30).map(|f| f.to_string()).collect();
        for (pid, stat) in [
            (1, format!("1 (a) b) {}", fields.join(" "))),
            (2, "2 (short) S 1 2".to_string()),
            (3, "no parenthesis".to_string()),
        ] {
            let dir = root.path().join(pid.to_string());
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("stat"), stat).unwrap();
        }
        let jobs = CgroupProcessJobs::new(root.path());
        assert_eq!(jobs.start_time(1), Some(22), "field 22, counted after the last `)`");
        assert_eq!(
            (jobs.start_time(2), jobs.start_time(3), jobs.start_time(4)),
            (None, None, None)
        );
    }

    /// The real kernel path: a process put into a job cgroup made by the executor's `Cgroups`
    /// is found through `/proc` and listed from the group's `cgroup.procs`. Needs writable job
    /// cgroups (root, cgroup v1 or v2): fails, saying why, where there are none, unless
    /// `FFRTMP_SKIP_CGROUP_TESTS=1`.
    #[test]
    fn a_process_in_a_real_job_cgroup_is_found_through_proc_and_cgroup_procs() {
        use ffrtmp_exec::Cgroups;
        let cgroups = Cgroups::detect();
        if let Some(reason) = cgroups.unavailable_reason() {
            if std::env::var("FFRTMP_SKIP_CGROUP_TESTS").as_deref() == Ok("1") {
                eprintln!("skipped (FFRTMP_SKIP_CGROUP_TESTS=1): no job cgroups here ({reason})");
                return;
            }
            panic!(
                "this test needs writable job cgroups (root, with cgroup v1 cpu/memory or cgroup v2), but there \
                 are none here: {reason}; set FFRTMP_SKIP_CGROUP_TESTS=1 to skip it"
            );
        }
        let name = format!("test-gpu-pids-{}", std::process::id());
        let group = cgroups.create(&name, &ffrtmp_core::ResourceLimits::default()).unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let moved: Result<(), std::io::Error> = group
            .paths()
            .iter()
            .try_for_each(|dir| fs::write(dir.join("cgroup.procs"), child.id().to_string()));
        let jobs = CgroupProcessJobs::new("/proc");
        jobs.add(&name, group.paths());
        let found = jobs.job_of(child.id());
        let listed = jobs.job_processes();
        let start = jobs.start_time(child.id());
        let own = jobs.job_of(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        let gone = jobs.start_time(child.id());
        drop(group);
        moved.unwrap();
        assert_eq!(found.as_deref(), Some(name.as_str()));
        assert_eq!(listed, [(child.id(), name.clone())]);
        assert!(start.is_some_and(|ticks| ticks > 0), "{start:?}");
        assert_eq!(gone, None, "an exited (and reaped) process has no start time");
        assert_eq!(own, None, "the test process is in no job cgroup");
    }
}
