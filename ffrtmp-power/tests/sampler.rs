//! `Sampler` over temp directories laid out like `/sys/class/powercap`, driven by explicit ticks,
//! with CPU counters the tests advance.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ffrtmp_core::power::UnavailableSource;
use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
use ffrtmp_power::{CpuTimes, RaplSource, Sampler, SamplerConfig, ATTRIBUTION_METHOD};

const BIG: u64 = 262_143_328_850;

/// A powercap tree whose counters the test writes.
struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn zone(&self, entry: &str, name: &str, uj: u64, max: u64) -> PathBuf {
        let dir = self.root().join(entry);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
        fs::write(dir.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
        dir
    }

    fn set(&self, entry: &str, uj: u64) {
        fs::write(self.root().join(entry).join("energy_uj"), format!("{uj}\n")).unwrap();
    }
}

/// CPU counters fed by the test: the machine's (all CPUs, busy and idle) and each job cgroup's.
#[derive(Default)]
struct TestCpu(Mutex<CpuState>);

#[derive(Default)]
struct CpuState {
    machine_ns: u64,
    jobs: HashMap<String, u64>,
}

impl TestCpu {
    fn advance(&self, machine_ns: u64, jobs: &[(&str, u64)]) {
        let mut st = self.0.lock().unwrap();
        st.machine_ns += machine_ns;
        for (job, ns) in jobs {
            *st.jobs.entry(job.to_string()).or_default() += ns;
        }
    }
}

impl CpuTimes for TestCpu {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        self.0.lock().unwrap().jobs.get(job).copied()
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.0.lock().unwrap().machine_ns)
    }
}

fn within(actual: f64, truth: f64, rel: f64) -> bool {
    (actual - truth).abs() <= rel * truth.abs()
}

/// Four jobs using 10/20/30/40 % of the CPU the jobs use, 80 % of a 4-CPU machine when all run
/// (the rest idle), started and finished at different ticks, with load and power (which follows
/// the load) changing between readings; the package counter wraps once. Each job's energy must be
/// within 1 % of the truth added up at a finer step than the sampler's.
#[test]
fn four_jobs_get_their_cpu_share_of_energy_across_a_wrap() {
    let tree = Tree::new();
    let pkg_max = 1_000_000_000; // package-0 wraps at 1 kJ
    let mut pkg_raw = 900_000_000u64;
    let mut dram_raw = 5_000_000u64;
    tree.zone("intel-rapl:0", "package-0", pkg_raw, pkg_max);
    tree.zone("intel-rapl:0:0", "core", 0, BIG); // inside the package: never read
    tree.zone("intel-rapl:0:1", "dram", dram_raw, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let cpu = Arc::new(TestCpu::default());
    let sampler = Sampler::manual(source, cpu.clone(), SamplerConfig::default());
    assert_eq!(sampler.source_name(), "rapl");

    const CPUS: f64 = 4.0;
    const DT: f64 = 0.1;
    const SUB: usize = 5;
    // (key, share of the jobs' CPU, first tick, last tick)
    let jobs = [
        ("job-10", 0.10, 5, 36),
        ("job-20", 0.20, 6, 38),
        ("job-30", 0.30, 7, 37),
        ("job-40", 0.40, 8, 30),
    ];
    let ticks = 45;
    let mut truth: HashMap<&str, (f64, f64)> = HashMap::new(); // (package J, dram J)
    let mut finished = HashMap::new();
    let mut total_truth = 0.0;
    let mut idle_joules = 0.0;

    for tick in 0..ticks {
        for &(key, _, first, _) in &jobs {
            if tick == first {
                assert!(sampler.job_started(key));
            }
        }
        let running: Vec<_> = jobs.iter().filter(|j| (j.2..=j.3).contains(&tick)).collect();
        // Between two readings the load and the power change SUB times: the sampler only sees
        // the sums, the truth is added up step by step. Jobs use 80 % of the machine between them
        // when all four run, in their 1:2:3:4 proportions, each wobbling by ±20 %.
        let sub_dt = DT / SUB as f64;
        let machine_ns = (CPUS * sub_dt * 1e9) as u64;
        for sub in 0..SUB {
            let phase = (tick * SUB + sub) as f64;
            let job_ns: Vec<(&str, u64)> = running
                .iter()
                .enumerate()
                .map(|(k, j)| {
                    let wobble = 1.0 + 0.2 * (phase * 0.9 + k as f64 * 1.7).sin();
                    (j.0, (0.8 * j.1 * wobble * machine_ns as f64) as u64)
                })
                .collect();
            let busy = job_ns.iter().map(|j| j.1).sum::<u64>() as f64 / machine_ns as f64;
            let pkg_watts = 20.0 + 60.0 * busy + 3.0 * (phase * 0.3).sin();
            let dram_watts = 3.0 + 4.0 * busy;
            let (pkg_uj, dram_uj) = ((pkg_watts * sub_dt * 1e6) as u64, (dram_watts * sub_dt * 1e6) as u64);
            pkg_raw = (pkg_raw + pkg_uj) % pkg_max;
            dram_raw += dram_uj;
            cpu.advance(machine_ns, &job_ns);

            let (pkg_j, dram_j) = (pkg_uj as f64 / 1e6, dram_uj as f64 / 1e6);
            total_truth += pkg_j + dram_j;
            if running.is_empty() {
                idle_joules += pkg_j + dram_j;
            }
            for (key, ns) in &job_ns {
                let share = *ns as f64 / machine_ns as f64;
                let t = truth.entry(key).or_default();
                t.0 += pkg_j * share;
                t.1 += dram_j * share;
            }
        }
        tree.set("intel-rapl:0", pkg_raw);
        tree.set("intel-rapl:0:1", dram_raw);

        // A job ending now takes the final reading itself; otherwise the sampler ticks.
        let ending: Vec<_> = jobs.iter().filter(|j| j.3 == tick).collect();
        if ending.is_empty() {
            sampler.tick().unwrap();
        }
        for &&(key, ..) in &ending {
            finished.insert(key, sampler.job_finished(key).unwrap());
        }
    }

    assert!(sampler.running_jobs().is_empty());
    for (key, share, first, last) in jobs {
        let e = &finished[key];
        let (pkg, dram) = truth[key];
        assert!(e.unavailable.is_none() && !e.partial, "{e:?}");
        assert!(
            within(e.joules_cpu, pkg, 0.01),
            "{key}: package {} vs {pkg}",
            e.joules_cpu
        );
        assert!(
            within(e.joules_dram, dram, 0.01),
            "{key}: dram {} vs {dram}",
            e.joules_dram
        );
        assert!(
            within(e.joules_total, pkg + dram, 0.01),
            "{key}: total {} vs {}",
            e.joules_total,
            pkg + dram
        );
        assert_eq!(e.samples, (last - first + 1) as u64, "{key}");
        let cpu_s = 0.8 * share * CPUS * DT * (last - first + 1) as f64;
        assert!(
            within(e.cpu_time.as_secs_f64(), cpu_s, 0.05),
            "{key}: {:?} vs {cpu_s}",
            e.cpu_time
        );

        let d = e.report(1000, 3.2, 1000 * 1280 * 720);
        assert_eq!(d.attribution.as_deref(), Some(ATTRIBUTION_METHOD));
        assert_eq!(d.source, "rapl");
        assert!(within(d.joules_per_frame.unwrap(), (pkg + dram) / 1000.0, 0.01));
        assert!(within(d.frames_per_joule.unwrap(), 1000.0 / (pkg + dram), 0.01));
    }
    let worst = jobs
        .iter()
        .map(|j| {
            let (pkg, dram) = truth[j.0];
            ((finished[j.0].joules_total - pkg - dram) / (pkg + dram)).abs()
        })
        .fold(0.0, f64::max);
    println!("largest relative error of a job's energy: {worst:.2e}");

    let totals = sampler.totals();
    assert_eq!(totals.wraps, 1, "package-0 wrapped once");
    assert!(
        within(totals.total_joules, total_truth, 1e-6),
        "{totals:?} vs {total_truth}"
    );
    assert!(within(
        totals.jobs_joules + totals.other_joules,
        totals.total_joules,
        1e-9
    ));
    let jobs_truth: f64 = truth.values().map(|t| t.0 + t.1).sum();
    assert!(within(totals.jobs_joules, jobs_truth, 0.01));
    assert_eq!(
        totals.zones.iter().map(|z| z.zone.as_str()).collect::<Vec<_>>(),
        ["package-0", "dram-0"]
    );
    // Interval lengths are the real time between readings (microseconds here), not DT.
    assert!(within(totals.idle_joules, idle_joules, 1e-6));
    assert!(totals.idle_seconds > 0.0 && sampler.idle_power().unwrap().watts > 0.0);
    assert_eq!(sampler.recent().len(), ticks);
    assert_eq!(sampler.stats().read_errors, 0);
}

/// A source whose energy grows at a fixed power with real time.
struct SteadyWatts {
    watts: f64,
    t0: Instant,
}

impl PowerSource for SteadyWatts {
    fn name(&self) -> &str {
        "steady"
    }

    fn sample(&self) -> Result<EnergySample, PowerError> {
        let uj = (self.t0.elapsed().as_secs_f64() * self.watts * 1e6) as u64;
        Ok(EnergySample {
            zones: vec![ZoneEnergy {
                zone: "package-0".into(),
                energy_uj: uj,
            }],
            wraps: 0,
        })
    }
}

#[test]
fn measure_idle_reports_mean_watts_and_whether_jobs_ran() {
    let source = Arc::new(SteadyWatts {
        watts: 25.0,
        t0: Instant::now(),
    });
    let sampler = Sampler::manual(source, Arc::new(TestCpu::default()), SamplerConfig::default());
    let idle = sampler.measure_idle(Duration::from_millis(50)).unwrap();
    assert!(within(idle.watts, 25.0, 0.02), "{idle:?}");
    assert!(idle.seconds >= 0.05 && !idle.jobs_ran);
    sampler.job_started("j");
    assert!(sampler.measure_idle(Duration::from_millis(5)).unwrap().jobs_ran);
}

#[test]
fn threaded_sampler_ticks_at_its_rate_and_stops_promptly() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0", "package-0", 0, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let cpu = Arc::new(TestCpu::default());
    let sampler = Sampler::start(source.clone(), cpu.clone(), SamplerConfig::hz(200.0));
    assert!(sampler.is_running());
    let deadline = Instant::now() + Duration::from_secs(10);
    while sampler.stats().intervals < 5 {
        assert!(Instant::now() < deadline, "no 5 ticks in 10 s: {:?}", sampler.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    sampler.stop();
    assert!(!sampler.is_running());
    let stats = sampler.stats();
    if Path::new("/proc/thread-self").exists() {
        assert!(stats.thread_cpu.is_some(), "{stats:?}");
    }
    sampler.stop(); // again: nothing to do

    // A slow sampler still stops at once: the thread waits on a condition variable, not a sleep.
    let slow = Sampler::start(source, cpu, SamplerConfig::hz(0.01));
    let t0 = Instant::now();
    drop(slow);
    assert!(t0.elapsed() < Duration::from_secs(5), "stop took {:?}", t0.elapsed());
}

fn reason_of(sampler: &Sampler) -> PowerError {
    sampler.job_started("j");
    let e = sampler.job_finished("j").unwrap();
    assert_eq!(e.source, "unavailable");
    assert_eq!((e.samples, e.partial, e.avg_watts()), (0, false, None));
    let d = e.report(100, 1.0, 100);
    assert_eq!(d.source, "unavailable");
    assert_eq!((d.energy_joules, d.avg_watts, d.joules_per_frame), (None, None, None));
    assert!(d.unavailable_reason.is_some());
    e.unavailable.expect("a typed reason")
}

#[test]
fn missing_powercap_is_unavailable_with_the_reason() {
    let sampler = Sampler::start_or_unavailable(
        RaplSource::open("/nonexistent/powercap"),
        Arc::new(TestCpu::default()),
        SamplerConfig::default(),
    );
    assert!(!sampler.is_running(), "no thread without a source");
    assert_eq!(sampler.source_name(), "unavailable");
    let reason = reason_of(&sampler);
    assert!(
        matches!(&reason, PowerError::Unavailable(r) if r.contains("no powercap interface at /nonexistent/powercap")),
        "{reason:?}"
    );
    assert_eq!(sampler.unavailable_reason(), Some(reason));
    assert!(sampler.measure_idle(Duration::ZERO).is_err());
    assert_eq!(sampler.totals().source, "unavailable");
}

#[test]
fn missing_package_zone_is_unavailable_with_the_reason() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0:1", "dram", 0, BIG);
    let sampler = Sampler::start_or_unavailable(
        RaplSource::open(tree.root()),
        Arc::new(TestCpu::default()),
        SamplerConfig::default(),
    );
    let reason = reason_of(&sampler);
    assert!(
        matches!(&reason, PowerError::Unavailable(r) if r.contains("no RAPL package zones")),
        "{reason:?}"
    );
}

#[test]
fn permission_denied_is_unavailable_with_the_reason() {
    // An unprivileged agent on a patched kernel: open fails with the needs-root reason.
    use std::os::unix::fs::PermissionsExt;
    let tree = Tree::new();
    let zone = tree.zone("intel-rapl:0", "package-0", 0, BIG);
    let file = zone.join("energy_uj");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads mode-000 files and opens the tree; the source below then stands in for the denial.
    if let Err(err) = RaplSource::open(tree.root()) {
        let sampler = Sampler::unavailable(err);
        let reason = reason_of(&sampler);
        assert_eq!(
            reason,
            PowerError::Unavailable(format!("needs root or read access to {}", file.display()))
        );
    }
    let denied = "needs root or read access to /sys/class/powercap/intel-rapl:0/energy_uj";
    let source = Arc::new(UnavailableSource::new(denied));
    let sampler = Sampler::manual(source, Arc::new(TestCpu::default()), SamplerConfig::default());
    assert_eq!(
        sampler.unavailable_reason(),
        Some(PowerError::Unavailable(denied.into()))
    );
    assert_eq!(reason_of(&sampler), PowerError::Unavailable(denied.into()));
    sampler.job_started("k");
    let d = sampler.job_finished("k").unwrap().report(10, 1.0, 10);
    assert_eq!(d.unavailable_reason.as_deref(), Some(denied));
}

#[test]
fn zone_vanishing_mid_run_keeps_measured_energy_or_reports_the_read_error() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0", "package-0", 0, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let cpu = Arc::new(TestCpu::default());
    let sampler = Sampler::manual(source, cpu.clone(), SamplerConfig::default());

    // Measured for one interval, then the final reading fails: partial, figures kept.
    sampler.job_started("measured");
    tree.set("intel-rapl:0", 10_000_000);
    cpu.advance(1_000_000_000, &[("measured", 500_000_000)]);
    sampler.tick().unwrap();
    sampler.job_started("late");
    fs::remove_file(tree.root().join("intel-rapl:0/energy_uj")).unwrap();
    let e = sampler.job_finished("measured").unwrap();
    assert!(e.unavailable.is_none() && e.partial, "{e:?}");
    assert_eq!((e.joules_total, e.read_errors, e.samples), (5.0, 1, 1));

    // Never measured: unavailable with the typed read error.
    let e = sampler.job_finished("late").unwrap();
    assert!(
        matches!(&e.unavailable, Some(PowerError::Read(r)) if r.contains("energy_uj")),
        "{e:?}"
    );
    let d = e.report(10, 1.0, 10);
    assert!(d
        .unavailable_reason
        .unwrap()
        .starts_with("energy read failed: cannot read"));
    assert_eq!(sampler.stats().read_errors, 2);
    assert_eq!(sampler.unavailable_reason(), None, "the sampler had readings before");
}

/// The bug this guards against: a package counter restarting in place mid-job was corrected as a
/// wrap, charging a short encode with the rest of the counter's range (123 kJ for a 7 s encode).
#[test]
fn a_counter_reset_in_place_mid_job_drops_the_interval_and_marks_the_job_partial() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0", "package-0", 50_000_000_000, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let cpu = Arc::new(TestCpu::default());
    let sampler = Sampler::manual(source, cpu.clone(), SamplerConfig::default());
    sampler.job_started("enc");

    // One CPU-second, all the job's, and 7 J.
    tree.set("intel-rapl:0", 50_007_000_000);
    cpu.advance(1_000_000_000, &[("enc", 1_000_000_000)]);
    assert!(sampler.tick().unwrap().is_some());
    // The counter restarts from near zero in place: this interval is unknown and dropped.
    tree.set("intel-rapl:0", 2_000_000);
    cpu.advance(1_000_000_000, &[("enc", 1_000_000_000)]);
    assert_eq!(sampler.tick().unwrap(), None, "no interval for the reset");
    // Measuring goes on from the new origin: 3 J more.
    tree.set("intel-rapl:0", 5_000_000);
    cpu.advance(1_000_000_000, &[("enc", 1_000_000_000)]);
    assert!(sampler.tick().unwrap().is_some());

    let e = sampler.job_finished("enc").unwrap();
    assert_eq!(e.joules_total, 10.0, "7 J + 3 J, nothing for the reset: {e:?}");
    assert!(e.partial, "{e:?}");
    let reason = e.partial_reason.clone().expect("a reason");
    assert!(reason.contains("counter reset"), "{reason}");
    let totals = sampler.totals();
    assert_eq!((totals.resets, totals.wraps, totals.total_joules), (1, 0, 10.0));

    // The report a user sees says so.
    let report = e.report(210, 3.0, 0);
    assert_eq!(report.energy_joules, Some(10.0));
    assert!(report.avg_watts.unwrap() < 10.0, "{report:?}");
    assert!(report.partial);
    assert_eq!(report.partial_reason.as_deref(), Some(reason.as_str()));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["partial"], true);
    assert_eq!(json["partial_reason"], reason.as_str());
}

#[test]
fn a_counter_vanishing_mid_job_gives_a_partial_report_with_the_reason() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0", "package-0", 0, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let cpu = Arc::new(TestCpu::default());
    let sampler = Sampler::manual(source, cpu.clone(), SamplerConfig::default());
    sampler.job_started("enc");
    tree.set("intel-rapl:0", 4_000_000);
    cpu.advance(1_000_000_000, &[("enc", 1_000_000_000)]);
    sampler.tick().unwrap();
    fs::remove_file(tree.root().join("intel-rapl:0/energy_uj")).unwrap();
    cpu.advance(1_000_000_000, &[("enc", 1_000_000_000)]);
    assert!(sampler.tick().is_err());

    let report = sampler.job_finished("enc").unwrap().report(60, 2.0, 0);
    assert_eq!(report.energy_joules, Some(4.0), "what was measured is kept");
    assert!(report.partial, "{report:?}");
    let reason = report.partial_reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("the final reading failed: energy read failed: cannot read") && reason.contains("energy_uj"),
        "{reason}"
    );
    assert_eq!(report.read_errors, 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["partial"], true, "{json}");
}

#[test]
fn repeated_failed_readings_stop_the_sampler_measuring_until_one_succeeds() {
    let tree = Tree::new();
    tree.zone("intel-rapl:0", "package-0", 0, BIG);
    let source = Arc::new(RaplSource::open(tree.root()).unwrap());
    let sampler = Sampler::manual(source, Arc::new(TestCpu::default()), SamplerConfig::default());
    assert!(sampler.measuring());
    let file = tree.root().join("intel-rapl:0/energy_uj");
    fs::write(&file, "garbage\n").unwrap();
    for failed in 1..=ffrtmp_power::FAILED_READS_UNAVAILABLE {
        assert!(sampler.measuring(), "{failed} failures so far");
        assert!(sampler.tick().is_err());
    }
    assert!(!sampler.measuring());
    assert_eq!(sampler.stats().failed_in_a_row, ffrtmp_power::FAILED_READS_UNAVAILABLE);
    fs::write(&file, "1000\n").unwrap();
    sampler.tick().unwrap();
    assert!(sampler.measuring());
    assert!(!Sampler::unavailable(PowerError::Unavailable("no powercap".into())).measuring());
}
