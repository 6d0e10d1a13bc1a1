//! The edge wrapper end to end: the real `ffrtmp` binary with real processes and cgroups.
//! `run` must be non-owning (SIGKILL of the wrapper leaves the workload running in its
//! cgroup), report exits, signals and OOM kills; `attach` must move a process into a
//! cgroup and see it exit; `watch` must attach a matching process once across restarts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ffrtmp_exec::wrapper::proc::{self, ProcStat};
use ffrtmp_exec::Cgroups;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_ffrtmp");

/// Polls `f` every 20 ms until it returns `Some`, failing the test after `limit`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether job cgroups work here; prints why not otherwise.
fn cgroups_or_skip(test: &str) -> bool {
    match Cgroups::detect().unavailable_reason() {
        None => true,
        Some(reason) => {
            eprintln!("skipping {test}: no cgroups ({reason})");
            false
        }
    }
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{t}", std::process::id())
}

/// The `ffrtmp run/attach: … pid P … cgroup: a b c` line the wrapper writes to stderr.
fn started_line(stderr_file: &Path, prefix: &str) -> Option<(i32, Vec<PathBuf>)> {
    let text = fs::read_to_string(stderr_file).ok()?;
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    let pid = line.split_whitespace().find_map(|w| w.parse().ok())?;
    let dirs = line
        .split_once(" cgroup: ")?
        .1
        .split_whitespace()
        .map(PathBuf::from)
        .collect();
    Some((pid, dirs))
}

fn alive(pid: i32) -> bool {
    ProcStat::read(pid).is_ok_and(|s| s.state != 'Z')
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: plain system call.
    unsafe { nix::libc::kill(pid, sig) };
}

fn remove_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        wait_for(Duration::from_secs(5), "cgroup removal", || {
            (fs::remove_dir(dir).is_ok() || !dir.exists()).then_some(())
        });
    }
}

fn last_json(stdout: &[u8]) -> Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON in {text:?}"));
    serde_json::from_str(line).unwrap()
}

#[test]
fn run_workload_survives_sigkill_of_the_wrapper() {
    if !cgroups_or_skip("run_workload_survives_sigkill_of_the_wrapper") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let id = format!("survive-{}", nonce());
    let mut wrapper = Command::new(BIN)
        .args([
            "run",
            "--job-id",
            &id,
            "--cpu-quota",
            "50",
            "--",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let (pid, dirs) = wait_for(Duration::from_secs(10), "the workload to start", || {
        started_line(&err_path, "ffrtmp run:")
    });
    let name = format!("edge-run-{id}-{}-", wrapper.id());
    assert!(dirs.iter().all(|d| d.to_string_lossy().contains(&name)), "{dirs:?}");
    let cpu = dirs
        .iter()
        .find(|d| d.join("cpu.cfs_quota_us").exists())
        .expect("a cpu cgroup")
        .clone();
    // The workload is the shell itself, in its own session, inside the group.
    wait_for(Duration::from_secs(5), "the workload to exec", || {
        (proc::cmdline(pid).first().map(String::as_str) == Some("sh")).then_some(())
    });
    assert!(proc::cgroup_text(pid).contains(&name));

    wrapper.kill().unwrap(); // SIGKILL
    wrapper.wait().unwrap();
    // Give a lifeline (PDEATHSIG, a killpg from a drop guard) every chance to fire.
    let watch_until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < watch_until {
        assert!(alive(pid), "the workload died with its wrapper");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(proc::cgroup_text(pid).contains(&name), "the workload left its cgroup");
    let tasks = fs::read_to_string(cpu.join("cgroup.procs")).unwrap();
    assert!(tasks.split_whitespace().any(|p| p == pid.to_string()), "{tasks}");
    assert_eq!(
        fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap().trim(),
        "50000"
    );

    kill(pid, nix::libc::SIGKILL);
    wait_for(Duration::from_secs(5), "the workload to die", || {
        (!alive(pid)).then_some(())
    });
    remove_dirs(&dirs);
}

#[test]
fn run_reports_exit_code_and_signal_as_json() {
    let out = Command::new(BIN)
        .args(["run", "--job-id", "exit3", "--json", "--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v = last_json(&out.stdout);
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["reason"], "exited 3");
    assert_eq!(v["job_id"], "exit3");
    assert_eq!(v["oom_killed"], false);
    assert!(v["duration_ms"].as_u64().is_some());
    if Cgroups::detect().unavailable_reason().is_none() {
        assert_eq!(v["cgroup_removed"], true, "{v}");
        for dir in v["cgroup"].as_array().unwrap() {
            assert!(!Path::new(dir.as_str().unwrap()).exists());
        }
    } else {
        assert!(v["limits"].as_str().unwrap().starts_with("not enforced: "));
    }

    let out = Command::new(BIN)
        .args(["run", "--", "sh", "-c", "kill -TERM $$"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 15));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("reason: killed by signal 15 (SIGTERM)"), "{text}");
    assert!(text.contains("exit code: -"), "{text}");
    assert!(text.contains("limits: "), "{text}");
}

#[test]
fn run_reports_oom_kill_under_memory_limit() {
    if !cgroups_or_skip("run_reports_oom_kill_under_memory_limit") {
        return;
    }
    if !Cgroups::detect().has_memory() {
        eprintln!("skipping run_reports_oom_kill_under_memory_limit: no memory controller");
        return;
    }
    let out = Command::new(BIN)
        .args(["run", "--memory-limit", "100", "--json", "--"])
        .args(["python3", "-c", "x=bytearray(300*1024*1024)"])
        .output()
        .unwrap();
    let v = last_json(&out.stdout);
    if v.get("error").is_some() {
        eprintln!("skipping the OOM check: python3 cannot start ({v})");
        return;
    }
    assert_eq!(v["oom_killed"], true, "{v}");
    assert_eq!(v["reason"], "OOM-killed under its memory limit");
    assert_eq!(v["signal"], 9);
    assert!(v["limits"].as_str().unwrap().contains("memory=100MiB"), "{v}");
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn run_forwards_sigterm_to_the_workload() {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let wrapper = Command::new(BIN)
        .args(["run", "--json", "--", "sleep", "30"])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let (pid, _) = wait_for(Duration::from_secs(10), "the workload to start", || {
        started_line(&err_path, "ffrtmp run:")
    });
    wait_for(Duration::from_secs(5), "sleep to exec", || {
        (proc::cmdline(pid).first().map(String::as_str) == Some("sleep")).then_some(())
    });
    let t0 = Instant::now();
    kill(wrapper.id() as i32, nix::libc::SIGTERM);
    let out = wrapper.wait_with_output().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10));
    let v = last_json(&out.stdout);
    assert_eq!(v["forwarded_signal"], 15, "{v}");
    assert_eq!(v["reason"], "killed by signal 15 (SIGTERM)");
    assert!(!alive(pid));
}

#[test]
fn attach_moves_a_process_and_reports_its_exit() {
    if !cgroups_or_skip("attach_moves_a_process_and_reports_its_exit") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let mut target = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = target.id() as i32;
    let wrapper = Command::new(BIN)
        .args([
            "attach",
            "--pid",
            &pid.to_string(),
            "--cpu-weight",
            "150",
            "--cpu-quota",
            "50",
        ])
        .args(["--memory-limit", "64", "--nice", "5", "--poll", "20ms", "--json"])
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let (_, dirs) = wait_for(Duration::from_secs(10), "the attach", || {
        started_line(&err_path, "ffrtmp attach:")
    });
    let name = format!("edge-attach-{pid}-");
    assert!(proc::cgroup_text(pid).contains(&name), "{}", proc::cgroup_text(pid));
    let cpu = dirs
        .iter()
        .find(|d| d.join("cpu.shares").exists())
        .expect("a cpu cgroup");
    assert_eq!(fs::read_to_string(cpu.join("cpu.shares")).unwrap().trim(), "1536");
    assert_eq!(
        fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap().trim(),
        "50000"
    );
    assert_eq!(proc::nice_of(pid), Some(5));

    target.kill().unwrap();
    // Not reaped yet: the zombie shows its wait status to the attach.
    let out = wrapper.wait_with_output().unwrap();
    target.wait().unwrap();
    let v = last_json(&out.stdout);
    assert_eq!(v["pid"], pid);
    assert_eq!(v["reason"], "killed by signal 9 (SIGKILL)", "{v}");
    assert_eq!(v["cgroup_removed"], true, "{v}");
    let limits = v["limits"].as_str().unwrap();
    assert!(limits.contains("cpu=50%") && limits.contains("cpu_weight=150") && limits.contains("nice=5"));
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

fn watch(config: &Path, state: &Path) -> Vec<Value> {
    let out = Command::new(BIN)
        .args(["watch", "--once", "--enable-state", "--json", "--scan-interval", "1s"])
        .arg("--watch-config")
        .arg(config)
        .arg("--state-file")
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn watch_attaches_once_across_restarts_and_drops_exited() {
    if !cgroups_or_skip("watch_attaches_once_across_restarts_and_drops_exited") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A unique argument makes the rule match this sleep only.
    let arg = format!("1000.{}", nonce());
    let config = dir.path().join("watch.yaml");
    fs::write(
        &config,
        format!("rules:\n  - {{match: sleep, args_contain: [\"{arg}\"], cpu_quota: 30, nice: 3, name: t}}\n"),
    )
    .unwrap();
    let state = dir.path().join("state/watch.json");
    let mut target = Command::new("sleep").arg(&arg).spawn().unwrap();
    let pid = target.id() as i64;
    wait_for(Duration::from_secs(5), "sleep to exec", || {
        proc::cmdline(pid as i32).contains(&arg).then_some(())
    });

    let events = watch(&config, &state);
    let attached: Vec<&Value> = events.iter().filter(|e| e["event"] == "attached").collect();
    assert_eq!(attached.len(), 1, "{events:?}");
    assert_eq!(attached[0]["pid"], pid);
    assert_eq!(attached[0]["rule"], "t");
    assert!(proc::cgroup_text(pid as i32).contains(&format!("edge-watch-{pid}-")));
    let saved: Value = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["entries"].as_array().unwrap().len(), 1);
    assert_eq!(saved["entries"][0]["pid"], pid);
    let dirs: Vec<PathBuf> = attached[0]["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| PathBuf::from(d.as_str().unwrap()))
        .collect();

    // A restarted watch knows it from the state file and does not attach it again.
    let events = watch(&config, &state);
    assert!(events.iter().all(|e| e["event"] != "attached"), "{events:?}");
    assert!(
        events.iter().any(|e| e["event"] == "known" && e["pid"] == pid),
        "{events:?}"
    );

    target.kill().unwrap();
    target.wait().unwrap();
    let events = watch(&config, &state);
    let exited: Vec<&Value> = events.iter().filter(|e| e["event"] == "exited").collect();
    assert_eq!(exited.len(), 1, "{events:?}");
    assert_eq!(exited[0]["pid"], pid);
    assert_eq!(exited[0]["cgroup_removed"], true);
    let saved: Value = serde_json::from_str(&fs::read_to_string(&state).unwrap()).unwrap();
    assert!(saved["entries"].as_array().unwrap().is_empty(), "{saved}");
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}
