//! `ffrtmp run`: start a workload non-owning, in its own session and a per-run cgroup.
//!
//! What differs from [`crate::supervise`], on purpose:
//! - the child calls `setsid` (own session and process group, no controlling terminal), so a
//!   terminal's Ctrl-C or hang-up reaches the wrapper only;
//! - no `PR_SET_PDEATHSIG`, no kill on drop, no group kill after the leader exits: when the
//!   wrapper dies (even by SIGKILL) the workload runs on, inside its cgroup, with its limits;
//! - SIGINT and SIGTERM sent to the wrapper are forwarded to the workload's process group and
//!   the wrapper keeps waiting, reporting how the workload took them;
//! - the cgroup is removed after the workload exited and only when it is empty; when the
//!   wrapper itself died, the group stays for `watch` or an operator to remove.

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use nix::libc;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::signal::unix::{signal, SignalKind};

use super::{millis, proc, reason_for, sanitize_name, EdgeLimits, Governed, Outcome};
use crate::cgroup::Cgroups;
use crate::error::ExecError;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Names the run's cgroup (`edge-run-<id>-<wrapper pid>-<wrapper start time>`).
    pub job_id: Option<String>,
    /// The program; a bare name is looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Limits of the run's cgroup; `nice`, when set, is applied in the child before exec.
    pub limits: EdgeLimits,
}

/// The workload has started.
#[derive(Clone, Debug)]
pub struct Started {
    /// Its process id (also its session and process group id).
    pub pid: i32,
    /// Its cgroup directories (empty when limits are not enforced).
    pub cgroup: Vec<PathBuf>,
    /// What is enforced, or `not enforced: <reason>`.
    pub limits: String,
}

/// The cgroup name of a run: unique per wrapper process for the life of the boot, so that a
/// new run never replaces (and kills) the group of a workload whose wrapper died.
pub fn run_cgroup_name(job_id: Option<&str>) -> String {
    let me = std::process::id() as i32;
    let start = proc::ProcStat::read(me).map(|s| s.start_time).unwrap_or(0);
    match job_id {
        Some(id) => format!("edge-run-{}-{me}-{start}", sanitize_name(id)),
        None => format!("edge-run-{me}-{start}"),
    }
}

/// Runs `req` to its end (see the module docs), calling `on_started` once it is running.
///
/// Errors only when it cannot be started; limits that cannot be enforced are reported in
/// [`Outcome::limits`] as `not enforced: <reason>` and the workload runs anyway.
pub async fn run(cgroups: &Cgroups, req: &RunRequest, on_started: impl FnOnce(&Started)) -> Result<Outcome, ExecError> {
    // Handlers first (before the group exists, so a failure here leaves nothing behind): a
    // SIGTERM arriving right after the spawn is forwarded, not fatal.
    let io = |e| ExecError::io("installing signal handlers", e);
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let governed = match cgroups.unavailable_reason() {
        Some(reason) => Err(format!("not enforced: {reason}")),
        None => Governed::create(cgroups, &run_cgroup_name(req.job_id.as_deref()), &req.limits)
            .map_err(|e| format!("not enforced: {e}")),
    };
    let join = match &governed {
        Ok(g) => g.join_files(),
        Err(_) => Ok(Vec::new()),
    };
    let join = match join {
        Ok(files) => files,
        Err(e) => {
            if let Ok(g) = governed {
                g.release().await;
            }
            return Err(e);
        }
    };

    let mut cmd = tokio::process::Command::new(&req.program);
    for var in crate::supervise::SECRET_ENV {
        cmd.env_remove(var);
    }
    cmd.args(&req.args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(false);
    let fds: Vec<i32> = join.iter().map(|f| f.as_raw_fd()).collect();
    let nice = req.limits.nice;
    // SAFETY: between fork and exec the closure only makes async-signal-safe system calls
    // (setsid, write, setpriority) on values prepared before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for fd in &fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(n) = nice {
                libc::setpriority(libc::PRIO_PROCESS, 0, n);
            }
            Ok(())
        });
    }
    let started = Instant::now();
    let spawned = cmd.spawn();
    drop(join);
    let mut child = match spawned {
        Ok(c) => c,
        Err(source) => {
            if let Ok(g) = governed {
                g.release().await;
            }
            return Err(match source.kind() {
                std::io::ErrorKind::NotFound => ExecError::ProgramNotFound {
                    program: req.program.clone(),
                },
                _ => ExecError::Spawn {
                    program: req.program.clone(),
                    source,
                },
            });
        }
    };
    let pid = child.id().unwrap_or(0) as i32;
    let (limits, cgroup) = match &governed {
        Ok(g) => (g.enforced().to_string(), g.paths().to_vec()),
        Err(reason) => (reason.clone(), Vec::new()),
    };
    on_started(&Started {
        pid,
        cgroup: cgroup.clone(),
        limits: limits.clone(),
    });

    let mut forwarded = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = int.recv() => {
                forwarded = Some(libc::SIGINT);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGINT);
            }
            _ = term.recv() => {
                forwarded = Some(libc::SIGTERM);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
    }
    .map_err(|e| ExecError::io(format!("waiting for {}", req.program.display()), e))?;
    let duration = started.elapsed();
    let (oom_kills, cgroup_removed) = match governed {
        Ok(g) => (g.oom_kills(), g.release().await),
        Err(_) => (0, false),
    };
    let (exit_code, signal) = (status.code(), status.signal());
    let (reason, oom_killed) = reason_for(exit_code, signal, oom_kills);
    Ok(Outcome {
        pid,
        exit_code,
        signal,
        reason,
        oom_killed,
        duration_ms: millis(duration),
        limits,
        cgroup,
        cgroup_removed,
        forwarded_signal: forwarded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_without_cgroups_and_reports() {
        let req = RunRequest {
            job_id: Some("t1".into()),
            program: "sh".into(),
            args: vec!["-c".into(), "exit 7".into()],
            limits: EdgeLimits {
                cpu_quota: Some(50),
                ..Default::default()
            },
        };
        let mut seen = None;
        let out = run(&Cgroups::disabled("test"), &req, |s| seen = Some(s.pid))
            .await
            .unwrap();
        assert_eq!(seen, Some(out.pid));
        assert_eq!(out.exit_code, Some(7));
        assert_eq!(out.reason, "exited 7");
        assert_eq!(out.limits, "not enforced: test");
        assert_eq!(out.wrapper_exit_code(), 7);
    }

    #[tokio::test]
    async fn own_session() {
        // The child is a session leader: its session id is its pid.
        let req = RunRequest {
            program: "sh".into(),
            args: vec!["-c".into(), "set -- $(cat /proc/$$/stat); test \"$6\" = $$".into()],
            ..Default::default()
        };
        let out = run(&Cgroups::disabled("test"), &req, |_| {}).await.unwrap();
        assert_eq!(out.exit_code, Some(0), "{out:?}");
    }

    #[test]
    fn names_are_unique_per_wrapper() {
        let name = run_cgroup_name(Some("job 7"));
        assert!(
            name.starts_with(&format!("edge-run-job_7-{}-", std::process::id())),
            "{name}"
        );
    }
}
