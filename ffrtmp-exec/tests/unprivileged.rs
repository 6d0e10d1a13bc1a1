//! Children never see the agent's credentials, and workloads of a root agent run as an
//! unprivileged user, still inside their job cgroup.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{have_ffmpeg, job, Recorder};
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, Executor, ResourceLimits};
use ffrtmp_exec::{detect, run_workload, Cgroups, FfmpegConfig, FfmpegExecutor, ProcessSpec, RunAs};

const KEY: &str = "key-that-must-not-leak-0123";

/// Marks the child process [`with_key_in_env`] starts.
const CHILD: &str = "FFRTMP_TEST_KEY_CHILD";

/// Runs `test` in a child process of this test binary started with the agent's key in its
/// environment, as an agent started with it is (the environment is not changed here, where
/// other test threads run). Returns true in that child, where the test body runs; in this
/// process, asserts that the child ran the test and passed.
fn with_key_in_env(test: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        assert_eq!(std::env::var("MASTER_API_KEY").as_deref(), Ok(KEY));
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("MASTER_API_KEY", KEY)
        .env("FFRTMP_API_KEY", KEY)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{test} in a child with the key: {text}");
    assert!(text.contains("1 passed"), "{test} did not run in the child: {text}");
    false
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// A directory tree the unprivileged user can reach.
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[tokio::test]
async fn a_workload_runs_unprivileged_in_its_cgroup_without_the_key() {
    if !with_key_in_env("a_workload_runs_unprivileged_in_its_cgroup_without_the_key") {
        return;
    }
    if !is_root() {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let nobody = RunAs::lookup("nobody").unwrap();
    let mut spec = ProcessSpec::new(
        "sh",
        [
            "-c",
            "id -u; id -G; cat /proc/self/cgroup; tr '\\0' '\\n' < /proc/self/environ",
        ],
    );
    spec.run_as = Some(nobody.clone());
    let limits = ResourceLimits {
        max_memory_mb: Some(256),
        ..Default::default()
    };
    let cgroups = Cgroups::detect();
    let name = format!("unpriv-{}", std::process::id());
    let (_h, cancel) = cancel_pair();
    let mut lines = Vec::new();
    let run = run_workload(spec, &name, &limits, &cgroups, cancel, |l| lines.push(l.to_string()))
        .await
        .unwrap();
    assert!(run.exit.success(), "{run:?}");
    assert_eq!(lines[0], nobody.uid.to_string(), "{lines:?}");
    assert_eq!(lines[1], nobody.gid.to_string(), "no supplementary groups: {lines:?}");
    assert!(!lines.iter().any(|l| l.contains(KEY)), "{lines:?}");
    assert!(
        lines.iter().any(|l| *l == format!("HOME={}", nobody.home.display())),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("PATH=")), "{lines:?}");
    if cgroups.unavailable_reason().is_none() {
        assert!(run.limits.starts_with("enforced"), "{}", run.limits);
        assert!(
            lines.iter().any(|l| l.contains("memory") && l.contains(&name)),
            "still placed in its cgroup: {lines:?}"
        );
    }
}

#[tokio::test]
async fn an_ffmpeg_job_runs_as_the_worker_and_writes_its_output() {
    if !with_key_in_env("an_ffmpeg_job_runs_as_the_worker_and_writes_its_output") {
        return;
    }
    if !is_root() || !have_ffmpeg() {
        eprintln!("skipped: needs root and ffmpeg");
        return;
    }
    let nobody = RunAs::lookup("nobody").unwrap();
    let root = open_tempdir();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    std::fs::create_dir(&input).unwrap();
    let exec = FfmpegExecutor::with_cgroups(FfmpegConfig::new(&input, &output), Cgroups::detect())
        .with_run_as(Some(nobody.clone()));
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":1}}"#);
    let (_h, cancel) = cancel_pair();
    match exec.execute(&j, &Recorder::default(), cancel).await {
        ExecOutcome::Completed { result } => assert!(result.output_bytes > 0, "{result:?}"),
        other => panic!("expected completed, got {other:?}"),
    }
    // Written by the worker itself: the file is its own.
    let out = std::fs::metadata(output.join(format!("{}-a1.mp4", j.id))).unwrap();
    assert_eq!((out.uid(), out.gid()), (nobody.uid, nobody.gid));

    // An input file it may read: used as is.
    std::fs::copy(output.join(format!("{}-a1.mp4", j.id)), input.join("clip.mp4")).unwrap();
    let j = job(r#"{"scenario":"720p-h264","parameters":{"input":"clip.mp4","output_mode":"null"}}"#);
    let (_h, cancel) = cancel_pair();
    match exec.execute(&j, &Recorder::default(), cancel).await {
        ExecOutcome::Completed { result } => assert!(result.frames > 0, "{result:?}"),
        other => panic!("expected completed, got {other:?}"),
    }
}

#[tokio::test]
async fn encoder_probes_get_no_key_and_test_encodes_run_as_the_worker() {
    if !with_key_in_env("encoder_probes_get_no_key_and_test_encodes_run_as_the_worker") {
        return;
    }
    let d = open_tempdir();
    // Written by the test encode, which may run as another user.
    let shared = d.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (listed, tested) = (d.path().join("listed.txt"), shared.join("tested.txt"));
    let fake = d.path().join("ffmpeg");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncase \"$*\" in\n*-encoders*) env > '{}'\n  echo ' V....D libx264     H.264'\n  \
             echo ' V....D h264_nvenc  NVENC H.264';;\n*) {{ id -u; env; }} > '{}'; exit 1;;\nesac\n",
            listed.display(),
            tested.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let encoders = detect::software_encoders(&fake).await.unwrap();
    assert_eq!(encoders, ["libx264"]);
    assert_probe_env(&listed);

    let worker = is_root().then(|| RunAs::lookup("nobody").unwrap());
    let probe = detect::HwProbeConfig {
        run_as: worker.clone(),
        ..Default::default()
    };
    let hw = detect::hardware_encoders(&fake, &probe).await;
    assert_eq!(hw.len(), 1, "{hw:?}");
    assert!(!hw[0].validated(), "{hw:?}");
    assert_probe_env(&tested);
    if let Some(w) = worker {
        let text = std::fs::read_to_string(&tested).unwrap();
        assert_eq!(text.lines().next(), Some(w.uid.to_string().as_str()), "{text}");
    }
}

fn assert_probe_env(seen: &Path) {
    let env = std::fs::read_to_string(seen).unwrap();
    assert!(!env.contains(KEY), "{env}");
    assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
}

#[tokio::test]
async fn an_input_the_worker_cannot_read_is_reported_as_such() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let nobody = RunAs::lookup("nobody").unwrap();
    let root = open_tempdir();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    std::fs::create_dir(&input).unwrap();
    let clip = input.join("closed.mp4");
    std::fs::write(&clip, b"not for the worker").unwrap();
    std::fs::set_permissions(&clip, std::fs::Permissions::from_mode(0o600)).unwrap();
    let exec =
        FfmpegExecutor::with_cgroups(FfmpegConfig::new(&input, &output), Cgroups::detect()).with_run_as(Some(nobody));
    let j = job(r#"{"scenario":"720p-h264","parameters":{"input":"closed.mp4"}}"#);
    let (_h, cancel) = cancel_pair();
    match exec.execute(&j, &Recorder::default(), cancel).await {
        ExecOutcome::Failed { error } => {
            assert_eq!(error.kind, ErrorKind::NodeUnavailable, "{error:?}");
            assert!(
                error.message.contains("not readable by user nobody"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_output_directory_the_worker_does_not_own_is_refused_not_given_away() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let nobody = RunAs::lookup("nobody").unwrap();
    let root = open_tempdir();
    let (input, output) = (root.path().join("in"), root.path().join("out"));
    std::fs::create_dir(&input).unwrap();
    // The operator's directory, owned by root.
    std::fs::create_dir(&output).unwrap();
    std::fs::set_permissions(&output, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec =
        FfmpegExecutor::with_cgroups(FfmpegConfig::new(&input, &output), Cgroups::detect()).with_run_as(Some(nobody));
    let j = job(r#"{"scenario":"240p-h264","parameters":{"duration":1}}"#);
    let (_h, cancel) = cancel_pair();
    match exec.execute(&j, &Recorder::default(), cancel).await {
        ExecOutcome::Failed { error } => {
            assert_eq!(error.kind, ErrorKind::NodeUnavailable, "{error:?}");
            assert!(error.message.contains("not owned by user nobody"), "{}", error.message);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let meta = std::fs::metadata(&output).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "the operator's directory keeps its owner"
    );
}

#[tokio::test]
async fn workloads_cannot_gain_privileges() {
    let spec = ProcessSpec::new("grep", ["NoNewPrivs", "/proc/self/status"]);
    let (_h, cancel) = cancel_pair();
    let mut lines = Vec::new();
    let exit = ffrtmp_exec::supervise::run(&spec, cancel, |l| lines.push(l.to_string()))
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(lines, ["NoNewPrivs:\t1"]);
}
