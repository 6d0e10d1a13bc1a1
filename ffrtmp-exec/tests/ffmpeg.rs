//! The FFmpeg executor against the real `/usr/bin/ffmpeg`, with the host's cgroups.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cgroup_dirs_named, find_process, group_gone, have_ffmpeg, job, Recorder};
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, Executor, JobError, JobResult, NoProgress};
use ffrtmp_exec::{Cgroups, FfmpegConfig, FfmpegExecutor};

struct Dirs {
    _root: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let output = root.path().join("out");
    std::fs::create_dir(&input).unwrap();
    Dirs {
        input,
        output,
        _root: root,
    }
}

fn config(d: &Dirs) -> FfmpegConfig {
    FfmpegConfig {
        ffmpeg_path: "/usr/bin/ffmpeg".into(),
        grace: Duration::from_secs(5),
        ..FfmpegConfig::new(&d.input, &d.output)
    }
}

fn completed(o: ExecOutcome) -> JobResult {
    match o {
        ExecOutcome::Completed { result } => result,
        other => panic!("expected completed, got {other:?}"),
    }
}

fn failed(o: ExecOutcome) -> JobError {
    match o {
        ExecOutcome::Failed { error } => error,
        other => panic!("expected failed, got {other:?}"),
    }
}

#[tokio::test]
async fn completes_720p_file_with_monotone_progress() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::detect());
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":2}}"#);
    let rec = Recorder::default();
    let (_h, cancel) = cancel_pair();
    let r = completed(exec.execute(&j, &rec, cancel).await);
    assert_eq!(r.exit_code, Some(0));
    assert!((55..=65).contains(&r.frames), "frames {}", r.frames);
    assert!(r.wall_s > 0.0 && r.avg_fps > 0.0, "{r:?}");
    assert_eq!(r.encoder, "ffmpeg/libx264");
    assert_eq!(r.limits, "none requested");
    let out = d.output.join(format!("{}-a1.mp4", j.id));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), r.output_bytes);
    assert!(r.output_bytes > 0);

    let prog = rec.all();
    assert!(!prog.is_empty());
    for w in prog.windows(2) {
        assert!(w[1].frame >= w[0].frame && w[1].percent >= w[0].percent, "{w:?}");
        assert!(w[1].out_time_s >= w[0].out_time_s, "{w:?}");
    }
    let last = prog.last().unwrap();
    assert_eq!(last.frame, r.frames);
    assert_eq!(last.percent, 100.0);
    assert!(cgroup_dirs_named(&format!("{}-a1", j.id)).is_empty());
}

#[tokio::test]
async fn completed_jobs_report_cpu_memory_sizes_and_speed() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::detect());
    // A real 2 s 720p encode from the synthetic source to a file.
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":2}}"#);
    let (_h, cancel) = cancel_pair();
    let r = completed(exec.execute(&j, &NoProgress, cancel).await);
    let (user, sys) = (r.user_s.unwrap(), r.sys_s.unwrap());
    assert!(user > 0.0 && sys >= 0.0, "{r:?}");
    assert!(r.peak_rss_mb.unwrap() > 1.0, "{r:?}");
    assert_eq!(r.input_bytes, None, "synthetic source");
    let ratio = r.compression_ratio.unwrap();
    let raw = 1280.0 * 720.0 * 1.5 * r.frames as f64;
    assert!(
        ratio > 1.0 && (ratio - raw / r.output_bytes as f64).abs() < 1e-6,
        "{r:?}"
    );
    assert!(r.speed.unwrap() > 0.0, "{r:?}");

    // That output as the input of a second job: its size is reported.
    let input = d.input.join("in.mp4");
    std::fs::rename(d.output.join(format!("{}-a1.mp4", j.id)), &input).unwrap();
    let j = job(r#"{"scenario":"360p-h264","parameters":{"input":"in.mp4","output_mode":"null"}}"#);
    let (_h, cancel) = cancel_pair();
    let r = completed(exec.execute(&j, &NoProgress, cancel).await);
    assert_eq!(r.input_bytes, Some(std::fs::metadata(&input).unwrap().len()));
    assert!(r.user_s.unwrap() > 0.0 && r.peak_rss_mb.unwrap() > 1.0, "{r:?}");
    assert_eq!(r.compression_ratio, None, "null output");
}

#[tokio::test]
async fn null_output_and_every_codec_encode() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::disabled("not under test"));
    for (scenario, encoder) in [
        ("240p-h264", "libx264"),
        ("240p-h265", "libx265"),
        ("240p-av1", "libsvtav1"),
        ("240p-vp9", "libvpx-vp9"),
    ] {
        let j = job(&format!(
            r#"{{"scenario":"{scenario}","parameters":{{"duration":0.5,"output_mode":"null","bitrate":"500k"}}}}"#
        ));
        let (_h, cancel) = cancel_pair();
        let r = completed(exec.execute(&j, &NoProgress, cancel).await);
        assert_eq!(r.output_bytes, 0);
        assert_eq!(r.encoder, format!("ffmpeg/{encoder}"));
        assert!((14..=16).contains(&r.frames), "{scenario}: {} frames", r.frames);
    }
    assert!(!d.output.exists() || std::fs::read_dir(&d.output).unwrap().next().is_none());
}

#[tokio::test]
async fn unknown_encoder_is_a_terminal_encode_error() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    // A wrapper that asks the real ffmpeg for an encoder it does not have.
    let wrapper = d.input.join("ffmpeg-nope");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nfor a; do shift; [ \"$a\" = libx264 ] && a=libnope; set -- \"$@\" \"$a\"; done\n\
         exec /usr/bin/ffmpeg \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = FfmpegConfig {
        ffmpeg_path: wrapper,
        ..config(&d)
    };
    let exec = FfmpegExecutor::with_cgroups(cfg, Cgroups::detect());
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":1}}"#);
    let (_h, cancel) = cancel_pair();
    let e = failed(exec.execute(&j, &NoProgress, cancel).await);
    assert_eq!(e.kind, ErrorKind::EncodeError, "{e:?}");
    assert!(!e.kind.is_transient());
    assert!(e.message.contains("Unknown encoder 'libnope'"), "{}", e.message);
    assert!(!d.output.join(format!("{}-a1.mp4", j.id)).exists());
}

#[tokio::test]
async fn bad_input_is_a_terminal_encode_error() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    std::fs::write(d.input.join("bad.mp4"), b"this is not a video").unwrap();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::detect());
    let j = job(r#"{"scenario":"720p-h264","parameters":{"input":"bad.mp4"}}"#);
    let (_h, cancel) = cancel_pair();
    let e = failed(exec.execute(&j, &NoProgress, cancel).await);
    assert_eq!(e.kind, ErrorKind::EncodeError, "{e:?}");
    assert!(!e.kind.is_transient());
    assert!(e.message.contains("Invalid data found"), "{}", e.message);
}

#[tokio::test]
async fn node_side_parameter_and_engine_problems() {
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::disabled("not under test"));
    let run = |json: &str| {
        let j = job(json);
        let exec = exec.clone();
        async move {
            let (_h, cancel) = cancel_pair();
            failed(exec.execute(&j, &NoProgress, cancel).await)
        }
    };
    let e = run(r#"{"scenario":"720p-h264","parameters":{"input":"missing.mp4"}}"#).await;
    assert_eq!(e.kind, ErrorKind::InvalidParameter, "{e:?}");
    let e = run(r#"{"scenario":"720p-h264","parameters":{"output_mode":"rtmp"}}"#).await;
    assert_eq!(e.kind, ErrorKind::InvalidParameter);
    assert_eq!(e.message, "rtmp output needs a configured rtmp endpoint");
    let e = run(r#"{"scenario":"720p-h264","engine":"gstreamer"}"#).await;
    assert_eq!(e.kind, ErrorKind::NodeUnavailable);

    let cfg = FfmpegConfig {
        ffmpeg_path: "/nonexistent/bin/ffmpeg".into(),
        ..config(&d)
    };
    let exec = FfmpegExecutor::with_cgroups(cfg, Cgroups::detect());
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":1,"output_mode":"null"}}"#);
    let (_h, cancel) = cancel_pair();
    let e = failed(exec.execute(&j, &NoProgress, cancel).await);
    assert_eq!(e.kind, ErrorKind::NodeUnavailable);
    assert!(e.kind.is_transient());
    assert_eq!(e.message, "ffmpeg not found at /nonexistent/bin/ffmpeg");
}

#[tokio::test]
async fn canceled_before_start_runs_nothing() {
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::disabled("not under test"));
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":30}}"#);
    let (h, cancel) = cancel_pair();
    h.cancel();
    assert_eq!(exec.execute(&j, &NoProgress, cancel).await, ExecOutcome::Canceled);
    assert!(find_process(&j.id.to_string()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_encode_promptly() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let exec = Arc::new(FfmpegExecutor::with_cgroups(config(&d), Cgroups::detect()));
    let j = job(r#"{"scenario":"1080p-h264","parameters":{"duration":30}}"#);
    let id = j.id;
    let rec = Arc::new(Recorder::default());
    let (handle, cancel) = cancel_pair();
    let task = tokio::spawn({
        let (exec, rec) = (exec.clone(), rec.clone());
        async move { exec.execute(&j, &*rec, cancel).await }
    });
    assert!(
        rec.first(Duration::from_secs(20)).await,
        "no progress from a running encode"
    );
    let pid = find_process(&id.to_string()).expect("ffmpeg is running");
    assert!(!group_gone(pid));

    let t0 = Instant::now();
    handle.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("cancel took longer than 15 s")
        .unwrap();
    assert_eq!(outcome, ExecOutcome::Canceled);
    assert!(t0.elapsed() < Duration::from_secs(5), "cancel took {:?}", t0.elapsed());
    assert!(group_gone(pid), "process group {pid} survived the cancel");
    assert!(!d.output.join(format!("{id}-a1.mp4")).exists(), "partial output kept");
    assert!(cgroup_dirs_named(&format!("{id}-a1")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_stops_the_group() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let exec = Arc::new(FfmpegExecutor::with_cgroups(config(&d), Cgroups::detect()));
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":60},"resource_limits":{"timeout_sec":1}}"#);
    let id = j.id;
    let t0 = Instant::now();
    let (_h, cancel) = cancel_pair();
    let task = tokio::spawn({
        let exec = exec.clone();
        async move { exec.execute(&j, &NoProgress, cancel).await }
    });
    let mut pid = None;
    while pid.is_none() && t0.elapsed() < Duration::from_secs(5) && !task.is_finished() {
        pid = find_process(&id.to_string());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = pid.expect("ffmpeg never seen running");
    let outcome = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("timeout not enforced within 20 s")
        .unwrap();
    match outcome {
        ExecOutcome::TimedOut { message } => assert!(message.contains("timeout"), "{message}"),
        other => panic!("expected timed out, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(7), "took {:?}", t0.elapsed());
    assert!(group_gone(pid), "process group {pid} survived the timeout");
    assert!(cgroup_dirs_named(&format!("{id}-a1")).is_empty());
}

#[tokio::test]
async fn limits_are_enforced_and_reported() {
    if !have_ffmpeg() {
        return;
    }
    let d = dirs();
    let cgroups = Cgroups::detect();
    let exec = FfmpegExecutor::with_cgroups(config(&d), cgroups.clone());
    let j = job(
        r#"{"scenario":"240p-h264","parameters":{"duration":1,"output_mode":"null"},
            "resource_limits":{"max_cpu_percent":150,"max_memory_mb":1024}}"#,
    );
    let (_h, cancel) = cancel_pair();
    let r = completed(exec.execute(&j, &NoProgress, cancel).await);
    match cgroups.mode() {
        Some(mode) if cgroups.has_cpu() && cgroups.has_memory() => {
            let v = if mode == ffrtmp_exec::CgroupMode::V1 {
                "v1"
            } else {
                "v2"
            };
            assert_eq!(r.limits, format!("enforced: cgroup {v} cpu=150% memory=1024MiB"));
        }
        _ => {
            eprintln!("cgroups unusable here: {:?}", cgroups.unavailable_reason());
            assert!(r.limits.starts_with("not enforced: "), "{}", r.limits);
        }
    }
    assert!(cgroup_dirs_named(&format!("{}-a1", j.id)).is_empty());

    let exec = FfmpegExecutor::with_cgroups(config(&d), Cgroups::disabled("no cgroupfs in this test"));
    let (_h, cancel) = cancel_pair();
    let r = completed(exec.execute(&j, &NoProgress, cancel).await);
    assert_eq!(r.limits, "not enforced: no job cgroups: no cgroupfs in this test");
}
