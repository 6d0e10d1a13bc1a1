//! Start-up of the real binaries for the binary-level tests: a master or an agent with its
//! files in the test's directory (database, ready file, TLS CA, output and input folders, log),
//! and the CLI pointed at that master. Include it with `procs.rs`:
//!
//! ```ignore
//! #[path = "support/procs.rs"] mod procs;
//! #[path = "support/cluster.rs"] mod cluster;
//! ```
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::procs::{log_file, Proc};

/// How long a binary may take to write its ready file.
const STARTUP: Duration = Duration::from_secs(30);

/// How much of each log a failure message shows: the end, where the cause usually is.
const LOG_TAIL: usize = 8000;

/// A temporary directory the unprivileged user the agent runs workloads as can reach.
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

/// The command line of one binary: flags that name files in the test's directory (each set
/// once, so a test can replace or drop a default), then the test's own arguments.
pub struct Launch {
    program: &'static str,
    dir: PathBuf,
    named: Vec<(&'static str, OsString)>,
    args: Vec<OsString>,
    key: Option<String>,
    envs: Vec<(OsString, OsString)>,
    log: String,
}

/// The master with `--db master.db`, `--ready-file ready` and its log in `master.log`, all in
/// `dir`; `key` in `MASTER_API_KEY`.
pub fn master(dir: &Path, key: &str) -> Launch {
    Launch::new(env!("CARGO_BIN_EXE_ffrtmp-master"), dir, key, "master.log")
        .path("--db", "master.db")
        .path("--ready-file", "ready")
}

/// An agent of the master at `url`, trusting its CA `tls/cert.pem`, with `--output-dir out`,
/// `--input-dir in` and its log in `agent.log`, all in `dir`; `key` in `MASTER_API_KEY`.
pub fn agent(dir: &Path, url: &str, key: &str) -> Launch {
    Launch::new(env!("CARGO_BIN_EXE_ffrtmp-agent"), dir, key, "agent.log")
        .flag("--master", url)
        .path("--ca-cert", "tls/cert.pem")
        .path("--output-dir", "out")
        .path("--input-dir", "in")
}

/// Agent `i` of a load test, named `name`: the noop executor taking `delay` a job, four slots,
/// 500 ms heartbeats, 1 s claim waits, no status endpoint, `out-<i>` and `agent-<i>.log`.
pub fn noop_agent(dir: &Path, url: &str, key: &str, i: usize, name: &str, delay: &str) -> Launch {
    agent(dir, url, key)
        .args(["--executor", "noop", "--noop-delay", delay])
        .args([
            "--max-concurrent-jobs",
            "4",
            "--heartbeat-interval",
            "500ms",
            "--claim-wait",
            "1s",
        ])
        .args(["--name", name, "--status-addr", "none"])
        .path("--output-dir", format!("out-{i}"))
        .log(&format!("agent-{i}.log"))
}

impl Launch {
    fn new(program: &'static str, dir: &Path, key: &str, log: &str) -> Launch {
        Launch {
            program,
            dir: dir.to_path_buf(),
            named: Vec::new(),
            args: Vec::new(),
            key: Some(key.to_string()),
            envs: Vec::new(),
            log: log.to_string(),
        }
    }

    /// Sets `flag` to `value`, replacing its default.
    pub fn flag(mut self, flag: &'static str, value: impl AsRef<OsStr>) -> Launch {
        let value = value.as_ref().to_os_string();
        match self.named.iter_mut().find(|(f, _)| *f == flag) {
            Some(slot) => slot.1 = value,
            None => self.named.push((flag, value)),
        }
        self
    }

    /// Sets `flag` to `path` in the test's directory (an absolute `path` stays as it is).
    pub fn path(self, flag: &'static str, path: impl AsRef<Path>) -> Launch {
        let full = self.dir.join(path);
        self.flag(flag, full)
    }

    /// Drops the default `flag`.
    pub fn without(mut self, flag: &str) -> Launch {
        self.named.retain(|(f, _)| *f != flag);
        self
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launch {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Launch {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.envs.push((name.as_ref().into(), value.as_ref().into()));
        self
    }

    /// Starts without `MASTER_API_KEY` (the key comes from a file or the command line).
    pub fn no_key(mut self) -> Launch {
        self.key = None;
        self
    }

    /// Writes the process's stderr to `name` in the test's directory.
    pub fn log(mut self, name: &str) -> Launch {
        self.log = name.to_string();
        self
    }

    /// The command as configured, not started.
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.program);
        for (flag, value) in &self.named {
            command.arg(flag).arg(value);
        }
        command.args(&self.args);
        match &self.key {
            Some(key) => command.env("MASTER_API_KEY", key),
            None => command.env_remove("MASTER_API_KEY"),
        };
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        command.stdout(Stdio::null()).stderr(log_file(&self.dir, &self.log));
        command
    }

    /// Starts the process.
    pub fn spawn(&self) -> Proc {
        Proc(self.command().spawn().unwrap())
    }

    /// Starts the process and waits until it has written its `--ready-file`; the process and
    /// the file's contents (the master's URL).
    pub fn start(&self) -> (Proc, String) {
        let proc = self.spawn();
        let (_, ready) = self
            .named
            .iter()
            .find(|(f, _)| *f == "--ready-file")
            .expect("start needs a --ready-file; use spawn");
        let url = wait_ready(Path::new(ready), &self.dir.join(&self.log));
        (proc, url)
    }
}

/// Waits for a non-empty `ready` file; panics with `log` when it does not come.
fn wait_ready(ready: &Path, log: &Path) -> String {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(s) = std::fs::read_to_string(ready) {
            if !s.is_empty() {
                return s.trim().to_string();
            }
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{} did not appear\n--- {}\n{text}", ready.display(), log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The end of every `*.log` file in `dir`, for failure messages.
pub fn logs(dir: &Path) -> String {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "log"));
    paths.sort();
    let mut s = String::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let start = text.len().saturating_sub(LOG_TAIL);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        s += &format!("--- {}\n{}\n", p.display(), &text[start..]);
    }
    s
}

/// The `ffrtmp` CLI against one master, trusting the CA in the test's directory.
pub struct Cli {
    dir: PathBuf,
    url: String,
    key: Option<String>,
}

impl Cli {
    /// The CLI for the master at `url` whose files are in `dir`, with `key` in `MASTER_API_KEY`.
    pub fn new(dir: &Path, url: &str, key: &str) -> Cli {
        Cli {
            dir: dir.to_path_buf(),
            url: url.to_string(),
            key: Some(key.to_string()),
        }
    }

    /// The CLI for the master at `url` whose files are in `dir`, without `MASTER_API_KEY`.
    pub fn keyless(dir: &Path, url: &str) -> Cli {
        Cli::new(dir, url, "").with_key(None)
    }

    /// The same CLI with another key (`None`: no `MASTER_API_KEY` at all).
    pub fn with_key(&self, key: Option<&str>) -> Cli {
        Cli {
            dir: self.dir.clone(),
            url: self.url.clone(),
            key: key.map(str::to_string),
        }
    }

    /// The master's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `ffrtmp --master URL --ca-cert CA`, for a test to add to.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ffrtmp"));
        command
            .args(["--master", &self.url])
            .arg("--ca-cert")
            .arg(self.dir.join("tls/cert.pem"));
        match &self.key {
            Some(key) => command.env("MASTER_API_KEY", key),
            None => command.env_remove("MASTER_API_KEY"),
        };
        command
    }

    /// Runs the CLI with `args` (global flags included); not checked.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs the CLI with `--output json` and `args`; asserts it succeeded, and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.command().args(["--output", "json"]).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ffrtmp {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            logs(&self.dir)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Polls `jobs status id` until the job's state is one of `states`; the job's JSON.
    pub fn wait_state(&self, id: &str, states: &[&str], within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.json(&["jobs", "status", id]);
            if states.iter().any(|s| job["state"] == *s) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} did not reach {states:?}: {job:#}\n{}",
                logs(&self.dir)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
