use super::test_support::{close, jobs, reading};
use super::*;
use std::collections::HashMap;
use std::time::Duration;

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
fn each_gpu_is_split_on_its_own_and_jobs_add_up_across_gpus() {
    let mut gpu = GpuAttribution::default();
    gpu.baseline(&[
        reading("gpu-0", Some(0), None, &[]),
        reading("gpu-1", Some(0), None, &[]),
    ]);
    let map = jobs(&[(1, "a"), (2, "b")]);
    let i = gpu.step(
        &[
            reading("gpu-0", Some(100_000_000), None, &[(1, 50), (2, 25)]),
            reading("gpu-1", Some(40_000_000), None, &[(1, 100), (3, 100)]),
        ],
        Duration::from_secs(1),
        &map,
    );
    assert_eq!(i.measured_gpus, 2);
    assert!(close(i.total_joules, 140.0));
    // gpu-1 is oversubscribed (200 %): a's process gets half of it.
    assert_eq!(
        i.jobs,
        [
            JobGpuShare {
                job: "a".into(),
                joules: 70.0
            },
            JobGpuShare {
                job: "b".into(),
                joules: 25.0
            }
        ]
    );
    assert!(close(i.other_joules, 45.0), "{i:?}");
}

#[test]
fn power_fallback_is_power_times_the_interval_and_flagged() {
    let mut gpu = GpuAttribution::default();
    gpu.baseline(&[reading("gpu-0", None, Some(80.0), &[])]);
    let i = gpu.step(
        &[reading("gpu-0", None, Some(80.0), &[(1, 25)])],
        Duration::from_millis(500),
        &jobs(&[(1, "a")]),
    );
    assert!(i.power_fallback);
    assert!(close(i.total_joules, 40.0) && close(i.jobs[0].joules, 10.0) && close(i.other_joules, 30.0));
    // Neither counter nor power: not measured, nothing counted, and why.
    let mut no_power = reading("gpu-0", None, None, &[(1, 25)]);
    no_power.missing = vec!["power: not supported by this GPU".into()];
    let i = gpu.step(&[no_power], Duration::from_secs(1), &jobs(&[(1, "a")]));
    assert_eq!((i.measured_gpus, i.total_joules), (0, 0.0));
    assert_eq!(
        i.unmeasured,
        ["gpu-0: no energy counter; power: not supported by this GPU"]
    );
}

#[test]
fn shares_are_held_while_no_newer_sample_arrives_then_dropped() {
    let mut gpu = GpuAttribution::new(Duration::from_millis(250));
    gpu.baseline(&[reading("gpu-0", Some(0), None, &[(1, 50)])]);
    let map = jobs(&[(1, "a")]);
    let tenth = Duration::from_millis(100);
    let mut uj = 0;
    let mut step = |gpu: &mut GpuAttribution| {
        uj += 10_000_000;
        gpu.step(&[reading("gpu-0", Some(uj), None, &[])], tenth, &map)
    };
    // 0.1 s and 0.2 s after the sample: still held.
    assert!(close(step(&mut gpu).jobs[0].joules, 5.0));
    assert!(close(step(&mut gpu).jobs[0].joules, 5.0));
    // 0.3 s: older than the hold, everything is "other".
    let i = step(&mut gpu);
    assert!(i.jobs.is_empty() && close(i.other_joules, 10.0), "{i:?}");
    // Unreadable process utilisation drops held shares at once.
    let mut gpu = GpuAttribution::default();
    gpu.baseline(&[reading("gpu-0", Some(0), None, &[(1, 50)])]);
    let mut blind = reading("gpu-0", Some(10_000_000), None, &[]);
    blind.processes = None;
    let i = gpu.step(&[blind], tenth, &map);
    assert!(i.jobs.is_empty() && close(i.other_joules, 10.0), "{i:?}");
    assert!(gpu.held_pids().is_empty());
}

#[test]
fn each_process_share_is_held_and_aged_on_its_own() {
    let mut gpu = GpuAttribution::new(Duration::from_millis(250));
    gpu.baseline(&[reading("gpu-0", Some(0), None, &[])]);
    let map = jobs(&[(1, "a"), (2, "b")]);
    let tenth = Duration::from_millis(100);
    let mut uj = 0;
    let mut step = |gpu: &mut GpuAttribution, pids: &[(u32, u32)]| {
        uj += 10_000_000; // 10 J per interval
        gpu.step(&[reading("gpu-0", Some(uj), None, pids)], tenth, &map)
    };
    let joules = |i: &GpuInterval, job: &str| i.jobs.iter().find(|s| s.job == job).map(|s| s.joules);
    // Tick 1: only pid 1 reports (50 %).
    let i = step(&mut gpu, &[(1, 50)]);
    assert_eq!((joules(&i, "a"), joules(&i, "b")), (Some(5.0), None), "{i:?}");
    // Tick 2: only pid 2 reports (30 %); pid 1's share is held, not replaced by pid 2's.
    let i = step(&mut gpu, &[(2, 30)]);
    assert_eq!((joules(&i, "a"), joules(&i, "b")), (Some(5.0), Some(3.0)), "{i:?}");
    assert_eq!(gpu.held_pids(), [1, 2]);
    // No more samples: each share ages from its own sample. At tick 3 both are within the
    // 0.25 s hold (0.2 s and 0.1 s old); at tick 4 pid 1's (0.3 s) has expired, pid 2's (0.2 s)
    // not; at tick 5 neither is left.
    let i = step(&mut gpu, &[]);
    assert_eq!((joules(&i, "a"), joules(&i, "b")), (Some(5.0), Some(3.0)), "{i:?}");
    let i = step(&mut gpu, &[]);
    assert_eq!((joules(&i, "a"), joules(&i, "b")), (None, Some(3.0)), "{i:?}");
    let i = step(&mut gpu, &[]);
    assert!(i.jobs.is_empty() && close(i.other_joules, 10.0), "{i:?}");
    assert!(gpu.held_pids().is_empty());
}

#[test]
fn a_gpu_without_process_utilisation_is_measured_but_unattributable() {
    let mut gpu = GpuAttribution::default();
    let blind = |uj| {
        let mut r = reading("gpu-0", Some(uj), None, &[]);
        r.processes = None;
        r.missing = vec!["process utilization: not supported by this GPU".into()];
        r
    };
    gpu.baseline(&[blind(0), reading("gpu-1", Some(0), None, &[])]);
    let i = gpu.step(
        &[blind(30_000_000), reading("gpu-1", Some(10_000_000), None, &[(1, 100)])],
        Duration::from_secs(1),
        &jobs(&[(1, "a")]),
    );
    // gpu-0's 30 J are counted, all as "other", and said to be unattributable.
    assert_eq!((i.measured_gpus, i.attributable_gpus()), (2, 1));
    assert!(close(i.total_joules, 40.0) && close(i.other_joules, 30.0), "{i:?}");
    assert_eq!(
        i.unattributed,
        ["gpu-0: process utilization: not supported by this GPU"]
    );
    assert_eq!(
        i.jobs,
        [JobGpuShare {
            job: "a".into(),
            joules: 10.0
        }]
    );
    // Alone, it leaves nothing attributable.
    let i = gpu.step(&[blind(40_000_000)], Duration::from_secs(1), &HashMap::new());
    assert_eq!((i.measured_gpus, i.attributable_gpus()), (1, 0));
}
