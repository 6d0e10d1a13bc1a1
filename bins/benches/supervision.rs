//! Supervision overhead: the same FFmpeg encode (720p libx264 veryfast, 10 s of testsrc2, null
//! output; the exact command line `FfmpegExecutor` builds for such a job) run
//!
//! - bare: `std::process::Command`, spawn and wait, nothing else;
//! - supervised: through `FfmpegExecutor::execute`, as the agent runs jobs — a job cgroup
//!   (where the host allows one), `-progress` parsed into a progress sink, the stderr tail,
//!   wait4 rusage, and the power sampler ticking at 10 Hz on a temp powercap tree, attributing
//!   by the job cgroup's CPU time (`AttributedEnergy` as the cgroup observer). Niceness is left
//!   as the bare run's (`with_nice(None)`): `nice 10` is a scheduling policy, not overhead, and
//!   on a busy host it would slow the supervised runs for reasons that have nothing to do with
//!   supervision.
//!
//! Runs are interleaved (bare, supervised, bare, …) after one unrecorded warm-up of each. Printed:
//! medians of wall time and of encode CPU (the child's user+sys), the mean CPU of this process
//! (the supervisor: tokio, reaper and sampler threads; 10 ms ticks, so a mean over the runs),
//! and the wall-time ratio supervised / bare (target ≤ 1.02), both as a ratio of medians and as
//! the median of the per-pair ratios (more robust when the host is busy).
//!
//! `cargo bench -p ffrtmp --bench supervision`; `FFRTMP_BENCH_PAIRS` sets the number of pairs
//! (default 6) and `FFRTMP_BENCH_SECONDS` the encode length (default 10). Without `--bench`
//! (e.g. `cargo test --benches`) one short pair runs as a smoke test; `--list` lists nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{cancel_pair, ExecOutcome, Executor, Job, JobId, JobSpec, JobState, Progress, ProgressSink};
use ffrtmp_exec::{CgroupObserver, CgroupPaths, Cgroups, FfmpegCommand, FfmpegConfig, FfmpegExecutor};
use ffrtmp_power::agent::AttributedEnergy;
use ffrtmp_power::{RaplSource, Sampler, SamplerConfig};

const FFMPEG: &str = "/usr/bin/ffmpeg";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    if !Path::new(FFMPEG).exists() {
        println!("supervision: skipped, no {FFMPEG}");
        return;
    }
    let env = |name: &str, default: f64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (pairs, seconds) = if full {
        (
            env("FFRTMP_BENCH_PAIRS", 6.0).max(1.0) as usize,
            env("FFRTMP_BENCH_SECONDS", 10.0),
        )
    } else {
        (1, 0.5)
    };

    // A 10 Hz sampler on a temp powercap tree (package-0 with a dram subzone).
    let dir = tempfile::tempdir().expect("tempdir");
    let powercap = dir.path().join("powercap");
    zone(&powercap, "intel-rapl:0", "package-0", 1_000_000);
    zone(&powercap, "intel-rapl:0:1", "dram", 200_000);
    let energy = Arc::new(AttributedEnergy::new(
        |cpu| Sampler::start_or_unavailable(RaplSource::open(&powercap), cpu, SamplerConfig::hz(10.0)),
        None,
    ));
    assert!(energy.sampler().is_running(), "sampler thread");
    let observer = Arc::new(Counting {
        inner: energy.clone(),
        created: AtomicU64::new(0),
    });
    let cgroups = Cgroups::detect();
    let cgroup_note = match (cgroups.mode(), cgroups.unavailable_reason()) {
        (Some(mode), _) => format!("job cgroups {mode:?}"),
        (None, reason) => format!("no job cgroups here ({})", reason.unwrap_or("unknown")),
    };
    let cgroups = cgroups.with_observer(observer.clone());

    let config = FfmpegConfig {
        ffmpeg_path: FFMPEG.into(),
        ..FfmpegConfig::new(dir.path().join("in"), dir.path().join("out"))
    };
    let exec = FfmpegExecutor::with_cgroups(config.clone(), cgroups).with_nice(None);
    let spec = format!(r#"{{"scenario":"720p-h264","parameters":{{"duration":{seconds},"output_mode":"null"}}}}"#);
    let job = job(&spec);
    let cmd = FfmpegCommand::build(&job, &config).expect("command");
    println!(
        "supervision: {} ({pairs} pairs, interleaved; {cgroup_note}; sampler 10 Hz)",
        cmd.argv().join(" ")
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bare = || {
        let before = cpu_ticks();
        let t0 = Instant::now();
        let status = Command::new(&cmd.program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("spawn ffmpeg");
        let wall = t0.elapsed();
        assert!(status.success(), "bare ffmpeg: {status}");
        Sample::new(wall, before, cpu_ticks())
    };
    let progress = CountingSink::default();
    let supervised = || {
        let before = cpu_ticks();
        let t0 = Instant::now();
        let (_cancel, signal) = cancel_pair();
        let outcome = rt.block_on(exec.execute(&job, &progress, signal));
        let wall = t0.elapsed();
        let ExecOutcome::Completed { result } = outcome else {
            panic!("supervised ffmpeg: {outcome:?}")
        };
        assert!(result.frames > 0 && result.user_s.is_some(), "{result:?}");
        Sample::new(wall, before, cpu_ticks())
    };

    // Warm-up (page cache, ffmpeg's libraries), not recorded.
    bare();
    supervised();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..pairs {
        a.push(bare());
        b.push(supervised());
        println!(
            "  pair {}: bare {:.3} s, supervised {:.3} s ({:.4})",
            i + 1,
            a[i].wall.as_secs_f64(),
            b[i].wall.as_secs_f64(),
            b[i].wall.as_secs_f64() / a[i].wall.as_secs_f64()
        );
    }

    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let wall = |s: &Sample| s.wall.as_secs_f64();
    let child = |s: &Sample| s.child_cpu_s;
    let own = |v: &[Sample]| v.iter().map(|s| s.own_cpu_s).sum::<f64>() / v.len() as f64;
    println!(
        "bare:       wall median {:.3} s, encode cpu median {:.2} s, supervisor cpu mean {:.4} s",
        med(&a, wall),
        med(&a, child),
        own(&a)
    );
    println!(
        "supervised: wall median {:.3} s, encode cpu median {:.2} s, supervisor cpu mean {:.4} s",
        med(&b, wall),
        med(&b, child),
        own(&b)
    );
    let ratio = med(&b, wall) / med(&a, wall);
    let pair_ratio = median(a.iter().zip(&b).map(|(x, y)| wall(y) / wall(x)).collect());
    println!(
        "ratio supervised/bare (wall, medians): {ratio:.4} (median of pair ratios {pair_ratio:.4}); target <= 1.02: {}",
        if ratio <= 1.02 { "met" } else { "NOT met" }
    );
    println!(
        "job cgroups created: {}, progress updates: {}, sampler ticks: {}",
        observer.created.load(Ordering::Relaxed),
        progress.0.load(Ordering::Relaxed),
        energy.sampler().stats().ticks
    );
}

/// One run: wall time, CPU of the waited-for children and of this process (all threads).
struct Sample {
    wall: Duration,
    child_cpu_s: f64,
    own_cpu_s: f64,
}

impl Sample {
    fn new(wall: Duration, before: (u64, u64), after: (u64, u64)) -> Self {
        let tick = |t: u64| t as f64 / 100.0; // USER_HZ
        Sample {
            wall,
            own_cpu_s: tick(after.0 - before.0),
            child_cpu_s: tick(after.1 - before.1),
        }
    }
}

/// (utime + stime, cutime + cstime) of this process in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = &text[text.rfind(')').expect("comm") + 2..];
    let f: Vec<u64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect();
    // After "pid (comm) ": state is field 3, so utime (14) .. cstime (17) are at 11..=14.
    (f[11] + f[12], f[13] + f[14])
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn zone(root: &Path, entry: &str, name: &str, uj: u64) {
    let dir = root.join(entry);
    std::fs::create_dir_all(&dir).expect("create zone dir");
    std::fs::write(dir.join("name"), format!("{name}\n")).expect("write name");
    std::fs::write(dir.join("energy_uj"), format!("{uj}\n")).expect("write energy_uj");
    std::fs::write(dir.join("max_energy_range_uj"), "262143328850\n").expect("write max_energy_range_uj");
}

fn job(spec_json: &str) -> Job {
    Job {
        state: JobState::Running,
        attempt: 1,
        ..Job::submitted(
            JobId::new(),
            1,
            serde_json::from_str::<JobSpec>(spec_json)
                .expect("spec")
                .try_into()
                .expect("valid spec"),
            0,
        )
    }
}

/// The agent's energy observer, counting the job cgroups it is told about.
struct Counting {
    inner: Arc<AttributedEnergy>,
    created: AtomicU64,
}

impl CgroupObserver for Counting {
    fn created(&self, name: &str, cgroup: &CgroupPaths) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.inner.created(name, cgroup);
    }

    fn removing(&self, name: &str, cgroup: &CgroupPaths) {
        self.inner.removing(name, cgroup);
    }
}

/// Counts progress updates (the agent forwards them to the master; here they stop at a counter).
#[derive(Default)]
struct CountingSink(AtomicU64);

impl ProgressSink for CountingSink {
    fn update(&self, _progress: Progress) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
