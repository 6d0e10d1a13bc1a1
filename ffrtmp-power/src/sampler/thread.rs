//! The sampler thread: ticks at the configured rate (a loop the GPU sampler shares) and measures
//! its own CPU time.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
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
pub(super) fn run(shared: Arc<Shared>, control: &TickControl) {
    shared.thread_cpu_start();
    control.tick_loop("energy sampler", shared.config.interval, || {
        let mut st = shared.lock();
        shared.tick(&mut st).map(drop)
    });
    shared.thread_cpu_end();
}

/// What a ticking thread waits on: the stop flag and the wake-up that interrupts its wait.
#[derive(Default)]
pub(crate) struct TickControl {
    stop: Mutex<bool>,
    wake: Condvar,
}

impl TickControl {
    /// Calls `tick` every `interval` until stopped (a stop interrupts the wait). Late ticks are
    /// not made up in a burst. The first failure of a run of failures is a warning, the rest
    /// debug.
    pub(crate) fn tick_loop(&self, what: &str, interval: Duration, mut tick: impl FnMut() -> Result<(), PowerError>) {
        let mut next = Instant::now() + interval;
        let mut failing = false;
        loop {
            {
                let mut stopped = self.stop.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if *stopped {
                        return;
                    }
                    let now = Instant::now();
                    if now >= next {
                        break;
                    }
                    stopped = self
                        .wake
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
}

/// The thread of a sampler (CPU or GPU): started once, stopped and joined on [`stop`](Self::stop)
/// or when dropped.
#[derive(Default)]
pub(crate) struct TickThread {
    control: Arc<TickControl>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl TickThread {
    /// Starts `body` (which runs [`TickControl::tick_loop`]) on a thread named `name`. A
    /// thread that cannot be started is logged: the sampler then reads only when asked.
    pub(crate) fn spawn(&self, name: &str, what: &str, body: impl FnOnce(&TickControl) + Send + 'static) {
        let control = self.control.clone();
        match std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&control))
        {
            Ok(handle) => *self.handle.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle),
            Err(e) => tracing::warn!(error = %e, "cannot start the {what} thread; sampling only at job ends"),
        }
    }

    /// Whether the thread is running.
    pub(crate) fn is_running(&self) -> bool {
        self.handle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|h| !h.is_finished())
    }

    /// Stops the thread and waits for it (at most one tick). Calling it again does nothing.
    pub(crate) fn stop(&self) {
        *self.control.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.control.wake.notify_all();
        let handle = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("a sampler thread panicked");
            }
        }
    }
}

impl Drop for TickThread {
    fn drop(&mut self) {
        self.stop();
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
