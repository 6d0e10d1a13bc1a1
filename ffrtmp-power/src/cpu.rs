//! [`CpuTimes`]: the CPU time of jobs and of the whole machine, which the [`Sampler`](crate::Sampler)
//! uses to split energy between jobs.
//!
//! The agent implements the trait over its job cgroups; this crate only reads the counters through
//! it (it does not depend on `ffrtmp-exec`). [`CgroupCpuCounter`] (kept open, for every tick),
//! [`cgroup_cpu_ns`] (once) and [`proc_stat_total_ns`] read the usual files.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::small_file::{CounterFile, ReadError, SMALL_FILE_MAX};

/// Cumulative CPU-time counters: one per running job, and one for the whole machine.
///
/// Both are cumulative nanoseconds that only go up; the sampler takes differences between its
/// ticks. A job's share of an interval's energy is its CPU-time delta divided by the machine's
/// ([`total_ns`](Self::total_ns)) delta over the same interval, so the machine total must count
/// **every** CPU second, busy and idle (the sum of all columns of the `cpu` line of `/proc/stat`,
/// or online CPUs × wall time as [`MachineClock`] counts it): the share not used by jobs then goes
/// to "other", which includes idle.
///
/// An agent implements it over the job cgroups it creates, e.g. with a [`CgroupCpuCounter`] per
/// job on `cpu.stat` (`usage_usec`, cgroup v2) or `cpuacct.usage` (cgroup v1), and a
/// [`MachineClock`] (or [`proc_stat_total_ns`]):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::RwLock;
/// use ffrtmp_power::{CgroupCpuCounter, CpuTimes, MachineClock};
///
/// /// Job key -> the job's cgroup CPU counter, opened when the cgroup is created.
/// struct JobCgroups(RwLock<HashMap<String, CgroupCpuCounter>>, MachineClock);
///
/// impl CpuTimes for JobCgroups {
///     fn job_cpu_ns(&self, job: &str) -> Option<u64> {
///         self.0.read().unwrap().get(job)?.read_ns().ok()
///     }
///     fn total_ns(&self) -> Option<u64> {
///         Some(self.1.total_ns())
///     }
/// }
/// let cgroups = JobCgroups(RwLock::new(HashMap::new()), MachineClock::new());
/// assert_eq!(cgroups.job_cpu_ns("no-such-job"), None);
/// ```
///
/// The sampler calls these methods while holding its own lock: they must not call back into the
/// [`Sampler`](crate::Sampler).
pub trait CpuTimes: Send + Sync {
    /// Cumulative CPU time of `job` (the key given to [`Sampler::job_started`](crate::Sampler::job_started)),
    /// in nanoseconds, counted from zero when its cgroup was created; `None` when it cannot be read
    /// now (no cgroup yet, a transient error). A missing reading is not zero: the CPU time is
    /// counted at the next reading that succeeds.
    fn job_cpu_ns(&self, job: &str) -> Option<u64>;

    /// Cumulative CPU time of the whole machine, all CPUs, busy **and idle**, in nanoseconds;
    /// `None` when it cannot be read (the sampler then skips the tick and retries).
    fn total_ns(&self) -> Option<u64>;
}

/// Clock ticks per second of `/proc/stat` (`USER_HZ`): 100 on every mainstream Linux architecture.
pub const USER_HZ: u64 = 100;

/// The machine's cumulative CPU time, busy and idle, from the `cpu` line of a `/proc/stat` file:
/// the sum of `user nice system idle iowait irq softirq steal` (guest time is already in `user`
/// and `nice`), converted from [`USER_HZ`] ticks to nanoseconds.
///
/// The resolution is one tick (10 ms) per CPU; sampling at 10 Hz on a few cores that is a few
/// percent of one interval, and the error does not accumulate because the counters are
/// cumulative.
pub fn proc_stat_total_ns(path: impl AsRef<Path>) -> io::Result<u64> {
    let path = path.as_ref();
    let text = fs::read_to_string(path)?;
    parse_proc_stat_total_ns(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} has no `cpu` line of counters", path.display()),
        )
    })
}

/// [`proc_stat_total_ns`] on the text of the file.
///
/// ```
/// use ffrtmp_power::parse_proc_stat_total_ns;
/// let stat = "cpu  100 0 50 800 10 0 5 0 20 0\ncpu0 50 0 25 400 5 0 3 0 10 0\n";
/// // (100 + 0 + 50 + 800 + 10 + 0 + 5 + 0) ticks of 10 ms; guest (20) is inside user.
/// assert_eq!(parse_proc_stat_total_ns(stat), Some(9_650_000_000));
/// ```
pub fn parse_proc_stat_total_ns(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    if fields.len() < 4 {
        return None;
    }
    let ticks: u64 = fields.iter().sum();
    ticks.checked_mul(1_000_000_000 / USER_HZ)
}

/// The cumulative CPU time of the cgroup in `dir`, in nanoseconds: `usage_usec` of `cpu.stat`
/// (cgroup v2), or else `cpuacct.usage` (cgroup v1, where `dir` is in the `cpuacct` hierarchy).
/// Reads once; a sampler reading every tick keeps a [`CgroupCpuCounter`] instead.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n").unwrap();
/// assert_eq!(ffrtmp_power::cgroup_cpu_ns(dir.path()).unwrap(), 1_500_000);
/// ```
pub fn cgroup_cpu_ns(dir: impl AsRef<Path>) -> io::Result<u64> {
    CgroupCpuCounter::open_reading(dir.as_ref()).map(|(_, ns)| ns)
}

/// The CPU-time counter of one cgroup, kept open: each [`read_ns`](Self::read_ns) is one `pread`
/// at offset 0 and no allocation, where [`cgroup_cpu_ns`] opens, reads and closes the file.
///
/// It reads `usage_usec` of `cpu.stat` (cgroup v2) or `cpuacct.usage` (cgroup v1), chosen when
/// opened. When a reading fails (the kernel answers `ENODEV` once the group is removed), or does
/// not move and the file has lost its name (removed, or replaced by a rename), the path is opened
/// again: a removed group then gives an error rather than its last value forever, and a group
/// made again under the same name, or a replaced file, is read from then on. A group made again
/// counts from zero, so a reading lower than the one before is a restart, not a negative delta.
///
/// ```
/// use ffrtmp_power::CgroupCpuCounter;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("cpu.stat"), "usage_usec 1500\nuser_usec 1500\nsystem_usec 0\n").unwrap();
/// let counter = CgroupCpuCounter::open(dir.path()).unwrap();
/// std::fs::write(dir.path().join("cpu.stat"), "usage_usec 2500\nuser_usec 2500\nsystem_usec 0\n").unwrap();
/// assert_eq!(counter.read_ns().unwrap(), 2_500_000);
/// ```
#[derive(Debug)]
pub struct CgroupCpuCounter {
    path: PathBuf,
    /// Behind a lock so that `read_ns(&self)` can open the file again.
    inner: Mutex<Inner>,
    format: CpuFormat,
}

#[derive(Debug)]
struct Inner {
    file: CounterFile,
    /// The last value read, to tell a counter standing still.
    last_ns: u64,
    /// Room for the file, kept so that a reading neither allocates nor clears a buffer.
    buf: Box<[u8]>,
}

/// Which file a [`CgroupCpuCounter`] reads.
#[derive(Clone, Copy, Debug)]
enum CpuFormat {
    /// cgroup v2 `cpu.stat`: a `usage_usec N` line among others.
    StatUsec,
    /// cgroup v1 `cpuacct.usage`: nanoseconds alone.
    UsageNs,
}

impl CgroupCpuCounter {
    /// Opens the CPU-time counter of the cgroup in `dir`, read once to pick the file (as
    /// [`cgroup_cpu_ns`] does); fails like [`cgroup_cpu_ns`] when the group has no counter.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<Self> {
        Self::open_reading(dir.as_ref()).map(|(counter, _)| counter)
    }

    /// The counter file read (`<dir>/cpu.stat` or `<dir>/cpuacct.usage`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group's cumulative CPU time in nanoseconds; an error names the file.
    pub fn read_ns(&self) -> io::Result<u64> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Inner { file, last_ns, buf } = &mut *inner;
        let format = self.format;
        let ns = match file.read_value(buf, Some(&*last_ns), |t| format.parse_ns(t)) {
            Ok(reading) => reading.value,
            Err(ReadError::Io(e)) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot read {}: {e}", self.path.display()),
                ))
            }
            Err(ReadError::Parse(_)) => return Err(no_counter(&self.path)),
        };
        *last_ns = ns;
        Ok(ns)
    }

    fn new(file: CounterFile, format: CpuFormat, ns: u64) -> Self {
        CgroupCpuCounter {
            path: file.path().to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                last_ns: ns,
                buf: vec![0; SMALL_FILE_MAX].into_boxed_slice(),
            }),
            format,
        }
    }

    /// Opens the counter and returns its first reading.
    fn open_reading(dir: &Path) -> io::Result<(Self, u64)> {
        let mut buf = [0u8; SMALL_FILE_MAX];
        match CounterFile::open(dir.join("cpu.stat")) {
            Ok(file) => {
                let usec = CpuFormat::StatUsec.parse_ns(file.read(&mut buf)?);
                let usage = dir.join("cpuacct.usage");
                match usec {
                    Some(ns) => {
                        return Ok((CgroupCpuCounter::new(file, CpuFormat::StatUsec, ns), ns));
                    }
                    // cgroup v1's cpu controller also has a cpu.stat, without usage_usec.
                    None if usage.exists() => {}
                    None => return Err(no_counter(file.path())),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = CounterFile::open(dir.join("cpuacct.usage"))?;
        let format = CpuFormat::UsageNs;
        let ns = format
            .parse_ns(file.read(&mut buf)?)
            .ok_or_else(|| no_counter(file.path()))?;
        Ok((CgroupCpuCounter::new(file, format, ns), ns))
    }
}

impl CpuFormat {
    /// Nanoseconds from the file's text, without allocating.
    fn parse_ns(self, text: &str) -> Option<u64> {
        match self {
            CpuFormat::StatUsec => text
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|usec| usec.saturating_mul(1000)),
            CpuFormat::UsageNs => text.trim().parse().ok(),
        }
    }
}

fn no_counter(file: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} holds no CPU usage counter", file.display()),
    )
}

/// The machine's CPU time as `online CPUs × elapsed time`: what the sum of `/proc/stat`'s `cpu`
/// line measures (every CPU second, busy and idle), without its 10 ms resolution and without a
/// file read (about 17 µs on a small VM). An agent's [`CpuTimes::total_ns`] can return
/// [`total_ns`](Self::total_ns) of one clock made at start-up.
///
/// ```
/// let clock = ffrtmp_power::MachineClock::new();
/// assert!(clock.cpus() >= 1);
/// let (a, b) = (clock.total_ns(), clock.total_ns());
/// assert!(b >= a);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MachineClock {
    cpus: u64,
    origin: Instant,
}

impl MachineClock {
    /// A clock counting [`online_cpus`] CPUs from now.
    pub fn new() -> Self {
        Self::with_cpus(online_cpus())
    }

    /// A clock counting `cpus` CPUs (at least 1) from now.
    pub fn with_cpus(cpus: u32) -> Self {
        MachineClock {
            cpus: u64::from(cpus.max(1)),
            origin: Instant::now(),
        }
    }

    /// CPUs counted.
    pub fn cpus(&self) -> u32 {
        self.cpus as u32
    }

    /// CPU nanoseconds of the whole machine since the clock was made.
    pub fn total_ns(&self) -> u64 {
        let elapsed = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        elapsed.saturating_mul(self.cpus)
    }
}

impl Default for MachineClock {
    fn default() -> Self {
        Self::new()
    }
}

/// CPUs online on the host, from `/sys/devices/system/cpu/online` (`0-3,6`), or else the CPUs
/// this process may use. The host's count is the right one for energy: RAPL measures whole
/// packages, whatever CPU quota the agent runs under.
pub fn online_cpus() -> u32 {
    fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| parse_cpu_list(&text))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get() as u32))
        .unwrap_or(1)
}

/// Counts the CPUs of a kernel CPU list such as `0-3,6,8-9`.
fn parse_cpu_list(text: &str) -> Option<u32> {
    let mut count = 0u32;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo.trim().parse::<u32>().ok()?, hi.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        count += hi.checked_sub(lo)? + 1;
    }
    (count > 0).then_some(count)
}

/// A [`CpuTimes`] with no jobs and no machine counter, for samplers without a power source.
pub(crate) struct NoCpuTimes;

impl CpuTimes for NoCpuTimes {
    fn job_cpu_ns(&self, _job: &str) -> Option<u64> {
        None
    }

    fn total_ns(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_needs_a_cpu_line() {
        assert_eq!(parse_proc_stat_total_ns("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat_total_ns("cpu  1 2 x 4\n"), None);
        assert_eq!(parse_proc_stat_total_ns("cpu  1 2\n"), None);
        assert_eq!(parse_proc_stat_total_ns("intr 5\ncpu  1 2 3 4\n"), Some(100_000_000));
    }

    #[test]
    fn cpu_lists_count() {
        assert_eq!(parse_cpu_list("0-3,6,8-9\n"), Some(7));
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list(""), None);
        assert!(online_cpus() >= 1);
    }

    #[test]
    fn machine_clock_counts_every_cpu() {
        let clock = MachineClock::with_cpus(4);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let ns = clock.total_ns();
        assert!(ns >= 80_000_000, "{ns}");
        assert_eq!(MachineClock::with_cpus(0).cpus(), 1);
    }

    #[test]
    fn real_proc_stat_parses_when_present() {
        if Path::new("/proc/stat").exists() {
            let a = proc_stat_total_ns("/proc/stat").unwrap();
            assert!(a > 0);
        }
    }

    #[test]
    fn a_kept_open_counter_follows_in_place_updates_and_fails_once_removed() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("cpu.stat");
        fs::write(&stat, "usage_usec 10\nuser_usec 10\n").unwrap();
        let counter = CgroupCpuCounter::open(dir.path()).unwrap();
        assert_eq!(counter.path(), stat);
        fs::write(&stat, "usage_usec 20\nuser_usec 20\n").unwrap();
        assert_eq!(counter.read_ns().unwrap(), 20_000);
        fs::write(&stat, "user_usec 20\n").unwrap();
        let err = counter.read_ns().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("cpu.stat"), "{err}");

        let v1 = tempfile::tempdir().unwrap();
        fs::write(v1.path().join("cpuacct.usage"), "5\n").unwrap();
        let counter = CgroupCpuCounter::open(v1.path()).unwrap();
        fs::write(v1.path().join("cpuacct.usage"), "000000000009\n").unwrap();
        assert_eq!(counter.read_ns().unwrap(), 9);
    }

    #[test]
    fn a_kept_open_counter_follows_a_replaced_file_and_notices_removal_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("cpu.stat");
        let tmp = dir.path().join("cpu.stat.tmp");
        fs::write(&stat, "usage_usec 10\n").unwrap();
        let counter = CgroupCpuCounter::open(dir.path()).unwrap();
        assert_eq!(counter.read_ns().unwrap(), 10_000);

        // Replaced by a rename (a group made again, in a test tree): the new value is read.
        fs::write(&tmp, "usage_usec 3\n").unwrap();
        fs::rename(&tmp, &stat).unwrap();
        assert_eq!(counter.read_ns().unwrap(), 3_000);
        fs::write(&stat, "usage_usec 4\n").unwrap();
        assert_eq!(counter.read_ns().unwrap(), 4_000);
        fs::write(&tmp, "usage_usec 50\n").unwrap();
        fs::rename(&tmp, &stat).unwrap();
        assert_eq!(counter.read_ns().unwrap(), 50_000);

        // Removed: an error at the first reading that does not move, not 50 µs forever.
        fs::remove_file(&stat).unwrap();
        let err = counter.read_ns().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("cpu.stat"), "{err}");
    }

    #[test]
    fn cgroup_v1_and_v2_counters() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_cpu_ns(dir.path()).unwrap_err().kind(), io::ErrorKind::NotFound);
        fs::write(dir.path().join("cpuacct.usage"), "123456789\n").unwrap();
        assert_eq!(cgroup_cpu_ns(dir.path()).unwrap(), 123_456_789);
        // v1 cpu controller's cpu.stat (nr_periods…) does not hide cpuacct.usage.
        fs::write(dir.path().join("cpu.stat"), "nr_periods 0\nnr_throttled 0\n").unwrap();
        assert_eq!(cgroup_cpu_ns(dir.path()).unwrap(), 123_456_789);
        fs::write(dir.path().join("cpu.stat"), "usage_usec 7\n").unwrap();
        assert_eq!(cgroup_cpu_ns(dir.path()).unwrap(), 7000);
        fs::remove_file(dir.path().join("cpuacct.usage")).unwrap();
        fs::write(dir.path().join("cpu.stat"), "nr_periods 0\n").unwrap();
        assert_eq!(
            cgroup_cpu_ns(dir.path()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
