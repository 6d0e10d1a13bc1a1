use super::backend::fault;
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
