//! The sampler thread: ticks at the configured rate and measures its own CPU time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use super::Shared;

#[derive(Default)]
pub(super) struct ThreadCpu {
    pub(super) schedstat: Option<PathBuf>,
    pub(super) start_ns: Option<u64>,
    pub(super) final_ns: Option<u64>,
}

/// The sampler thread: ticks every interval until stopped. Late ticks are not made up in a burst.
pub(super) fn run(shared: Arc<Shared>) {
    shared.thread_cpu_start();
    let interval = shared.config.interval;
    let mut next = Instant::now() + interval;
    let mut failing = false;
    loop {
        {
            let mut stopped = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                if *stopped {
                    drop(stopped);
                    shared.thread_cpu_end();
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stopped = shared
                    .wake
                    .wait_timeout(stopped, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let result = {
            let mut st = shared.lock();
            shared.tick(&mut st)
        };
        match result {
            Err(e) if !failing => {
                tracing::warn!(error = %e, "energy sampler: reading failed; retrying every tick");
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "energy sampler: reading failed"),
            Ok(_) if failing => {
                tracing::info!("energy sampler: readings resumed");
                failing = false;
            }
            Ok(_) => {}
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
