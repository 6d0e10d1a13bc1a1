//! Cost of the energy sampler on a temp powercap tree (package-0 with a dram subzone) with four
//! running jobs whose CPU time is read from cgroup-like `cpu.stat` files (kept open, as the agent
//! does) and the machine's from a `MachineClock`:
//!
//! - `sampler_tick_pkg_dram_4jobs`: one `Sampler::tick` (read the zones and the five CPU counters,
//!   attribute), with criterion, and `part_*`: what a tick is made of;
//! - the sampler thread's CPU use at 10 Hz (over 5 s) and 100 Hz (over 2 s), from its
//!   `schedstat` and from the process's CPU time, printed as "% of one core" (target ≤ 0.1 % at
//!   10 Hz). `moving`: a writer thread advances every counter in place twice per tick, as live
//!   RAPL and cgroup counters move between ticks; the writer thread is left out of the
//!   process figure. `still`: the counters stand still, so every counter read also pays the `fstat`
//!   that checks whether a counter which did not move lost its file (the worst case). And for
//!   an in-memory source with no jobs (`loop_only`), which is the cost of the thread's wake-ups
//!   alone. Against them, in the same run, `raw_reads`: a bare thread that wakes at the same
//!   rate and `pread`s the same six files with the counters moving, nothing else, which is the
//!   floor any reader of these counters pays on the machine. Five rounds interleave the
//!   variants and the medians are printed with the ratio of the sampler to that floor. Skipped
//!   with `--test` or `--list`; run it alone with `cargo bench -p ffrtmp-benches --bench sampler
//!   -- cpu_cost` (about two and a half minutes).
//!
//! The criterion benches read counters that stand still, so each of their reads pays that
//! `fstat`; `part_fstat_open_file` is its cost alone.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// The package and DRAM `energy_uj` files.
    energy_files: Vec<PathBuf>,
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
    let energy_files = ["intel-rapl:0", "intel-rapl:0:1"]
        .iter()
        .map(|zone| powercap.join(zone).join("energy_uj"))
        .collect();
    Fixture {
        _dir: dir,
        energy_files,
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
    // What a counter that did not move pays to check that its file is still there.
    let open = fs::File::open(&f.energy_files[0]).expect("open energy_uj");
    c.bench_function("part_fstat_open_file", |b| {
        b.iter(|| std::hint::black_box(open.metadata().expect("fstat")))
    });
}

/// The thread advancing the counters, and its id (to leave it out of the process's CPU time).
struct Writer {
    handle: std::thread::JoinHandle<()>,
    tid: String,
}

/// Advances the fixture's counters in place (fixed width, so a reader never sees a shorter
/// file) every `period` until `stop`.
fn advance_counters(f: &Fixture, period: Duration, stop: Arc<AtomicBool>) -> Writer {
    let open = |path: &Path| {
        fs::OpenOptions::new()
            .write(true)
            .open(path)
            .expect("open counter for writing")
    };
    let energy: Vec<fs::File> = f.energy_files.iter().map(|p| open(p)).collect();
    let cpu: Vec<fs::File> = JOBS
        .iter()
        .map(|job| open(&f.cpu.root.join(job).join("cpu.stat")))
        .collect();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        tid_tx
            .send(nix::unistd::gettid().to_string())
            .expect("send the writer's id");
        let mut step = 0u64;
        while !stop.load(Ordering::Relaxed) {
            step += 1;
            for file in &energy {
                // Well below max_energy_range_uj for any run of this bench.
                let uj = 2_000_000 + step * 1_000;
                file.write_all_at(format!("{uj:020}\n").as_bytes(), 0)
                    .expect("write energy_uj");
            }
            for file in &cpu {
                let usec = 10_000_000 + step * 100;
                let text = format!("usage_usec {usec:015}\nuser_usec {usec:015}\nsystem_usec {:015}\n", 0);
                file.write_all_at(text.as_bytes(), 0).expect("write cpu.stat");
            }
            std::thread::sleep(period);
        }
    });
    let tid = tid_rx.recv().expect("the writer's id");
    Writer { handle, tid }
}

/// CPU time of the calling thread, from its `schedstat`.
fn thread_cpu_ns() -> Option<u64> {
    let text = fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of every thread of this process but `except` (a thread id), from `schedstat`
/// (nanosecond resolution).
fn process_cpu_ns(except: Option<&str>) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?;
        if except.is_some_and(|tid| task.file_name() == tid) {
            continue;
        }
        let text = fs::read_to_string(task.path().join("schedstat")).ok()?;
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

/// What the sampler thread reads in [`cpu_cost`].
#[derive(Clone, Copy, PartialEq)]
enum Counters {
    /// The tree, advanced between ticks.
    Moving,
    /// The tree, standing still.
    Still,
    /// Nothing: an in-memory source and no jobs.
    LoopOnly,
}

/// Runs the sampler thread for `run` and prints its CPU use; returns the thread's figure.
fn cpu_cost(hz: f64, run: Duration, counters: Counters) -> Option<f64> {
    let f = fixture();
    let (source, cpu, jobs): (Arc<dyn PowerSource>, Arc<dyn CpuTimes>, &[&str]) = match counters {
        Counters::LoopOnly => (Arc::new(Memory), Arc::new(Memory), &[]),
        Counters::Moving | Counters::Still => (f.source.clone(), f.cpu.clone(), &JOBS),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writer =
        (counters == Counters::Moving).then(|| advance_counters(&f, Duration::from_secs_f64(0.5 / hz), stop.clone()));
    let writer_tid = writer.as_ref().map(|w| w.tid.clone());
    let process_before = process_cpu_ns(writer_tid.as_deref());
    let t0 = Instant::now();
    let sampler = Sampler::start(source, cpu, SamplerConfig::hz(hz));
    for job in jobs {
        sampler.job_adopted(*job);
    }
    std::thread::sleep(run);
    // All three before stopping, so that the thread's last wake-up is not counted and its time
    // is still in /proc/self/task.
    let thread_cpu = sampler.thread_cpu_time();
    let process_after = process_cpu_ns(writer_tid.as_deref());
    let wall = t0.elapsed().as_secs_f64();
    sampler.stop();
    stop.store(true, Ordering::Relaxed);
    if let Some(writer) = writer {
        writer.handle.join().expect("counter writer");
    }
    let stats = sampler.stats();
    let percent = |ns: f64| 100.0 * ns / 1e9 / wall;
    let thread = thread_cpu.map(|d| percent(d.as_nanos() as f64));
    let process = process_before
        .zip(process_after)
        .map(|(a, b)| percent(b.saturating_sub(a) as f64));
    let per_tick_us = stats.tick_time.as_secs_f64() * 1e6 / stats.ticks.max(1) as f64;
    let show = |p: Option<f64>| p.map_or("n/a".to_string(), |p| format!("{p:.4} % of one core"));
    let what = match counters {
        Counters::Moving => "pkg_dram_4jobs_moving",
        Counters::Still => "pkg_dram_4jobs_still",
        Counters::LoopOnly => "loop_only",
    };
    let less = if counters == Counters::Moving {
        " (less the counter writer)"
    } else {
        ""
    };
    println!(
        "sampler_cpu_{hz}hz_{what}: sampler thread {}; whole process {}{less}; {} ticks in {wall:.2} s, \
         {per_tick_us:.1} µs in each",
        show(thread),
        show(process),
        stats.ticks,
    );
    thread
}

/// The same-run floor, as % of one core: a bare thread that wakes at `hz` and `pread`s the
/// fixture's six counter files (package, DRAM, four jobs) into a stack buffer, nothing else,
/// while the counters move as in `moving`; `None` without `schedstat`. Any reader of these
/// counters at this rate pays this on this machine (timer wake-ups, system calls, a cold read
/// path); what the sampler costs above it is its own work. It sleeps in `nanosleep` where the
/// sampler waits on a condition variable (a futex with a timeout): the two cost the same per
/// wake-up, so the difference is the sampler's reading and attribution.
fn raw_reads_cost(hz: f64, run: Duration) -> Option<f64> {
    let f = fixture();
    let mut files: Vec<fs::File> = f
        .energy_files
        .iter()
        .map(|p| fs::File::open(p).expect("open"))
        .collect();
    for job in JOBS {
        files.push(fs::File::open(f.cpu.root.join(job).join("cpu.stat")).expect("open cpu.stat"));
    }
    let interval = Duration::from_secs_f64(1.0 / hz);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = advance_counters(&f, Duration::from_secs_f64(0.5 / hz), stop.clone());
    let thread = std::thread::spawn(move || {
        let start = thread_cpu_ns()?;
        let t0 = Instant::now();
        let mut next = t0 + interval;
        let mut bytes = 0usize;
        while next <= t0 + run {
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
            let mut buf = [0u8; 128];
            for file in &files {
                bytes += file.read_at(&mut buf, 0).unwrap_or(0);
            }
            next += interval;
        }
        std::hint::black_box(bytes);
        let used = thread_cpu_ns()?.saturating_sub(start);
        Some(100.0 * used as f64 / 1e9 / t0.elapsed().as_secs_f64())
    });
    let cost = thread.join().expect("raw reader");
    stop.store(true, Ordering::Relaxed);
    writer.handle.join().expect("counter writer");
    cost
}

/// The middle value (the mean of the two middle ones for an even count).
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--test" || a == "--list");
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    if !listing && !matches!(filter, Some(f) if !"cpu_cost".contains(f.as_str())) {
        // Rounds interleave the variants, so that a slow stretch of the host (a VM's timer
        // wake-ups vary by tens of microseconds from one minute to the next) lands on all of
        // them; the medians are the figures to quote.
        const ROUNDS: usize = 5;
        for (hz, secs) in [(10.0, 5), (100.0, 2)] {
            let run = Duration::from_secs(secs);
            let mut sampler = Vec::new();
            let mut floor = Vec::new();
            let mut wake = Vec::new();
            for round in 1..=ROUNDS {
                println!("round {round} of {ROUNDS} at {hz} Hz:");
                sampler.extend(cpu_cost(hz, run, Counters::Moving));
                cpu_cost(hz, run, Counters::Still);
                wake.extend(cpu_cost(hz, run, Counters::LoopOnly));
                let raw = raw_reads_cost(hz, run);
                if let Some(raw) = raw {
                    println!("raw_reads_{hz}hz: a bare thread reading the same six files {raw:.4} % of one core");
                }
                floor.extend(raw);
            }
            if let (Some(s), Some(f), Some(w)) = (median(sampler), median(floor), median(wake)) {
                println!(
                    "sampler_cpu_{hz}hz median of {ROUNDS}: sampler thread (counters moving) {s:.4} % of one core; \
                     bare reads of the same files {f:.4} %; the sampler loop with nothing to read {w:.4} %; \
                     sampler / bare reads = {:.2}, sampler above bare reads = {:.4} %",
                    s / f,
                    s - f
                );
            }
        }
    }
    let mut c = Criterion::default().configure_from_args();
    tick(&mut c);
    parts(&mut c);
    c.final_summary();
}
