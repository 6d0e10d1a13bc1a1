//! The sampler thread: ticks at the configured rate (a loop the GPU sampler shares) and measures
//! its own CPU time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ffrtmp_core::PowerError;

use super::Shared;

#[derive(Default)]
pub(super) struct ThreadCpu {
    pub(super) schedstat: Option<PathBuf>,
    pub(super) start_ns: Option<u64>,
    pub(super) final_ns: Option<u64>,
}

/// The sampler thread: ticks every interval until stopped.
pub(super) fn run(shared: Arc<Shared>) {
    shared.thread_cpu_start();
    tick_loop(
        "energy sampler",
        shared.config.interval,
        &shared.stop,
        &shared.wake,
        || {
            let mut st = shared.lock();
            shared.tick(&mut st).map(drop)
        },
    );
    shared.thread_cpu_end();
}

/// Calls `tick` every `interval` until `*stop` is set (`wake` interrupts the wait). Late ticks are
/// not made up in a burst. The first failure of a run of failures is a warning, the rest debug.
pub(crate) fn tick_loop(
    what: &str,
    interval: Duration,
    stop: &Mutex<bool>,
    wake: &Condvar,
    mut tick: impl FnMut() -> Result<(), PowerError>,
) {
    let mut next = Instant::now() + interval;
    let mut failing = false;
    loop {
        {
            let mut stopped = stop.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if *stopped {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stopped = wake
                    .wait_timeout(stopped, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        match tick() {
            Err(e) if !failing => {
                tracing::warn!(error = %e, "{what}: reading failed; retrying every tick");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "{what}: reading failed"),
            Ok(()) if failing => {
                tracing::info!("{what}: readings resumed");
                failing = false;
            }
            Ok(()) => {}
        }
        next += interval;
        let now = Instant::now();
        if next <= now {
            next = now + interval;
        }
    }
}

impl Shared {
    fn thread_cpu_start(&self) {
        // /proc/thread-self -> "<pid>/task/<tid>", readable from any thread of the process.
        let path = fs::read_link("/proc/thread-self")
            .ok()
            .map(|link| PathBuf::from("/proc").join(link).join("schedstat"));
        let start = path.as_deref().and_then(read_schedstat_ns);
        let mut cpu = self.thread_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        cpu.start_ns = start;
        cpu.schedstat = path;
    }

    fn thread_cpu_end(&self) {
        let mut cpu = self.thread_cpu.lock().unwrap_or_else(PoisonError::into_inner);
        cpu.final_ns = cpu.schedstat.as_deref().and_then(read_schedstat_ns);
    }
}

/// Nanoseconds on CPU, the first field of a `schedstat` file.
pub(super) fn read_schedstat_ns(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}
