//! An agent frozen (SIGSTOP) past the master's dead-node window while it runs a real encode,
//! then thawed: the master has handed the job out again, to the same node. The stale attempt
//! must stop before the new one runs, the job completes exactly once with a legal history,
//! and at no moment does the node run more encodes than its concurrency, or two attempts of
//! one job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{Job, JobState};

const KEY: &str = "stall-test-key-0123456789abcdef";

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        signal(self.0.id(), "CONT");
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

#[path = "support/procs.rs"]
mod procs;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::{logs, Cli};

/// Polls `cond` every 50 ms until it yields a value; panics with `what` at the deadline.
fn wait_for<T>(what: &str, within: Duration, dir: &Path, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}\n{}", logs(dir));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The encodes of this test now: attempt numbers of the ffmpeg processes writing into
/// `out` (output files are named `<job>-a<attempt>.<ext>`), keyed by pid.
fn encodes(out: &Path) -> BTreeMap<u32, String> {
    let out = out.to_string_lossy().into_owned();
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')) {
            continue; // exited, not yet reaped
        }
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.first().is_some_and(|a| a.ends_with("ffmpeg")) {
            continue;
        }
        if let Some(file) = args.iter().find(|a| a.starts_with(&out)) {
            let name = Path::new(file).file_stem().unwrap().to_string_lossy().into_owned();
            found.insert(pid, name);
        }
    }
    found
}

struct Cluster {
    dir: tempfile::TempDir,
    cli: Cli,
    _master: procs::Proc,
    agent: Option<Proc>,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "1s", "--sweep-interval", "200ms"])
            .args(["--retry-base", "200ms"])
            .start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "1s", "--claim-wait", "2s"])
            .args([
                "--max-concurrent-jobs",
                "2",
                "--name",
                "stalled",
                "--status-addr",
                "none",
            ])
            .args(["--idle-window", "0s", "--drain-timeout", "5s"])
            .path("--powercap-root", "no-powercap")
            .command()
            .spawn()
            .unwrap();
        Cluster {
            cli: Cli::new(d, &url, KEY),
            dir,
            _master: master,
            agent: Some(Proc(agent)),
        }
    }

    fn job(&self, id: &str) -> Job {
        serde_json::from_value(self.cli.json(&["jobs", "status", id])).unwrap()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
}

/// Samples the test's encodes every 100 ms on a thread until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<BTreeMap<u32, String>>>,
}

impl Sampler {
    fn start(out: PathBuf) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopping.load(Ordering::SeqCst) {
                samples.push(encodes(&out));
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<BTreeMap<u32, String>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

#[test]
fn a_frozen_agent_given_its_job_again_runs_it_once_at_a_time() {
    let mut cluster = Cluster::start();
    let d = cluster.dir.path();
    let sampler = Sampler::start(cluster.out());
    // A CPU quota of 10% of a core makes the encode last well past the freeze: 12 s of 360p
    // video take 0.8–4 CPU seconds here (idle to loaded machine), so 8–40 s of wall time.
    let job = cluster.cli.json(&[
        "jobs",
        "submit",
        "--scenario",
        "360p-h264",
        "--duration",
        "12",
        "--max-cpu-percent",
        "10",
    ]);
    let id = job["id"].as_str().unwrap().to_string();
    let first = format!("{id}-a1");
    wait_for("attempt 1 encoding", Duration::from_secs(30), d, || {
        encodes(&cluster.out()).values().any(|a| *a == first).then_some(())
    });

    // Frozen past the dead-node window (3 × 1 s): the master takes the job back and queues it.
    let agent = cluster.agent.as_ref().unwrap().0.id();
    signal(agent, "STOP");
    let lost = wait_for("the master to take the job back", Duration::from_secs(20), d, || {
        let j = cluster.job(&id);
        (j.state != JobState::Assigned && j.state != JobState::Running || j.attempt > 1).then_some(j)
    });
    assert!(
        encodes(&cluster.out()).values().any(|a| *a == first),
        "attempt 1 ended during the freeze; the test needs it still running ({lost:?})"
    );
    signal(agent, "CONT");

    let done = wait_for("the job to finish", Duration::from_secs(90), d, || {
        let j = cluster.job(&id);
        j.state.is_terminal().then_some(j)
    });
    let samples = sampler.finish();
    assert_eq!(done.state, JobState::Completed, "{done:?}\n{}", logs(d));
    assert!(done.attempt >= 2, "the job was never handed out again: {done:?}");

    // The history chains legal transitions from submission to one completion.
    let mut prev = None;
    for h in &done.history {
        assert_eq!(h.from, prev, "history does not chain: {:#?}", done.history);
        if let Some(from) = h.from {
            assert!(from.can_become(h.to), "illegal {from} -> {}: {:#?}", h.to, done.history);
        }
        prev = Some(h.to);
    }
    let completions = done.history.iter().filter(|h| h.to == JobState::Completed).count();
    assert_eq!(completions, 1, "{:#?}", done.history);

    // Never more encodes than the node's concurrency, never two attempts of the job at once,
    // and both attempts were seen.
    for (i, sample) in samples.iter().enumerate() {
        assert!(sample.len() <= 2, "sample {i}: more encodes than slots: {sample:?}");
        let mut per_job = BTreeMap::new();
        for attempt in sample.values() {
            *per_job.entry(attempt.rsplit_once("-a").unwrap().0).or_insert(0) += 1;
        }
        assert!(
            per_job.values().all(|n| *n == 1),
            "sample {i}: two attempts of one job: {sample:?}"
        );
    }
    let seen: std::collections::BTreeSet<&String> = samples.iter().flat_map(|s| s.values()).collect();
    assert!(seen.contains(&first), "{seen:?}");
    assert!(seen.contains(&format!("{id}-a{}", done.attempt)), "{seen:?}");

    // A wait longer than the clock can count is no limit, not a crash.
    let waited = cluster
        .cli
        .json(&["jobs", "wait", &id, "--timeout", "200000000000000d"]);
    assert_eq!(waited[0]["state"], "completed");

    let agent = cluster.agent.take().unwrap();
    signal(agent.0.id(), "TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut agent = agent;
    let status = loop {
        if let Some(status) = agent.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop on SIGTERM\n{}",
            logs(d)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", logs(d));
}
