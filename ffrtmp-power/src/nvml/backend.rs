//! The NVML calls behind the small [`Backend`] trait, the real backend over `nvml-wrapper`, and
//! the reasons given when a call fails.

use std::ffi::OsStr;
use std::fmt;

use ffrtmp_core::PowerError;

#[cfg(doc)]
use super::NvmlSource;
use crate::gpu::ProcessSample;

/// Why an NVML call failed, reduced to what the reasons need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Fault {
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
pub(super) fn init_reason(fault: &Fault) -> String {
    match fault {
        Fault::Library(detail) => format!("NVML library not found (no NVIDIA driver): {detail}"),
        Fault::DriverNotLoaded => "NVML found but the NVIDIA driver is not loaded".into(),
        Fault::NoPermission => "no permission to talk to the NVIDIA driver".into(),
        other => format!("NVML failed to initialise: {other}"),
    }
}

/// The reason a GPU's energy counter cannot be read.
pub(super) fn counter_reason(gpu: u32, fault: &Fault) -> String {
    match fault {
        Fault::NotSupported => format!("GPU {gpu} does not support the total energy counter (needs Volta or newer)"),
        Fault::NoPermission => format!("no permission to read GPU {gpu}"),
        Fault::GpuLost => format!("GPU {gpu} has fallen off the bus"),
        other => format!("cannot read the energy counter of GPU {gpu}: {other}"),
    }
}

/// A snapshot field: the value, or `None` with the reason pushed to `missing`; a lost GPU fails
/// the whole snapshot.
pub(super) fn field<T>(
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
pub(super) trait Backend: Send + Sync {
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
pub(super) struct NvmlBackend {
    nvml: nvml_wrapper::Nvml,
}

impl NvmlBackend {
    /// Loads and initialises NVML from `library`. Initialises with `NO_GPUS` so that a driver
    /// without GPUs answers "no GPU" rather than failing, falling back to a plain init on drivers
    /// too old for `nvmlInitWithFlags`.
    pub(super) fn init(library: &OsStr) -> Result<Self, Fault> {
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
pub(super) fn fault(e: nvml_wrapper::error::NvmlError) -> Fault {
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
