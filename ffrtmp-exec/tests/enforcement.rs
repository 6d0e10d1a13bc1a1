//! Limits a job requires are enforced or the job does not run: a node without usable job
//! cgroups refuses it (`node_unavailable`, so another node runs it) before the program
//! starts, and says so truthfully in what it advertises.

use std::time::Duration;

use ffrtmp_core::{cancel_pair, Enforcement, ErrorKind, JobError, ResourceLimits};
use ffrtmp_exec::detect::enforces_limits;
use ffrtmp_exec::{run_workload, Cgroups, ProcessSpec};

fn limits(enforcement: Enforcement) -> ResourceLimits {
    ResourceLimits {
        max_memory_mb: Some(256),
        timeout_sec: Some(30),
        enforcement,
        ..Default::default()
    }
}

/// `sh` touching `marker`, so the test sees whether the program ran.
fn touch(marker: &std::path::Path) -> ProcessSpec {
    ProcessSpec::new("sh", ["-c".to_string(), format!("touch '{}'", marker.display())])
}

#[test]
fn only_cgroups_with_cpu_and_memory_count_as_enforcing() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!enforces_limits(&Cgroups::disabled("no cgroups here")));
    let cpu_only = Cgroups::v1(Some(dir.path().join("cpu")), None, None);
    assert!(!enforces_limits(&cpu_only), "no memory controller");
    let memory_only = Cgroups::v1(None, None, Some(dir.path().join("memory")));
    assert!(!enforces_limits(&memory_only), "no cpu controller");
    let both = Cgroups::v1(Some(dir.path().join("cpu")), None, Some(dir.path().join("mem")));
    assert!(enforces_limits(&both));
}

#[tokio::test]
async fn required_limits_without_cgroups_fail_before_the_program_starts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let cgroups = Cgroups::disabled("no writable cgroup hierarchy");
    let (_h, cancel) = cancel_pair();
    let name = format!("test-required-{}", std::process::id());
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        run_workload(
            touch(&marker),
            &name,
            &limits(Enforcement::Required),
            &cgroups,
            cancel,
            |_| {},
        ),
    )
    .await
    .expect("deadline")
    .expect_err("required limits cannot be enforced here");
    let error = JobError::from(err);
    assert_eq!(error.kind, ErrorKind::NodeUnavailable, "{error:?}");
    assert!(error.kind.is_transient(), "another node may enforce them");
    assert!(
        error.message.contains("required") && error.message.contains("no writable cgroup hierarchy"),
        "{}",
        error.message
    );
    assert!(!marker.exists(), "the program ran without its limits");

    // The same limits, best effort: the program runs unlimited and the result says so.
    let (_h, cancel) = cancel_pair();
    let run = run_workload(
        touch(&marker),
        &name,
        &limits(Enforcement::BestEffort),
        &cgroups,
        cancel,
        |_| {},
    )
    .await
    .expect("best effort runs");
    assert!(marker.exists());
    assert!(run.limits.starts_with("not enforced: "), "{}", run.limits);
}

#[tokio::test]
async fn required_limits_run_enforced_where_the_node_can_enforce_them() {
    let cgroups = Cgroups::detect();
    if !enforces_limits(&cgroups) {
        eprintln!(
            "skipped: no job cgroups with cpu and memory ({:?})",
            cgroups.unavailable_reason()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (_h, cancel) = cancel_pair();
    let name = format!("test-required-ok-{}", std::process::id());
    let run = run_workload(
        touch(&marker),
        &name,
        &limits(Enforcement::Required),
        &cgroups,
        cancel,
        |_| {},
    )
    .await
    .expect("enforced run");
    assert!(marker.exists());
    assert!(run.limits.starts_with("enforced: cgroup v"), "{}", run.limits);
    assert!(run.limits.ends_with("memory=256MiB"), "{}", run.limits);
}
