//! A fake powercap tree for the binaries' tests: the agent is pointed at it with
//! `--powercap-root` and reads it exactly as it reads `/sys/class/powercap`.

use std::path::Path;
use std::time::{Duration, Instant};

/// A powercap tree laid out like `/sys/class/powercap` whose package counter a thread
/// advances at a steady 50 W.
///
/// The counter is rewritten in place, as the kernel's is: the agent keeps `energy_uj` open
/// and re-reads it. Every value has the same width (zero-padded, no truncation), so a reader
/// sees the old number or the new one, never a short or empty file.
pub struct FakeRapl {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Microseconds after the start at which the count last restarted from 0.
    restarted_at_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
    start: Instant,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeRapl {
    /// Lays the tree out under `root` and starts the counter at 0.
    pub fn start(root: &Path) -> FakeRapl {
        let zone = root.join("intel-rapl:0");
        std::fs::create_dir_all(&zone).unwrap();
        std::fs::write(zone.join("name"), "package-0\n").unwrap();
        std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
        let counter = std::fs::File::create(zone.join("energy_uj")).unwrap();
        let write = move |uj: u64| {
            use std::os::unix::fs::FileExt;
            counter.write_all_at(format!("{uj:020}\n").as_bytes(), 0).unwrap();
        };
        write(0);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let restarted_at_us = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (s, restarted) = (stop.clone(), restarted_at_us.clone());
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let since_us = start.elapsed().as_micros() as u64;
                let counting_us = since_us.saturating_sub(restarted.load(std::sync::atomic::Ordering::SeqCst));
                write(counting_us * 50 % 262_143_328_850);
                // The writer's pace, not a wait for a condition: the counter moves every 5 ms.
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        FakeRapl {
            stop,
            restarted_at_us,
            start,
            thread: Some(thread),
        }
    }

    /// Restarts the count from 0 in place, as a reloaded driver may: the counter jumps back.
    #[allow(dead_code)] // not every test binary that includes this file restarts the count
    pub fn restart_count(&self) {
        let now_us = self.start.elapsed().as_micros() as u64;
        self.restarted_at_us.store(now_us, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for FakeRapl {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
