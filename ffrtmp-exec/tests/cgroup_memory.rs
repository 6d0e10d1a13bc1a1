//! A process allocating beyond its job's memory limit is OOM-killed inside its cgroup and
//! classified `resource_exhausted`; the cgroup is gone afterwards.

mod common;

use std::time::{Duration, Instant};

use common::cgroup_dirs_named;
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, ResourceLimits};
use ffrtmp_exec::{run_workload, Cgroups, ProcessSpec, Termination};

#[tokio::test]
async fn memory_hog_is_oom_killed_and_classified() {
    let cgroups = Cgroups::detect();
    if !cgroups.has_memory() {
        eprintln!(
            "skipped: no memory controller for job cgroups ({:?})",
            cgroups.unavailable_reason()
        );
        return;
    }
    let name = format!("test-oom-{}", std::process::id());
    let spec = ProcessSpec::new(
        "python3",
        ["-c", "x = bytearray(300 * 1024 * 1024); import time; time.sleep(1)"],
    );
    let limits = ResourceLimits {
        max_memory_mb: Some(100),
        timeout_sec: Some(30),
        ..Default::default()
    };
    let (_h, cancel) = cancel_pair();
    let t0 = Instant::now();
    let run = tokio::time::timeout(
        Duration::from_secs(40),
        run_workload(spec, &name, &limits, &cgroups, cancel, |_| {}),
    )
    .await
    .expect("deadline")
    .expect("python3 runs");
    assert!(run.limits.starts_with("enforced: cgroup v"), "{}", run.limits);
    assert!(run.limits.ends_with("memory=100MiB"), "{}", run.limits);
    assert_eq!(run.exit.status, Termination::Signaled(9), "{run:?}");
    assert!(run.oom_kills > 0, "{run:?}");
    match run.failure("python3", &[]) {
        Some(ExecOutcome::Failed { error }) => {
            assert_eq!(error.kind, ErrorKind::ResourceExhausted, "{error:?}");
            assert!(!error.kind.is_transient());
        }
        other => panic!("expected resource_exhausted, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert!(run.exit.group_gone);
    assert_eq!(run.cgroup_leftover, None);
    assert!(cgroup_dirs_named(&name).is_empty(), "{:?}", cgroup_dirs_named(&name));
}

#[tokio::test]
async fn within_the_limit_it_completes() {
    let cgroups = Cgroups::detect();
    if !cgroups.has_memory() {
        eprintln!("skipped: no memory controller for job cgroups");
        return;
    }
    let name = format!("test-fits-{}", std::process::id());
    let spec = ProcessSpec::new("python3", ["-c", "x = bytearray(20 * 1024 * 1024)"]);
    let limits = ResourceLimits {
        max_memory_mb: Some(100),
        ..Default::default()
    };
    let (_h, cancel) = cancel_pair();
    let run = run_workload(spec, &name, &limits, &cgroups, cancel, |_| {})
        .await
        .unwrap();
    assert!(run.exit.success(), "{run:?}");
    assert_eq!(run.oom_kills, 0);
    assert_eq!(run.failure("python3", &[]), None);
    assert!(run.cpu_time.is_some());
    assert!(cgroup_dirs_named(&name).is_empty());
}
