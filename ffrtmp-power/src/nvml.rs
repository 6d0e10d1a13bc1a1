//! [`NvmlSource`]: NVIDIA GPU energy counters and utilisation through NVML (cargo feature `nvml`).
//!
//! NVML (`libnvidia-ml.so.1`, installed with the NVIDIA driver) is loaded at run time by
//! `nvml-wrapper`, so this module builds on hosts without a GPU and reports
//! [`PowerError::Unavailable`] there. The NVML calls sit behind the small [`Backend`] trait;
//! everything else (unit conversion, the monotonic guard, reasons, the energy split) is plain
//! code tested with a fake backend.

use std::ffi::OsStr;
use std::fmt;
use std::sync::{Mutex, PoisonError};

use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
use serde::{Deserialize, Serialize};

/// The library [`NvmlSource::open`] loads: NVML as the NVIDIA driver installs it.
pub const NVML_LIBRARY: &str = "libnvidia-ml.so.1";

/// Name of the attribution method of [`split_gpu_energy`], for reports: per interval, a process
/// gets `(encoder + decoder + SM utilisation) / max(100 %, sum over processes)` of the GPU's
/// energy, and the rest goes to "other" (idle and unattributed use).
pub const GPU_ATTRIBUTION_METHOD: &str = "nvml-process-utilization";

/// Energy counters of every NVIDIA GPU, one zone per GPU: `gpu-0`, `gpu-1`, … (NVML indices).
///
/// Each zone reads the GPU's total energy counter (`nvmlDeviceGetTotalEnergyConsumption`,
/// millijoules since the driver loaded, Volta or newer) and reports microjoules since the source
/// was opened. The counter is 64-bit and does not wrap, so [`EnergySample::wraps`] stays 0. Should
/// a reading ever be lower than the one before (a glitch, or a GPU reset), nothing is counted for
/// that step and the lower value becomes the new baseline: samples stay monotone and a glitch can
/// never add the whole lifetime counter. Such steps are counted by
/// [`counter_resets`](Self::counter_resets).
///
/// Power, temperature, utilisation and per-process engine use come from
/// [`snapshot`](Self::snapshot), outside the [`PowerSource`] trait; [`split_gpu_energy`] turns a
/// GPU's joules and its processes' utilisation into per-process joules.
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
    zones: Vec<String>,
    state: Mutex<State>,
    /// Per GPU, the newest process-sample timestamp seen by [`NvmlSource::snapshot`].
    last_seen_us: Mutex<Vec<u64>>,
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
    counters: Vec<Counter>,
    resets: u64,
}

/// One GPU's energy counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counter {
    /// Last raw reading, millijoules since the driver loaded.
    last_mj: u64,
    /// Microjoules counted since the source was opened.
    total_uj: u64,
}

impl Counter {
    fn new(raw_mj: u64) -> Self {
        Counter {
            last_mj: raw_mj,
            total_uj: 0,
        }
    }

    /// Moves to `raw_mj`. Returns `false` when the counter went backwards: nothing is counted and
    /// `raw_mj` becomes the new baseline.
    fn advance(&mut self, raw_mj: u64) -> bool {
        let forward = raw_mj >= self.last_mj;
        if forward {
            self.total_uj = self.total_uj.saturating_add(mj_to_uj(raw_mj - self.last_mj));
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
        Self::open_library(NVML_LIBRARY)
    }

    /// Like [`open`](Self::open) with NVML loaded from `library` (a file name searched the usual
    /// `dlopen` way, or a path), for drivers installed in unusual places.
    pub fn open_library(library: impl AsRef<OsStr>) -> Result<Self, PowerError> {
        let backend = NvmlBackend::init(library.as_ref()).map_err(|f| PowerError::Unavailable(init_reason(&f)))?;
        Self::with_backend(Box::new(backend))
    }

    /// Opens every GPU `backend` reports.
    fn with_backend(backend: Box<dyn Backend>) -> Result<Self, PowerError> {
        let count = backend
            .device_count()
            .map_err(|f| PowerError::Unavailable(format!("cannot count NVIDIA GPUs: {f}")))?;
        if count == 0 {
            return Err(PowerError::Unavailable("no NVIDIA GPU found".into()));
        }
        let mut counters = Vec::with_capacity(count as usize);
        for gpu in 0..count {
            let raw = backend
                .energy_mj(gpu)
                .map_err(|f| PowerError::Unavailable(counter_reason(gpu, &f)))?;
            counters.push(Counter::new(raw));
        }
        let zones: Vec<String> = (0..count).map(zone_name).collect();
        tracing::debug!(zones = ?zones, "opened NVML GPU energy counters");
        Ok(NvmlSource {
            backend,
            zones,
            state: Mutex::new(State { counters, resets: 0 }),
            last_seen_us: Mutex::new(vec![0; count as usize]),
        })
    }

    /// The zones read, in the order they appear in samples: `gpu-0`, `gpu-1`, …
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// How many times a GPU's counter read lower than the reading before (nothing was counted for
    /// those steps).
    pub fn counter_resets(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).resets
    }

    /// Power, temperature and utilisation of every GPU now, with the per-process engine
    /// utilisation samples taken since the previous snapshot (the first snapshot gets every sample
    /// the driver still buffers).
    ///
    /// A reading a GPU does not support (or this user may not read) is `None`, with the reason in
    /// [`GpuReading::missing`]; it is never reported as zero. Fails with [`PowerError::Read`]
    /// only when a GPU cannot be reached at all (fallen off the bus).
    pub fn snapshot(&self) -> Result<Vec<GpuReading>, PowerError> {
        let mut last_seen = self.last_seen_us.lock().unwrap_or_else(PoisonError::into_inner);
        let mut readings = Vec::with_capacity(self.zones.len());
        let mut seen = last_seen.clone();
        for (gpu, zone) in (0u32..).zip(&self.zones) {
            let b = &*self.backend;
            let mut missing = Vec::new();
            let power_mw = field(gpu, "power", b.power_mw(gpu), &mut missing)?;
            let temperature_c = field(gpu, "temperature", b.temperature_c(gpu), &mut missing)?;
            let utilization = field(gpu, "utilization", b.utilization(gpu), &mut missing)?;
            let encoder = field(gpu, "encoder utilization", b.encoder_utilization(gpu), &mut missing)?;
            let decoder = field(gpu, "decoder utilization", b.decoder_utilization(gpu), &mut missing)?;
            let since = seen[gpu as usize];
            let processes = match b.processes(gpu, since) {
                // NVML answers "not found" when no process used the GPU since `since`.
                Err(Fault::NotFound) => Ok(Vec::new()),
                other => other,
            };
            let processes = field(gpu, "process utilization", processes, &mut missing)?;
            if let Some(newest) = processes.iter().flatten().map(|p| p.timestamp_us).max() {
                seen[gpu as usize] = newest.max(since);
            }
            readings.push(GpuReading {
                index: gpu,
                zone: zone.clone(),
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
}

impl PowerSource for NvmlSource {
    fn name(&self) -> &str {
        "nvml"
    }

    /// Reads every GPU's counter. A GPU that read fine at open and now fails gives
    /// [`PowerError::Read`]; the counters are then left as they were.
    fn sample(&self) -> Result<EnergySample, PowerError> {
        // Reads happen under the lock so concurrent samples cannot mistake each other for resets.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut raws = Vec::with_capacity(self.zones.len());
        for gpu in 0..self.zones.len() as u32 {
            let raw = self
                .backend
                .energy_mj(gpu)
                .map_err(|f| PowerError::Read(counter_reason(gpu, &f)))?;
            raws.push(raw);
        }
        let mut resets = 0;
        let mut zones = Vec::with_capacity(self.zones.len());
        for ((name, counter), raw) in self.zones.iter().zip(state.counters.iter_mut()).zip(raws) {
            if !counter.advance(raw) {
                resets += 1;
                tracing::warn!(zone = %name, raw_mj = raw, "GPU energy counter went backwards; step not counted");
            }
            zones.push(ZoneEnergy {
                zone: name.clone(),
                energy_uj: counter.total_uj,
            });
        }
        state.resets += resets;
        Ok(EnergySample { zones, wraps: 0 })
    }
}

/// One GPU's readings from [`NvmlSource::snapshot`]. `None` means the GPU could not give that
/// reading (see [`missing`](Self::missing)), never zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuReading {
    /// NVML index of the GPU.
    pub index: u32,
    /// The GPU's zone in [`EnergySample`]s: `gpu-<index>`.
    pub zone: String,
    /// Power draw in watts (NVML's average over its last update period).
    pub power_watts: Option<f64>,
    /// GPU die temperature in °C.
    pub temperature_c: Option<u32>,
    /// Percent of the last sample period in which a kernel ran.
    pub gpu_utilization: Option<u32>,
    /// Percent of the last sample period in which device memory was read or written.
    pub memory_utilization: Option<u32>,
    /// Video encoder (NVENC) utilisation, percent.
    pub encoder_utilization: Option<u32>,
    /// Video decoder (NVDEC) utilisation, percent.
    pub decoder_utilization: Option<u32>,
    /// Per-process utilisation samples since the previous snapshot (empty when no process used
    /// the GPU meanwhile).
    pub processes: Option<Vec<ProcessSample>>,
    /// Why a reading is `None`, one line each, e.g. `power: not supported by this GPU`.
    pub missing: Vec<String>,
}

impl GpuReading {
    /// This GPU's processes as [`ProcessShare`]s for [`split_gpu_energy`] (none when process
    /// utilisation is unavailable).
    pub fn process_shares(&self) -> Vec<ProcessShare> {
        ProcessShare::from_samples(self.processes.as_deref().unwrap_or_default())
    }
}

/// One process's utilisation of a GPU's engines, as NVML samples it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Process id (in the host's PID namespace).
    pub pid: u32,
    /// CPU timestamp of the sample, microseconds.
    pub timestamp_us: u64,
    /// SM (3D / compute) utilisation, percent.
    pub sm: u32,
    /// Frame buffer memory utilisation, percent.
    pub memory: u32,
    /// Video encoder utilisation, percent.
    pub encoder: u32,
    /// Video decoder utilisation, percent.
    pub decoder: u32,
}

/// One process's use of a GPU over an interval, in percent of each engine, for
/// [`split_gpu_energy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessShare {
    /// Process id.
    pub pid: u32,
    /// Video encoder utilisation, percent.
    pub encoder: f64,
    /// Video decoder utilisation, percent.
    pub decoder: f64,
    /// SM (3D / compute) utilisation, percent.
    pub sm: f64,
}

impl ProcessShare {
    /// One share per process (in order of first appearance), each the mean of that process's
    /// samples.
    ///
    /// ```
    /// use ffrtmp_power::{ProcessSample, ProcessShare};
    /// let s = |pid, encoder| ProcessSample { pid, encoder, ..Default::default() };
    /// let shares = ProcessShare::from_samples(&[s(7, 40), s(9, 10), s(7, 60)]);
    /// assert_eq!((shares[0].pid, shares[0].encoder), (7, 50.0));
    /// assert_eq!((shares[1].pid, shares[1].encoder), (9, 10.0));
    /// ```
    pub fn from_samples(samples: &[ProcessSample]) -> Vec<ProcessShare> {
        let mut sums: Vec<(ProcessShare, u32)> = Vec::new();
        for s in samples {
            let i = match sums.iter().position(|(share, _)| share.pid == s.pid) {
                Some(i) => i,
                None => {
                    sums.push((
                        ProcessShare {
                            pid: s.pid,
                            ..Default::default()
                        },
                        0,
                    ));
                    sums.len() - 1
                }
            };
            let (share, n) = &mut sums[i];
            share.encoder += f64::from(s.encoder);
            share.decoder += f64::from(s.decoder);
            share.sm += f64::from(s.sm);
            *n += 1;
        }
        sums.into_iter()
            .map(|(share, n)| {
                let n = f64::from(n);
                ProcessShare {
                    pid: share.pid,
                    encoder: share.encoder / n,
                    decoder: share.decoder / n,
                    sm: share.sm / n,
                }
            })
            .collect()
    }

    /// Encoder + decoder + SM utilisation, each clamped to 0–100 % (not-a-number counts as 0).
    pub fn weight(&self) -> f64 {
        let pct = |v: f64| if v.is_nan() { 0.0 } else { v.clamp(0.0, 100.0) };
        pct(self.encoder) + pct(self.decoder) + pct(self.sm)
    }
}

/// Splits a GPU's `joules` over an interval between processes by their engine use
/// ([`GPU_ATTRIBUTION_METHOD`]): a process gets `joules × weight / max(100, Σ weights)`, with
/// [`ProcessShare::weight`] its encoder + decoder + SM utilisation in percent.
///
/// The engines' utilisations are added as if they were one engine, and the divisor never drops
/// below 100 %: a process that keeps the encoder busy 30 % of the time gets 30 % of the energy,
/// and when the processes together ask for more than the whole GPU their shares are scaled to
/// add up to it. The rest, `joules − Σ`, goes to "other" (idle and unattributed use). Shares with
/// the same pid are merged; the result has one entry per pid in order of first appearance.
/// Negative or non-finite `joules` count as 0.
///
/// ```
/// use ffrtmp_power::{split_gpu_energy, ProcessShare};
/// let p = |pid, encoder, decoder| ProcessShare { pid, encoder, decoder, sm: 0.0 };
/// let split = split_gpu_energy(100.0, &[p(1, 30.0, 10.0), p(2, 20.0, 0.0)]);
/// assert_eq!(split, [(1, 40.0), (2, 20.0)]); // 40 J left to "other"
/// let busy = split_gpu_energy(100.0, &[p(1, 90.0, 60.0), p(2, 50.0, 0.0)]);
/// assert_eq!(busy, [(1, 75.0), (2, 25.0)]); // 200 % asked for: scaled to the whole
/// ```
pub fn split_gpu_energy(joules: f64, shares: &[ProcessShare]) -> Vec<(u32, f64)> {
    let joules = if joules.is_finite() && joules > 0.0 {
        joules
    } else {
        0.0
    };
    let mut weights: Vec<(u32, f64)> = Vec::with_capacity(shares.len());
    for share in shares {
        match weights.iter_mut().find(|(pid, _)| *pid == share.pid) {
            Some((_, w)) => *w += share.weight(),
            None => weights.push((share.pid, share.weight())),
        }
    }
    let divisor = weights.iter().map(|(_, w)| w).sum::<f64>().max(100.0);
    weights
        .into_iter()
        .map(|(pid, w)| (pid, joules * w / divisor))
        .collect()
}

/// Zone name of GPU `index`.
fn zone_name(index: u32) -> String {
    format!("gpu-{index}")
}

/// Why an NVML call failed, reduced to what the reasons need.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fault {
    /// The NVML library could not be loaded.
    Library(String),
    /// NVML loaded but the kernel driver is not running.
    DriverNotLoaded,
    /// The user may not do this.
    NoPermission,
    /// The GPU (or driver) does not offer this.
    NotSupported,
    /// Nothing to return (no process samples since the timestamp).
    NotFound,
    /// The GPU fell off the bus.
    GpuLost,
    /// Anything else, described.
    Other(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Library(detail) => write!(f, "NVML library not loaded: {detail}"),
            Fault::DriverNotLoaded => f.write_str("the NVIDIA driver is not loaded"),
            Fault::NoPermission => f.write_str("no permission"),
            Fault::NotSupported => f.write_str("not supported by this GPU"),
            Fault::NotFound => f.write_str("no data"),
            Fault::GpuLost => f.write_str("the GPU has fallen off the bus"),
            Fault::Other(detail) => f.write_str(detail),
        }
    }
}

/// The reason [`NvmlSource::open`] gives when NVML cannot be initialised.
fn init_reason(fault: &Fault) -> String {
    match fault {
        Fault::Library(detail) => format!("NVML library not found (no NVIDIA driver): {detail}"),
        Fault::DriverNotLoaded => "NVML found but the NVIDIA driver is not loaded".into(),
        Fault::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        other => format!("NVML failed to initialise: {other}"),
    }
}

/// The reason a GPU's energy counter cannot be read.
fn counter_reason(gpu: u32, fault: &Fault) -> String {
    match fault {
        Fault::NotSupported => format!("GPU {gpu} does not support the total energy counter (needs Volta or newer)"),
        Fault::NoPermission => format!("no permission to read GPU {gpu}"),
        Fault::GpuLost => format!("GPU {gpu} has fallen off the bus"),
        other => format!("cannot read the energy counter of GPU {gpu}: {other}"),
    }
}

/// A snapshot field: the value, or `None` with the reason pushed to `missing`; a lost GPU fails
/// the whole snapshot.
fn field<T>(
    gpu: u32,
    what: &str,
    result: Result<T, Fault>,
    missing: &mut Vec<String>,
) -> Result<Option<T>, PowerError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Fault::GpuLost) => Err(PowerError::Read(format!("GPU {gpu} has fallen off the bus"))),
        Err(fault) => {
            missing.push(format!("{what}: {fault}"));
            Ok(None)
        }
    }
}

/// The NVML calls [`NvmlSource`] makes, per GPU index; a fake stands in for NVML in tests.
trait Backend: Send + Sync {
    /// Number of GPUs.
    fn device_count(&self) -> Result<u32, Fault>;
    /// Total energy counter, millijoules since the driver loaded.
    fn energy_mj(&self, gpu: u32) -> Result<u64, Fault>;
    /// Power draw, milliwatts.
    fn power_mw(&self, gpu: u32) -> Result<u32, Fault>;
    /// Die temperature, °C.
    fn temperature_c(&self, gpu: u32) -> Result<u32, Fault>;
    /// `(gpu, memory)` utilisation, percent.
    fn utilization(&self, gpu: u32) -> Result<(u32, u32), Fault>;
    /// Encoder utilisation, percent.
    fn encoder_utilization(&self, gpu: u32) -> Result<u32, Fault>;
    /// Decoder utilisation, percent.
    fn decoder_utilization(&self, gpu: u32) -> Result<u32, Fault>;
    /// Per-process samples newer than `since_us` (0: everything buffered).
    fn processes(&self, gpu: u32, since_us: u64) -> Result<Vec<ProcessSample>, Fault>;
}

/// The real [`Backend`]: NVML through `nvml-wrapper`.
struct NvmlBackend {
    nvml: nvml_wrapper::Nvml,
}

impl NvmlBackend {
    /// Loads and initialises NVML from `library`. Initialises with `NO_GPUS` so that a driver
    /// without GPUs answers "no GPU" rather than failing, falling back to a plain init on drivers
    /// too old for `nvmlInitWithFlags`.
    fn init(library: &OsStr) -> Result<Self, Fault> {
        use nvml_wrapper::bitmasks::InitFlags;
        use nvml_wrapper::error::NvmlError;
        use nvml_wrapper::Nvml;
        let nvml = match Nvml::builder().lib_path(library).flags(InitFlags::NO_GPUS).init() {
            Err(NvmlError::FailedToLoadSymbol(_)) => Nvml::builder().lib_path(library).init(),
            other => other,
        }
        .map_err(fault)?;
        Ok(NvmlBackend { nvml })
    }

    fn device(&self, gpu: u32) -> Result<nvml_wrapper::Device<'_>, Fault> {
        self.nvml.device_by_index(gpu).map_err(fault)
    }
}

/// Maps `nvml-wrapper`'s error to a [`Fault`].
fn fault(e: nvml_wrapper::error::NvmlError) -> Fault {
    use nvml_wrapper::error::NvmlError;
    match e {
        NvmlError::LibloadingError(e) => Fault::Library(e.to_string()),
        NvmlError::LibraryNotFound => Fault::Library("NVML could not load a library it needs".into()),
        NvmlError::FailedToLoadSymbol(s) => Fault::Other(format!("NVML lacks a function, driver too old? ({s})")),
        NvmlError::DriverNotLoaded => Fault::DriverNotLoaded,
        NvmlError::NoPermission => Fault::NoPermission,
        NvmlError::NotSupported => Fault::NotSupported,
        NvmlError::NotFound | NvmlError::NoData => Fault::NotFound,
        NvmlError::GpuLost => Fault::GpuLost,
        other => Fault::Other(other.to_string()),
    }
}

impl Backend for NvmlBackend {
    fn device_count(&self) -> Result<u32, Fault> {
        self.nvml.device_count().map_err(fault)
    }

    fn energy_mj(&self, gpu: u32) -> Result<u64, Fault> {
        self.device(gpu)?.total_energy_consumption().map_err(fault)
    }

    fn power_mw(&self, gpu: u32) -> Result<u32, Fault> {
        self.device(gpu)?.power_usage().map_err(fault)
    }

    fn temperature_c(&self, gpu: u32) -> Result<u32, Fault> {
        use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
        self.device(gpu)?.temperature(TemperatureSensor::Gpu).map_err(fault)
    }

    fn utilization(&self, gpu: u32) -> Result<(u32, u32), Fault> {
        let u = self.device(gpu)?.utilization_rates().map_err(fault)?;
        Ok((u.gpu, u.memory))
    }

    fn encoder_utilization(&self, gpu: u32) -> Result<u32, Fault> {
        Ok(self.device(gpu)?.encoder_utilization().map_err(fault)?.utilization)
    }

    fn decoder_utilization(&self, gpu: u32) -> Result<u32, Fault> {
        Ok(self.device(gpu)?.decoder_utilization().map_err(fault)?.utilization)
    }

    fn processes(&self, gpu: u32, since_us: u64) -> Result<Vec<ProcessSample>, Fault> {
        let samples = self.device(gpu)?.process_utilization_stats(since_us).map_err(fault)?;
        Ok(samples
            .into_iter()
            .map(|s| ProcessSample {
                pid: s.pid,
                timestamp_us: s.timestamp,
                sm: s.sm_util,
                memory: s.mem_util,
                encoder: s.enc_util,
                decoder: s.dec_util,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What a fake GPU answers.
    #[derive(Clone, Debug)]
    struct FakeGpu {
        energy_mj: Result<u64, Fault>,
        power_mw: Result<u32, Fault>,
        temperature_c: Result<u32, Fault>,
        utilization: Result<(u32, u32), Fault>,
        encoder: Result<u32, Fault>,
        decoder: Result<u32, Fault>,
        processes: Result<Vec<ProcessSample>, Fault>,
        /// `since_us` of each process query.
        queried_since: Vec<u64>,
    }

    impl Default for FakeGpu {
        fn default() -> Self {
            FakeGpu {
                energy_mj: Ok(1_000),
                power_mw: Ok(70_500),
                temperature_c: Ok(41),
                utilization: Ok((12, 3)),
                encoder: Ok(55),
                decoder: Ok(20),
                processes: Err(Fault::NotFound),
                queried_since: Vec::new(),
            }
        }
    }

    #[derive(Clone, Default)]
    struct Fake {
        count: Option<Fault>,
        gpus: Arc<Mutex<Vec<FakeGpu>>>,
    }

    impl Fake {
        fn with(gpus: Vec<FakeGpu>) -> Self {
            Fake {
                count: None,
                gpus: Arc::new(Mutex::new(gpus)),
            }
        }

        fn source(&self) -> Result<NvmlSource, PowerError> {
            NvmlSource::with_backend(Box::new(self.clone()))
        }

        fn set(&self, gpu: usize, f: impl FnOnce(&mut FakeGpu)) {
            f(&mut self.gpus.lock().unwrap()[gpu]);
        }

        fn get<T>(&self, gpu: u32, f: impl FnOnce(&FakeGpu) -> T) -> T {
            f(&self.gpus.lock().unwrap()[gpu as usize])
        }
    }

    impl Backend for Fake {
        fn device_count(&self) -> Result<u32, Fault> {
            match &self.count {
                Some(fault) => Err(fault.clone()),
                None => Ok(self.gpus.lock().unwrap().len() as u32),
            }
        }
        fn energy_mj(&self, gpu: u32) -> Result<u64, Fault> {
            self.get(gpu, |g| g.energy_mj.clone())
        }
        fn power_mw(&self, gpu: u32) -> Result<u32, Fault> {
            self.get(gpu, |g| g.power_mw.clone())
        }
        fn temperature_c(&self, gpu: u32) -> Result<u32, Fault> {
            self.get(gpu, |g| g.temperature_c.clone())
        }
        fn utilization(&self, gpu: u32) -> Result<(u32, u32), Fault> {
            self.get(gpu, |g| g.utilization.clone())
        }
        fn encoder_utilization(&self, gpu: u32) -> Result<u32, Fault> {
            self.get(gpu, |g| g.encoder.clone())
        }
        fn decoder_utilization(&self, gpu: u32) -> Result<u32, Fault> {
            self.get(gpu, |g| g.decoder.clone())
        }
        fn processes(&self, gpu: u32, since_us: u64) -> Result<Vec<ProcessSample>, Fault> {
            let mut gpus = self.gpus.lock().unwrap();
            let g = &mut gpus[gpu as usize];
            g.queried_since.push(since_us);
            g.processes
                .clone()
                .map(|ps| ps.into_iter().filter(|p| p.timestamp_us > since_us).collect())
        }
    }

    fn unavailable(r: Result<NvmlSource, PowerError>) -> String {
        match r {
            Err(PowerError::Unavailable(reason)) => reason,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    fn uj(sample: &EnergySample) -> Vec<(&str, u64)> {
        sample.zones.iter().map(|z| (z.zone.as_str(), z.energy_uj)).collect()
    }

    #[test]
    fn millijoules_convert_to_microjoules_saturating() {
        assert_eq!(mj_to_uj(0), 0);
        assert_eq!(mj_to_uj(1), 1_000);
        assert_eq!(mj_to_uj(2_500), 2_500_000);
        assert_eq!(mj_to_uj(u64::MAX / 10), u64::MAX);
    }

    #[test]
    fn counter_counts_forward_steps_and_ignores_backward_ones() {
        let mut c = Counter::new(10_000);
        assert!(c.advance(10_000));
        assert_eq!(c.total_uj, 0);
        assert!(c.advance(12_500));
        assert_eq!(c.total_uj, 2_500_000);
        // Backwards: nothing counted, new baseline.
        assert!(!c.advance(12_000));
        assert_eq!((c.total_uj, c.last_mj), (2_500_000, 12_000));
        assert!(c.advance(12_100));
        assert_eq!(c.total_uj, 2_600_000);
        // Saturates rather than wrapping.
        c.total_uj = u64::MAX - 5;
        assert!(c.advance(13_000));
        assert_eq!(c.total_uj, u64::MAX);
    }

    #[test]
    fn samples_are_microjoules_since_open_per_gpu() {
        let fake = Fake::with(vec![
            FakeGpu {
                energy_mj: Ok(5_000_000),
                ..Default::default()
            },
            FakeGpu {
                energy_mj: Ok(7),
                ..Default::default()
            },
        ]);
        let nvml = fake.source().unwrap();
        assert_eq!(nvml.zones(), ["gpu-0", "gpu-1"]);
        assert_eq!(nvml.name(), "nvml");
        let first = nvml.sample().unwrap();
        assert_eq!(uj(&first), [("gpu-0", 0), ("gpu-1", 0)]);
        fake.set(0, |g| g.energy_mj = Ok(5_000_250)); // +250 mJ
        fake.set(1, |g| g.energy_mj = Ok(3_007)); // +3 J
        let second = nvml.sample().unwrap();
        assert_eq!(uj(&second), [("gpu-0", 250_000), ("gpu-1", 3_000_000)]);
        assert_eq!(second.wraps, 0);
        assert_eq!(second.joules_since(&first), 3.25);
    }

    #[test]
    fn backward_counter_keeps_samples_monotone_and_is_counted() {
        let fake = Fake::with(vec![FakeGpu {
            energy_mj: Ok(1_000),
            ..Default::default()
        }]);
        let nvml = fake.source().unwrap();
        fake.set(0, |g| g.energy_mj = Ok(3_000));
        assert_eq!(nvml.sample().unwrap().total_uj(), 2_000_000);
        fake.set(0, |g| g.energy_mj = Ok(50)); // e.g. a GPU reset
        assert_eq!(nvml.sample().unwrap().total_uj(), 2_000_000);
        assert_eq!(nvml.counter_resets(), 1);
        fake.set(0, |g| g.energy_mj = Ok(1_050));
        assert_eq!(nvml.sample().unwrap().total_uj(), 3_000_000);
        assert_eq!(nvml.counter_resets(), 1);
    }

    #[test]
    fn failed_read_after_open_is_a_read_error_and_changes_nothing() {
        let fake = Fake::with(vec![FakeGpu::default(), FakeGpu::default()]);
        let nvml = fake.source().unwrap();
        fake.set(0, |g| g.energy_mj = Ok(2_000));
        fake.set(1, |g| g.energy_mj = Err(Fault::GpuLost));
        assert_eq!(
            nvml.sample(),
            Err(PowerError::Read("GPU 1 has fallen off the bus".into()))
        );
        fake.set(1, |g| g.energy_mj = Ok(1_000));
        // GPU 0's step is counted once, by the good sample.
        assert_eq!(uj(&nvml.sample().unwrap()), [("gpu-0", 1_000_000), ("gpu-1", 0)]);
    }

    #[test]
    fn open_reasons_say_what_is_missing() {
        assert_eq!(unavailable(Fake::with(vec![]).source()), "no NVIDIA GPU found");
        let fake = Fake::with(vec![
            FakeGpu::default(),
            FakeGpu {
                energy_mj: Err(Fault::NotSupported),
                ..Default::default()
            },
        ]);
        assert_eq!(
            unavailable(fake.source()),
            "GPU 1 does not support the total energy counter (needs Volta or newer)"
        );
        fake.set(1, |g| g.energy_mj = Err(Fault::NoPermission));
        assert_eq!(unavailable(fake.source()), "no permission to read GPU 1");
        fake.set(1, |g| {
            g.energy_mj = Err(Fault::Other("an internal driver error occurred".into()))
        });
        assert_eq!(
            unavailable(fake.source()),
            "cannot read the energy counter of GPU 1: an internal driver error occurred"
        );
        let broken = Fake {
            count: Some(Fault::Other("an internal driver error occurred".into())),
            ..Fake::with(vec![FakeGpu::default()])
        };
        assert_eq!(
            unavailable(broken.source()),
            "cannot count NVIDIA GPUs: an internal driver error occurred"
        );
    }

    #[test]
    fn init_reasons_say_what_is_missing() {
        let lib = Fault::Library("libnvidia-ml.so.1: cannot open shared object file".into());
        assert_eq!(
            init_reason(&lib),
            "NVML library not found (no NVIDIA driver): libnvidia-ml.so.1: cannot open shared object file"
        );
        assert_eq!(
            init_reason(&Fault::DriverNotLoaded),
            "NVML found but the NVIDIA driver is not loaded"
        );
        assert_eq!(
            init_reason(&Fault::NoPermission),
            "no permission to talk to the NVIDIA driver"
        );
        assert_eq!(
            init_reason(&Fault::Other("an internal driver error occurred".into())),
            "NVML failed to initialise: an internal driver error occurred"
        );
    }

    #[test]
    fn nvml_errors_map_to_faults() {
        use nvml_wrapper::error::NvmlError;
        assert_eq!(fault(NvmlError::NotSupported), Fault::NotSupported);
        assert_eq!(fault(NvmlError::NoPermission), Fault::NoPermission);
        assert_eq!(fault(NvmlError::DriverNotLoaded), Fault::DriverNotLoaded);
        assert_eq!(fault(NvmlError::NotFound), Fault::NotFound);
        assert_eq!(fault(NvmlError::GpuLost), Fault::GpuLost);
        assert!(matches!(fault(NvmlError::LibraryNotFound), Fault::Library(_)));
        assert_eq!(
            fault(NvmlError::Unknown),
            Fault::Other("an internal driver error occurred".into())
        );
    }

    #[test]
    fn snapshot_reports_readings_and_keeps_missing_ones_none_with_a_reason() {
        let fake = Fake::with(vec![
            FakeGpu::default(),
            FakeGpu {
                power_mw: Err(Fault::NotSupported),
                encoder: Err(Fault::NoPermission),
                processes: Err(Fault::NotSupported),
                ..Default::default()
            },
        ]);
        let nvml = fake.source().unwrap();
        let snap = nvml.snapshot().unwrap();
        assert_eq!(
            snap[0],
            GpuReading {
                index: 0,
                zone: "gpu-0".into(),
                power_watts: Some(70.5),
                temperature_c: Some(41),
                gpu_utilization: Some(12),
                memory_utilization: Some(3),
                encoder_utilization: Some(55),
                decoder_utilization: Some(20),
                processes: Some(vec![]), // NVML's "not found": nobody used the GPU
                missing: vec![],
            }
        );
        assert_eq!(snap[1].zone, "gpu-1");
        assert_eq!(snap[1].power_watts, None);
        assert_eq!(snap[1].encoder_utilization, None);
        assert_eq!(snap[1].processes, None);
        assert_eq!(
            snap[1].missing,
            [
                "power: not supported by this GPU",
                "encoder utilization: no permission",
                "process utilization: not supported by this GPU"
            ]
        );
        assert!(snap[1].process_shares().is_empty());
    }

    #[test]
    fn snapshot_fails_only_for_a_lost_gpu() {
        let fake = Fake::with(vec![FakeGpu::default()]);
        let nvml = fake.source().unwrap();
        fake.set(0, |g| g.temperature_c = Err(Fault::GpuLost));
        assert_eq!(
            nvml.snapshot(),
            Err(PowerError::Read("GPU 0 has fallen off the bus".into()))
        );
    }

    #[test]
    fn snapshot_asks_for_process_samples_since_the_previous_one() {
        let p = |pid, timestamp_us, encoder| ProcessSample {
            pid,
            timestamp_us,
            encoder,
            ..Default::default()
        };
        let fake = Fake::with(vec![FakeGpu {
            processes: Ok(vec![p(10, 100, 40), p(11, 150, 20)]),
            ..Default::default()
        }]);
        let nvml = fake.source().unwrap();
        let first = nvml.snapshot().unwrap();
        assert_eq!(first[0].processes.as_ref().unwrap().len(), 2);
        fake.set(0, |g| {
            g.processes = Ok(vec![p(10, 100, 40), p(11, 150, 20), p(10, 200, 60)])
        });
        let second = nvml.snapshot().unwrap();
        assert_eq!(second[0].processes, Some(vec![p(10, 200, 60)]));
        // Nothing new: "not found" keeps the timestamp.
        fake.set(0, |g| g.processes = Err(Fault::NotFound));
        assert_eq!(nvml.snapshot().unwrap()[0].processes, Some(vec![]));
        assert_eq!(fake.get(0, |g| g.queried_since.clone()), [0, 150, 200]);
        let shares = second[0].process_shares();
        assert_eq!(
            shares,
            [ProcessShare {
                pid: 10,
                encoder: 60.0,
                decoder: 0.0,
                sm: 0.0
            }]
        );
    }

    #[test]
    fn split_gives_each_process_its_engine_share_and_the_rest_to_other() {
        let p = |pid, encoder, decoder, sm| ProcessShare {
            pid,
            encoder,
            decoder,
            sm,
        };
        assert_eq!(
            split_gpu_energy(200.0, &[p(1, 25.0, 10.0, 5.0), p(2, 10.0, 0.0, 0.0)]),
            [(1, 80.0), (2, 20.0)]
        );
        // Nobody asked for anything: everything is "other".
        assert_eq!(split_gpu_energy(50.0, &[p(3, 0.0, 0.0, 0.0)]), [(3, 0.0)]);
        assert!(split_gpu_energy(50.0, &[]).is_empty());
    }

    #[test]
    fn split_scales_oversubscribed_shares_to_the_whole() {
        let p = |pid, encoder, decoder, sm| ProcessShare {
            pid,
            encoder,
            decoder,
            sm,
        };
        let split = split_gpu_energy(90.0, &[p(1, 100.0, 100.0, 0.0), p(2, 100.0, 0.0, 0.0)]);
        assert_eq!(split, [(1, 60.0), (2, 30.0)]);
        let total: f64 = split.iter().map(|(_, j)| j).sum();
        assert_eq!(total, 90.0);
    }

    #[test]
    fn split_merges_pids_and_ignores_nonsense() {
        let p = |pid, encoder, decoder, sm| ProcessShare {
            pid,
            encoder,
            decoder,
            sm,
        };
        // Same pid twice: merged, first position kept.
        assert_eq!(
            split_gpu_energy(
                100.0,
                &[p(5, 10.0, 0.0, 0.0), p(6, 5.0, 0.0, 0.0), p(5, 0.0, 10.0, 0.0)]
            ),
            [(5, 20.0), (6, 5.0)]
        );
        // Out-of-range and NaN utilisations are clamped; bad joules count as zero.
        assert_eq!(p(1, -5.0, f64::NAN, 250.0).weight(), 100.0);
        assert_eq!(split_gpu_energy(f64::NAN, &[p(1, 50.0, 0.0, 0.0)]), [(1, 0.0)]);
        assert_eq!(split_gpu_energy(-3.0, &[p(1, 50.0, 0.0, 0.0)]), [(1, 0.0)]);
    }

    #[test]
    fn process_shares_average_each_pid_in_order() {
        let s = |pid, sm, encoder, decoder| ProcessSample {
            pid,
            sm,
            encoder,
            decoder,
            ..Default::default()
        };
        let shares = ProcessShare::from_samples(&[s(4, 10, 20, 30), s(2, 1, 1, 1), s(4, 30, 40, 50)]);
        assert_eq!(
            shares,
            [
                ProcessShare {
                    pid: 4,
                    encoder: 30.0,
                    decoder: 40.0,
                    sm: 20.0
                },
                ProcessShare {
                    pid: 2,
                    encoder: 1.0,
                    decoder: 1.0,
                    sm: 1.0
                },
            ]
        );
        assert!(ProcessShare::from_samples(&[]).is_empty());
    }

    #[test]
    fn missing_library_is_unavailable_with_the_reason() {
        let reason = unavailable(NvmlSource::open_library("/nonexistent/ffrtmp/libnvidia-ml.so.1"));
        assert!(
            reason.starts_with("NVML library not found (no NVIDIA driver): ") && reason.contains("/nonexistent/ffrtmp"),
            "{reason}"
        );
    }

    /// The real path: on a host without the NVIDIA driver `open` must say the library is missing;
    /// on a GPU host it either opens or says precisely why not, and never panics.
    #[test]
    fn open_on_this_host_opens_or_gives_a_precise_reason() {
        let driver_installed = [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/nvidia/lib64",
            "/usr/lib/wsl/lib",
        ]
        .iter()
        .any(|dir| std::path::Path::new(dir).join(NVML_LIBRARY).exists());
        match NvmlSource::open() {
            Ok(nvml) => {
                eprintln!("NvmlSource::open: {nvml:?}, {:?}", nvml.snapshot());
                assert!(!nvml.zones().is_empty());
                let a = nvml.sample().unwrap();
                let b = nvml.sample().unwrap();
                assert!(b.total_uj() >= a.total_uj());
                let snap = nvml.snapshot().unwrap();
                assert_eq!(snap.len(), nvml.zones().len());
            }
            Err(PowerError::Unavailable(reason)) => {
                eprintln!("NvmlSource::open: {reason}");
                if !driver_installed {
                    assert!(
                        reason.starts_with("NVML library not found (no NVIDIA driver): "),
                        "{reason}"
                    );
                }
                assert!(!reason.is_empty());
            }
            Err(e) => panic!("open must fail as Unavailable, got {e:?}"),
        }
    }
}
