//! CPU quotas hold busy loops at their share, measured by the job cgroup's own CPU usage
//! counter: 50 % holds one loop at half a core, 150 % holds two loops at one and a half of
//! the two cores. Kept in its own test binary, the two measured one after the other, so that
//! no other test competes for the CPU.

mod common;

use std::time::{Duration, Instant};

use common::cgroup_dirs_named;
use ffrtmp_core::{cancel_pair, ResourceLimits};
use ffrtmp_exec::supervise::{run, ProcessSpec, StopReason};
use ffrtmp_exec::Cgroups;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quotas_hold_busy_loops_at_their_share() {
    measure(50, 1).await;
    measure(150, 2).await;
}

/// Runs `loops` busy loops under `percent` % of one core and checks the share they got.
async fn measure(percent: u32, loops: usize) {
    let cgroups = Cgroups::detect();
    if !cgroups.has_cpu() {
        eprintln!(
            "skipped: no cpu controller for job cgroups ({:?})",
            cgroups.unavailable_reason()
        );
        return;
    }
    let name = format!("test-cpu-{}-{percent}", std::process::id());
    let limits = ResourceLimits {
        max_cpu_percent: Some(percent),
        ..Default::default()
    };
    let cg = cgroups.create(&name, &limits).unwrap();
    assert!(
        cg.enforced().unwrap().ends_with(&format!("cpu={percent}%")),
        "{:?}",
        cg.enforced()
    );
    if cg.cpu_usage().is_none() {
        eprintln!("skipped: the job cgroup has no CPU usage counter");
        return;
    }
    // `loops` copies of the loop, all children of one shell inside the group.
    let script = vec!["while :; do :; done"; loops].join(" & ");
    let mut spec = ProcessSpec::new("sh", ["-c".to_string(), script]);
    spec.nice = None; // measure the quota, not the scheduler's treatment of nice 10
    spec.grace = Duration::from_secs(2);
    spec.join(&cg).unwrap();
    let (handle, cancel) = cancel_pair();
    let task = tokio::spawn(async move { run(&spec, cancel, |_| {}).await });

    // Wait until the loop is inside the group and burning CPU, then measure for 2 s.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cg.pids().is_empty() || cg.cpu_usage().unwrap() < Duration::from_millis(50) {
        assert!(Instant::now() < deadline, "busy loop never ran in its cgroup");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (u0, t0, th0) = (cg.cpu_usage().unwrap(), Instant::now(), cg.cpu_throttling());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (u1, t1, th1) = (cg.cpu_usage().unwrap(), Instant::now(), cg.cpu_throttling());
    handle.cancel();
    let exit = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("cancel deadline")
        .unwrap()
        .unwrap();
    assert_eq!(exit.stopped, StopReason::Canceled);
    assert!(exit.group_gone);
    cg.remove().await.unwrap();
    assert!(cgroup_dirs_named(&name).is_empty());

    let share = (u1 - u0).as_secs_f64() / (t1 - t0).as_secs_f64();
    let quota = f64::from(percent) / 100.0;
    let throttled = match (th0, th1) {
        (Some((p0, n0)), Some((p1, n1))) if p1 > p0 => (n1 - n0) as f64 / (p1 - p0) as f64,
        _ => 1.0,
    };
    eprintln!(
        "{loops} busy loop(s) under {percent}% used {:.1}% of a core; throttled in {:.0}% of periods",
        share * 100.0,
        throttled * 100.0
    );
    assert!(
        share <= quota + 0.05,
        "quota not enforced: {:.1}% of a core",
        share * 100.0
    );
    if throttled >= 0.8 {
        // The quota, not other load, was the limit: the loops must have had their full share.
        assert!(share >= quota - 0.05, "{:.1}% of a core", share * 100.0);
    } else {
        eprintln!(
            "host busy (throttled in only {:.0}% of periods): lower bound not checked",
            throttled * 100.0
        );
    }
}
