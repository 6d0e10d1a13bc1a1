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
    let qoe = result.live.expect("live QoE in the result");
    println!("ffmpeg QoE: {}", qoe.line());
    assert!((7.5..=8.5).contains(&qoe.uptime_s), "{qoe:?}");
    assert_eq!(qoe.reconnects, 0);
    assert!(
        !qoe.behind_realtime && qoe.speed > 0.9,
        "kept up with real time: {qoe:?}"
    );
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
    let qoe = result.live.expect("live QoE in the result");
    println!("gstreamer QoE: {}", qoe.line());
    assert!((7.5..=8.5).contains(&qoe.uptime_s), "{qoe:?}");
    assert_eq!((qoe.reconnects, qoe.drop_frames), (0, 0), "{qoe:?}");
    assert!(qoe.bitrate_kbps.is_some_and(|b| b > 50.0), "{qoe:?}");
    assert!(
        !qoe.behind_realtime && qoe.speed > 0.9,
        "kept up with real time: {qoe:?}"
    );
}

/// Waits until the server's log shows stream `key` published `times` times.
fn wait_published(server: &RtmpServer, key: &str, times: usize, within: Duration) {
    let needle = format!("publish: name='{key}'");
    let deadline = Instant::now() + within;
    while server.error_log().matches(&needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "{key} not published {times}x: {}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn live_config(d: &Dirs, server: &RtmpServer, window: Duration) -> FfmpegConfig {
    let mut cfg = config(d, server);
    cfg.live.reconnect.window = window;
    cfg.live.reconnect.max_delay = Duration::from_secs(1);
    cfg
}

fn push_spec(url: &str, seconds: u32) -> String {
    format!(
        r#"{{"scenario":"live-rtmp","parameters":{{"duration":{seconds},"resolution":"640x360","preset":"ultrafast","bitrate":"800k","output_mode":"rtmp","output_url":"{url}"}}}}"#
    )
}

/// Pushes 10 s to `key`, restarts nginx 2 s into the stream, and checks that the stream is
/// back on the server (ffprobe) and that the job completes having reconnected and delivered
/// the whole stream. Returns the result for engine-specific checks.
async fn push_survives_a_server_restart(
    exec: Arc<dyn Executor>,
    mut server: RtmpServer,
    key: &'static str,
) -> JobResult {
    let url = server.url(key);
    let running = spawn_job(exec, job(&push_spec(&url, 10)));
    let server = tokio::task::spawn_blocking(move || {
        wait_published(&server, key, 1, Duration::from_secs(15));
        std::thread::sleep(Duration::from_secs(2));
        server.restart();
        // The stream is back on the restarted server (nginx appends to its log).
        wait_published(&server, key, 2, Duration::from_secs(15));
        let probed = probe_live(&server.url(key), Duration::from_secs(15));
        println!("{key}: ffprobe after the restart: {}", probed.line);
        assert_eq!((probed.codec.as_str(), probed.width, probed.height), ("h264", 640, 360));
        server
    })
    .await
    .unwrap();
    let result = completed(
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap()
            .unwrap(),
    );
    let qoe = result.live.clone().expect("live QoE in the result");
    println!("{key}: QoE after a restart: {}", qoe.line());
    assert!(qoe.reconnects >= 1, "{qoe:?}");
    // The whole stream was delivered, across both connections (what was in flight at the
    // kill is lost: at most a second).
    assert!((9.0..=10.5).contains(&qoe.uptime_s), "{qoe:?}");
    assert_eq!(qoe.target_bitrate_kbps, Some(800.0));
    assert!(qoe.bitrate_kbps.is_some_and(|b| b > 50.0 && b < 4000.0), "{qoe:?}");
    drop(server);
    result
}

/// Pushes to `key`, stops nginx once the stream is up, and checks that the job fails with
/// `destination_lost` after reconnecting for the whole `window` and not much longer.
/// Returns the error's message for engine-specific checks.
async fn push_fails_destination_lost_after_the_window(
    exec: Arc<dyn Executor>,
    mut server: RtmpServer,
    key: &'static str,
    window: Duration,
) -> String {
    let url = server.url(key);
    let running = spawn_job(exec, job(&push_spec(&url, 30)));
    let (server, stopped) = tokio::task::spawn_blocking(move || {
        wait_published(&server, key, 1, Duration::from_secs(20));
        server.stop();
        (server, Instant::now())
    })
    .await
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap();
    let took = stopped.elapsed();
    let message = match outcome {
        ExecOutcome::Failed { error } => {
            assert_eq!(error.kind, ErrorKind::DestinationLost, "{error:?}");
            assert!(
                error.message.starts_with(&format!("live destination {url} lost")),
                "{}",
                error.message
            );
            assert!(
                error
                    .message
                    .contains(&format!("{} s reconnect window", window.as_secs())),
                "{}",
                error.message
            );
            error.message
        }
        other => panic!("expected destination_lost, got {other:?}"),
    };
    // Reconnects were tried for the whole window, then it gave up within a backoff delay
    // and the time the engine's process takes to fail.
    assert!(
        took >= window && took < window + Duration::from_secs(5),
        "failed {took:?} after the server stopped"
    );
    drop(server);
    message
}

/// Pushes 720p to `key` with the encode held to 15 % of one core, which cannot keep up with
/// real time, and checks that the result flags it while the whole stream still went out.
async fn a_throttled_push_is_flagged_behind_realtime(exec: Arc<dyn Executor>, server: &RtmpServer, key: &str) {
    let url = server.url(key);
    let spec = format!(
        r#"{{"scenario":"live-rtmp","parameters":{{"duration":3,"preset":"veryfast","output_mode":"rtmp","output_url":"{url}"}},"resource_limits":{{"max_cpu_percent":15}}}}"#
    );
    let (_c, signal) = cancel_pair();
    let result = completed(exec.execute(&job(&spec), &NoProgress, signal).await);
    assert!(result.limits.starts_with("enforced"), "{}", result.limits);
    let qoe = result.live.expect("live QoE in the result");
    println!("{key}: throttled QoE: {}", qoe.line());
    assert!(qoe.behind_realtime, "{qoe:?}");
    assert!(qoe.behind_realtime_s > 2.0 && qoe.min_speed < 0.9, "{qoe:?}");
    assert!(
        (2.5..=3.5).contains(&qoe.uptime_s),
        "the whole stream still went out: {qoe:?}"
    );
}

const NO_CPU_CGROUP: &str = "this test throttles the encode with a CPU cgroup, which this host lacks";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reconnects_when_the_server_comes_back_within_the_window_and_completes() {
    let server = RtmpServer::start();
    let d = dirs();
    let exec = FfmpegExecutor::with_cgroups(live_config(&d, &server, Duration::from_secs(20)), Cgroups::detect());
    push_survives_a_server_restart(Arc::new(exec), server, "reconnect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_server_stays_away_fails_destination_lost_within_the_window() {
    let server = RtmpServer::start();
    let d = dirs();
    let window = Duration::from_secs(3);
    let exec = FfmpegExecutor::with_cgroups(live_config(&d, &server, window), Cgroups::detect());
    push_fails_destination_lost_after_the_window(Arc::new(exec), server, "gone", window).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_cannot_keep_up_with_real_time_is_flagged_behind_realtime() {
    let server = RtmpServer::start();
    let d = dirs();
    let mut cfg = config(&d, &server);
    cfg.live.behind_limit = Duration::from_secs(2);
    let exec = FfmpegExecutor::with_cgroups(cfg, Cgroups::detect());
    assert!(exec.cgroups().has_cpu(), "{NO_CPU_CGROUP}");
    a_throttled_push_is_flagged_behind_realtime(Arc::new(exec), &server, "slow").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_abr_job_pulls_a_published_stream_and_pushes_every_rendition_back() {
    let server = RtmpServer::start();
    let d = dirs();
    let _publisher = rtmp_server::Publisher::start(&server.url("camera"), 640, 360, 30, 40);
    wait_published(&server, "camera", 1, Duration::from_secs(15));
    let exec = FfmpegExecutor::with_cgroups(config(&d, &server), Cgroups::detect());
    // The ladder of a 360p source, small enough to stay real time on a loaded CI machine.
    let spec = format!(
        r#"{{"scenario":"live-abr","parameters":{{"input_url":"{}","resolution":"640x360","duration":12,"preset":"ultrafast","bitrate":"1M","output_mode":"rtmp","output_url":"{}"}}}}"#,
        server.url("camera"),
        server.url("abr")
    );
    let running = spawn_job(Arc::new(exec), job(&spec));
    let probes: Vec<_> = ["abr_360p", "abr_240p", "abr_160p"]
        .into_iter()
        .map(|key| {
            let url = server.url(key);
            tokio::task::spawn_blocking(move || (key, probe_live(&url, Duration::from_secs(25))))
        })
        .collect();
    let mut seen = Vec::new();
    for p in probes {
        let (key, probed) = p.await.unwrap();
        println!("{key}: ffprobe: {}", probed.line);
        seen.push((key, probed.codec, probed.width, probed.height, probed.fps));
    }
    assert!(
        !running.is_finished(),
        "the job ended before every rendition was probed"
    );
    let h264 = || "h264".to_string();
    let fps = || "30/1".to_string();
    assert_eq!(
        seen,
        [
            ("abr_360p", h264(), 640, 360, fps()),
            ("abr_240p", h264(), 428, 240, fps()),
            ("abr_160p", h264(), 286, 160, fps()),
        ]
    );
    let result = completed(
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap()
            .unwrap(),
    );
    let qoe = result.live.expect("live QoE in the result");
    println!("live-abr QoE: {}", qoe.line());
    assert!((10.0..=12.5).contains(&qoe.uptime_s), "{qoe:?}");
}

async fn gst(cfg: FfmpegConfig) -> GstExecutor {
    GstExecutor::detect_with_cgroups(GstConfig::from_ffmpeg(&cfg), Cgroups::detect())
        .await
        .expect("GStreamer with rtmp2sink (scripts/test.sh installs it)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_push_reconnects_when_the_server_comes_back_within_the_window_and_completes() {
    let server = RtmpServer::start();
    let d = dirs();
    let exec = gst(live_config(&d, &server, Duration::from_secs(20))).await;
    let result = push_survives_a_server_restart(Arc::new(exec), server, "gst-reconnect").await;
    assert_eq!(result.encoder, "gstreamer/x264enc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_push_whose_server_goes_away_fails_destination_lost() {
    let server = RtmpServer::start();
    let d = dirs();
    let window = Duration::from_secs(3);
    let exec = gst(live_config(&d, &server, window)).await;
    let message = push_fails_destination_lost_after_the_window(Arc::new(exec), server, "gst-gone", window).await;
    assert!(!message.contains("(0 reconnects"), "{message}");
}

/// Keeps every progress update a job sends.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<ffrtmp_core::Progress>>);

impl ffrtmp_core::ProgressSink for Recorded {
    fn update(&self, progress: ffrtmp_core::Progress) {
        self.0.lock().unwrap().push(progress);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_sends_its_running_qoe_with_its_progress_while_it_streams() {
    let server = RtmpServer::start();
    let d = dirs();
    let exec = Arc::new(FfmpegExecutor::with_cgroups(config(&d, &server), Cgroups::detect()));
    let sink = Arc::new(Recorded::default());
    let (job, exec2, sink2) = (
        job(&push_spec(&server.url("qoe-progress"), 6)),
        exec.clone(),
        sink.clone(),
    );
    let running = tokio::spawn(async move {
        let (_cancel, signal) = cancel_pair();
        exec2.execute(&job, &*sink2, signal).await
    });
    // Wait, while the job still runs, for an update whose QoE has a measured window.
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        let seen = sink.0.lock().unwrap().iter().rev().find_map(|p| p.live.clone());
        if let Some(l) = seen.filter(|l| l.uptime_s >= 2.5) {
            break l;
        }
        assert!(!running.is_finished(), "the push ended without QoE in its progress");
        assert!(
            Instant::now() < deadline,
            "no live QoE in progress: {:?}",
            sink.0.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!running.is_finished(), "QoE must arrive while the stream runs");
    println!("running QoE: {live:?}");
    assert!(live.speed > 0.5 && live.speed < 2.0, "{live:?}");
    assert!(live.bitrate_kbps.is_some_and(|b| b > 50.0 && b < 4000.0), "{live:?}");
    assert_eq!((live.reconnects, live.behind_realtime), (0, false));
    let result = completed(
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap()
            .unwrap(),
    );
    let end = result.live.expect("live QoE in the result");
    assert!(end.uptime_s >= live.uptime_s, "{end:?} vs {live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_push_reads_its_bitrate_and_dropped_and_duplicated_frames_into_its_progress() {
    let server = RtmpServer::start();
    let d = dirs();
    // 4 s at 25 fps pushed as the scenario's 30 fps: videorate duplicates one frame in five.
    make_input(&d, "in25.mp4", 25, 4);
    let exec = Arc::new(gst(config(&d, &server)).await);
    let exec2 = exec.clone();
    let url = server.url("gst-qoe");
    let spec = format!(
        r#"{{"scenario":"live-rtmp","parameters":{{"input":"in25.mp4","resolution":"640x360","preset":"ultrafast","bitrate":"800k","output_mode":"rtmp","output_url":"{url}"}}}}"#
    );
    let sink = Arc::new(Recorded::default());
    let (first, sink2) = (job(&spec), sink.clone());
    let running = tokio::spawn(async move {
        let (_cancel, signal) = cancel_pair();
        exec.execute(&first, &*sink2, signal).await
    });
    // While the job runs, its progress carries duplicated frames read from the pipeline.
    let deadline = Instant::now() + Duration::from_secs(20);
    let live = loop {
        let seen = sink.0.lock().unwrap().iter().rev().find_map(|p| p.live.clone());
        if let Some(l) = seen.filter(|l| l.dup_frames > 0 && l.uptime_s >= 1.0) {
            break l;
        }
        assert!(
            !running.is_finished(),
            "the push ended without duplicated frames in its progress"
        );
        assert!(
            Instant::now() < deadline,
            "no live QoE in progress: {:?}",
            sink.0.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!running.is_finished(), "QoE must arrive while the stream runs");
    println!("gstreamer running QoE: {live:?}");
    assert!(live.bitrate_kbps.is_some_and(|b| b > 50.0 && b < 4000.0), "{live:?}");
    let result = completed(
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap()
            .unwrap(),
    );
    let qoe = result.live.expect("live QoE in the result");
    println!("gstreamer QoE of a 25 fps input: {}", qoe.line());
    // 100 frames in, 120 out.
    assert!((15..=25).contains(&qoe.dup_frames), "{qoe:?}");
    assert_eq!((qoe.drop_frames, qoe.reconnects), (0, 0), "{qoe:?}");
    assert!((3.5..=4.5).contains(&qoe.uptime_s), "{qoe:?}");
    assert_eq!(qoe.target_bitrate_kbps, Some(800.0));
    let kbps = qoe.bitrate_kbps.expect("a measured bitrate");
    assert!((400.0..=1200.0).contains(&kbps), "800 kbit/s asked: {qoe:?}");
    assert!(!qoe.behind_realtime && qoe.speed > 0.8, "{qoe:?}");

    // 2 s at 50 fps pushed as 30 fps: videorate drops two frames in five.
    make_input(&d, "in50.mp4", 50, 2);
    let spec = spec.replace("in25.mp4", "in50.mp4").replace("gst-qoe", "gst-qoe50");
    let (_c, signal) = cancel_pair();
    let result = completed(exec2.execute(&job(&spec), &NoProgress, signal).await);
    let qoe = result.live.expect("live QoE in the result");
    println!("gstreamer QoE of a 50 fps input: {}", qoe.line());
    // 100 frames in, 60 out.
    assert!((35..=45).contains(&qoe.drop_frames), "{qoe:?}");
    assert_eq!(qoe.dup_frames, 0, "{qoe:?}");
}

/// Writes `seconds` of a synthetic 360p H.264 video at `fps` to the input directory.
fn make_input(d: &Dirs, name: &str, fps: u32, seconds: u32) {
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate={fps}"))
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast"])
        .arg(d.input.join(name))
        .status()
        .unwrap();
    assert!(made.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gstreamer_push_that_cannot_keep_up_with_real_time_is_flagged_behind_realtime() {
    let server = RtmpServer::start();
    let d = dirs();
    let mut cfg = config(&d, &server);
    cfg.live.behind_limit = Duration::from_secs(2);
    let exec = gst(cfg).await;
    assert!(exec.cgroups().has_cpu(), "{NO_CPU_CGROUP}");
    a_throttled_push_is_flagged_behind_realtime(Arc::new(exec), &server, "gst-slow").await;
}
