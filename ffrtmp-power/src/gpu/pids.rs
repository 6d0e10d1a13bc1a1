//! [`PidMap`]: which running job each GPU process belongs to, remembered across readings so that
//! a process's last samples, which NVML reports after it has exited, still go to its job.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{GpuReading, ProcessJobs};

/// At most this many processes are remembered as belonging to running jobs. Beyond it, a process
/// not yet remembered is looked up again at every reading instead: while it runs it is still
/// charged to its job, but samples reported after it has exited go to "other".
pub(super) const MAX_REMEMBERED_PIDS: usize = 4096;

/// A remembered process not seen for this long (in a job's process list or a GPU sample) is
/// forgotten: NVML reports a process's samples within about a second of taking them.
const FORGET_AFTER: Duration = Duration::from_secs(30);

/// A job run: its key and the number [`GpuSampler`](super::GpuSampler) gave this run of it, so a
/// key started again is a different run.
pub(super) type JobRun = (String, u64);

#[derive(Debug)]
struct Known {
    /// The process's start time when it was remembered (`None`: could not be read).
    start: Option<u64>,
    job: JobRun,
    seen: Instant,
}

/// Processes known to belong to running jobs, by pid, with their start times so that a reused pid
/// is not taken for the process remembered under it.
#[derive(Debug, Default)]
pub(super) struct PidMap {
    known: HashMap<u32, Known>,
}

impl PidMap {
    /// The running job of every process in `readings` and in `held` (processes whose earlier
    /// shares are still used); processes of no running job are left out. `running` maps each
    /// running job's key to its run number. First learns every running job's current processes
    /// from [`ProcessJobs::job_processes`], so that a process that exits before NVML reports it
    /// is still known.
    pub(super) fn resolve(
        &mut self,
        processes: &dyn ProcessJobs,
        readings: &[GpuReading],
        held: &[u32],
        running: &HashMap<String, u64>,
        now: Instant,
    ) -> HashMap<u32, JobRun> {
        self.known.retain(|_, k| {
            running.get(&k.job.0) == Some(&k.job.1) && now.saturating_duration_since(k.seen) < FORGET_AFTER
        });
        for (pid, job) in processes.job_processes() {
            let Some(&run) = running.get(&job) else { continue };
            match self.known.get_mut(&pid) {
                // Still in its job: no need to read its start time again.
                Some(k) if k.job.0 == job && k.job.1 == run => k.seen = now,
                _ => self.remember(pid, processes.start_time(pid), (job, run), now),
            }
        }
        let mut jobs = HashMap::new();
        let sampled = readings
            .iter()
            .flat_map(|r| r.processes.iter().flatten())
            .map(|p| p.pid);
        for pid in sampled.chain(held.iter().copied()) {
            if jobs.contains_key(&pid) {
                continue;
            }
            if let Some(job) = self.lookup(processes, pid, running, now) {
                jobs.insert(pid, job);
            }
        }
        jobs
    }

    /// Forgets the processes of the job `key` (it finished).
    pub(super) fn forget_job(&mut self, key: &str) {
        self.known.retain(|_, k| k.job.0 != key);
    }

    /// How many processes are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.known.len()
    }

    fn lookup(
        &mut self,
        processes: &dyn ProcessJobs,
        pid: u32,
        running: &HashMap<String, u64>,
        now: Instant,
    ) -> Option<JobRun> {
        let start = processes.start_time(pid);
        if let Some(k) = self.known.get_mut(&pid) {
            // The same process, or one that has exited (its late samples are its job's). A
            // different start time means the pid now names another process: look it up afresh.
            if start.is_none() || start == k.start {
                k.seen = now;
                return Some(k.job.clone());
            }
            self.known.remove(&pid);
        }
        let job = processes.job_of(pid)?;
        let run = *running.get(&job)?;
        let job = (job, run);
        self.remember(pid, start, job.clone(), now);
        Some(job)
    }

    /// Remembers `pid` as `job`'s while there is room; beyond [`MAX_REMEMBERED_PIDS`] it is looked
    /// up at every reading instead.
    fn remember(&mut self, pid: u32, start: Option<u64>, job: JobRun, now: Instant) {
        if self.known.len() < MAX_REMEMBERED_PIDS || self.known.contains_key(&pid) {
            self.known.insert(pid, Known { start, job, seen: now });
        }
    }
}
