//! A sampler tick over a powercap tree and cgroup counters allocates nothing once running: the
//! agent's sampler ticks ten times a second for as long as it runs, and on a machine where a
//! wake-up is already most of its cost, allocator work on cold memory shows.
//!
//! Counts the allocations of this test's own thread with a counting global allocator: a
//! thread-local flag, set only around the ticks, keeps every other thread's allocations out.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ffrtmp_power::{CgroupCpuCounter, CpuTimes, RaplSource, Sampler, SamplerConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to the system allocator unchanged; counting touches only an atomic
// and a const-initialised thread local, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const JOBS: [&str; 4] = ["job-a", "job-b", "job-c", "job-d"];

/// Job CPU time from kept-open `cpu.stat` counters, the machine's from a fixed-rate clock the
/// test advances, as an agent's `CpuTimes` does (it reads the job counters, nothing else).
struct Cgroups {
    jobs: HashMap<&'static str, CgroupCpuCounter>,
    machine_ns: AtomicU64,
}

impl CpuTimes for Cgroups {
    fn job_cpu_ns(&self, job: &str) -> Option<u64> {
        self.jobs.get(job)?.read_ns().ok()
    }

    fn total_ns(&self) -> Option<u64> {
        Some(self.machine_ns.load(Ordering::Relaxed))
    }
}

#[test]
fn a_running_sampler_tick_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let powercap = dir.path().join("powercap");
    for (entry, name) in [("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram")] {
        let zone = powercap.join(entry);
        fs::create_dir_all(&zone).unwrap();
        fs::write(zone.join("name"), format!("{name}\n")).unwrap();
        fs::write(zone.join("energy_uj"), "1000000\n").unwrap();
        fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
    }
    let cgroups = dir.path().join("cgroups");
    let mut jobs = HashMap::new();
    for job in JOBS {
        fs::create_dir_all(cgroups.join(job)).unwrap();
        fs::write(
            cgroups.join(job).join("cpu.stat"),
            "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        )
        .unwrap();
        jobs.insert(job, CgroupCpuCounter::open(cgroups.join(job)).unwrap());
    }
    let cpu = Arc::new(Cgroups {
        jobs,
        machine_ns: AtomicU64::new(0),
    });
    let source = Arc::new(RaplSource::open(&powercap).unwrap());
    let sampler = Sampler::manual(source, cpu.clone(), SamplerConfig::default());
    for job in JOBS {
        sampler.job_started(job);
    }
    // One second per step: 2 CPUs' worth of machine time, each job 0.25 s, 10 J of package
    // energy and 2 J of DRAM.
    let step = |n: u64| {
        for zone in ["intel-rapl:0", "intel-rapl:0:0"] {
            let uj = 1_000_000 + n * if zone == "intel-rapl:0" { 10_000_000 } else { 2_000_000 };
            fs::write(powercap.join(zone).join("energy_uj"), format!("{uj}\n")).unwrap();
        }
        for job in JOBS {
            let usec = n * 250_000;
            let text = format!("usage_usec {usec}\nuser_usec {usec}\nsystem_usec 0\n");
            fs::write(cgroups.join(job).join("cpu.stat"), text).unwrap();
        }
        cpu.machine_ns.store(n * 2_000_000_000, Ordering::Relaxed);
    };
    // Two ticks to reach the steady state: the first interval, then the spare reading.
    for n in 1..=2 {
        step(n);
        sampler.tick().unwrap();
    }
    let mut allocations = 0;
    for n in 3..=12 {
        step(n);
        allocations += allocations_in(|| {
            let interval = sampler.tick().unwrap().expect("an interval");
            assert_eq!(interval.jobs, 4);
        });
    }
    assert_eq!(allocations, 0, "allocations in 10 ticks");

    // A failed reading (it may allocate its error) leaves the buffers in place for the next.
    fs::write(powercap.join("intel-rapl:0").join("energy_uj"), "garbage\n").unwrap();
    assert!(sampler.tick().is_err());
    step(13);
    let allocations = allocations_in(|| {
        sampler.tick().unwrap().expect("an interval");
    });
    assert_eq!(allocations, 0, "allocations in a tick after a failed one");

    // The ticks did their work: 12 J per second, half of it (4 × 0.25 of 2 CPU-seconds) the jobs',
    // for 13 seconds (the failed reading's second is counted by the next one).
    let totals = sampler.totals();
    assert!((totals.total_joules - 12.0 * 13.0).abs() < 1e-6, "{totals:?}");
    assert!((totals.jobs_joules - 6.0 * 13.0).abs() < 1e-6, "{totals:?}");
    let energy = sampler.job_finished("job-a").unwrap();
    assert!((energy.joules_cpu - 13.0 * 10.0 / 8.0).abs() < 1e-6, "{energy:?}");
    assert!((energy.joules_dram - 13.0 * 2.0 / 8.0).abs() < 1e-6, "{energy:?}");
}
