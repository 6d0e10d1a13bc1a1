//! Live streaming through a real RTMP server (nginx with the RTMP module, see
//! `support/rtmp_server.rs`): both engines push a `live-rtmp` job that ffprobe reads back
//! while it runs; destinations and sources outside the node's allowed prefixes are refused
//! before any process starts.

mod common;
#[path = "support/rtmp_server.rs"]
mod rtmp_server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::job;
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, Executor, Job, JobResult, NoProgress};
use ffrtmp_exec::gstreamer::{GstConfig, GstExecutor};
use ffrtmp_exec::{Cgroups, FfmpegConfig, FfmpegExecutor};
use rtmp_server::{probe_live, RtmpServer};

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

fn config(d: &Dirs, server: &RtmpServer) -> FfmpegConfig {
    FfmpegConfig {
        ffmpeg_path: "/usr/bin/ffmpeg".into(),
        grace: Duration::from_secs(5),
        allow_output_prefixes: vec![server.prefix()],
        allow_input_prefixes: vec![server.prefix()],
        ..FfmpegConfig::new(&d.input, &d.output)
    }
}

fn completed(o: ExecOutcome) -> JobResult {
    match o {
        ExecOutcome::Completed { result } => result,
        other => panic!("expected completed, got {other:?}"),
    }
}

/// Runs `job` on `exec` in the background.
fn spawn_job(exec: Arc<dyn Executor>, job: Job) -> tokio::task::JoinHandle<ExecOutcome> {
    tokio::spawn(async move {
        let (_cancel, signal) = cancel_pair();
        exec.execute(&job, &NoProgress, signal).await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_and_sources_outside_the_allowed_prefixes_are_refused_before_anything_runs() {
    let server = RtmpServer::start();
    let d = dirs();
    // No ffmpeg at this path: a job that got as far as starting one would fail node_unavailable.
    let cfg = FfmpegConfig {
        ffmpeg_path: "/nonexistent/ffmpeg".into(),
        ..config(&d, &server)
    };
    let gst = GstExecutor::with_cgroups(
        GstConfig {
            gst_launch_path: "/nonexistent/gst-launch-1.0".into(),
            ..GstConfig::from_ffmpeg(&cfg)
        },
        Cgroups::disabled("not under test"),
    );
    let ffmpeg = FfmpegExecutor::with_cgroups(cfg, Cgroups::disabled("not under test"));
    let elsewhere = "rtmp://127.0.0.2:1935/live/stolen";
    let cases = [
        (
            format!(r#"{{"scenario":"live-rtmp","parameters":{{"output_mode":"rtmp","output_url":"{elsewhere}"}}}}"#),
            format!(
                "destination {elsewhere} refused: this node pushes only to {}*",
                server.prefix()
            ),
        ),
        (
            r#"{"scenario":"live-rtmp","parameters":{"input_url":"rtmp://10.1.2.3/live/cam","output_mode":"null"}}"#
                .to_string(),
            format!(
                "live source rtmp://10.1.2.3/live/cam refused: this node pulls only from {}*",
                server.prefix()
            ),
        ),
    ];
    for (spec, message) in cases {
        for exec in [&ffmpeg as &dyn Executor, &gst as &dyn Executor] {
            let (_c, signal) = cancel_pair();
            match exec.execute(&job(&spec), &NoProgress, signal).await {
                ExecOutcome::Failed { error } => {
                    assert_eq!(error.kind, ErrorKind::DestinationRefused, "{spec}: {error:?}");
                    assert_eq!(error.message, message);
                }
                other => panic!("{spec}: expected a refusal, got {other:?}"),
            }
        }
    }
    // Nothing reached the server.
    assert!(!server.error_log().contains("publish:"), "{}", server.error_log());
}

/// A `live-rtmp` job (720p30 H.264) pushed to the server for 8 s by `exec`: ffprobe reads the
/// stream back from the server while the job runs.
async fn live_rtmp_is_probed_while_it_runs(exec: Arc<dyn Executor>, server: &RtmpServer, key: &str) -> JobResult {
    let url = server.url(key);
    let spec = format!(
        r#"{{"scenario":"live-rtmp","parameters":{{"duration":8,"preset":"ultrafast","output_mode":"rtmp","output_url":"{url}"}}}}"#
    );
    let started = Instant::now();
    let running = spawn_job(exec, job(&spec));
    let probe_url = url.clone();
    let probed = tokio::task::spawn_blocking(move || probe_live(&probe_url, Duration::from_secs(20)))
        .await
        .unwrap();
    println!("{key}: ffprobe {url}: {}", probed.line);
    assert!(!running.is_finished(), "the job ended before ffprobe saw its stream");
    assert_eq!(
        (probed.codec.as_str(), probed.width, probed.height, probed.fps.as_str()),
        ("h264", 1280, 720, "30/1"),
        "{}",
        server.error_log()
    );
    let result = completed(
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap()
            .unwrap(),
    );
    // Real time: 8 s of stream take about 8 s.
    assert!(started.elapsed() >= Duration::from_secs(7), "{:?}", started.elapsed());
    assert!(
        (230..=250).contains(&result.frames),
        "8 s at 30 fps: {} frames",
        result.frames
    );
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ffmpeg_live_rtmp_job_is_on_the_server_with_the_scenarios_codec_size_and_rate() {
    let server = RtmpServer::start();
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(config(&d, &server), Cgroups::detect());
    let result = live_rtmp_is_probed_while_it_runs(Arc::new(exec), &server, "ffmpeg-720p").await;
    assert_eq!(result.encoder, "ffmpeg/libx264");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_live_rtmp_job_is_on_the_server_with_the_scenarios_codec_size_and_rate() {
    let server = RtmpServer::start();
    let d = dirs();
    let gst = GstExecutor::detect_with_cgroups(GstConfig::from_ffmpeg(&config(&d, &server)), Cgroups::detect())
        .await
        .expect("GStreamer with rtmp2sink (scripts/test.sh installs it)");
    let result = live_rtmp_is_probed_while_it_runs(Arc::new(gst), &server, "gst-720p").await;
    assert_eq!(result.encoder, "gstreamer/x264enc");
}
