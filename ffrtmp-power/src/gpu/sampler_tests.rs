//! The [`GpuSampler`] with a fake meter and fake processes: pid → job mapping over time, locks,
//! failures and the reading thread.

use super::test_support::{close, jobs, reading};
use super::*;
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A GPU meter moved by hand, which signals every read.
struct FakeMeter {
    state: Mutex<(Result<Vec<GpuReading>, PowerError>, u64)>,
    read: Condvar,
}

impl FakeMeter {
    fn new(readings: Vec<GpuReading>) -> Arc<Self> {
        Arc::new(FakeMeter {
            state: Mutex::new((Ok(readings), 0)),
            read: Condvar::new(),
        })
    }

    fn set(&self, readings: Result<Vec<GpuReading>, PowerError>) {
        self.state.lock().unwrap().0 = readings;
    }
}

impl GpuMeter for FakeMeter {
    fn source_name(&self) -> &str {
        "fake-gpu"
    }
    fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
        let mut st = self.state.lock().unwrap();
        st.1 += 1;
        self.read.notify_all();
        st.0.clone()
    }
}

/// Answers from a map that the test can change (a process that exits is no longer found).
#[derive(Default)]
struct Lookup(Mutex<HashMap<u32, String>>);

impl ProcessJobs for Lookup {
    fn job_of(&self, pid: u32) -> Option<String> {
        self.0.lock().unwrap().get(&pid).cloned()
    }
}

#[test]
fn a_process_stays_its_jobs_after_it_exits_until_the_job_ends() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let lookup = Arc::new(Lookup::default());
    lookup.0.lock().unwrap().insert(7, "a".into());
    let sampler = GpuSampler::manual(meter.clone(), lookup.clone(), GpuSamplerConfig::default());
    sampler.job_started("a");
    meter.set(Ok(vec![reading("gpu-0", Some(10_000_000), None, &[(7, 100)])]));
    sampler.tick().unwrap();
    // The process has exited: /proc no longer knows it, but its last samples are still a's.
    lookup.0.lock().unwrap().clear();
    meter.set(Ok(vec![reading("gpu-0", Some(20_000_000), None, &[(7, 100)])]));
    sampler.tick().unwrap();
    let a = sampler.job_finished("a").unwrap();
    assert!(close(a.joules().unwrap(), 20.0), "{a:?}");
    // After the job, the pid is forgotten: a reused pid is not charged to it.
    sampler.job_started("b");
    meter.set(Ok(vec![reading("gpu-0", Some(30_000_000), None, &[(7, 100)])]));
    let i = sampler.tick().unwrap().unwrap();
    assert!(i.jobs.is_empty() && close(i.other_joules, 10.0), "{i:?}");
}

#[test]
fn unreadable_gpus_make_jobs_unavailable_never_zero() {
    let sampler = GpuSampler::unavailable(PowerError::Unavailable("no NVIDIA GPU found".into()));
    assert_eq!(sampler.source_name(), "unavailable");
    sampler.job_started("a");
    let a = sampler.job_finished("a").unwrap();
    assert_eq!(a.joules(), None);
    assert_eq!(
        a.unavailable,
        Some(PowerError::Unavailable("no NVIDIA GPU found".into()))
    );
    assert_eq!(
        sampler.unavailable_reason(),
        Some(PowerError::Unavailable("no NVIDIA GPU found".into()))
    );

    // GPUs present but never measurable (no counter, no power): unavailable with the reason.
    let mut blind = reading("gpu-0", None, None, &[]);
    blind.missing = vec!["power: no permission".into()];
    let meter = FakeMeter::new(vec![blind]);
    let sampler = GpuSampler::manual(meter, Arc::new(HashMap::new()), GpuSamplerConfig::default());
    sampler.job_started("a");
    let a = sampler.job_finished("a").unwrap();
    assert_eq!(a.joules(), None);
    assert!(
        matches!(&a.unavailable, Some(PowerError::Unavailable(r)) if r.contains("gpu-0: no energy counter; power: no permission")),
        "{a:?}"
    );
}

#[test]
fn a_failed_reading_is_covered_by_the_next_good_one() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let sampler = GpuSampler::manual(meter.clone(), Arc::new(jobs(&[(1, "a")])), GpuSamplerConfig::default());
    sampler.job_started("a");
    meter.set(Err(PowerError::Read("GPU 0 has fallen off the bus".into())));
    assert!(sampler.tick().is_err());
    meter.set(Ok(vec![reading("gpu-0", Some(30_000_000), None, &[(1, 100)])]));
    let a = sampler.job_finished("a").unwrap();
    assert!(
        close(a.joules().unwrap(), 30.0) && a.read_errors == 1 && !a.partial,
        "{a:?}"
    );
    let t = sampler.totals();
    assert_eq!((t.read_errors, t.ticks), (1, 3));
}

#[test]
fn the_thread_reads_at_its_rate_and_stops() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), Some(10.0), &[])]);
    let config = GpuSamplerConfig {
        interval: Duration::from_millis(5),
        ..GpuSamplerConfig::default()
    };
    let sampler = GpuSampler::start(meter.clone(), Arc::new(HashMap::new()), config);
    assert!(sampler.is_running());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut st = meter.state.lock().unwrap();
    while st.1 < 4 {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the GPU sampler thread did not read 3 times in 10 s");
        st = meter.read.wait_timeout(st, left).unwrap().0;
    }
    drop(st);
    sampler.stop();
    assert!(!sampler.is_running());
    let ticks = sampler.totals().ticks;
    assert!(ticks >= 4, "{ticks}");
    // Stopped means stopped: only explicit ticks read from now on.
    sampler.tick().unwrap();
    assert_eq!(sampler.totals().ticks, ticks + 1);
}

/// Processes the test starts and ends: pid → (start time, job), each listed as its job's (as
/// `cgroup.procs` would) while it runs.
#[derive(Default)]
struct Procs(Mutex<HashMap<u32, (u64, Option<String>)>>);

impl Procs {
    fn run(&self, pid: u32, start: u64, job: Option<&str>) {
        self.0.lock().unwrap().insert(pid, (start, job.map(String::from)));
    }

    fn exit(&self, pid: u32) {
        self.0.lock().unwrap().remove(&pid);
    }
}

impl ProcessJobs for Procs {
    fn job_of(&self, pid: u32) -> Option<String> {
        self.0.lock().unwrap().get(&pid).and_then(|(_, job)| job.clone())
    }
    fn job_processes(&self) -> Vec<(u32, String)> {
        let procs = self.0.lock().unwrap();
        procs
            .iter()
            .filter_map(|(&pid, (_, job))| Some((pid, job.clone()?)))
            .collect()
    }
    fn start_time(&self, pid: u32) -> Option<u64> {
        self.0.lock().unwrap().get(&pid).map(|&(start, _)| start)
    }
}

#[test]
fn a_process_that_exits_before_its_samples_arrive_is_still_its_jobs() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let procs = Arc::new(Procs::default());
    let sampler = GpuSampler::manual(meter.clone(), procs.clone(), GpuSamplerConfig::default());
    sampler.job_started("a");
    // The job's process runs; NVML has no sample of it yet.
    procs.run(7, 1_000, Some("a"));
    meter.set(Ok(vec![reading("gpu-0", Some(10_000_000), None, &[])]));
    sampler.tick().unwrap();
    // It exits before the final reading, which brings the samples it took while running.
    procs.exit(7);
    meter.set(Ok(vec![reading("gpu-0", Some(30_000_000), None, &[(7, 50)])]));
    let a = sampler.job_finished("a").unwrap();
    assert!(close(a.joules().unwrap(), 10.0) && !a.partial, "{a:?}");
    assert!(close(sampler.totals().other_joules, 20.0));
}

#[test]
fn a_reused_pid_is_not_charged_to_the_job_remembered_under_it() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let procs = Arc::new(Procs::default());
    let sampler = GpuSampler::manual(meter.clone(), procs.clone(), GpuSamplerConfig::default());
    sampler.job_started("a");
    sampler.job_started("b");
    let mut uj = 0;
    let mut busy_pid_7 = || {
        uj += 10_000_000; // 10 J, all of it pid 7's
        meter.set(Ok(vec![reading("gpu-0", Some(uj), None, &[(7, 100)])]));
        sampler.tick().unwrap().unwrap()
    };
    procs.run(7, 1_000, Some("a"));
    let i = busy_pid_7();
    assert_eq!(
        i.jobs,
        [JobGpuShare {
            job: "a".into(),
            joules: 10.0
        }]
    );
    // Job a still runs, but its pid 7 has exited and the pid now names a process of no job.
    procs.exit(7);
    procs.run(7, 2_000, None);
    let i = busy_pid_7();
    assert!(i.jobs.is_empty() && close(i.other_joules, 10.0), "{i:?}");
    // Then a process of job b.
    procs.exit(7);
    procs.run(7, 3_000, Some("b"));
    let i = busy_pid_7();
    assert_eq!(
        i.jobs,
        [JobGpuShare {
            job: "b".into(),
            joules: 10.0
        }]
    );
    assert!(close(sampler.job_finished("a").unwrap().joules().unwrap(), 10.0));
    assert!(close(sampler.job_finished("b").unwrap().joules().unwrap(), 10.0));
}

#[test]
fn beyond_the_remembered_limit_processes_are_looked_up_at_every_reading() {
    use super::pids::{PidMap, MAX_REMEMBERED_PIDS};
    let procs = Procs::default();
    let running = HashMap::from([("a".to_string(), 1)]);
    let mut map = PidMap::default();
    let now = Instant::now();
    for pid in 0..MAX_REMEMBERED_PIDS as u32 {
        procs.run(10_000 + pid, 1, Some("a"));
    }
    map.resolve(&procs, &[], &[], &running, now);
    assert_eq!(map.len(), MAX_REMEMBERED_PIDS);
    // One more process of job a: found while it runs, at every reading, but not remembered...
    procs.run(7, 5, Some("a"));
    let sample = [reading("gpu-0", Some(0), None, &[(7, 10)])];
    for _ in 0..2 {
        let found = map.resolve(&procs, &sample, &[], &running, now);
        assert_eq!(found.get(&7), Some(&("a".to_string(), 1)));
        assert_eq!(map.len(), MAX_REMEMBERED_PIDS);
    }
    // ...so samples reported after it exits are nobody's.
    procs.exit(7);
    assert_eq!(map.resolve(&procs, &sample, &[], &running, now).get(&7), None);
    // A process of a job that is no longer running is not a job's.
    let ended = HashMap::from([("b".to_string(), 2)]);
    assert!(map.resolve(&procs, &sample, &[], &ended, now).is_empty());
    assert_eq!(map.len(), 0, "the ended job's processes are forgotten");
}

/// A meter whose readings block while the test holds them.
#[derive(Default)]
struct Stalled {
    /// (readings held, a reading is waiting)
    gate: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Stalled {
    fn hold(&self, held: bool) {
        self.gate.lock().unwrap().0 = held;
        self.changed.notify_all();
    }

    /// Waits (up to 10 s) until a reading is blocked.
    fn wait_blocked(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut gate = self.gate.lock().unwrap();
        while !gate.1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            gate = self.changed.wait_timeout(gate, left).unwrap().0;
        }
        true
    }
}

impl GpuMeter for Stalled {
    fn source_name(&self) -> &str {
        "stalled-gpu"
    }
    fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
        let mut gate = self.gate.lock().unwrap();
        gate.1 = true;
        self.changed.notify_all();
        while gate.0 {
            gate = self.changed.wait(gate).unwrap();
        }
        gate.1 = false;
        Ok(vec![reading("gpu-0", Some(0), None, &[])])
    }
}

#[test]
fn a_stalled_reading_blocks_neither_job_starts_nor_totals_nor_the_reason() {
    let meter = Arc::new(Stalled::default());
    let sampler = GpuSampler::manual(meter.clone(), Arc::new(HashMap::new()), GpuSamplerConfig::default());
    meter.hold(true);
    std::thread::scope(|s| {
        let sampler = &sampler;
        let reading = s.spawn(move || sampler.tick());
        if !meter.wait_blocked() {
            meter.hold(false);
            panic!("the reading never started");
        }
        let (tx, rx) = mpsc::channel();
        s.spawn(move || {
            let started = sampler.job_started("a");
            let totals = sampler.totals();
            tx.send((started, totals.ticks, sampler.unavailable_reason())).unwrap();
        });
        let answered = rx.recv_timeout(Duration::from_secs(10));
        meter.hold(false); // let the reading finish whatever happened, so the scope can end
        let (started, ticks, reason) = answered.expect("they waited for the stalled reading");
        assert!(started);
        assert_eq!((ticks, reason), (1, None));
        assert!(reading.join().unwrap().unwrap().is_some());
    });
}

#[test]
fn a_reading_without_any_gpu_is_an_error_with_its_reason() {
    let meter = FakeMeter::new(vec![]);
    let sampler = GpuSampler::manual(meter.clone(), Arc::new(HashMap::new()), GpuSamplerConfig::default());
    let no_gpu = PowerError::Read("no GPU in reading".into());
    assert_eq!(sampler.unavailable_reason(), Some(no_gpu.clone()));
    sampler.job_started("a");
    assert_eq!(sampler.tick(), Err(no_gpu.clone()));
    let a = sampler.job_finished("a").unwrap();
    assert_eq!((a.joules(), a.unavailable), (None, Some(no_gpu)));
    assert_eq!(sampler.totals().read_errors, 3);
}

#[test]
fn measuring_follows_the_latest_reading() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let sampler = GpuSampler::manual(meter.clone(), Arc::new(HashMap::new()), GpuSamplerConfig::default());
    assert!(sampler.has_gpus() && sampler.measuring());
    meter.set(Err(PowerError::Read("GPU 0 has fallen off the bus".into())));
    assert!(sampler.tick().is_err());
    assert!(!sampler.measuring(), "the GPU stopped answering");
    meter.set(Ok(vec![reading("gpu-0", Some(5), None, &[])]));
    sampler.tick().unwrap();
    assert!(sampler.measuring());
    // Readings without counter or power measure nothing.
    meter.set(Ok(vec![reading("gpu-0", None, None, &[])]));
    sampler.tick().unwrap();
    assert!(!sampler.measuring());
    let none = GpuSampler::unavailable(PowerError::Unavailable("no NVIDIA GPU found".into()));
    assert!(!none.has_gpus() && !none.measuring());
}

/// Starts the job `key` on the sampler it is given while a reading lists the jobs' processes:
/// between the reading's snapshot of the running jobs and its accounting.
#[derive(Default)]
struct StartsMidReading {
    start: Mutex<Option<(Arc<GpuSampler>, String)>>,
}

impl ProcessJobs for StartsMidReading {
    fn job_of(&self, _pid: u32) -> Option<String> {
        None
    }
    fn job_processes(&self) -> Vec<(u32, String)> {
        // Taken, so the sampler is started once and the test's cycle is broken.
        if let Some((sampler, key)) = self.start.lock().unwrap().take() {
            sampler.job_started(key);
        }
        Vec::new()
    }
}

#[test]
fn a_job_started_during_a_reading_gets_no_credit_for_its_interval() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let hook = Arc::new(StartsMidReading::default());
    let sampler = Arc::new(GpuSampler::manual(
        meter.clone(),
        hook.clone(),
        GpuSamplerConfig::default(),
    ));
    *hook.start.lock().unwrap() = Some((sampler.clone(), "late".into()));
    meter.set(Ok(vec![reading("gpu-0", Some(10_000_000), None, &[])]));
    sampler.tick().unwrap();
    assert!(hook.start.lock().unwrap().is_none(), "the job was started mid-reading");
    meter.set(Ok(vec![reading("gpu-0", Some(20_000_000), None, &[])]));
    let late = sampler.job_finished("late").unwrap();
    assert_eq!(late.intervals, 1, "only the reading after its start: {late:?}");
}

#[test]
fn a_key_restarted_during_its_final_reading_keeps_running() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let hook = Arc::new(StartsMidReading::default());
    let sampler = Arc::new(GpuSampler::manual(
        meter.clone(),
        hook.clone(),
        GpuSamplerConfig::default(),
    ));
    sampler.job_started("a");
    *hook.start.lock().unwrap() = Some((sampler.clone(), "a".into()));
    meter.set(Ok(vec![reading("gpu-0", Some(10_000_000), None, &[])]));
    assert!(
        sampler.job_finished("a").is_none(),
        "the restart dropped the finishing run"
    );
    assert_eq!(sampler.totals().running_jobs, 1, "the new run was not removed");
    meter.set(Ok(vec![reading("gpu-0", Some(20_000_000), None, &[])]));
    let again = sampler.job_finished("a").expect("the new run is still running");
    assert_eq!(again.intervals, 1, "{again:?}");
}

#[test]
fn an_abandoned_job_is_dropped_without_a_reading() {
    let meter = FakeMeter::new(vec![reading("gpu-0", Some(0), None, &[])]);
    let sampler = GpuSampler::manual(meter.clone(), Arc::new(HashMap::new()), GpuSamplerConfig::default());
    sampler.job_started("a");
    let reads = meter.state.lock().unwrap().1;
    assert!(sampler.job_abandoned("a"));
    assert_eq!(meter.state.lock().unwrap().1, reads, "no reading taken");
    assert_eq!(sampler.totals().running_jobs, 0);
    assert!(sampler.job_finished("a").is_none());
    assert!(!sampler.job_abandoned("a"));
}
