//! Running any program under supervision: own process group, `nice`, optional cgroup joined
//! before exec, bounded stderr tail, cancel and timeout with SIGTERM → grace → SIGKILL to the
//! whole group, and no orphans left behind. The leader is reaped with `wait4`, so its CPU time
//! and peak memory (with those of the descendants it waited for) come back in [`ResourceUsage`].

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use ffrtmp_core::CancelSignal;
use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStderr, ChildStdout};
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant};

use crate::cgroup::JobCgroup;
use crate::error::ExecError;
use crate::run_as::RunAs;

/// Lines of stderr kept by default.
pub const TAIL_LINES: usize = 64;
/// Bytes of stderr kept by default.
pub const TAIL_BYTES: usize = 16 * 1024;
/// Longest stderr line kept (longer lines are cut).
const MAX_LINE: usize = 2048;
pub use crate::child_env::SECRET_ENV;

/// How long to wait for pipes to drain and the group to vanish after the leader exits.
const AFTERMATH: Duration = Duration::from_secs(2);

/// What to run and how.
///
/// ```no_run
/// # async fn demo() -> Result<(), ffrtmp_exec::ExecError> {
/// use std::time::Duration;
/// use ffrtmp_exec::supervise::{run, ProcessSpec, StopReason};
/// let mut spec = ProcessSpec::new("sleep", ["30"]);
/// spec.timeout = Some(Duration::from_secs(1));
/// let (_cancel, signal) = ffrtmp_core::cancel_pair();
/// let exit = run(&spec, signal, |_line| {}).await?;
/// assert_eq!(exit.stopped, StopReason::TimedOut);
/// assert!(exit.group_gone);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ProcessSpec {
    /// The program; a bare name is looked up in `PATH`.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Niceness set in the child before exec (`None`: inherit). Default 10.
    pub nice: Option<i32>,
    /// Time between SIGTERM and SIGKILL. Default 10 s.
    pub grace: Duration,
    /// Wall-clock limit from spawn; then the group is stopped and the outcome is
    /// [`StopReason::TimedOut`]. Default none.
    pub timeout: Option<Duration>,
    /// Working directory of the child. Default: inherited.
    pub current_dir: Option<PathBuf>,
    /// Open `cgroup.procs` files the child writes `0` to before exec (see [`ProcessSpec::join`]).
    pub cgroup_procs: Vec<File>,
    /// SIGKILL the child when the supervising process dies (`PR_SET_PDEATHSIG`), so a
    /// crashed agent leaves no encode running that the master has already handed to
    /// another node. Default true.
    pub die_with_parent: bool,
    /// The user the child runs as (taken on after it joined its cgroup, before exec), with
    /// that user's own groups only. Default: this process's user.
    pub run_as: Option<RunAs>,
}

impl ProcessSpec {
    /// `program args…` with the defaults.
    pub fn new<I, S>(program: impl Into<PathBuf>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        ProcessSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            nice: Some(10),
            grace: Duration::from_secs(10),
            timeout: None,
            current_dir: None,
            cgroup_procs: Vec::new(),
            die_with_parent: true,
            run_as: None,
        }
    }

    /// Places the child in `cgroup` before it executes.
    pub fn join(&mut self, cgroup: &JobCgroup) -> Result<&mut Self, ExecError> {
        self.cgroup_procs = cgroup.join_files()?;
        Ok(self)
    }
}

/// How the process ended, as the OS reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// Exited with this status code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

/// Why the supervisor let the process end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// It ended by itself.
    Finished,
    /// The cancel signal tripped and the group was stopped.
    Canceled,
    /// The timeout passed and the group was stopped.
    TimedOut,
}

/// CPU time and memory of a finished process together with the descendants it waited for,
/// as `wait4` reports them for that one pid (not the supervisor's other children).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceUsage {
    /// CPU time in user mode.
    pub user: Duration,
    /// CPU time in the kernel.
    pub sys: Duration,
    /// Largest resident set of the process or of any one descendant it waited for, in KiB
    /// (`ru_maxrss`); not the sum over concurrent processes.
    pub max_rss_kib: u64,
}

impl ResourceUsage {
    fn from_rusage(ru: &libc::rusage) -> Self {
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        ResourceUsage {
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
            max_rss_kib: ru.ru_maxrss.max(0) as u64,
        }
    }

    /// Peak resident set in MiB.
    pub fn peak_rss_mb(&self) -> f64 {
        self.max_rss_kib as f64 / 1024.0
    }
}

/// The end of a supervised process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessExit {
    /// Process id of the leader, which is also the process group id.
    pub pid: i32,
    /// Exit status.
    pub status: Termination,
    /// Why it ended.
    pub stopped: StopReason,
    /// Whether SIGKILL was needed after the grace period.
    pub escalated: bool,
    /// Wall-clock time from spawn to the leader's exit.
    pub wall: Duration,
    /// The last lines of stderr (at most [`TAIL_LINES`] lines, [`TAIL_BYTES`] bytes).
    pub stderr_tail: Vec<String>,
    /// Whether no process of the group remained afterwards (`kill(-pgid, 0)` gave ESRCH).
    pub group_gone: bool,
    /// CPU time and peak memory of the leader and the descendants it waited for.
    pub usage: ResourceUsage,
}

impl ProcessExit {
    /// Whether it ended by itself with status 0.
    pub fn success(&self) -> bool {
        self.stopped == StopReason::Finished && self.status == Termination::Exited(0)
    }

    /// The exit code, if it exited rather than being killed.
    pub fn code(&self) -> Option<i32> {
        match self.status {
            Termination::Exited(c) => Some(c),
            Termination::Signaled(_) => None,
        }
    }

    /// The last `n` lines of the stderr tail, joined with `"; "`.
    pub fn stderr_last(&self, n: usize) -> String {
        let start = self.stderr_tail.len().saturating_sub(n);
        self.stderr_tail[start..].join("; ")
    }
}

/// A bounded tail of text lines.
#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
}

impl Tail {
    fn push(&mut self, raw: &[u8]) {
        let mut line = String::from_utf8_lossy(raw).trim_end().to_string();
        if line.is_empty() {
            return;
        }
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > TAIL_LINES || self.bytes > TAIL_BYTES {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

/// Stand-in for "never" in deadlines: a year on.
const FAR: Duration = Duration::from_secs(86_400 * 365);

/// `at + wait`, capped at a year on: no duration from a job spec overflows the clock.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait.min(FAR)).unwrap_or(at)
}

/// Kills the group if the supervising future is dropped before the process ended (the
/// reaper thread then collects the leader).
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// Line splitter over a child pipe.
type Lines<R> = tokio::io::Split<BufReader<R>>;

fn lines<R: AsyncRead + Unpin>(pipe: Option<R>) -> Option<Lines<R>> {
    pipe.map(|p| BufReader::new(p).split(b'\n'))
}

/// Next line of an optional pipe; `None` at EOF or on error, after which the pipe is `None`
/// (callers poll only while it is `Some`).
async fn next_line<R: AsyncRead + Unpin>(pipe: &mut Option<Lines<R>>) -> Option<Vec<u8>> {
    match pipe {
        Some(p) => match p.next_segment().await {
            Ok(Some(line)) => Some(line),
            _ => {
                *pipe = None;
                None
            }
        },
        None => std::future::pending().await,
    }
}

/// Waits for `pid` (a child of this process) with `wait4`, blocking, retrying on EINTR.
fn wait4_blocking(pid: i32) -> std::io::Result<(ExitStatus, ResourceUsage)> {
    loop {
        match try_wait4(pid, 0)? {
            Some(done) => return Ok(done),
            None => continue,
        }
    }
}

/// One `wait4(pid, options)`: `None` when the child has not ended yet (with `WNOHANG`) or the
/// call was interrupted.
fn try_wait4(pid: i32, options: libc::c_int) -> std::io::Result<Option<(ExitStatus, ResourceUsage)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, writable locals of the right types.
    let r = unsafe { libc::wait4(pid, &mut status, options, &mut ru) };
    if r == pid {
        return Ok(Some((ExitStatus::from_raw(status), ResourceUsage::from_rusage(&ru))));
    }
    if r == 0 {
        return Ok(None);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::Interrupted {
        return Ok(None);
    }
    Err(e)
}

/// Reaps `pid` and returns its status and usage. A small thread blocks in `wait4` for it, so
/// the exit is seen at once and the leader is collected even when the supervising future is
/// dropped; should no thread be available, `wait4(WNOHANG)` is polled instead.
async fn reap(pid: i32) -> std::io::Result<(ExitStatus, ResourceUsage)> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("reap-{pid}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            let _ = tx.send(wait4_blocking(pid));
        });
    match spawned {
        Ok(_) => rx
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the reaper thread ended without a status"))),
        Err(e) => {
            tracing::warn!(pid, error = %e, "no reaper thread; polling wait4");
            let mut delay = Duration::from_millis(1);
            loop {
                if let Some(done) = try_wait4(pid, libc::WNOHANG)? {
                    return Ok(done);
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// Runs `spec` to its end, calling `on_stdout` with every stdout line (without the newline).
///
/// The child runs in its own process group with `nice` applied and, when
/// [`ProcessSpec::cgroup_procs`] is set, inside that cgroup from before its first
/// instruction. When `cancel` trips or the timeout passes, the whole group gets SIGTERM,
/// then SIGKILL after the grace period. After the leader exits, any process left in its group
/// is killed too, and the call waits (briefly) until none remains.
///
/// Errors only when the process cannot be started or waited for; a missing program is
/// [`ExecError::ProgramNotFound`]. The caller keeps `spec` (and its open cgroup files) and
/// may run it again.
pub async fn run<F>(spec: &ProcessSpec, mut cancel: CancelSignal, mut on_stdout: F) -> Result<ProcessExit, ExecError>
where
    F: FnMut(&str) + Send,
{
    // A std command, not tokio's: the leader is reaped here with wait4 (for its rusage), and
    // tokio's child handle would wait for (or, once dropped, try to reap) the same pid.
    let mut cmd = std::process::Command::new(&spec.program);
    // Workloads may process untrusted media: they get an allowlisted environment only.
    crate::child_env::scrub_std(&mut cmd, spec.run_as.as_ref());
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &spec.current_dir {
        cmd.current_dir(dir);
    }
    let fds: Vec<i32> = spec.cgroup_procs.iter().map(|f| f.as_raw_fd()).collect();
    let nice = spec.nice;
    let die_with_parent = spec.die_with_parent;
    let who = spec.run_as.as_ref().filter(|u| !u.is_root()).map(RunAs::credentials);
    // Taken before the fork: the child compares it with its parent once PDEATHSIG is set.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid, _exit, setpriority, write, setgroups, setgid, setuid) on
    // values prepared before the fork; it allocates nothing (io::Error::last_os_error does
    // not allocate).
    unsafe {
        cmd.pre_exec(move || {
            // Join the cgroup while still privileged (moving a task needs the rights on
            // cgroup.procs), then drop to the workload's user.
            for fd in &fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(who) = &who {
                who.assume()?;
            }
            // No set-uid program (or file capability) run by the workload gains privileges.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // After setuid, which clears the parent-death signal.
            if die_with_parent {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                // The parent died before the signal was armed: nobody would stop this child.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            if let Some(n) = nice {
                // Best effort: a failure to lower priority must not stop the job.
                libc::setpriority(libc::PRIO_PROCESS, 0, n);
            }
            Ok(())
        });
    }

    let started = Instant::now();
    // Deadlines before the spawn: nothing between the spawn and the reaper's first poll may fail.
    let far = later(started, FAR);
    // A timeout of a year or more (up to `u64::MAX` seconds from a job spec) is none.
    let timeout_at = spec.timeout.filter(|t| *t < FAR).map(|t| later(started, t));
    let mut child = cmd.spawn().map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ExecError::ProgramNotFound {
            program: spec.program.clone(),
        },
        _ => ExecError::Spawn {
            program: spec.program.clone(),
            source,
        },
    })?;
    let pid = child.id() as i32;
    let pgid = Pid::from_raw(pid);
    let mut guard = GroupGuard { pgid, armed: true };
    let reaped = reap(pid);
    tokio::pin!(reaped);
    let pipes = (
        child.stdout.take().map(ChildStdout::from_std).transpose(),
        child.stderr.take().map(ChildStderr::from_std).transpose(),
    );
    let (stdout, stderr) = match pipes {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => {
            // Dropping `reaped` unpolled spawned no reaper: kill and collect the child here.
            drop(guard);
            let _ = child.wait();
            return Err(ExecError::io("watching the child's output", e));
        }
    };
    let mut out = lines(stdout);
    let mut err = lines(stderr);
    let mut tail = Tail::default();

    let mut stopped = StopReason::Finished;
    let mut kill_at: Option<Instant> = None;
    let mut escalated = false;

    let waited = loop {
        tokio::select! {
            biased;
            status = &mut reaped => break status,
            _ = cancel.canceled(), if kill_at.is_none() => {
                stopped = StopReason::Canceled;
                let _ = killpg(pgid, Signal::SIGTERM);
                kill_at = Some(later(Instant::now(), spec.grace));
            }
            _ = sleep_until(timeout_at.unwrap_or(far)), if kill_at.is_none() && timeout_at.is_some() => {
                stopped = StopReason::TimedOut;
                let _ = killpg(pgid, Signal::SIGTERM);
                kill_at = Some(later(Instant::now(), spec.grace));
            }
            _ = sleep_until(kill_at.unwrap_or(far)), if kill_at.is_some() && !escalated => {
                escalated = true;
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            line = next_line(&mut out), if out.is_some() => if let Some(line) = line {
                on_stdout(String::from_utf8_lossy(&line).trim_end_matches('\r'));
            },
            line = next_line(&mut err), if err.is_some() => if let Some(line) = line {
                tail.push(&line);
            },
        }
    };
    let wall = started.elapsed();
    // Whatever is left of the group goes now, whether the leader ended well or not.
    let _ = killpg(pgid, Signal::SIGKILL);
    guard.armed = false;
    let (status, usage) = waited.map_err(|e| ExecError::io(format!("waiting for {}", spec.program.display()), e))?;

    // Drain what the pipes still hold (FFmpeg's last progress block, the final errors).
    let drain_until = Instant::now() + AFTERMATH;
    while out.is_some() || err.is_some() {
        tokio::select! {
            _ = sleep_until(drain_until) => break,
            line = next_line(&mut out), if out.is_some() => if let Some(line) = line {
                on_stdout(String::from_utf8_lossy(&line).trim_end_matches('\r'));
            },
            line = next_line(&mut err), if err.is_some() => if let Some(line) = line {
                tail.push(&line);
            },
        }
    }
    let group_gone = wait_group_gone(pgid, Instant::now() + AFTERMATH).await;

    let status = match (status.code(), status.signal()) {
        (Some(code), _) => Termination::Exited(code),
        (None, Some(sig)) => Termination::Signaled(sig),
        (None, None) => Termination::Exited(-1),
    };
    Ok(ProcessExit {
        pid,
        status,
        stopped,
        escalated,
        wall,
        stderr_tail: tail.lines.into(),
        group_gone,
        usage,
    })
}

/// Polls `kill(-pgid, 0)` until ESRCH or the deadline, re-sending SIGKILL meanwhile.
async fn wait_group_gone(pgid: Pid, deadline: Instant) -> bool {
    loop {
        match killpg(pgid, None) {
            Err(Errno::ESRCH) => return true,
            _ if Instant::now() >= deadline => return false,
            _ => {
                let _ = killpg(pgid, Signal::SIGKILL);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_bounded() {
        let mut t = Tail::default();
        for i in 0..200 {
            t.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(t.lines.len(), TAIL_LINES);
        assert_eq!(t.lines.back().unwrap(), "line 199");
        let mut t = Tail::default();
        for _ in 0..40 {
            t.push(&[b'x'; 5000]);
        }
        assert!(t.bytes <= TAIL_BYTES);
        assert_eq!(t.lines.back().unwrap().len(), MAX_LINE);
        t.push(b"\n");
        assert_eq!(t.lines.back().unwrap().len(), MAX_LINE);
    }

    #[tokio::test]
    async fn runs_and_collects() {
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        let spec = ProcessSpec::new("sh", ["-c", "echo out1; echo err1 >&2; echo out2; nice; exit 3"]);
        let mut seen = Vec::new();
        let t0 = std::time::Instant::now();
        let exit = run(&spec, cancel, |l| seen.push(l.to_string())).await.unwrap();
        // Closed pipes end the drain at once (no waiting for the aftermath deadline).
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        assert_eq!(exit.status, Termination::Exited(3));
        assert_eq!(exit.stopped, StopReason::Finished);
        assert_eq!(seen, ["out1", "out2", "10"]);
        assert_eq!(exit.stderr_tail, ["err1"]);
        assert!(exit.group_gone);
        assert!(!exit.success());
    }

    #[tokio::test]
    async fn reports_cpu_time_and_peak_rss_of_the_leader() {
        if std::process::Command::new("perl").arg("-v").output().is_err() {
            eprintln!("skipped: no perl");
            return;
        }
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        // Touches ~50 MiB (a string of 50 MiB 'a's), then burns a little CPU.
        let script =
            r#"my $x = "a" x (50 * 1024 * 1024); my $n = 0; $n += $_ for 1 .. 3_000_000; print length($x), "\n";"#;
        let spec = ProcessSpec::new("perl", ["-e", script]);
        let mut seen = Vec::new();
        let exit = run(&spec, cancel, |l| seen.push(l.to_string())).await.unwrap();
        assert!(exit.success(), "{exit:?}");
        assert_eq!(seen, ["52428800"]);
        assert!(exit.usage.peak_rss_mb() >= 45.0, "{:?}", exit.usage);
        assert!(exit.usage.peak_rss_mb() < 1024.0, "{:?}", exit.usage);
        assert!(exit.usage.user + exit.usage.sys > Duration::ZERO, "{:?}", exit.usage);
        assert!(exit.usage.user + exit.usage.sys <= exit.wall + Duration::from_millis(50));

        // A tiny process: its own peak, not the big one above (usage is per pid). Its peak
        // includes what it shared with this test process between fork and exec, so it is
        // compared with the perl peak, not with a fixed size.
        let big = exit.usage.peak_rss_mb();
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        let exit = run(&ProcessSpec::new("true", Vec::<String>::new()), cancel, |_| {})
            .await
            .unwrap();
        assert!(
            exit.usage.max_rss_kib > 0 && exit.usage.peak_rss_mb() < big,
            "{:?} vs {big} MB",
            exit.usage
        );
    }

    #[tokio::test]
    async fn usage_includes_waited_for_children() {
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        // The outer shell only waits; its child counts to 200k (tens of ms of CPU, however busy
        // the host is).
        let inner = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";
        let spec = ProcessSpec::new("sh", ["-c", &format!("sh -c '{inner}'; true")]);
        let exit = run(&spec, cancel, |_| {}).await.unwrap();
        assert!(exit.success(), "{exit:?}");
        let cpu = exit.usage.user + exit.usage.sys;
        assert!(cpu >= Duration::from_millis(20), "{:?}", exit.usage);
    }

    #[tokio::test]
    async fn missing_program() {
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        let err = run(&ProcessSpec::new("/nonexistent/prog", ["x"]), cancel, |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, ExecError::ProgramNotFound { .. }), "{err}");
        assert_eq!(err.to_string(), "prog not found at /nonexistent/prog");
    }

    #[tokio::test]
    async fn timeout_escalates_when_term_is_ignored() {
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        // The shell ignores TERM and so does its child sleep (inherited ignore disposition).
        let mut spec = ProcessSpec::new("sh", ["-c", "trap '' TERM; sleep 30 & wait; sleep 30"]);
        spec.timeout = Some(Duration::from_millis(200));
        spec.grace = Duration::from_millis(300);
        let t0 = std::time::Instant::now();
        let exit = run(&spec, cancel, |_| {}).await.unwrap();
        assert_eq!(exit.stopped, StopReason::TimedOut);
        assert!(exit.escalated);
        assert_eq!(exit.status, Termination::Signaled(9));
        assert!(exit.group_gone);
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(killpg(Pid::from_raw(exit.pid), None), Err(Errno::ESRCH));
    }

    #[tokio::test]
    async fn the_longest_timeout_and_grace_do_not_overflow_the_clock() {
        let mut spec = ProcessSpec::new("sleep", ["30"]);
        spec.timeout = Some(Duration::MAX);
        spec.grace = Duration::MAX;
        let (handle, cancel) = ffrtmp_core::cancel_pair();
        handle.cancel();
        let exit = run(&spec, cancel, |_| {}).await.unwrap();
        assert_eq!(exit.stopped, StopReason::Canceled);
        assert_eq!(exit.status, Termination::Signaled(15));
        assert!(exit.group_gone);
        let (_h, cancel) = ffrtmp_core::cancel_pair();
        let mut quick = ProcessSpec::new("true", ["x"]);
        quick.timeout = Some(Duration::MAX);
        assert!(run(&quick, cancel, |_| {}).await.unwrap().success());
    }
}
