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
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                write((start.elapsed().as_secs_f64() * 50e6) as u64 % 262_143_328_850);
                // The writer's pace, not a wait for a condition: the counter moves every 5 ms.
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        FakeRapl {
            stop,
            thread: Some(thread),
        }
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
