//! `ffrtmp attach`: govern a process that is already running.
//!
//! The process is moved (all its threads) into a new cgroup `edge-<kind>-<pid>-<start time>`
//! with the requested limits, reniced thread by thread, and then watched until it exits. A
//! non-parent cannot wait for it, so its liveness is polled from `/proc/P/stat`, comparing
//! the start time recorded at attach time: a PID reused by another process counts as the
//! original having exited. Nothing here ever signals the process.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::proc::{self, Liveness, ProcStat, StartTime};
use super::{millis, reason_for, EdgeLimits, Governed, Outcome};
use crate::cgroup::Cgroups;
use crate::error::ExecError;

/// A process that has been attached.
#[derive(Debug)]
pub struct Attached {
    /// Its process id.
    pub pid: i32,
    /// Its start time, recorded before attaching.
    pub start_time: StartTime,
    /// Its cgroup, when limits are enforced.
    pub governed: Option<Governed>,
    /// What is enforced, or `not enforced: <reason>`; a niceness set is appended.
    pub limits: String,
    /// When it was attached.
    pub since: Instant,
}

impl Attached {
    /// The cgroup directories (empty when not enforced).
    pub fn cgroup(&self) -> Vec<PathBuf> {
        self.governed.as_ref().map(|g| g.paths().to_vec()).unwrap_or_default()
    }

    /// Polls every `poll` until the process has exited (or its PID names another process),
    /// then removes its cgroup if empty. Never signals the process.
    pub async fn wait_exit(self, poll: Duration) -> Outcome {
        let status = loop {
            match proc::check(self.pid, self.start_time) {
                Liveness::Alive => tokio::time::sleep(poll).await,
                Liveness::Exited(status) => break status,
                Liveness::Reused => break None,
            }
        };
        let duration = self.since.elapsed();
        let cgroup = self.cgroup();
        let (exit_code, signal) = status.map(proc::decode_wait_status).unwrap_or((None, None));
        let (oom_kills, cgroup_removed) = match self.governed {
            Some(g) => (g.oom_kills(), g.release().await),
            None => (0, false),
        };
        let (reason, oom_killed) = reason_for(exit_code, signal, oom_kills);
        Outcome {
            pid: self.pid,
            exit_code,
            signal,
            reason,
            oom_killed,
            duration_ms: millis(duration),
            limits: self.limits,
            cgroup,
            cgroup_removed,
            forwarded_signal: None,
        }
    }
}

/// The cgroup name for attaching `pid` started at `start`: `edge-<kind>-<pid>-<start>`.
pub fn attach_cgroup_name(kind: &str, pid: i32, start: StartTime) -> String {
    format!("edge-{kind}-{pid}-{start}")
}

/// Attaches `pid`: records its start time, moves it into a new cgroup with `limits` (when
/// cgroups are available) and applies `limits.nice`. `kind` goes into the cgroup name
/// (`attach`, `watch`).
///
/// Errors when the process does not exist, is this process, or is already in the cgroup
/// this call would create; failing limits are reported in [`Attached::limits`].
pub fn attach(cgroups: &Cgroups, pid: i32, limits: &EdgeLimits, kind: &str) -> Result<Attached, ExecError> {
    if pid <= 0 || pid == std::process::id() as i32 {
        return Err(ExecError::InvalidParameter(format!("cannot attach pid {pid}")));
    }
    let stat = ProcStat::read(pid).map_err(|e| ExecError::InvalidParameter(format!("no process {pid}: {e}")))?;
    if stat.state == 'Z' {
        return Err(ExecError::InvalidParameter(format!("process {pid} has already exited")));
    }
    let name = attach_cgroup_name(kind, pid, stat.start_time);
    if proc::cgroup_text(pid).contains(&format!("/{name}\n")) {
        return Err(ExecError::InvalidParameter(format!(
            "process {pid} is already in cgroup {name}"
        )));
    }
    let since = Instant::now();
    let (governed, mut text) = match cgroups.unavailable_reason() {
        Some(reason) => (None, format!("not enforced: {reason}")),
        None => match Governed::create(cgroups, &name, limits).and_then(|g| g.add_pid(pid).map(|()| g)) {
            Ok(g) => {
                let text = g.enforced().to_string();
                (Some(g), text)
            }
            Err(e) => (None, format!("not enforced: {e}")),
        },
    };
    if let Some(n) = limits.nice {
        match proc::renice(pid, n) {
            Ok(()) => text.push_str(&format!(" nice={n}")),
            Err(e) => text.push_str(&format!(" (nice {n} not set: {e})")),
        }
    }
    Ok(Attached {
        pid,
        start_time: stat.start_time,
        governed,
        limits: text,
        since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attach_without_cgroups_renices_and_sees_exit() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let limits = EdgeLimits {
            nice: Some(7),
            ..Default::default()
        };
        let a = attach(&Cgroups::disabled("test"), pid, &limits, "attach").unwrap();
        assert_eq!(a.limits, "not enforced: test nice=7");
        assert_eq!(proc::nice_of(pid), Some(7));
        let waiter = tokio::spawn(a.wait_exit(Duration::from_millis(20)));
        child.kill().unwrap();
        // While the test has not reaped it, it is a zombie whose status /proc shows.
        let out = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        child.wait().unwrap();
        assert_eq!(out.pid, pid);
        assert!(
            out.reason.contains("signal 9") || out.reason.contains("not visible"),
            "{out:?}"
        );
    }

    #[test]
    fn refuses_self_and_missing() {
        let me = std::process::id() as i32;
        assert!(attach(&Cgroups::disabled("x"), me, &EdgeLimits::default(), "attach").is_err());
        assert!(attach(&Cgroups::disabled("x"), i32::MAX, &EdgeLimits::default(), "attach").is_err());
    }
}
