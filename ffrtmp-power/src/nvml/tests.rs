use super::backend::fault;
use super::*;
use crate::gpu::{ProcessSample, ProcessShare};
use std::sync::Arc;

/// What a fake GPU answers.
#[derive(Clone, Debug)]
pub(super) struct FakeGpu {
    pub(super) energy_mj: Result<u64, Fault>,
    pub(super) power_mw: Result<u32, Fault>,
    pub(super) temperature_c: Result<u32, Fault>,
    pub(super) utilization: Result<(u32, u32), Fault>,
    pub(super) encoder: Result<u32, Fault>,
    pub(super) decoder: Result<u32, Fault>,
    pub(super) processes: Result<Vec<ProcessSample>, Fault>,
    /// `since_us` of each process query.
    pub(super) queried_since: Vec<u64>,
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
pub(super) struct Fake {
    count: Option<Fault>,
    gpus: Arc<Mutex<Vec<FakeGpu>>>,
}

impl Fake {
    pub(super) fn with(gpus: Vec<FakeGpu>) -> Self {
        Fake {
            count: None,
            gpus: Arc::new(Mutex::new(gpus)),
        }
    }

    pub(super) fn source(&self) -> Result<NvmlSource, PowerError> {
        NvmlSource::with_backend(Box::new(self.clone()), MissingCounter::Fail)
    }

    pub(super) fn source_with_fallback(&self) -> Result<NvmlSource, PowerError> {
        NvmlSource::with_backend(Box::new(self.clone()), MissingCounter::PowerFallback)
    }

    pub(super) fn set(&self, gpu: usize, f: impl FnOnce(&mut FakeGpu)) {
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

pub(super) fn unavailable(r: Result<NvmlSource, PowerError>) -> String {
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
            energy_uj: Some(0),
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
            if driver_installed {
                assert!(is_open_reason(&reason), "not a reason `open` gives: {reason}");
            } else {
                assert!(
                    reason.starts_with("NVML library not found (no NVIDIA driver): ") && reason.contains(NVML_LIBRARY),
                    "{reason}"
                );
            }
        }
        Err(e) => panic!("open must fail as Unavailable, got {e:?}"),
    }
}

/// Whether `reason` is one `NvmlSource::open` gives (see `init_reason` and `counter_reason`).
fn is_open_reason(reason: &str) -> bool {
    let exact = [
        "NVML found but the NVIDIA driver is not loaded",
        "no permission to talk to the NVIDIA driver",
        "no NVIDIA GPU found",
    ];
    let prefixes = [
        "NVML library not found (no NVIDIA driver): ",
        "NVML failed to initialise: ",
        "cannot count NVIDIA GPUs: ",
        "no permission to read GPU ",
        "cannot read the energy counter of GPU ",
    ];
    let per_gpu = [
        " does not support the total energy counter (needs Volta or newer)",
        " has fallen off the bus",
    ];
    exact.contains(&reason)
        || prefixes.iter().any(|p| reason.starts_with(p))
        || (reason.starts_with("GPU ") && per_gpu.iter().any(|s| reason.ends_with(s)))
}

#[test]
fn open_reasons_are_recognised() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Err(Fault::NotSupported),
        ..Default::default()
    }]);
    assert!(is_open_reason(&unavailable(fake.source())));
    assert!(is_open_reason(&init_reason(&Fault::DriverNotLoaded)));
    assert!(!is_open_reason("something else"));
}

#[test]
fn a_counter_reset_is_a_missing_reading_in_snapshots() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(5_000),
        ..Default::default()
    }]);
    let nvml = fake.source().unwrap();
    fake.set(0, |g| g.energy_mj = Ok(6_000));
    assert_eq!(nvml.snapshot().unwrap()[0].energy_uj, Some(1_000_000));
    fake.set(0, |g| g.energy_mj = Ok(20)); // the GPU was reset
    let reset = &nvml.snapshot().unwrap()[0];
    assert_eq!(reset.energy_uj, None, "not a step of 0 J");
    assert_eq!(reset.missing, ["energy: counter reset"]);
    assert_eq!(nvml.counter_resets(), 1);
    // Counted again from the new baseline.
    fake.set(0, |g| g.energy_mj = Ok(520));
    assert_eq!(nvml.snapshot().unwrap()[0].energy_uj, Some(1_500_000));
    // A reset that `sample` saw first still makes the next snapshot's reading missing.
    fake.set(0, |g| g.energy_mj = Ok(10));
    assert_eq!(nvml.sample().unwrap().total_uj(), 1_500_000);
    assert_eq!(nvml.snapshot().unwrap()[0].missing, ["energy: counter reset"]);
    assert_eq!(nvml.counter_resets(), 2);
}
