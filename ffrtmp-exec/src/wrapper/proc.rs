//! Reading `/proc`: process status, start times (to tell a reused PID apart), command lines,
//! cgroup membership, and renicing every thread of a process.

use std::fs;
use std::io;

use nix::libc;

/// A process's start time in clock ticks after boot (`/proc/P/stat` field 22). Together with
/// the PID it names one process for the life of the boot.
pub type StartTime = u64;

/// The fields of `/proc/P/stat` the wrapper uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 1.
    pub pid: i32,
    /// Field 2, without the parentheses.
    pub comm: String,
    /// Field 3: `R`, `S`, `D`, `Z`, …
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 22.
    pub start_time: StartTime,
    /// Field 52: the wait status, meaningful once the process is a zombie (Linux ≥ 3.5).
    pub exit_status: Option<i32>,
}

impl ProcStat {
    /// Parses the text of `/proc/P/stat`. The command may contain spaces and parentheses;
    /// it ends at the last `)`.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let pid = text[..open].trim().parse().ok()?;
        let comm = text.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
        // rest[0] is field 3.
        let field = |n: usize| rest.get(n - 3).copied();
        Some(ProcStat {
            pid,
            comm,
            state: field(3)?.chars().next()?,
            ppid: field(4)?.parse().ok()?,
            start_time: field(22)?.parse().ok()?,
            exit_status: field(52).and_then(|s| s.parse().ok()),
        })
    }

    /// Reads `/proc/<pid>/stat`.
    pub fn read(pid: i32) -> io::Result<ProcStat> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        ProcStat::parse(&text).ok_or_else(|| io::Error::other(format!("cannot parse /proc/{pid}/stat")))
    }
}

/// What became of a process known by (pid, start time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// Still running.
    Alive,
    /// Gone, or a zombie; the wait status when the zombie showed it.
    Exited(Option<i32>),
    /// The PID now names another process (another start time): the one we knew has exited.
    Reused,
}

/// Judges `stat` (the current reading for the PID, `None` when there is none) against the
/// start time recorded when the process was first seen.
pub fn liveness(stat: Option<&ProcStat>, recorded: StartTime) -> Liveness {
    match stat {
        None => Liveness::Exited(None),
        Some(s) if s.start_time != recorded => Liveness::Reused,
        Some(s) if s.state == 'Z' || s.state == 'X' => Liveness::Exited(s.exit_status),
        Some(_) => Liveness::Alive,
    }
}

/// [`liveness`] of the live process `pid`.
pub fn check(pid: i32, recorded: StartTime) -> Liveness {
    liveness(ProcStat::read(pid).ok().as_ref(), recorded)
}

/// Splits a wait status into (exit code, signal).
pub fn decode_wait_status(status: i32) -> (Option<i32>, Option<i32>) {
    if status & 0x7f == 0 {
        (Some((status >> 8) & 0xff), None)
    } else {
        (None, Some(status & 0x7f))
    }
}

/// The arguments of `pid` (`/proc/P/cmdline`); empty for kernel threads and zombies.
pub fn cmdline(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The text of `/proc/P/cgroup` (empty when unreadable).
pub fn cgroup_text(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default()
}

/// Whether `pid` already sits in a cgroup below a `ffrtmp` parent (a job or an edge group),
/// in any hierarchy.
pub fn in_ffrtmp_cgroup(cgroup_text: &str) -> bool {
    cgroup_text.lines().filter_map(|l| l.splitn(3, ':').nth(2)).any(|path| {
        let parts: Vec<&str> = path.split('/').collect();
        parts.windows(2).any(|w| w[0] == "ffrtmp" && !w[1].is_empty())
    })
}

/// Every numeric entry of `/proc`.
pub fn all_pids() -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_dir("/proc")
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.sort_unstable();
    pids
}

/// Sets the niceness of every thread of `pid` (`setpriority` acts on one thread on Linux).
pub fn renice(pid: i32, nice: i32) -> io::Result<()> {
    let tids: Vec<i32> = fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut last_err = None;
    let mut done = 0;
    for tid in tids {
        // SAFETY: a plain system call on integer arguments.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
        if rc == 0 {
            done += 1;
        } else {
            last_err = Some(io::Error::last_os_error());
        }
    }
    match (done, last_err) {
        (0, Some(e)) => Err(e),
        (0, None) => Err(io::Error::other(format!("no threads of {pid}"))),
        _ => Ok(()),
    }
}

/// The niceness of `pid`'s main thread (field 19 of stat).
pub fn nice_of(pid: i32) -> Option<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    rest.get(19 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 \
                        987654 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 \
                        0 0 0 0 0 0 0 9";

    #[test]
    fn parses_stat_with_odd_comm() {
        let s = ProcStat::parse(STAT).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 987_654);
        assert_eq!(s.exit_status, Some(9));
        assert!(ProcStat::parse("garbage").is_none());
    }

    #[test]
    fn own_stat_and_nice() {
        let me = std::process::id() as i32;
        let s = ProcStat::read(me).unwrap();
        assert_eq!(s.pid, me);
        assert_eq!(check(me, s.start_time), Liveness::Alive);
        assert!(nice_of(me).is_some());
    }

    #[test]
    fn pid_reuse_is_detected_by_start_time() {
        let mut s = ProcStat::parse(STAT).unwrap();
        assert_eq!(liveness(Some(&s), 987_654), Liveness::Alive);
        // Same PID, another start time: the process we knew is gone.
        assert_eq!(liveness(Some(&s), 111), Liveness::Reused);
        assert_eq!(liveness(None, 987_654), Liveness::Exited(None));
        s.state = 'Z';
        s.exit_status = Some(3 << 8);
        assert_eq!(liveness(Some(&s), 987_654), Liveness::Exited(Some(768)));
        // And against the live process table: this process with a fake start time.
        let me = std::process::id() as i32;
        let real = ProcStat::read(me).unwrap().start_time;
        assert_eq!(check(me, real + 1), Liveness::Reused);
    }

    #[test]
    fn wait_status() {
        assert_eq!(decode_wait_status(3 << 8), (Some(3), None));
        assert_eq!(decode_wait_status(9), (None, Some(9)));
        assert_eq!(decode_wait_status(0), (Some(0), None));
    }

    #[test]
    fn ffrtmp_membership() {
        assert!(in_ffrtmp_cgroup("4:memory:/x/ffrtmp/edge-watch-1-2\n1:cpu:/\n"));
        assert!(in_ffrtmp_cgroup("0::/ffrtmp/job-a1\n"));
        assert!(!in_ffrtmp_cgroup("4:memory:/x/ffrtmp\n0::/\n"));
        assert!(!in_ffrtmp_cgroup("0::/user.slice\n"));
    }
}
