//! Simulated power of the placement bench: one powercap-shaped tree per agent
//! (`intel-rapl:0/{name,energy_uj,max_energy_range_uj}`, the layout the agent reads under
//! `--powercap-root`), whose package counter a thread advances at the agent's busy wattage
//! while the agent holds a job and at its idle wattage otherwise.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Context, Result};

/// The counter range of a real RAPL package zone (`max_energy_range_uj`), in microjoules.
pub const RAPL_RANGE_UJ: u64 = 262_143_328_850;

/// How often the advancing thread moves the counters.
const TICK: Duration = Duration::from_millis(10);

/// The power one simulated node draws.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Wattage {
    /// While the node holds at least one job.
    pub busy_watts: f64,
    /// While it holds none.
    pub idle_watts: f64,
}

/// One simulated package counter: energy accumulates exactly (fractions of a microjoule are
/// carried), and the value shown wraps to 0 at `range_uj`, as a RAPL counter does.
#[derive(Clone, Debug, PartialEq)]
pub struct Counter {
    /// Energy since the start, µJ, never wrapped.
    total_uj: f64,
    range_uj: u64,
}

impl Counter {
    /// A counter at 0 that wraps at `range_uj` (at least 1).
    pub fn new(range_uj: u64) -> Counter {
        Counter {
            total_uj: 0.0,
            range_uj: range_uj.max(1),
        }
    }

    /// Adds `watts` over `dt`.
    pub fn advance(&mut self, watts: f64, dt: Duration) {
        self.total_uj += watts.max(0.0) * dt.as_secs_f64() * 1e6;
    }

    /// The value the counter file shows: the energy so far modulo the range.
    pub fn shown_uj(&self) -> u64 {
        (self.total_uj as u64) % self.range_uj
    }

    /// Joules since the start, wraps included.
    pub fn total_joules(&self) -> f64 {
        self.total_uj / 1e6
    }
}

/// A powercap tree in a directory, laid out as the agent's `--powercap-root` expects.
struct Tree {
    counter: Counter,
    file: File,
}

impl Tree {
    fn create(root: &Path, range_uj: u64) -> Result<Tree> {
        let zone = root.join("intel-rapl:0");
        std::fs::create_dir_all(&zone).with_context(|| format!("creating {}", zone.display()))?;
        std::fs::write(zone.join("name"), "package-0\n").context("writing the zone name")?;
        std::fs::write(zone.join("max_energy_range_uj"), format!("{range_uj}\n")).context("writing the range")?;
        let file = File::create(zone.join("energy_uj")).context("creating energy_uj")?;
        let tree = Tree {
            counter: Counter::new(range_uj),
            file,
        };
        tree.write()?;
        Ok(tree)
    }

    /// Rewrites the counter in place, as the kernel's is: every value has the same width, so
    /// a reader that keeps the file open sees the old number or the new one, never a torn one.
    fn write(&self) -> Result<()> {
        let text = format!("{:020}\n", self.counter.shown_uj());
        self.file
            .write_all_at(text.as_bytes(), 0)
            .context("writing energy_uj")?;
        Ok(())
    }
}

/// The running simulation: one tree per node, one thread advancing them all. Dropping it
/// stops the thread.
pub struct SimulatedPower {
    busy: Vec<Arc<AtomicBool>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<f64>>>,
}

impl SimulatedPower {
    /// Lays out `roots[i]` for node `i` (counters at 0, wrapping at `range_uj`) and starts
    /// advancing them at `watts[i]`; every node starts idle.
    pub fn start(roots: &[&Path], watts: &[Wattage], range_uj: u64) -> Result<SimulatedPower> {
        let mut trees = Vec::with_capacity(roots.len());
        for root in roots {
            trees.push(Tree::create(root, range_uj)?);
        }
        let busy: Vec<Arc<AtomicBool>> = roots.iter().map(|_| Arc::default()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (flags, halt, watts) = (busy.clone(), stop.clone(), watts.to_vec());
        let thread = std::thread::spawn(move || {
            let mut last = Instant::now();
            while !halt.load(Ordering::Relaxed) {
                // The writer's pace, not a wait for a condition: counters move every tick.
                std::thread::sleep(TICK);
                let now = Instant::now();
                let dt = now - last;
                last = now;
                for ((tree, w), busy) in trees.iter_mut().zip(&watts).zip(&flags) {
                    let watts = if busy.load(Ordering::Relaxed) {
                        w.busy_watts
                    } else {
                        w.idle_watts
                    };
                    tree.counter.advance(watts, dt);
                    if let Err(e) = tree.write() {
                        tracing::warn!(error = %e.chain(), "simulated powercap counter not written");
                    }
                }
            }
            trees.iter().map(|t| t.counter.total_joules()).collect()
        });
        Ok(SimulatedPower {
            busy,
            stop,
            thread: Some(thread),
        })
    }

    /// Marks node `i` busy or idle.
    pub fn set_busy(&self, i: usize, busy: bool) {
        if let Some(flag) = self.busy.get(i) {
            flag.store(busy, Ordering::Relaxed);
        }
    }

    /// Stops the thread; the joules each node's counter advanced by in all.
    pub fn stop(mut self) -> Vec<f64> {
        self.halt()
    }

    fn halt(&mut self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for SimulatedPower {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_advances_at_the_wattage_and_wraps_at_its_range() {
        let mut c = Counter::new(1_000_000); // wraps every joule
        c.advance(60.0, Duration::from_millis(10)); // 0.6 J
        assert_eq!(c.shown_uj(), 600_000);
        c.advance(60.0, Duration::from_millis(10)); // 1.2 J: past the range
        assert_eq!(c.shown_uj(), 200_000);
        assert!((c.total_joules() - 1.2).abs() < 1e-9);
        // Fractions of a microjoule are carried, not lost per tick.
        let mut slow = Counter::new(RAPL_RANGE_UJ);
        for _ in 0..1000 {
            slow.advance(0.0001, Duration::from_millis(1)); // 0.1 µJ each
        }
        // 100 µJ, give or take the rounding of a thousand additions.
        let shown = slow.shown_uj();
        assert!((99..=100).contains(&shown), "{shown}");
        slow.advance(-5.0, Duration::from_secs(1));
        assert_eq!(slow.shown_uj(), shown, "negative power is no power");
    }

    #[test]
    fn the_tree_reads_as_a_wrapping_rapl_zone_at_the_nodes_wattage() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node");
        // A range of 0.5 J wraps every few ticks at 100 W busy.
        let watts = [Wattage {
            busy_watts: 100.0,
            idle_watts: 0.0,
        }];
        let sim = SimulatedPower::start(&[root.as_path()], &watts, 500_000).unwrap();
        let zone = root.join("intel-rapl:0");
        assert_eq!(std::fs::read_to_string(zone.join("name")).unwrap(), "package-0\n");
        assert_eq!(
            std::fs::read_to_string(zone.join("max_energy_range_uj")).unwrap(),
            "500000\n"
        );
        let read = || -> u64 {
            std::fs::read_to_string(zone.join("energy_uj"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(read(), 0, "idle at 0 W: the counter stays");
        sim.set_busy(0, true);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        // Wait until the counter has wrapped at least once (a value below one seen before).
        while !seen.windows(2).any(|w: &[u64]| w[1] < w[0]) {
            assert!(Instant::now() < deadline, "the counter never wrapped: {seen:?}");
            seen.push(read());
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(seen.iter().all(|v| *v < 500_000), "{seen:?}");
        sim.set_busy(0, false);
        let joules = sim.stop();
        assert!(joules[0] > 0.5, "{joules:?}");
    }
}
