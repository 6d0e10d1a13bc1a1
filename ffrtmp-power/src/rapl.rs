//! [`RaplSource`]: RAPL energy counters read from the Linux powercap sysfs tree.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};

use crate::small_file::{read_small, CounterFile, ReadError, SMALL_FILE_MAX};

/// Where Linux exposes powercap zones.
pub const SYSTEM_POWERCAP: &str = "/sys/class/powercap";

/// Default of [`RaplSource::with_max_zone_watts`]: well above any one socket or DRAM zone (the
/// largest server packages draw about 500 W), far below what a reset corrected as a wrap gives
/// (a counter restarting from near zero reads as up to `max_energy_range_uj`, ~262 kJ, in one
/// sampling interval).
pub const DEFAULT_MAX_ZONE_WATTS: f64 = 2000.0;

/// The shortest time a backwards jump is judged over. Two readings can be microseconds apart
/// (a job's final reading right after a tick) while the counter itself moves in steps of about
/// a millisecond, so a real wrap over so short a span would look implausibly fast.
const MIN_PLAUSIBILITY_SPAN: Duration = Duration::from_millis(100);

/// How deep to look for subzones nested inside zone directories (real sysfs nests them once).
const MAX_DEPTH: usize = 3;

/// Which RAPL zones a [`RaplSource`] reads. Zones that contain one another are never summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ZoneSelection {
    /// Every `package-N` zone plus every `dram` subzone (DRAM is not inside the package domain).
    /// `core` and `uncore` lie inside their package and are never read; `psys` is skipped.
    #[default]
    PackagesAndDram,
    /// Only the `psys` (platform) zone, which already contains the packages.
    Psys,
}

/// A zone a [`RaplSource`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneInfo {
    /// Unique name used in [`ZoneEnergy::zone`]: `package-0`, `package-1`, `dram-0` (the DRAM of
    /// package 0), `psys`.
    pub name: String,
    /// The zone's directory, e.g. `/sys/class/powercap/intel-rapl:0`.
    pub path: PathBuf,
    /// Value at which `energy_uj` wraps back to zero, as read when the source was opened (a
    /// counter whose file is opened again has its range read again too).
    pub max_energy_range_uj: u64,
}

/// Energy counters of the RAPL zones under a powercap directory (normally `/sys/class/powercap`).
///
/// Any directory laid out like `/sys/class/powercap` works the same way, which is how tests and
/// hosts without RAPL (VMs fed by an external meter) get a file-backed source. Zone entries are
/// the names containing `rapl` with a `:N` index (`intel-rapl:0`, `intel-rapl:0:2`,
/// `intel-rapl-mmio:0`, `amd-rapl:0`), each a directory with `name`, `energy_uj` and
/// `max_energy_range_uj`. Subzones found both flat at the top level and nested in their parent
/// are read once; an `intel-rapl-mmio` zone that repeats an `intel-rapl` package is skipped.
///
/// Counters wrap at `max_energy_range_uj`; every [`sample`](PowerSource::sample) corrects wraps
/// and reports microjoules since the source was opened, so readings are monotone. A wrap is only
/// seen if the source is sampled at least once per wrap period (tens of minutes at full load).
///
/// Each `energy_uj` stays open and is re-read in place (one `pread` per zone and sample), so a
/// file-backed tree must be updated by rewriting `energy_uj` in place, as the kernel's files
/// are. A counter whose descriptor fails (`ENODEV` after a driver reload), or whose file was
/// removed or replaced (renamed over; checked whenever its reading does not move), is opened
/// again by path; one that is gone gives [`PowerError::Read`] rather than its last value
/// forever. A counter read from a file opened again is a new counter with its own origin and
/// perhaps its own range: its first reading adds no energy, it is counted as a reset
/// ([`resets`](Self::resets)), not a wrap, and `max_energy_range_uj` is read again. (A writer
/// that replaces the file at every update therefore adds no energy at all.) A counter that
/// goes backwards in place is a wrap when the corrected energy is plausible, and a reset (in
/// place: the driver restarted the count, or `max_energy_range_uj` is wrong) when it would mean
/// more than [`with_max_zone_watts`](Self::with_max_zone_watts) watts (default
/// [`DEFAULT_MAX_ZONE_WATTS`]) since the last reading: that zone then adds no energy for the
/// interval and the reset is counted, so the sampler drops the interval.
///
/// ```
/// use ffrtmp_core::PowerSource;
/// use ffrtmp_power::RaplSource;
/// use std::fs;
///
/// // A tree laid out like /sys/class/powercap: package-0 with a core and a dram subzone.
/// let root = std::env::temp_dir().join(format!("ffrtmp-power-doc-{}", std::process::id()));
/// let _ = fs::remove_dir_all(&root);
/// let zone = |entry: &str, name: &str, uj: u64| {
///     let dir = root.join(entry);
///     fs::create_dir_all(&dir).unwrap();
///     fs::write(dir.join("name"), format!("{name}\n")).unwrap();
///     fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
///     fs::write(dir.join("max_energy_range_uj"), "262143328850\n").unwrap();
/// };
/// zone("intel-rapl:0", "package-0", 1_000_000);
/// zone("intel-rapl:0:0", "core", 500_000);
/// zone("intel-rapl:0:1", "dram", 200_000);
///
/// let rapl = RaplSource::open(&root).unwrap();
/// let before = rapl.sample().unwrap();
/// fs::write(root.join("intel-rapl:0/energy_uj"), "3000000\n").unwrap(); // +2 J
/// fs::write(root.join("intel-rapl:0:0/energy_uj"), "1500000\n").unwrap(); // core: inside package
/// fs::write(root.join("intel-rapl:0:1/energy_uj"), "700000\n").unwrap(); // +0.5 J
/// let after = rapl.sample().unwrap();
///
/// let names: Vec<_> = after.zones.iter().map(|z| z.zone.as_str()).collect();
/// assert_eq!(names, ["package-0", "dram-0"]);
/// assert_eq!(after.joules_since(&before), 2.5);
/// fs::remove_dir_all(&root).unwrap();
/// ```
#[derive(Debug)]
pub struct RaplSource {
    root: PathBuf,
    selection: ZoneSelection,
    zones: Vec<ZoneInfo>,
    /// Above this mean power since the last reading a backwards jump is a reset, not a wrap.
    max_zone_watts: Option<f64>,
    state: Mutex<State>,
}

/// The open counter files and the wrap-correction state, which is updated only after every zone
/// has been read.
#[derive(Debug)]
struct State {
    files: Vec<CounterFile>,
    counters: Vec<Counter>,
    /// Scratch for one sample's raw readings, kept to spare an allocation per sample.
    raws: Vec<u64>,
    wraps: u64,
    resets: u64,
    /// When the last good sample (or the opening reading) was taken.
    last_read: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Counter {
    last_raw: u64,
    total_uj: u64,
    /// The wrap value of the file now open.
    max_uj: u64,
    /// The file was opened again since the last sample: the next good sample restarts the
    /// counter from its reading. Kept until then, as a failed sample discards its readings.
    reset: bool,
}

impl RaplSource {
    /// Opens the host's RAPL zones under `/sys/class/powercap` with the default selection.
    pub fn system() -> Result<Self, PowerError> {
        Self::open(SYSTEM_POWERCAP)
    }

    /// Opens the RAPL zones under `root` with [`ZoneSelection::PackagesAndDram`].
    ///
    /// Fails with [`PowerError::Unavailable`] and a reason when `root` is missing, holds no RAPL
    /// zones, or a counter cannot be read (unprivileged users cannot read `energy_uj` on kernels
    /// patched since 2020).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, PowerError> {
        Self::open_with(root, ZoneSelection::default())
    }

    /// Opens the zones under `root` picked by `selection`, reading each counter once as the zero
    /// point of later samples.
    pub fn open_with(root: impl AsRef<Path>, selection: ZoneSelection) -> Result<Self, PowerError> {
        let root = root.as_ref().to_path_buf();
        let entries = discover(&root)?;
        let zones = select(&root, &entries, selection)?;
        let mut files = Vec::with_capacity(zones.len());
        let mut counters = Vec::with_capacity(zones.len());
        for zone in &zones {
            let path = zone.path.join("energy_uj");
            let mut file =
                CounterFile::open(path.clone()).map_err(|source| CounterError::Io { path, source }.unavailable())?;
            let raw = file
                .read_value(&mut [0u8; COUNTER_BUF], None, parse_raw)
                .map_err(|e| CounterError::read(file.path(), e).unavailable())?
                .value;
            check_range(raw, zone.max_energy_range_uj, file.path()).map_err(CounterError::unavailable)?;
            files.push(file);
            counters.push(Counter {
                last_raw: raw,
                total_uj: 0,
                max_uj: zone.max_energy_range_uj,
                reset: false,
            });
        }
        tracing::debug!(
            root = %root.display(),
            zones = ?zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>(),
            "opened RAPL powercap zones"
        );
        Ok(RaplSource {
            root,
            selection,
            state: Mutex::new(State {
                files,
                raws: Vec::with_capacity(zones.len()),
                counters,
                wraps: 0,
                resets: 0,
                last_read: Instant::now(),
            }),
            zones,
            max_zone_watts: Some(DEFAULT_MAX_ZONE_WATTS),
        })
    }

    /// Sets the most power one zone may plausibly draw (default [`DEFAULT_MAX_ZONE_WATTS`]): a
    /// counter that went backwards is corrected as a wrap only when the corrected energy since
    /// the last reading (over at least 100 ms) stays below this many watts; above, it is a reset.
    /// `None` corrects every backwards jump as a wrap. Non-finite or non-positive limits mean
    /// `None`.
    ///
    /// ```
    /// use ffrtmp_power::{RaplSource, DEFAULT_MAX_ZONE_WATTS};
    /// # let root = std::env::temp_dir().join(format!("ffrtmp-power-limit-doc-{}", std::process::id()));
    /// # let zone = root.join("intel-rapl:0");
    /// # std::fs::create_dir_all(&zone).unwrap();
    /// # std::fs::write(zone.join("name"), "package-0\n").unwrap();
    /// # std::fs::write(zone.join("energy_uj"), "5\n").unwrap();
    /// # std::fs::write(zone.join("max_energy_range_uj"), "262143328850\n").unwrap();
    /// let rapl = RaplSource::open(&root).unwrap();
    /// assert_eq!(rapl.max_zone_watts(), Some(DEFAULT_MAX_ZONE_WATTS));
    /// assert_eq!(rapl.with_max_zone_watts(Some(800.0)).max_zone_watts(), Some(800.0));
    /// # std::fs::remove_dir_all(&root).unwrap();
    /// ```
    pub fn with_max_zone_watts(mut self, watts: Option<f64>) -> Self {
        self.max_zone_watts = watts.filter(|w| w.is_finite() && *w > 0.0);
        self
    }

    /// The plausible-power limit per zone ([`with_max_zone_watts`](Self::with_max_zone_watts)).
    pub fn max_zone_watts(&self) -> Option<f64> {
        self.max_zone_watts
    }

    /// The powercap directory this source reads.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The selection the source was opened with.
    pub fn selection(&self) -> ZoneSelection {
        self.selection
    }

    /// The zones read, in the order they appear in samples.
    pub fn zones(&self) -> &[ZoneInfo] {
        &self.zones
    }

    /// Counters restarted so far because their file was opened again (a reloaded driver, a
    /// replaced file) or because they went backwards implausibly fast for a wrap: each added no
    /// energy for the interval of its restart.
    pub fn resets(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).resets
    }
}

impl PowerSource for RaplSource {
    fn name(&self) -> &str {
        "rapl"
    }

    /// Reads every zone. A zone that read fine at open and now fails gives [`PowerError::Read`];
    /// the wrap-correction state is then left as it was.
    fn sample(&self) -> Result<EnergySample, PowerError> {
        let mut sample = EnergySample::default();
        self.sample_into(&mut sample)?;
        Ok(sample)
    }

    /// As [`sample`](Self::sample), writing the values over `into`'s zones when they are this
    /// source's zones already (the sampler's case: no allocation).
    fn sample_into(&self, into: &mut EnergySample) -> Result<(), PowerError> {
        // Reads happen under the lock so concurrent samples cannot mistake each other for wraps.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = &mut *guard;
        state.raws.clear();
        for ((zone, file), counter) in self.zones.iter().zip(&mut state.files).zip(&mut state.counters) {
            let raw = read_zone(zone, file, counter).map_err(CounterError::read_failed)?;
            state.raws.push(raw);
        }
        let same_zones = into.zones.len() == self.zones.len()
            && into.zones.iter().zip(&self.zones).all(|(z, info)| z.zone == info.name);
        if !same_zones {
            into.zones.clear();
            into.zones.extend(self.zones.iter().map(|zone| ZoneEnergy {
                zone: zone.name.clone(),
                energy_uj: 0,
            }));
        }
        let (mut wraps, mut resets) = (0, 0);
        let now = Instant::now();
        let span = now
            .saturating_duration_since(state.last_read)
            .max(MIN_PLAUSIBILITY_SPAN);
        // Microjoules one zone may plausibly add over this span.
        let plausible_uj = self.max_zone_watts.map(|w| w * span.as_secs_f64() * 1e6);
        let counters = self.zones.iter().zip(state.counters.iter_mut()).zip(&state.raws);
        for (((zone, counter), &raw), out) in counters.zip(&mut into.zones) {
            let delta = if counter.reset {
                // Another counter than the one before: its distance from the last one is no energy.
                counter.reset = false;
                resets += 1;
                tracing::warn!(zone = %zone.name, raw, "RAPL counter file opened again; the counter restarts from its reading");
                0
            } else if raw >= counter.last_raw {
                raw - counter.last_raw
            } else {
                let corrected = counter.max_uj.saturating_sub(counter.last_raw).saturating_add(raw);
                if plausible_uj.is_some_and(|limit| corrected as f64 > limit) {
                    // Backwards in place, and too far for a wrap: the count restarted.
                    resets += 1;
                    tracing::warn!(
                        zone = %zone.name,
                        last = counter.last_raw,
                        raw,
                        as_wrap_j = corrected as f64 / 1e6,
                        span_s = span.as_secs_f64(),
                        "RAPL counter went backwards faster than a wrap could explain; counted as a reset"
                    );
                    0
                } else {
                    wraps += 1;
                    corrected
                }
            };
            counter.last_raw = raw;
            counter.total_uj = counter.total_uj.saturating_add(delta);
            out.energy_uj = counter.total_uj;
        }
        if wraps > 0 {
            tracing::debug!(root = %self.root.display(), wraps, "RAPL counter wrap corrected");
        }
        state.wraps += wraps;
        state.resets += resets;
        state.last_read = now;
        into.wraps = state.wraps;
        Ok(())
    }

    fn resets(&self) -> u64 {
        RaplSource::resets(self)
    }
}

/// Why one counter file could not be read.
#[derive(Debug, thiserror::Error)]
enum CounterError {
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} holds {content:?}, not a counter", .path.display())]
    Parse { path: PathBuf, content: String },
    #[error("{} reads {raw}, above max_energy_range_uj {max}", .path.display())]
    AboveRange { path: PathBuf, raw: u64, max: u64 },
    #[error("{} is zero", .path.display())]
    ZeroRange { path: PathBuf },
}

impl CounterError {
    /// The error of reading `path` through [`CounterFile::read_value`].
    fn read(path: &Path, err: ReadError) -> CounterError {
        match err {
            ReadError::Io(source) => CounterError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadError::Parse(content) => CounterError::Parse {
                path: path.to_path_buf(),
                content,
            },
        }
    }

    /// The error while opening: the source is unavailable, and permission problems say so.
    fn unavailable(self) -> PowerError {
        match self {
            CounterError::Io { path, source } if source.kind() == io::ErrorKind::PermissionDenied => {
                PowerError::Unavailable(format!("needs root or read access to {}", path.display()))
            }
            other => PowerError::Unavailable(other.to_string()),
        }
    }

    /// The error after a successful open: a counter that used to read failed.
    fn read_failed(self) -> PowerError {
        PowerError::Read(self.to_string())
    }
}

/// Room for a counter file: `u64::MAX` has 20 digits, plus a newline and some slack.
const COUNTER_BUF: usize = 32;

/// Reads a zone's counter through its open file, following a removed or replaced file
/// ([`CounterFile::read_value`]). A reading from a file opened again marks the counter for a
/// reset and reads the zone's range again, as a reloaded driver may report another.
fn read_zone(zone: &ZoneInfo, file: &mut CounterFile, counter: &mut Counter) -> Result<u64, CounterError> {
    let reading = file
        .read_value(&mut [0u8; COUNTER_BUF], Some(&counter.last_raw), parse_raw)
        .map_err(|e| CounterError::read(file.path(), e))?;
    counter.reset |= reading.reopened;
    if counter.reset {
        // Until the reset is counted, in case the range read failed last time.
        counter.max_uj = read_max_range(&zone.path)?;
    }
    check_range(reading.value, counter.max_uj, file.path())?;
    Ok(reading.value)
}

/// A counter's value; leading zeros (fixed-width writers) are accepted, an empty file is not.
fn parse_raw(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The zone's `max_energy_range_uj`, which must not be zero.
fn read_max_range(zone_dir: &Path) -> Result<u64, CounterError> {
    let path = zone_dir.join("max_energy_range_uj");
    match read_counter(&path)? {
        0 => Err(CounterError::ZeroRange { path }),
        max => Ok(max),
    }
}

/// Reads a counter once (opened, read, closed), for values read at open only.
fn read_counter(path: &Path) -> Result<u64, CounterError> {
    let mut buf = [0u8; SMALL_FILE_MAX];
    let text = read_small(path, &mut buf).map_err(|source| CounterError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim().parse().map_err(|_| CounterError::Parse {
        path: path.to_path_buf(),
        content: text.trim().to_string(),
    })
}

fn check_range(raw: u64, max: u64, file: &Path) -> Result<(), CounterError> {
    if raw > max {
        return Err(CounterError::AboveRange {
            path: file.to_path_buf(),
            raw,
            max,
        });
    }
    Ok(())
}

mod discover;
#[cfg(test)]
mod tests;

use discover::{discover, select};
