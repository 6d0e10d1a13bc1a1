//! NVML readings (from a fake backend) through the [`GpuSampler`]: per-job GPU energy.

use super::tests::{unavailable, Fake, FakeGpu};
use super::*;
use crate::gpu::{GpuSampler, GpuSamplerConfig, ProcessSample, GPU_ATTRIBUTION_METHOD, GPU_POWER_FALLBACK_METHOD};
use backend::Fault;
use std::collections::HashMap;
use std::sync::Arc;

/// Per-process samples, one encoder percentage each, stamped `ts`, `ts + 1`, …
fn encoder_samples(ts: u64, per_pid: &[(u32, u32)]) -> Vec<ProcessSample> {
    (ts..)
        .zip(per_pid)
        .map(|(timestamp_us, &(pid, encoder))| ProcessSample {
            pid,
            timestamp_us,
            encoder,
            ..Default::default()
        })
        .collect()
}

fn pid_jobs(pairs: &[(u32, &str)]) -> Arc<HashMap<u32, String>> {
    Arc::new(pairs.iter().map(|&(pid, job)| (pid, job.to_string())).collect())
}

fn within_one_percent(got: f64, truth: f64) -> bool {
    (got - truth).abs() <= 0.01 * truth.abs()
}

/// A config whose held shares never expire, so a slow test machine cannot change the split.
fn holding() -> GpuSamplerConfig {
    GpuSamplerConfig {
        share_hold: std::time::Duration::from_secs(3600),
        ..GpuSamplerConfig::default()
    }
}

#[test]
fn two_jobs_get_their_encoder_share_of_the_counter_delta_and_the_rest_is_other() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(1_000_000),
        ..Default::default()
    }]);
    let nvml = Arc::new(fake.source().unwrap());
    let jobs = pid_jobs(&[(101, "job-a"), (102, "job-b")]);
    let sampler = GpuSampler::manual(nvml, jobs, holding());
    sampler.job_started("job-a");
    sampler.job_started("job-b");
    // 250 J; job-a's encoder samples average 45 %, job-b's 30 %, pid 999 (no job) 5 %.
    fake.set(0, |g| {
        g.energy_mj = Ok(1_250_000);
        g.processes = Ok(encoder_samples(1, &[(101, 40), (102, 30), (101, 50), (999, 5)]));
    });
    let first = sampler.tick().unwrap().unwrap();
    assert!(!first.power_fallback && first.measured_gpus == 1, "{first:?}");
    // 100 J; a new sample of job-a only, at 20 %: job-b (and pid 999) keep their last shares,
    // held as they reported nothing newer.
    fake.set(0, |g| {
        g.energy_mj = Ok(1_350_000);
        g.processes = Ok(encoder_samples(10, &[(101, 20)]));
    });
    sampler.tick().unwrap();
    let a = sampler.job_finished("job-a").unwrap();
    let b = sampler.job_finished("job-b").unwrap();
    let (truth_a, truth_b) = (250.0 * 0.45 + 100.0 * 0.2, 250.0 * 0.30 + 100.0 * 0.30);
    assert!(within_one_percent(a.joules().unwrap(), truth_a), "{a:?}");
    assert!(within_one_percent(b.joules().unwrap(), truth_b), "{b:?}");
    assert_eq!(
        (a.method(), a.power_fallback, a.source.as_str()),
        (GPU_ATTRIBUTION_METHOD, false, "nvml")
    );
    let totals = sampler.totals();
    assert!(within_one_percent(totals.total_joules, 350.0), "{totals:?}");
    assert!(
        within_one_percent(totals.other_joules, 350.0 - truth_a - truth_b),
        "{totals:?}"
    );
    assert!((totals.jobs_joules + totals.other_joules - totals.total_joules).abs() < 1e-9);
    assert_eq!(totals.power_fallback_intervals, 0);
}

#[test]
fn without_an_energy_counter_power_times_time_is_used_and_flagged() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Err(Fault::NotSupported),
        power_mw: Ok(150_000),
        ..Default::default()
    }]);
    assert_eq!(
        unavailable(fake.source()),
        "GPU 0 does not support the total energy counter (needs Volta or newer)"
    );
    let nvml = fake.source_with_fallback().unwrap();
    assert_eq!((nvml.gpus(), nvml.zones()), (&["gpu-0".to_string()][..], &[][..]));
    assert!(matches!(nvml.sample(), Err(PowerError::Unavailable(r)) if r.contains("no NVIDIA GPU has")));
    let reading = &nvml.snapshot().unwrap()[0];
    assert_eq!(reading.energy_uj, None);
    assert_eq!(
        reading.missing,
        ["energy: GPU 0 does not support the total energy counter (needs Volta or newer)"]
    );
    let sampler = GpuSampler::manual(Arc::new(nvml), pid_jobs(&[(101, "job-a")]), holding());
    sampler.job_started("job-a");
    fake.set(0, |g| g.processes = Ok(encoder_samples(1, &[(101, 50)])));
    let interval = sampler.tick().unwrap().unwrap();
    assert!(interval.power_fallback);
    assert!(
        (interval.total_joules - 150.0 * interval.dt_s).abs() < 1e-9,
        "{interval:?}"
    );
    let a = sampler.job_finished("job-a").unwrap();
    let totals = sampler.totals();
    assert!(a.power_fallback && a.method() == GPU_POWER_FALLBACK_METHOD, "{a:?}");
    // Half the encoder, over both intervals (the tick and the final reading).
    let truth = 150.0 * totals.measured_seconds * 0.5;
    assert!(
        (a.joules().unwrap() - truth).abs() <= 1e-9 * truth.max(1.0),
        "{a:?} {totals:?}"
    );
    assert_eq!(totals.power_fallback_intervals, 2);
}

#[test]
fn a_counter_missing_for_one_interval_is_not_counted_twice() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(1_000),
        power_mw: Ok(100_000),
        ..Default::default()
    }]);
    let sampler = GpuSampler::manual(Arc::new(fake.source().unwrap()), pid_jobs(&[]), holding());
    fake.set(0, |g| {
        g.energy_mj = Err(Fault::Other("an internal driver error occurred".into()))
    });
    let gap = sampler.tick().unwrap().unwrap();
    assert!(
        gap.power_fallback && (gap.total_joules - 100.0 * gap.dt_s).abs() < 1e-9,
        "{gap:?}"
    );
    // The counter is back 50 J on: the interval after a gap has no counter start, so power again.
    fake.set(0, |g| g.energy_mj = Ok(51_000));
    let after = sampler.tick().unwrap().unwrap();
    assert!(
        after.power_fallback && (after.total_joules - 100.0 * after.dt_s).abs() < 1e-9,
        "{after:?}"
    );
    fake.set(0, |g| g.energy_mj = Ok(61_000));
    let counted = sampler.tick().unwrap().unwrap();
    assert!(
        !counted.power_fallback && (counted.total_joules - 10.0).abs() < 1e-9,
        "{counted:?}"
    );
}

#[test]
fn with_no_gpu_process_everything_goes_to_other_and_the_job_used_0_j() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(0),
        ..Default::default() // processes: NVML's "not found", nobody used the GPU
    }]);
    let sampler = GpuSampler::manual(Arc::new(fake.source().unwrap()), pid_jobs(&[(101, "job-a")]), holding());
    sampler.job_started("job-a");
    fake.set(0, |g| g.energy_mj = Ok(80_000));
    let interval = sampler.tick().unwrap().unwrap();
    assert!(
        interval.jobs.is_empty() && interval.other_joules == 80.0 && interval.unattributed.is_empty(),
        "{interval:?}"
    );
    let a = sampler.job_finished("job-a").unwrap();
    // Measured, and none of it was the job's: a real 0 J.
    assert_eq!((a.joules(), a.partial), (Some(0.0), false), "{a:?}");
}

#[test]
fn without_per_process_utilisation_a_job_gpu_energy_is_unavailable_not_0_j() {
    // MIG, vGPU or an older board: energy readable, per-process utilisation not.
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(0),
        processes: Err(Fault::NotSupported),
        ..Default::default()
    }]);
    let sampler = GpuSampler::manual(Arc::new(fake.source().unwrap()), pid_jobs(&[(101, "job-a")]), holding());
    sampler.job_started("job-a");
    fake.set(0, |g| g.energy_mj = Ok(100_000));
    let interval = sampler.tick().unwrap().unwrap();
    assert_eq!(
        interval.unattributed,
        ["gpu-0: process utilization: not supported by this GPU"]
    );
    let a = sampler.job_finished("job-a").unwrap();
    assert_eq!(a.joules(), None, "{a:?}");
    assert_eq!(
        a.unavailable,
        Some(PowerError::Unavailable(
            "GPU energy not attributable to jobs: gpu-0: process utilization: not supported by this GPU".into()
        ))
    );
    // The node's energy is still counted, all of it as "other".
    let totals = sampler.totals();
    assert_eq!(
        (totals.total_joules, totals.other_joules, totals.jobs_joules),
        (100.0, 100.0, 0.0)
    );
    assert_eq!((totals.intervals, totals.unattributed_intervals), (2, 2));

    // Readable for part of the job: its share of that part, flagged partial with the reason.
    fake.set(0, |g| g.processes = Ok(encoder_samples(1, &[(101, 50)])));
    sampler.job_started("job-a");
    fake.set(0, |g| g.energy_mj = Ok(140_000));
    sampler.tick().unwrap();
    fake.set(0, |g| {
        g.energy_mj = Ok(150_000);
        g.processes = Err(Fault::NoPermission);
    });
    let a = sampler.job_finished("job-a").unwrap();
    assert_eq!(a.joules(), Some(20.0), "{a:?}");
    assert!(a.partial, "{a:?}");
    assert_eq!(
        a.partial_reason,
        Some(PowerError::Unavailable(
            "GPU energy not attributable to jobs: gpu-0: process utilization: no permission".into()
        ))
    );
}

#[test]
fn a_counter_reset_falls_back_to_power_times_time_for_that_interval() {
    let fake = Fake::with(vec![FakeGpu {
        energy_mj: Ok(10_000),
        power_mw: Ok(100_000),
        ..Default::default()
    }]);
    let sampler = GpuSampler::manual(Arc::new(fake.source().unwrap()), pid_jobs(&[]), holding());
    fake.set(0, |g| g.energy_mj = Ok(5)); // reset
    let reset = sampler.tick().unwrap().unwrap();
    assert!(
        reset.power_fallback && (reset.total_joules - 100.0 * reset.dt_s).abs() < 1e-9,
        "{reset:?}"
    );
    // The interval after the reset has no counter start either, then the counter is used again.
    fake.set(0, |g| g.energy_mj = Ok(20_005));
    assert!(sampler.tick().unwrap().unwrap().power_fallback);
    fake.set(0, |g| g.energy_mj = Ok(30_005));
    let counted = sampler.tick().unwrap().unwrap();
    assert!(
        !counted.power_fallback && (counted.total_joules - 10.0).abs() < 1e-9,
        "{counted:?}"
    );
    assert_eq!(sampler.totals().power_fallback_intervals, 2);
}
