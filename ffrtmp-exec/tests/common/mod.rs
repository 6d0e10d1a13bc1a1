//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ffrtmp_core::{Job, JobId, JobSpec, JobState, Progress, ProgressSink};
use nix::errno::Errno;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

/// A job with `spec_json`, attempt 1.
pub fn job(spec_json: &str) -> Job {
    Job {
        state: JobState::Running,
        attempt: 1,
        ..Job::submitted(
            JobId::new(),
            1,
            ffrtmp_core::ValidSpec::stored(serde_json::from_str::<JobSpec>(spec_json).expect("spec"))
                .expect("scenario"),
            0,
        )
    }
}

/// Records every progress update.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Progress>>);

impl ProgressSink for Recorder {
    fn update(&self, progress: Progress) {
        self.0.lock().unwrap().push(progress);
    }
}

impl Recorder {
    pub fn all(&self) -> Vec<Progress> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until at least one update arrived (with a deadline).
    pub async fn first(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.0.lock().unwrap().is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Pid of a live process whose command line contains `needle`.
pub fn find_process(needle: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        (pid != me && String::from_utf8_lossy(&cmdline).contains(needle)).then_some(pid)
    })
}

/// Whether the process group `pgid` is empty (`kill(-pgid, 0)` gives ESRCH).
pub fn group_gone(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None) == Err(Errno::ESRCH)
}

/// Directories named `name` below `/sys/fs/cgroup` (up to 7 levels deep).
pub fn cgroup_dirs_named(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let path = e.path();
            if e.file_name() == name {
                out.push(path.clone());
            }
            if depth > 0 {
                walk(&path, name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), name, 7, &mut out);
    out
}

/// Whether this host can run the real-ffmpeg tests.
pub fn have_ffmpeg() -> bool {
    let ok = Path::new("/usr/bin/ffmpeg").exists();
    if !ok {
        eprintln!("skipped: /usr/bin/ffmpeg is not installed");
    }
    ok
}
