//! Cost of the energy sampler on a temp powercap tree (package-0 with a dram subzone) with four
//! running jobs whose CPU time is read from cgroup-like `cpu.stat` files (kept open, as the agent
//! does) and the machine's from a `MachineClock`:
//!
//! - `sampler_tick_pkg_dram_4jobs`: one `Sampler::tick` (read the zones and the five CPU counters,
//!   attribute), with criterion, and `part_*`: what a tick is made of;
//! - the sampler thread's CPU use at 10 Hz (over 5 s) and 100 Hz (over 2 s), from its
//!   `schedstat` and from the process's CPU time, printed as "% of one core" (target ≤ 0.1 % at
//!   10 Hz); also for an in-memory source with no jobs, which is the cost of the thread's
//!   wake-ups alone. The tree's counters stand still, so every zone also pays the `fstat` that
//!   checks a counter which has not moved (live RAPL counters move between ticks and skip it).
//!   Skipped with `--test` or `--list`; run it alone with `cargo bench -p ffrtmp-power --bench
//!   sampler -- cpu_cost`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
use ffrtmp_power::{
    cgroup_cpu_ns, proc_stat_total_ns, CgroupCpuCounter, CpuTimes, MachineClock, RaplSource, Sampler, SamplerConfig,
};

const JOBS: [&str; 4] = ["job-a", "job-b", "job-c", "job-d"];

fn zone(root: &Path, entry: &str, name: &str, uj: u64) {
    let dir = root.join(entry);
    fs::create_dir_all(&dir).expect("create zone dir");
    fs::write(dir.join("name"), format!("{name}\n")).expect("write name");
    fs::write(dir.join("energy_uj"), format!("{uj}\n")).expect("write energy_uj");
    fs::write(dir.join("max_energy_range_uj"), "262143328850\n").expect("write max_energy_range_uj");
}

/// Job CPU time from `<root>/<job>/cpu.stat`, kept open as an agent does on a cgroup v2 host;
/// machine CPU time from a `MachineClock` (`part_proc_stat_total_ns` shows what `/proc/stat`
/// would cost).
struct FileCpuTimes {
    root: PathBuf,
    counters: HashMap<&'static str, CgroupCpuCounter>,
    clock: MachineClock,
}

impl CpuTimes for FileCpuTimes {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        self.counters.get(job)?.read_ns().ok()
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.clock.total_ns())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    source: Arc<RaplSource>,
    cpu: Arc<FileCpuTimes>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let powercap = dir.path().join("powercap");
    zone(&powercap, "intel-rapl:0", "package-0", 1_000_000);
    zone(&powercap, "intel-rapl:0:0", "core", 400_000);
    zone(&powercap, "intel-rapl:0:1", "dram", 200_000);
    let cgroups = dir.path().join("cgroups");
    for (i, job) in JOBS.iter().enumerate() {
        fs::create_dir_all(cgroups.join(job)).expect("create cgroup dir");
        let usec = (i as u64 + 1) * 1_000_000;
        fs::write(
            cgroups.join(job).join("cpu.stat"),
            format!("usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n"),
        )
        .expect("write cpu.stat");
    }
    let source = Arc::new(RaplSource::open(&powercap).expect("open tree"));
    assert_eq!(source.zones().len(), 2);
    Fixture {
        _dir: dir,
        source,
        cpu: Arc::new(FileCpuTimes {
            counters: JOBS
                .iter()
                .map(|job| (*job, CgroupCpuCounter::open(cgroups.join(job)).expect("open cpu.stat")))
                .collect(),
            root: cgroups,
            clock: MachineClock::new(),
        }),
    }
}

fn tick(c: &mut Criterion) {
    let f = fixture();
    let sampler = Sampler::manual(f.source.clone(), f.cpu.clone(), SamplerConfig::default());
    for job in JOBS {
        sampler.job_adopted(job);
    }
    c.bench_function("sampler_tick_pkg_dram_4jobs", |b| {
        b.iter(|| std::hint::black_box(sampler.tick().expect("tick")))
    });
}

/// What one tick is made of: the zones, one job's cgroup counter, the machine's counter.
fn parts(c: &mut Criterion) {
    let f = fixture();
    c.bench_function("part_rapl_sample_pkg_dram", |b| {
        b.iter(|| std::hint::black_box(f.source.sample().expect("sample")))
    });
    c.bench_function("part_cgroup_cpu_counter", |b| {
        b.iter(|| std::hint::black_box(f.cpu.job_cpu_ns(JOBS[0]).expect("cpu.stat")))
    });
    let dir = f.cpu.root.join(JOBS[0]);
    c.bench_function("part_cgroup_cpu_ns_once", |b| {
        b.iter(|| std::hint::black_box(cgroup_cpu_ns(&dir).expect("cpu.stat")))
    });
    c.bench_function("part_proc_stat_total_ns", |b| {
        b.iter(|| std::hint::black_box(proc_stat_total_ns("/proc/stat").expect("/proc/stat")))
    });
    c.bench_function("part_machine_clock_total_ns", |b| {
        b.iter(|| std::hint::black_box(f.cpu.total_ns().expect("clock")))
    });
}

/// CPU time of every thread of this process, from `schedstat` (nanosecond resolution).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir("/proc/self/task").ok()? {
        let text = fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// A meter in memory: the sampler loop with nothing to read.
struct Memory;

impl PowerSource for Memory {
    fn name(&self) -> &str {
        "memory"
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

impl CpuTimes for Memory {
    fn job_cpu_ns(&self, _job: &str) -> Option<u64> {
        None
    }

    fn total_ns(&self) -> Option<u64> {
        Some(0)
    }
}

fn cpu_cost(hz: f64, run: Duration, loop_only: bool) {
    let f = fixture();
    let (source, cpu, jobs): (Arc<dyn PowerSource>, Arc<dyn CpuTimes>, &[&str]) = if loop_only {
        (Arc::new(Memory), Arc::new(Memory), &[])
    } else {
        (f.source.clone(), f.cpu.clone(), &JOBS)
    };
    let process_before = process_cpu_ns();
    let t0 = Instant::now();
    let sampler = Sampler::start(source, cpu, SamplerConfig::hz(hz));
    for job in jobs {
        sampler.job_adopted(*job);
    }
    std::thread::sleep(run);
    // Before stopping: an exited thread's time leaves /proc/self/task.
    let process_after = process_cpu_ns();
    let wall = t0.elapsed().as_secs_f64();
    sampler.stop();
    let stats = sampler.stats();
    let percent = |ns: f64| 100.0 * ns / 1e9 / wall;
    let thread = stats.thread_cpu.map(|d| percent(d.as_nanos() as f64));
    let process = process_before
        .zip(process_after)
        .map(|(a, b)| percent(b.saturating_sub(a) as f64));
    let per_tick_us = stats.tick_time.as_secs_f64() * 1e6 / stats.ticks.max(1) as f64;
    let show = |p: Option<f64>| p.map_or("n/a".to_string(), |p| format!("{p:.4} % of one core"));
    let what = if loop_only { "loop_only" } else { "pkg_dram_4jobs" };
    println!(
        "sampler_cpu_{hz}hz_{what}: sampler thread {}; whole process {}; {} ticks in {wall:.2} s, {per_tick_us:.1} µs in each",
        show(thread),
        show(process),
        stats.ticks,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--test" || a == "--list");
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    if !listing && !matches!(filter, Some(f) if !"cpu_cost".contains(f.as_str())) {
        for loop_only in [false, true] {
            // 50 ticks at 10 Hz: one slow wake-up on a busy host moves the figure less.
            for (hz, secs) in [(10.0, 5), (100.0, 2)] {
                cpu_cost(hz, Duration::from_secs(secs), loop_only);
            }
        }
    }
    let mut c = Criterion::default().configure_from_args();
    tick(&mut c);
    parts(&mut c);
    c.final_summary();
}
