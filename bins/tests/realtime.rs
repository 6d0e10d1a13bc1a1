//! Live progress and cancel at the default 30 s heartbeat interval, with the real master,
//! agent and CLI binaries and real ffmpeg encodes: progress reaches the master at least once
//! a second, a cancel kills the encode's process group within a second, and the CLI's live
//! views print plain lines and JSON lines.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

const KEY: &str = "live-test-key-0123456789abcdef";

/// A master and one agent, both at their default heartbeat interval (30 s).
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
    cli: Cli,
    _procs: Vec<Proc>,
}

impl Cluster {
    fn start(slots: u32) -> Cluster {
        let dir = cluster::shared_dir();
        let d = dir.path();
        let (master, url) = cluster::master(d, KEY).args(["--port", "0"]).start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--claim-wait", "2s", "--name", "live-0"])
            .args(["--max-concurrent-jobs", &slots.to_string()])
            .path("--powercap-root", "no-powercap")
            .spawn();
        Cluster {
            cli: Cli::new(d, &url, KEY),
            dir,
            url,
            _procs: vec![master, agent],
        }
    }

    /// The CLI with `args` (global flags included), not checked.
    fn cli_raw(&self, args: &[&str]) -> Output {
        self.cli.output(args)
    }

    fn submit(&self, scenario: &str, duration: &str) -> String {
        let job = self
            .cli
            .json(&["jobs", "submit", "--scenario", scenario, "--duration", duration]);
        job["id"].as_str().unwrap().to_string()
    }

    /// A job held to 10 % of a core, so that it runs for seconds (and sends progress) however
    /// fast the machine: 4 s of 240p take about 0.25 CPU seconds on an idle one.
    fn submit_throttled(&self, scenario: &str, duration: &str) -> String {
        let args = ["jobs", "submit", "--scenario", scenario, "--duration", duration];
        let job = self.cli.json(&[&args[..], &["--max-cpu-percent", "10"]].concat());
        job["id"].as_str().unwrap().to_string()
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }
}

/// `(pid, process group)` of every process whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(i32, i32)> {
    all_processes()
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

fn all_processes() -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        // Field 5 of stat is the process group; the command name before it may hold spaces.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(pgrp) = rest.split_whitespace().nth(2).and_then(|g| g.parse().ok()) {
            out.push((pid, pgrp));
        }
    }
    out
}

fn group_alive(pgrp: i32) -> bool {
    all_processes().iter().any(|(_, g)| *g == pgrp)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[test]
fn progress_flows_every_second_and_cancel_kills_the_encode_within_a_second_at_30s_heartbeats() {
    let cluster = Cluster::start(1);
    let ids: Vec<String> = (0..10).map(|_| cluster.submit("240p-h264", "600")).collect();
    let mut latencies = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let group = loop {
            let j = cluster.cli.json(&["jobs", "status", id]);
            let procs = processes_mentioning(id);
            if j["state"] == "running" && !procs.is_empty() {
                break procs[0].1;
            }
            assert!(
                Instant::now() < deadline,
                "job {n} never started: {j:#}\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        if n == 0 {
            // Heartbeats come every 30 s; the master still sees progress move every second.
            let mut frames = Vec::new();
            let until = Instant::now() + Duration::from_secs(6);
            while frames.len() < 4 {
                assert!(
                    Instant::now() < until,
                    "progress at the master: {frames:?}\n{}",
                    cluster.logs()
                );
                let j = cluster.cli.json(&["jobs", "status", id]);
                if let Some(f) = j["progress"]["frame"].as_u64() {
                    if frames.last() != Some(&f) {
                        frames.push(f);
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            println!("progress frames seen at the master within seconds: {frames:?}");
        }
        let asked = Instant::now();
        assert_eq!(cluster.cli.json(&["jobs", "cancel", id])["state"], "canceled");
        let deadline = asked + Duration::from_secs(10);
        while group_alive(group) {
            assert!(
                Instant::now() < deadline,
                "job {n}'s encode runs 10 s after its cancel\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        latencies.push(asked.elapsed());
    }
    latencies.sort();
    let (p50, p95, max) = (percentile(&latencies, 50.0), percentile(&latencies, 95.0), latencies[9]);
    println!("cancel request -> process group gone, 10 encodes: p50 {p50:?} p95 {p95:?} max {max:?}");
    println!("all: {latencies:?}");
    assert!(p95 < Duration::from_secs(1), "p95 {p95:?}: {latencies:?}");
}

#[test]
fn live_views_print_plain_lines_and_json_lines() {
    let cluster = Cluster::start(1);
    let id = cluster.submit_throttled("240p-h264", "4");
    let out = cluster.cli_raw(&["jobs", "watch", &id, "--timeout", "60s"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    // Not a terminal: plain lines, no bar drawing.
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.contains(&format!("job {id} completed")), "{text}");
    let progress: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("progress {id} frame ")))
        .collect();
    assert!(!progress.is_empty(), "no progress lines:\n{text}\n{}", cluster.logs());
    assert!(progress[0].contains(" fps ") && progress[0].contains(" speed ") && progress[0].contains(" eta "));

    // On a terminal (util-linux `script` gives it one): progress bars.
    let bars_job = cluster.submit_throttled("240p-h264", "4");
    let command = format!(
        "{} --master {} --ca-cert {} jobs watch {bars_job} --timeout 60s",
        env!("CARGO_BIN_EXE_ffrtmp"),
        cluster.url,
        cluster.dir.path().join("tls/cert.pem").display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("MASTER_API_KEY", KEY)
        .env("COLUMNS", "160")
        .output()
        .expect("util-linux script runs a command on a pseudo-terminal");
    let screen = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{screen}");
    let short: String = bars_job.chars().take(8).collect();
    // A bar: the job's short id, the bar's frame and its percentage, redrawn in place.
    assert!(
        screen.contains(&short) && screen.contains("] 100%"),
        "no bar drawn: {screen:?}"
    );
    assert!(
        screen.contains("\r\u{1b}[2K"),
        "the bar is never redrawn in place: {screen:?}"
    );
    assert!(screen.contains("completed"), "{screen:?}");
    assert!(screen.contains(" fps ") && screen.contains(" eta "), "{screen:?}");

    let second = cluster.submit_throttled("240p-h264", "4");
    let out = cluster.cli_raw(&[
        "--output",
        "json",
        "jobs",
        "wait",
        &second,
        "--follow",
        "--timeout",
        "60s",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert!(events.contains(&"progress"), "{text}");
    let progress = lines.iter().find(|l| l["event"] == "progress").unwrap();
    assert_eq!(progress["job_id"], second.as_str());
    assert!(
        progress["frame"].as_u64().is_some() && progress["fps"].is_number(),
        "{progress}"
    );
    assert!(
        lines.iter().any(|l| l["event"] == "job" && l["state"] == "completed"),
        "{text}"
    );
    let last = lines.last().unwrap();
    assert_eq!(
        last[0]["state"], "completed",
        "the last line holds the final jobs: {last}"
    );

    let out = cluster.cli_raw(&["--output", "json", "nodes", "watch", "--duration", "2s"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).unwrap();
    assert_eq!(
        (first["event"].as_str(), first["node"].as_str()),
        (Some("node"), Some("live-0")),
        "{text}"
    );
    assert_eq!(first["slots"], 1);
    let out = cluster.cli_raw(&["nodes", "watch", "--duration", "1s"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.starts_with("node live-0 online "), "{text}");
}
