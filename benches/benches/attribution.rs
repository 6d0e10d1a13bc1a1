//! Attribution accuracy: per-job energy from the `Sampler` (cgroup CPU-time share of each
//! interval's energy) against the true joules of a synthetic run whose shares are known.
//!
//! The run is laid out on files, as the agent reads them: a powercap tree (one `package-0`
//! zone) and a `cpu.stat` per job, read through `RaplSource` and `CgroupCpuCounter`; the
//! machine's CPU time is a counter advanced with them. It has 4 cores and 4 jobs. In each
//! 100 ms step every job uses a fresh pseudo-random share of the machine (the rest is idle or
//! other work) and the package draws 20 W idle plus 60 W per busy core, so a job's true energy
//! in a step is the step's energy times its share (the model the method assumes, which makes
//! sampling the only source of error). The sampler ticks every `k` steps; the longer the
//! interval, the more power and shares vary inside it and the more the per-interval split
//! drifts from the truth. Printed per `k`: each job's attributed and true joules, the largest
//! relative error and the error of the jobs' sum.
//!
//! `cargo bench -p ffrtmp-benches --bench attribution`; criterion then times one step and tick.
//! With `--test` or `--list` only a short accuracy run is made.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::Criterion;
use ffrtmp_power::{CgroupCpuCounter, CpuTimes, RaplSource, Sampler, SamplerConfig};

const JOBS: usize = 4;
const CORES: f64 = 4.0;
const STEP_S: f64 = 0.1;
const IDLE_W: f64 = 20.0;
const CORE_W: f64 = 60.0;

/// Job CPU time from files, machine CPU time from a counter the run advances.
struct SyntheticCpu {
    counters: Vec<CgroupCpuCounter>,
    total_ns: AtomicU64,
}

impl CpuTimes for SyntheticCpu {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        let index: usize = job.strip_prefix("job-")?.parse().ok()?;
        self.counters.get(index)?.read_ns().ok()
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.total_ns.load(Ordering::Relaxed))
    }
}

/// A synthetic machine: its files, its cumulative counters and the true energy of each job.
struct Machine {
    _dir: tempfile::TempDir,
    energy_file: PathBuf,
    cgroups: Vec<PathBuf>,
    cpu: Arc<SyntheticCpu>,
    energy_uj: f64,
    job_usec: [f64; JOBS],
    true_joules: [f64; JOBS],
    rng: u64,
}

fn write_cpu_stat(dir: &Path, usec: u64) {
    fs::write(
        dir.join("cpu.stat"),
        format!("usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n"),
    )
    .expect("write cpu.stat");
}

impl Machine {
    fn new() -> (Machine, Arc<RaplSource>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let zone = dir.path().join("powercap/intel-rapl:0");
        fs::create_dir_all(&zone).expect("zone dir");
        fs::write(zone.join("name"), "package-0\n").expect("name");
        fs::write(zone.join("energy_uj"), "0\n").expect("energy_uj");
        fs::write(zone.join("max_energy_range_uj"), "262143328850\n").expect("max range");
        let cgroups: Vec<PathBuf> = (0..JOBS).map(|i| dir.path().join(format!("cg/job-{i}"))).collect();
        for cg in &cgroups {
            fs::create_dir_all(cg).expect("cgroup dir");
            write_cpu_stat(cg, 0);
        }
        let counters = cgroups
            .iter()
            .map(|cg| CgroupCpuCounter::open(cg).expect("cpu.stat"))
            .collect();
        let source = Arc::new(RaplSource::open(dir.path().join("powercap")).expect("powercap tree"));
        let machine = Machine {
            energy_file: zone.join("energy_uj"),
            _dir: dir,
            cgroups,
            cpu: Arc::new(SyntheticCpu {
                counters,
                total_ns: AtomicU64::new(0),
            }),
            energy_uj: 0.0,
            job_usec: [0.0; JOBS],
            true_joules: [0.0; JOBS],
            rng: 0x9E37_79B9_7F4A_7C15,
        };
        (machine, source)
    }

    /// A uniform number in [0, 1) (xorshift: deterministic, so every run sees the same load).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One step: fresh shares (summing to at most 0.9 of the machine), power from the busy cores.
    fn step(&mut self) {
        let raw: Vec<f64> = (0..JOBS).map(|_| self.uniform()).collect();
        let scale = 0.9 * self.uniform() / raw.iter().sum::<f64>().max(1e-9);
        let shares: Vec<f64> = raw.iter().map(|r| r * scale).collect();
        let busy_cores = shares.iter().sum::<f64>() * CORES;
        let joules = (IDLE_W + CORE_W * busy_cores) * STEP_S;
        self.energy_uj += joules * 1e6;
        for (i, share) in shares.iter().enumerate() {
            self.true_joules[i] += joules * share;
            self.job_usec[i] += share * CORES * STEP_S * 1e6;
            write_cpu_stat(&self.cgroups[i], self.job_usec[i].round() as u64);
        }
        fs::write(&self.energy_file, format!("{}\n", self.energy_uj.round() as u64)).expect("energy_uj");
        self.cpu
            .total_ns
            .fetch_add((CORES * STEP_S * 1e9) as u64, Ordering::Relaxed);
    }
}

/// Runs `steps` steps ticking every `k`; returns (attributed, true) joules per job.
fn run(steps: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut machine, source) = Machine::new();
    let sampler = Sampler::manual(source, machine.cpu.clone(), SamplerConfig::default());
    for i in 0..JOBS {
        sampler.job_started(format!("job-{i}"));
    }
    sampler.tick().expect("first reading");
    for s in 1..=steps {
        machine.step();
        if s % k == 0 {
            sampler.tick().expect("tick");
        }
    }
    let attributed = (0..JOBS)
        .map(|i| sampler.job_finished(&format!("job-{i}")).expect("job").joules_total)
        .collect();
    (attributed, machine.true_joules.to_vec())
}

fn accuracy(steps: usize) {
    println!("attribution: {JOBS} jobs on {CORES} cores, {steps} steps of {STEP_S} s, shares random per step");
    for k in [1, 5, 20, 50] {
        let (got, truth) = run(steps, k);
        let worst = got
            .iter()
            .zip(&truth)
            .map(|(g, t)| ((g - t) / t).abs())
            .fold(0.0, f64::max);
        let sum_error = (got.iter().sum::<f64>() - truth.iter().sum::<f64>()) / truth.iter().sum::<f64>();
        let pairs: Vec<String> = got.iter().zip(&truth).map(|(g, t)| format!("{g:.1}/{t:.1}")).collect();
        println!(
            "  tick every {k:>2} steps ({:.1} s): attributed/true J {}; worst job error {:.3} %, sum error {:+.3} %",
            k as f64 * STEP_S,
            pairs.join(" "),
            worst * 100.0,
            sum_error * 100.0
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    accuracy(if full { 3_000 } else { 100 });
    if !full {
        return;
    }
    let (mut machine, source) = Machine::new();
    let sampler = Sampler::manual(source, machine.cpu.clone(), SamplerConfig::default());
    for i in 0..JOBS {
        sampler.job_started(format!("job-{i}"));
    }
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("attribution_step_and_tick_4jobs", |b| {
        b.iter(|| {
            machine.step();
            std::hint::black_box(sampler.tick().expect("tick"))
        })
    });
    c.final_summary();
}
