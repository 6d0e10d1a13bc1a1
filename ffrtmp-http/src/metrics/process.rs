//! The standard process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`, `process_start_time_seconds`), read from `/proc/self` at each scrape,
//! and `ffrtmp_build_info`. Both master and agent register them.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use super::encode::{counter_family, gauge_family, FnCollector};

/// The version this crate was built as.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit, when the build set `FFRTMP_GIT_SHA` (release builds do; a plain
/// `cargo build` from a checkout does not, and then only the version is exported).
pub const GIT_SHA: Option<&str> = option_env!("FFRTMP_GIT_SHA");

/// Registers `ffrtmp_build_info{version,git_sha} 1` (no `git_sha` label without one) and the
/// process metrics.
pub fn register_standard(registry: &mut Registry) {
    let mut labels = vec![("version".to_string(), VERSION.to_string())];
    if let Some(sha) = GIT_SHA.filter(|s| !s.is_empty()) {
        labels.push(("git_sha".to_string(), sha.to_string()));
    }
    registry.register(
        "ffrtmp_build",
        "Version (and git commit) of this binary",
        Info::new(labels),
    );
    registry.register_collector(Box::new(FnCollector(encode_process)));
}

/// What `/proc/self` says now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident memory in bytes.
    pub resident_bytes: f64,
    /// Open file descriptors.
    pub open_fds: f64,
    /// Start time, seconds since the Unix epoch.
    pub start_time_seconds: f64,
}

impl ProcessStats {
    /// Reads the running process; `None` where `/proc` is not there (not Linux).
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        // SAFETY: sysconf only reads configuration values.
        let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
        let mut s = parse_stat(&stat, &boot, ticks as f64, page as f64)?;
        // The read_dir handle itself was one of them.
        s.open_fds = fds.saturating_sub(1) as f64;
        Some(s)
    }
}

/// Parses `/proc/self/stat` (fields after the command name, which may hold spaces and
/// parentheses) and `btime` of `/proc/stat`.
fn parse_stat(stat: &str, proc_stat: &str, ticks: f64, page: f64) -> Option<ProcessStats> {
    if ticks <= 0.0 || page <= 0.0 {
        return None;
    }
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3, so field n is at index n - 3.
    let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let btime = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())?;
    Some(ProcessStats {
        cpu_seconds: (num(14)? + num(15)?) / ticks,
        resident_bytes: num(24)? * page,
        open_fds: 0.0,
        start_time_seconds: btime + num(22)? / ticks,
    })
}

fn encode_process(e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Some(s) = ProcessStats::read() else {
        return Ok(());
    };
    counter_family(
        e,
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        &[(&[], s.cpu_seconds)],
    )?;
    gauge_family(
        e,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        &[(&[], s.resident_bytes)],
    )?;
    gauge_family(
        e,
        "process_open_fds",
        "Number of open file descriptors.",
        &[(&[], s.open_fds)],
    )?;
    gauge_family(
        e,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[(&[], s.start_time_seconds)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 1 0 1000 123 2048 0";
        let s = parse_stat(stat, "cpu 1 2\nbtime 1700000000\n", 100.0, 4096.0).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 2048.0 * 4096.0);
        assert_eq!(s.start_time_seconds, 1_700_000_010.0);
        assert!(parse_stat("garbage", "btime 1", 100.0, 4096.0).is_none());
    }

    #[test]
    fn the_running_process_is_read() {
        let mut r = Registry::default();
        register_standard(&mut r);
        let text = super::super::encode::render(&r);
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
        assert!(text.contains("\nprocess_open_fds "), "{text}");
        let start = ProcessStats::read().unwrap().start_time_seconds;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(start > now - 86_400.0 && start <= now + 1.0, "{start} vs {now}");
        assert!(
            text.contains(&format!("ffrtmp_build_info{{version=\"{VERSION}\"")),
            "{text}"
        );
    }
}
