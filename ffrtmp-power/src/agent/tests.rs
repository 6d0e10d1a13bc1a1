//! The glue end to end: a job cgroup made by the executor's `Cgroups` registers the job with both
//! samplers, its GPU process is found through a `/proc`-like tree, and the job's report carries
//! its GPU joules.

use super::*;
use std::fs;
use std::path::Path;

use crate::{GpuMeter, GpuReading, GpuSamplerConfig, ProcessSample, SamplerConfig};
use ffrtmp_core::{EnergySample, JobId, JobSpec, JobState, PowerSource, ResourceLimits, ZoneEnergy};
use ffrtmp_exec::{job_cgroup_name, Cgroups};

/// One GPU whose counter and process samples the test sets.
struct Gpu(Mutex<GpuReading>);

impl GpuMeter for Gpu {
    fn source_name(&self) -> &str {
        "fake-gpu"
    }
    fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
        Ok(vec![self.0.lock().unwrap().clone()])
    }
}

impl Gpu {
    fn new() -> Arc<Gpu> {
        Arc::new(Gpu(Mutex::new(GpuReading {
            zone: "gpu-0".into(),
            energy_uj: Some(0),
            processes: Some(vec![]),
            ..Default::default()
        })))
    }

    /// The counter moves to `uj`; each `(pid, encoder %)` reports one sample.
    fn set(&self, uj: u64, pids: &[(u32, u32)]) {
        let mut r = self.0.lock().unwrap();
        r.energy_uj = Some(uj);
        r.processes = Some(
            pids.iter()
                .map(|&(pid, encoder)| ProcessSample {
                    pid,
                    encoder,
                    timestamp_us: uj,
                    ..Default::default()
                })
                .collect(),
        );
    }
}

/// A package counter that never moves: the CPU side is measured and is 0 J.
struct Rapl;

impl PowerSource for Rapl {
    fn name(&self) -> &str {
        "fake-rapl"
    }
    fn sample(&self) -> Result<EnergySample, PowerError> {
        Ok(EnergySample {
            zones: vec![ZoneEnergy {
                zone: "package-0".into(),
                energy_uj: 0,
            }],
            wraps: 0,
        })
    }
}

fn job() -> Job {
    Job {
        state: JobState::Running,
        attempt: 1,
        ..Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
    }
}

fn process(proc_root: &Path, pid: u32, cgroup: &str) {
    let dir = proc_root.join(pid.to_string());
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("cgroup"), cgroup).unwrap();
}

/// An `AttributedEnergy` with a GPU sampler over a fake meter, observing the job cgroups made in
/// a plain directory that stands in for the cgroup v1 cpu hierarchy, and an empty `/proc` tree.
struct Machine {
    tree: tempfile::TempDir,
    proc_root: std::path::PathBuf,
    gpu: Arc<Gpu>,
    energy: Arc<AttributedEnergy>,
    cgroups: Cgroups,
}

impl Machine {
    fn new(make_cpu: impl FnOnce(Arc<dyn CpuTimes>) -> Sampler) -> Machine {
        let tree = tempfile::tempdir().unwrap();
        let proc_root = tree.path().join("proc");
        fs::create_dir_all(&proc_root).unwrap();
        let gpu = Gpu::new();
        let meter = gpu.clone();
        let energy = Arc::new(AttributedEnergy::new(make_cpu, None).with_gpu(&proc_root, |processes| {
            GpuSampler::manual(meter, processes, GpuSamplerConfig::default())
        }));
        let cgroups = Cgroups::v1(Some(tree.path().join("cpu")), None, None).with_observer(energy.clone());
        Machine {
            tree,
            proc_root,
            gpu,
            energy,
            cgroups,
        }
    }

    /// With a RAPL meter that never moves.
    fn with_rapl() -> Machine {
        Machine::new(|cpu| Sampler::manual(Arc::new(Rapl), cpu, SamplerConfig::default()))
    }

    /// A file of the job cgroup `name`.
    fn cgroup_file(&self, name: &str, file: &str) -> std::path::PathBuf {
        self.tree.path().join("cpu").join(name).join(file)
    }
}

/// Runs one job whose process 4242 keeps the encoder 60 % busy while another process (5000, no
/// job) uses 20 %, over 200 J of GPU energy; returns the job's report.
fn run_job(make_cpu: impl FnOnce(Arc<dyn CpuTimes>) -> Sampler) -> (EnergyReport, Arc<AttributedEnergy>) {
    let result = JobResult {
        frames: 100,
        wall_s: 2.0,
        ..Default::default()
    };
    run_job_ending(make_cpu, Some(result))
}

/// [`run_job`], the job ending with `result` (`None`: it failed, timed out or was canceled).
fn run_job_ending(
    make_cpu: impl FnOnce(Arc<dyn CpuTimes>) -> Sampler,
    result: Option<JobResult>,
) -> (EnergyReport, Arc<AttributedEnergy>) {
    let m = Machine::new(make_cpu);
    let Machine { gpu, energy, .. } = &m;
    let job = job();
    let name = job_cgroup_name(&job);
    process(&m.proc_root, 4242, &format!("0::/system.slice/ffrtmp/{name}\n"));
    process(&m.proc_root, 5000, "0::/user.slice/session-2.scope\n");
    let group = m.cgroups.create(&name, &ResourceLimits::default()).unwrap();
    fs::write(m.cgroup_file(&name, "cpuacct.usage"), "0").unwrap();
    gpu.set(200_000_000, &[(4242, 60), (5000, 20)]);
    energy.gpu().tick().unwrap();
    drop(group); // the observer takes the final readings
    (energy.finished(&job, result.as_ref()), energy.clone())
}

/// A failed (or timed-out, or canceled) job used energy too: its report carries it, with the
/// figures that need a result (per frame) left out.
#[test]
fn a_job_that_did_not_complete_still_reports_the_energy_it_used() {
    let (report, _) = run_job_ending(
        |cpu| Sampler::manual(Arc::new(Rapl), cpu, SamplerConfig::default()),
        None,
    );
    assert_eq!(report.unavailable_reason, None, "{report:?}");
    assert_eq!(report.energy_joules, Some(120.0), "{report:?}");
    assert_eq!(report.gpu_joules, Some(120.0));
    assert_eq!((report.joules_per_frame, report.frames_per_joule), (None, None));
    assert!(report.wall_s.is_some(), "the sampler's wall time: {report:?}");
    assert_eq!(report.source, "fake-rapl+fake-gpu");
}

#[test]
fn a_jobs_report_carries_its_gpu_share_found_through_its_cgroup() {
    let (report, energy) = run_job(|cpu| Sampler::manual(Arc::new(Rapl), cpu, SamplerConfig::default()));
    assert_eq!(report.gpu_joules, Some(120.0), "{report:?}");
    assert_eq!(report.cpu_joules, Some(0.0));
    assert_eq!(report.energy_joules, Some(120.0), "the total includes the GPU");
    assert_eq!(report.avg_watts, Some(60.0));
    assert_eq!(report.joules_per_frame, Some(1.2));
    assert_eq!(report.source, "fake-rapl+fake-gpu");
    assert_eq!(
        report.attribution.as_deref(),
        Some("cgroup-cpu-share+nvml-process-utilization")
    );
    let totals = energy.gpu().totals();
    assert_eq!(
        (totals.total_joules, totals.jobs_joules, totals.other_joules),
        (200.0, 120.0, 80.0)
    );
}

#[test]
fn without_cpu_energy_the_gpu_share_stands_alone_and_the_total_stays_unknown() {
    let (report, _) = run_job(|_| Sampler::unavailable(PowerError::Unavailable("no powercap here".into())));
    assert_eq!(report.gpu_joules, Some(120.0), "{report:?}");
    assert_eq!((report.energy_joules, report.cpu_joules), (None, None));
    assert_eq!(
        report.unavailable_reason.as_deref(),
        Some("CPU energy unavailable: no powercap here")
    );
    assert_eq!(report.source, "fake-gpu");
    assert_eq!(report.attribution.as_deref(), Some("nvml-process-utilization"));
}

#[test]
fn without_gpu_energy_reports_carry_no_gpu_joules() {
    let tree = tempfile::tempdir().unwrap();
    let energy = Arc::new(AttributedEnergy::new(
        |cpu| Sampler::manual(Arc::new(Rapl), cpu, SamplerConfig::default()),
        None,
    ));
    assert!(energy.gpu().unavailable_reason().is_some());
    let job = job();
    let name = job_cgroup_name(&job);
    let cgroups = Cgroups::v1(Some(tree.path().join("cpu")), None, None).with_observer(energy.clone());
    drop(cgroups.create(&name, &ResourceLimits::default()).unwrap());
    let report = energy.finished(
        &job,
        Some(&JobResult {
            frames: 10,
            wall_s: 1.0,
            ..Default::default()
        }),
    );
    assert_eq!(report.gpu_joules, None, "{report:?}");
    assert_eq!(
        report.gpu_unavailable_reason.as_deref(),
        Some("GPU energy is not set up"),
        "the report says why"
    );
    assert_eq!(report.energy_joules, Some(0.0));
    assert_eq!(report.attribution.as_deref(), Some("cgroup-cpu-share"));
    assert_eq!(report.source, "fake-rapl");
}

/// A short job: its GPU process is listed in the job cgroup's `cgroup.procs` at one reading,
/// before NVML reports any sample of it, and has exited (left the group, no `/proc` entry) by the
/// final reading, which brings its samples. They are still the job's.
#[test]
fn a_process_gone_by_the_final_reading_is_charged_to_its_job() {
    let m = Machine::with_rapl(); // its /proc stays empty: it never knows the process
    let Machine { gpu, energy, .. } = &m;
    let job = job();
    let name = job_cgroup_name(&job);
    let group = m.cgroups.create(&name, &ResourceLimits::default()).unwrap();
    let procs = m.cgroup_file(&name, "cgroup.procs");
    fs::write(&procs, "4242\n").unwrap();
    gpu.set(50_000_000, &[]);
    energy.gpu().tick().unwrap();
    fs::write(&procs, "").unwrap(); // exited
    gpu.set(150_000_000, &[(4242, 40)]);
    drop(group); // the final reading
    let report = energy.finished(
        &job,
        Some(&JobResult {
            frames: 10,
            wall_s: 1.0,
            ..Default::default()
        }),
    );
    assert_eq!(report.gpu_joules, Some(40.0), "40 % of the last 100 J: {report:?}");
    assert_eq!(report.gpu_unavailable_reason, None);
}

#[test]
fn a_job_cgroups_replaced_cpu_stat_is_read_and_a_removed_one_is_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let stat = dir.path().join("cpu.stat");
    fs::write(&stat, "usage_usec 10\n").unwrap();
    let cpu = CgroupCpuTimes::default();
    cpu.dirs.write().unwrap().insert("job".into(), JobCpu::new(dir.path()));
    assert_eq!(cpu.job_cpu_ns("job"), Some(10_000));
    assert_eq!(cpu.job_cpu_ns("job"), Some(10_000), "kept open, standing still");

    let tmp = dir.path().join("cpu.stat.tmp");
    fs::write(&tmp, "usage_usec 25\n").unwrap();
    fs::rename(&tmp, &stat).unwrap();
    assert_eq!(
        cpu.job_cpu_ns("job"),
        Some(25_000),
        "the new file, not the old one's 10 µs"
    );

    fs::remove_file(&stat).unwrap();
    assert_eq!(cpu.job_cpu_ns("job"), None, "gone, not 25 µs forever");
}

/// A workload that could not join its cgroup ran outside it: the group's readings (taken before
/// the workload, or of other processes) are not the job's, so its energy is unavailable, not 0 J.
#[test]
fn a_job_whose_workload_could_not_join_its_cgroup_is_not_measured() {
    let m = Machine::with_rapl();
    let Machine { gpu, energy, .. } = &m;
    let job = job();
    let name = job_cgroup_name(&job);
    let group = m.cgroups.create(&name, &ResourceLimits::default()).unwrap();
    fs::write(m.cgroup_file(&name, "cpuacct.usage"), "0").unwrap();
    energy.sampler().tick().unwrap();
    gpu.set(100_000_000, &[]);
    energy.gpu().tick().unwrap();
    group.abandon();
    assert!(
        energy.sampler().running_jobs().is_empty(),
        "the CPU sampler dropped the job"
    );
    assert_eq!(energy.gpu().totals().running_jobs, 0, "the GPU sampler dropped the job");
    let report = energy.finished(
        &job,
        Some(&JobResult {
            frames: 10,
            wall_s: 1.0,
            ..Default::default()
        }),
    );
    assert_eq!(
        (report.energy_joules, report.cpu_joules, report.gpu_joules),
        (None, None, None)
    );
    assert_eq!(
        report.unavailable_reason.as_deref(),
        Some("the workload could not join its cgroup"),
        "{report:?}"
    );
}

#[test]
fn final_readings_never_asked_for_are_dropped_oldest_first() {
    let mut finals = FinalsMap::default();
    for i in 0..=MAX_FINALS {
        finals.insert(&format!("job-{i}"), Final::Abandoned);
    }
    assert_eq!(finals.len(), MAX_FINALS);
    assert!(finals.remove("job-0").is_none(), "the oldest went first");
    assert!(finals.remove("job-1").is_some());
    assert!(finals.remove(&format!("job-{MAX_FINALS}")).is_some());
}

/// The quality pass runs in a cgroup of its own (`<attempt>-quality`): the meter reports its
/// energy apart, over the pass's wall time, and the encode's report holds none of it.
#[test]
fn the_quality_pass_is_measured_in_its_own_cgroup_apart_from_the_encode() {
    use ffrtmp_core::quality::{quality_pass_key, QualityMetric, QualityReport};
    let m = Machine::with_rapl();
    let job = job();
    let (encode, pass) = (job_cgroup_name(&job), quality_pass_key(&job.attempt_key()));
    process(&m.proc_root, 4242, &format!("0::/system.slice/ffrtmp/{encode}\n"));
    process(&m.proc_root, 4343, &format!("0::/system.slice/ffrtmp/{pass}\n"));
    let groups = [&encode, &pass].map(|name| {
        let group = m.cgroups.create(name, &ResourceLimits::default()).unwrap();
        fs::write(m.cgroup_file(name, "cpuacct.usage"), "0").unwrap();
        group
    });
    m.gpu.set(100_000_000, &[(4242, 60), (4343, 20)]);
    m.energy.gpu().tick().unwrap();
    drop(groups);
    let result = JobResult {
        frames: 100,
        wall_s: 2.0,
        quality: Some(Box::new(QualityReport {
            score: Some(40.0),
            wall_s: Some(1.0),
            ..QualityReport::unavailable(QualityMetric::Psnr, "")
        })),
        ..Default::default()
    };
    let encoded = m.energy.finished(&job, Some(&result));
    let measured = m.energy.quality_pass(&job, &result).expect("the pass's energy");
    assert_eq!(encoded.energy_joules, Some(60.0), "{encoded:?}");
    assert_eq!(measured.energy_joules, Some(20.0), "{measured:?}");
    assert_eq!((measured.wall_s, measured.avg_watts), (Some(1.0), Some(20.0)));
    assert_eq!(measured.joules_per_frame, Some(0.2));
    // Asked again (a retried report), nothing is left to attribute twice.
    assert_ne!(m.energy.quality_pass(&job, &result), Some(measured));
}
