//! [`NvmlSource`]: NVIDIA GPU energy counters and utilisation through NVML (cargo feature `nvml`).
//!
//! NVML (`libnvidia-ml.so.1`, installed with the NVIDIA driver) is loaded at run time by
//! `nvml-wrapper`, so this module builds on hosts without a GPU and reports
//! [`PowerError::Unavailable`] there. The NVML calls sit behind the small [`Backend`] trait;
//! everything else (unit conversion, the monotonic guard, reasons) is plain code tested with a
//! fake backend. The split between jobs lives in [`crate::gpu`], which reads GPUs through the
//! [`GpuMeter`] trait this source implements.

#[cfg(test)]
mod attribution_tests;
mod backend;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};

use crate::gpu::{GpuMeter, GpuReading};
use backend::{counter_reason, field, init_reason, Backend, Fault, NvmlBackend};

/// The library [`NvmlSource::open`] loads: NVML as the NVIDIA driver installs it.
pub const NVML_LIBRARY: &str = "libnvidia-ml.so.1";

/// Energy counters of every NVIDIA GPU, one zone per GPU: `gpu-0`, `gpu-1`, … (NVML indices).
///
/// Each zone reads the GPU's total energy counter (`nvmlDeviceGetTotalEnergyConsumption`,
/// millijoules since the driver loaded, Volta or newer) and reports microjoules since the source
/// was opened. The counter is 64-bit and does not wrap, so [`EnergySample::wraps`] stays 0. Should
/// a reading ever be lower than the one before (a glitch, or a GPU reset), nothing is counted for
/// that step and the lower value becomes the new baseline: samples stay monotone and a glitch can
/// never add the whole lifetime counter. Such steps are counted by
/// [`counter_resets`](Self::counter_resets). In a [`snapshot`](Self::snapshot), a GPU whose
/// counter was reset since the previous snapshot has no energy reading (`energy: counter reset`
/// in [`GpuReading::missing`]), so GPU attribution estimates that interval from power × time and
/// flags it rather than counting nothing.
///
/// Power, temperature, utilisation and per-process engine use come from
/// [`snapshot`](Self::snapshot), outside the [`PowerSource`] trait (also as the [`GpuMeter`] a
/// [`GpuSampler`](crate::GpuSampler) reads); [`split_gpu_energy`](crate::split_gpu_energy) turns
/// a GPU's joules and its processes' utilisation into per-process joules.
///
/// [`open_with`](Self::open_with)`(…, MissingCounter::PowerFallback)` also opens GPUs without the
/// counter (older than Volta): they have no zone, their [`GpuReading::energy_uj`] is `None`, and
/// GPU attribution estimates their energy as power × time.
///
/// ```no_run
/// use std::time::Duration;
/// use ffrtmp_core::{PowerError, PowerSource};
/// use ffrtmp_power::{split_gpu_energy, NvmlSource};
///
/// let nvml = match NvmlSource::open() {
///     Ok(nvml) => nvml,
///     Err(PowerError::Unavailable(reason)) => {
///         eprintln!("no GPU energy: {reason}"); // e.g. "no NVIDIA GPU found"
///         return;
///     }
///     Err(e) => panic!("{e}"),
/// };
/// let before = nvml.sample().unwrap();
/// std::thread::sleep(Duration::from_secs(1));
/// let after = nvml.sample().unwrap();
/// for gpu in nvml.snapshot().unwrap() {
///     let zone = |s: &ffrtmp_core::EnergySample| {
///         s.zones.iter().find(|z| z.zone == gpu.zone).map(|z| z.energy_uj).unwrap_or(0)
///     };
///     let joules = zone(&after).saturating_sub(zone(&before)) as f64 / 1e6;
///     println!("{}: {joules:.1} J, {:?} W, {:?} °C, encoder {:?} %", gpu.zone, gpu.power_watts,
///         gpu.temperature_c, gpu.encoder_utilization);
///     let per_pid = split_gpu_energy(joules, &gpu.process_shares());
///     let other = joules - per_pid.iter().map(|(_, j)| j).sum::<f64>();
///     println!("  per process {per_pid:?}, other {other:.1} J");
/// }
/// ```
pub struct NvmlSource {
    backend: Box<dyn Backend>,
    /// Zone name of every GPU, by NVML index.
    gpus: Vec<String>,
    /// Zones of the GPUs with an energy counter (all of them unless opened with a power fallback).
    zones: Vec<String>,
    /// Per GPU, why it has no energy counter (`None`: it has one).
    no_counter: Vec<Option<String>>,
    state: Mutex<State>,
    /// What [`NvmlSource::snapshot`] has seen so far.
    seen: Mutex<Seen>,
}

/// Per GPU, what the previous [`NvmlSource::snapshot`] saw.
#[derive(Clone, Debug, Default)]
struct Seen {
    /// The newest process-sample timestamp.
    sample_us: Vec<u64>,
    /// The counter's [`Counter::resets`].
    resets: Vec<u64>,
}

impl fmt::Debug for NvmlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NvmlSource")
            .field("zones", &self.zones)
            .finish_non_exhaustive()
    }
}

/// Monotonic-guard state, updated only after every GPU has been read.
#[derive(Debug)]
struct State {
    /// Per GPU; `None` for a GPU without an energy counter.
    counters: Vec<Option<Counter>>,
}

/// What [`NvmlSource::open_with`] does with a GPU whose total energy counter cannot be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MissingCounter {
    /// Fail with [`PowerError::Unavailable`] and the reason (what [`NvmlSource::open`] does).
    #[default]
    Fail,
    /// Keep the GPU without a zone; per-job attribution uses its power × time instead.
    PowerFallback,
}

/// One GPU's energy counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counter {
    /// Last raw reading, millijoules since the driver loaded.
    last_mj: u64,
    /// Microjoules counted since the source was opened.
    total_uj: u64,
    /// Times the counter went backwards.
    resets: u64,
}

impl Counter {
    fn new(raw_mj: u64) -> Self {
        Counter {
            last_mj: raw_mj,
            total_uj: 0,
            resets: 0,
        }
    }

    /// Moves to `raw_mj`. Returns `false` when the counter went backwards: nothing is counted,
    /// `raw_mj` becomes the new baseline and the reset is counted.
    fn advance(&mut self, raw_mj: u64) -> bool {
        let forward = raw_mj >= self.last_mj;
        if forward {
            self.total_uj = self.total_uj.saturating_add(mj_to_uj(raw_mj - self.last_mj));
        } else {
            self.resets += 1;
        }
        self.last_mj = raw_mj;
        forward
    }
}

/// Millijoules (NVML's unit) to microjoules (samples' unit), saturating.
fn mj_to_uj(mj: u64) -> u64 {
    mj.saturating_mul(1000)
}

impl NvmlSource {
    /// Loads NVML ([`NVML_LIBRARY`]) and opens the energy counter of every GPU, reading each once
    /// as the zero point of later samples.
    ///
    /// Fails with [`PowerError::Unavailable`] and a reason: `NVML library not found (no NVIDIA
    /// driver): …`, `NVML found but the NVIDIA driver is not loaded`, `no NVIDIA GPU found`,
    /// `GPU 0 does not support the total energy counter (needs Volta or newer)`, `no permission
    /// to read GPU 0`, …
    pub fn open() -> Result<Self, PowerError> {
        Self::open_with(NVML_LIBRARY, MissingCounter::Fail)
    }

    /// Like [`open`](Self::open) with NVML loaded from `library` (a file name searched the usual
    /// `dlopen` way, or a path), for drivers installed in unusual places.
    pub fn open_library(library: impl AsRef<OsStr>) -> Result<Self, PowerError> {
        Self::open_with(library, MissingCounter::Fail)
    }

    /// Loads NVML from `library` ([`NVML_LIBRARY`] normally) and opens every GPU, treating one
    /// without a readable energy counter as `missing` says. A lost GPU, or a GPU count that
    /// cannot be read, fails either way.
    pub fn open_with(library: impl AsRef<OsStr>, missing: MissingCounter) -> Result<Self, PowerError> {
        let backend = NvmlBackend::init(library.as_ref()).map_err(|f| PowerError::Unavailable(init_reason(&f)))?;
        Self::with_backend(Box::new(backend), missing)
    }

    /// Opens every GPU `backend` reports.
    fn with_backend(backend: Box<dyn Backend>, missing: MissingCounter) -> Result<Self, PowerError> {
        let count = backend
            .device_count()
            .map_err(|f| PowerError::Unavailable(format!("cannot count NVIDIA GPUs: {f}")))?;
        if count == 0 {
            return Err(PowerError::Unavailable("no NVIDIA GPU found".into()));
        }
        let mut counters = Vec::with_capacity(count as usize);
        let mut no_counter = Vec::with_capacity(count as usize);
        for gpu in 0..count {
            match backend.energy_mj(gpu) {
                Ok(raw) => {
                    counters.push(Some(Counter::new(raw)));
                    no_counter.push(None);
                }
                Err(f) if missing == MissingCounter::Fail || f == Fault::GpuLost => {
                    return Err(PowerError::Unavailable(counter_reason(gpu, &f)));
                }
                Err(f) => {
                    let reason = counter_reason(gpu, &f);
                    tracing::info!(%reason, "GPU energy from power × time");
                    counters.push(None);
                    no_counter.push(Some(reason));
                }
            }
        }
        let gpus: Vec<String> = (0..count).map(zone_name).collect();
        let zones: Vec<String> = gpus
            .iter()
            .zip(&counters)
            .filter(|(_, c)| c.is_some())
            .map(|(z, _)| z.clone())
            .collect();
        tracing::debug!(gpus = ?gpus, zones = ?zones, "opened NVML GPUs");
        Ok(NvmlSource {
            backend,
            gpus,
            zones,
            no_counter,
            state: Mutex::new(State { counters }),
            seen: Mutex::new(Seen {
                sample_us: vec![0; count as usize],
                resets: vec![0; count as usize],
            }),
        })
    }

    /// The zones read, in the order they appear in samples: `gpu-0`, `gpu-1`, … (GPUs without
    /// an energy counter have none).
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// Every GPU, as `gpu-<index>`, whether it has an energy counter or not.
    pub fn gpus(&self) -> &[String] {
        &self.gpus
    }

    /// How many times a GPU's counter read lower than the reading before (nothing was counted for
    /// those steps).
    pub fn counter_resets(&self) -> u64 {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.counters.iter().flatten().map(|c| c.resets).sum()
    }

    /// Energy counter, power, temperature and utilisation of every GPU now, with the
    /// per-process engine utilisation samples taken since the previous snapshot (the first
    /// snapshot gets every sample the driver still buffers).
    ///
    /// A reading a GPU does not support (or this user may not read) is `None`, with the reason in
    /// [`GpuReading::missing`]; it is never reported as zero. That includes the energy of a GPU
    /// whose counter was reset since the previous snapshot (`energy: counter reset`). Fails with
    /// [`PowerError::Read`] only when a GPU cannot be reached at all (fallen off the bus).
    pub fn snapshot(&self) -> Result<Vec<GpuReading>, PowerError> {
        let mut last_seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut readings = Vec::with_capacity(self.gpus.len());
        let mut seen = last_seen.clone();
        for (gpu, zone) in (0u32..).zip(&self.gpus) {
            let b = &*self.backend;
            let mut missing = Vec::new();
            let energy_uj = self.energy_uj(gpu, &mut seen.resets[gpu as usize], &mut missing)?;
            let power_mw = field(gpu, "power", b.power_mw(gpu), &mut missing)?;
            let temperature_c = field(gpu, "temperature", b.temperature_c(gpu), &mut missing)?;
            let utilization = field(gpu, "utilization", b.utilization(gpu), &mut missing)?;
            let encoder = field(gpu, "encoder utilization", b.encoder_utilization(gpu), &mut missing)?;
            let decoder = field(gpu, "decoder utilization", b.decoder_utilization(gpu), &mut missing)?;
            let since = seen.sample_us[gpu as usize];
            let processes = match b.processes(gpu, since) {
                // NVML answers "not found" when no process used the GPU since `since`.
                Err(Fault::NotFound) => Ok(Vec::new()),
                other => other,
            };
            let processes = field(gpu, "process utilization", processes, &mut missing)?;
            if let Some(newest) = processes.iter().flatten().map(|p| p.timestamp_us).max() {
                seen.sample_us[gpu as usize] = newest.max(since);
            }
            readings.push(GpuReading {
                index: gpu,
                zone: zone.clone(),
                energy_uj,
                power_watts: power_mw.map(|mw| f64::from(mw) / 1000.0),
                temperature_c,
                gpu_utilization: utilization.map(|(gpu, _)| gpu),
                memory_utilization: utilization.map(|(_, memory)| memory),
                encoder_utilization: encoder,
                decoder_utilization: decoder,
                processes,
                missing,
            });
        }
        *last_seen = seen;
        Ok(readings)
    }

    /// GPU `gpu`'s counter in microjoules since open, through the monotonic guard; `None` (reason
    /// in `missing`) without a counter, when this read failed, or when the counter was reset since
    /// the snapshot that saw `resets_seen` resets (updated).
    fn energy_uj(&self, gpu: u32, resets_seen: &mut u64, missing: &mut Vec<String>) -> Result<Option<u64>, PowerError> {
        if let Some(Some(reason)) = self.no_counter.get(gpu as usize) {
            missing.push(format!("energy: {reason}"));
            return Ok(None);
        }
        // Read under the lock, as `sample` does, so that neither mistakes the other's newer
        // reading for a reset.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(raw) = field(gpu, "energy", self.backend.energy_mj(gpu), missing)? else {
            return Ok(None);
        };
        let Some(Some(counter)) = state.counters.get_mut(gpu as usize) else {
            return Ok(None);
        };
        if !counter.advance(raw) {
            tracing::warn!(gpu, raw_mj = raw, "GPU energy counter went backwards; step not counted");
        }
        // A reset (seen here or by `sample`) leaves a step of unknown energy: no reading, so the
        // interval is estimated from power instead of counted as 0.
        if counter.resets != *resets_seen {
            *resets_seen = counter.resets;
            missing.push("energy: counter reset".into());
            return Ok(None);
        }
        Ok(Some(counter.total_uj))
    }
}

impl GpuMeter for NvmlSource {
    fn source_name(&self) -> &str {
        "nvml"
    }

    fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
        self.snapshot()
    }
}

impl PowerSource for NvmlSource {
    fn name(&self) -> &str {
        "nvml"
    }

    /// Reads every GPU's counter. A GPU that read fine at open and now fails gives
    /// [`PowerError::Read`]; the counters are then left as they were. Without any GPU with a
    /// counter (opened with a power fallback) it is [`PowerError::Unavailable`].
    fn sample(&self) -> Result<EnergySample, PowerError> {
        if self.zones.is_empty() {
            return Err(PowerError::Unavailable(
                "no NVIDIA GPU has a total energy counter (needs Volta or newer)".into(),
            ));
        }
        // Reads happen under the lock so concurrent samples cannot mistake each other for resets.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut raws = Vec::with_capacity(self.zones.len());
        for (gpu, counter) in (0u32..).zip(&state.counters) {
            if counter.is_some() {
                let raw = self
                    .backend
                    .energy_mj(gpu)
                    .map_err(|f| PowerError::Read(counter_reason(gpu, &f)))?;
                raws.push(raw);
            }
        }
        let mut zones = Vec::with_capacity(self.zones.len());
        let counters = state.counters.iter_mut().flatten();
        for ((name, counter), raw) in self.zones.iter().zip(counters).zip(raws) {
            if !counter.advance(raw) {
                tracing::warn!(zone = %name, raw_mj = raw, "GPU energy counter went backwards; step not counted");
            }
            zones.push(ZoneEnergy {
                zone: name.clone(),
                energy_uj: counter.total_uj,
            });
        }
        Ok(EnergySample { zones, wraps: 0 })
    }
}

/// Zone name of GPU `index`.
fn zone_name(index: u32) -> String {
    format!("gpu-{index}")
}
