//! Inputs stay inside the input directory, playlists included, against the real ffmpeg.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{job, Recorder};
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, Executor};
use ffrtmp_exec::{Cgroups, FfmpegConfig, FfmpegExecutor, GstConfig, GstExecutor};

struct Dirs {
    root: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

impl Dirs {
    fn new() -> Dirs {
        let root = tempfile::tempdir().unwrap();
        let input = root.path().join("in");
        let output = root.path().join("out");
        std::fs::create_dir(&input).unwrap();
        Dirs { root, input, output }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.input.join(name), text).unwrap();
    }

    /// An ffmpeg stand-in that records being started, to prove a refusal came first.
    fn tripwire(&self) -> (PathBuf, PathBuf) {
        let marker = self.root.path().join("ffmpeg-started");
        let script = self.root.path().join("ffmpeg");
        std::fs::write(&script, format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script, marker)
    }
}

fn config(d: &Dirs, ffmpeg: &Path) -> FfmpegConfig {
    FfmpegConfig {
        ffmpeg_path: ffmpeg.into(),
        grace: Duration::from_secs(5),
        ..FfmpegConfig::new(&d.input, &d.output)
    }
}

/// The one ffmpeg these tests make media with and encode with.
const FFMPEG: &str = "/usr/bin/ffmpeg";

/// [`FFMPEG`], which these tests need: missing, they fail rather than pass unseen.
fn ffmpeg() -> &'static Path {
    let p = Path::new(FFMPEG);
    assert!(
        p.exists(),
        "{FFMPEG} is needed by the confinement tests (apt-get install ffmpeg)"
    );
    p
}

fn spec(input: &str) -> String {
    format!(r#"{{"scenario":"240p-h264","parameters":{{"input":"{input}","output_mode":"null"}}}}"#)
}

/// A two-second HLS stream of one-second segments in `dir`, made by ffmpeg; `extra` adds
/// muxer options.
fn make_hls(dir: &Path, name: &str, extra: &[&str]) {
    let out = std::process::Command::new(ffmpeg())
        .current_dir(dir)
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=10:duration=2")
        .args([
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-f",
            "hls",
            "-hls_time",
            "1",
            "-hls_list_size",
            "0",
        ])
        .args(extra)
        .arg("-hls_segment_filename")
        .arg(dir.join("seg%d.ts"))
        .arg(dir.join(name))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn playlists_reaching_outside_are_refused_before_ffmpeg_starts() {
    let d = Dirs::new();
    let secret = d.root.path().join("secret.ts");
    std::fs::write(&secret, b"not for jobs").unwrap();
    std::os::unix::fs::symlink(&secret, d.input.join("link.ts")).unwrap();
    std::fs::write(d.input.join("inside.ts"), b"x").unwrap();
    d.write(
        "passwd.m3u8",
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n/etc/passwd\n#EXT-X-ENDLIST\n",
    );
    d.write("up.m3u8", "#EXTM3U\n#EXTINF:1,\ninside.ts\n#EXTINF:1,\n../secret.ts\n");
    d.write(
        "concat.txt",
        &format!("ffconcat version 1.0\nfile '{}'\n", secret.display()),
    );
    d.write("link.m3u8", "#EXTM3U\n#EXTINF:1,\nlink.ts\n");
    let (tripwire, marker) = d.tripwire();
    let exec = FfmpegExecutor::with_cgroups(config(&d, &tripwire), Cgroups::disabled("not under test"));
    for input in ["passwd.m3u8", "up.m3u8", "concat.txt", "link.m3u8", "link.ts"] {
        let (_h, cancel) = cancel_pair();
        match exec.execute(&job(&spec(input)), &Recorder::default(), cancel).await {
            ExecOutcome::Failed { error } => {
                assert_eq!(error.kind, ErrorKind::InvalidParameter, "{input}: {error:?}");
                assert!(
                    error.message.contains("outside the input directory"),
                    "{input}: {}",
                    error.message
                );
            }
            other => panic!("{input}: expected a refusal, got {other:?}"),
        }
        assert!(!marker.exists(), "{input}: ffmpeg was started");
    }
}

#[tokio::test]
async fn a_confined_hls_playlist_is_encoded() {
    let d = Dirs::new();
    std::fs::create_dir(d.input.join("show")).unwrap();
    make_hls(&d.input.join("show"), "index.m3u8", &[]);
    let exec = FfmpegExecutor::with_cgroups(config(&d, ffmpeg()), Cgroups::disabled("not under test"));
    let (_h, cancel) = cancel_pair();
    match exec
        .execute(&job(&spec("show/index.m3u8")), &Recorder::default(), cancel)
        .await
    {
        ExecOutcome::Completed { result } => {
            // Both one-second segments of the 10 fps source were read (one alone gives 10).
            assert!((18..=62).contains(&result.frames), "{result:?}");
        }
        other => panic!("expected completed, got {other:?}"),
    }

    // GStreamer has no protocol whitelist: it takes no playlist, confined or not.
    let gst = GstExecutor::with_cgroups(GstConfig::new(&d.input, &d.output), Cgroups::disabled("not under test"));
    let err = gst.plan(&job(&spec("show/index.m3u8"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidParameter);
    assert!(err.to_string().contains("playlist"), "{err}");
}

#[tokio::test]
async fn an_aes_128_hls_playlist_is_decrypted_and_encoded() {
    let d = Dirs::new();
    let show = d.input.join("enc");
    std::fs::create_dir(&show).unwrap();
    // Debian's FFmpeg opens keys only with a media extension.
    std::fs::write(show.join("key.ts"), [7u8; 16]).unwrap();
    std::fs::write(
        show.join("keyinfo"),
        format!("key.ts\n{}\n", show.join("key.ts").display()),
    )
    .unwrap();
    make_hls(&show, "index.m3u8", &["-hls_key_info_file", "keyinfo"]);
    let list = std::fs::read_to_string(show.join("index.m3u8")).unwrap();
    assert!(list.contains("METHOD=AES-128"), "{list}");
    let exec = FfmpegExecutor::with_cgroups(config(&d, ffmpeg()), Cgroups::disabled("not under test"));
    let (_h, cancel) = cancel_pair();
    match exec
        .execute(&job(&spec("enc/index.m3u8")), &Recorder::default(), cancel)
        .await
    {
        ExecOutcome::Completed { result } => assert!((18..=62).contains(&result.frames), "{result:?}"),
        other => panic!("expected completed, got {other:?}"),
    }
}

#[tokio::test]
async fn ambiguous_or_live_playlists_are_refused_before_ffmpeg_starts() {
    let d = Dirs::new();
    std::fs::write(d.input.join("seg.ts"), b"x").unwrap();
    let end = "#EXT-X-ENDLIST\n";
    for (name, text) in [
        ("live.m3u8", "#EXTM3U\n#EXTINF:1,\nseg.ts\n".to_string()),
        ("rel.m3u8", format!("#EXTM3U\n#EXTINF:1,\nfile:seg.ts\n{end}")),
        ("query.m3u8", format!("#EXTM3U\n#EXTINF:1,\nseg.ts?a=b\n{end}")),
        ("cr.m3u8", format!("#EXTM3U\n#EXT-X-X\r/etc/passwd\nseg.ts\n{end}")),
    ] {
        d.write(name, &text);
    }
    let (tripwire, marker) = d.tripwire();
    let exec = FfmpegExecutor::with_cgroups(config(&d, &tripwire), Cgroups::disabled("not under test"));
    for input in ["live.m3u8", "rel.m3u8", "query.m3u8", "cr.m3u8"] {
        let (_h, cancel) = cancel_pair();
        match exec.execute(&job(&spec(input)), &Recorder::default(), cancel).await {
            ExecOutcome::Failed { error } => assert_eq!(error.kind, ErrorKind::InvalidParameter, "{input}: {error:?}"),
            other => panic!("{input}: expected a refusal, got {other:?}"),
        }
        assert!(!marker.exists(), "{input}: ffmpeg was started");
    }
}

#[tokio::test]
async fn a_manifest_disguised_as_media_is_refused_by_ffmpeg() {
    let d = Dirs::new();
    std::fs::create_dir(d.input.join("show")).unwrap();
    make_hls(&d.input.join("show"), "index.m3u8", &[]);
    // Content FFmpeg would demux as HLS, named and checked as a media file by the agent
    // only if it fails to see the playlist; the format whitelist refuses it regardless.
    std::fs::copy(d.input.join("show/index.m3u8"), d.input.join("show/clip.mp4")).unwrap();
    let exec = FfmpegExecutor::with_cgroups(config(&d, ffmpeg()), Cgroups::disabled("not under test"));
    let cmd = ffrtmp_exec::FfmpegCommand::build(&job(&spec("show/clip.mp4")), exec.config()).unwrap();
    let argv = cmd.argv();
    let at = argv.iter().position(|a| a == "-format_whitelist").unwrap();
    // Ran with the media whitelist (as if the playlist had passed for media), ffmpeg refuses.
    let mut args: Vec<String> = argv[1..].to_vec();
    args[at] = ffrtmp_exec::input::format_whitelist(ffrtmp_exec::input::InputKind::Media);
    let out = std::process::Command::new(ffmpeg()).args(&args).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not on whitelist"), "{err}");
}

#[tokio::test]
async fn workloads_start_in_the_output_directory() {
    let d = Dirs::new();
    std::fs::write(d.input.join("clip.mp4"), b"x").unwrap();
    let seen = d.root.path().join("cwd");
    let script = d.root.path().join("ffmpeg-pwd");
    std::fs::write(&script, format!("#!/bin/sh\npwd > '{}'\nexit 1\n", seen.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec = FfmpegExecutor::with_cgroups(config(&d, &script), Cgroups::disabled("not under test"));
    let (_h, cancel) = cancel_pair();
    let _ = exec
        .execute(&job(&spec("clip.mp4")), &Recorder::default(), cancel)
        .await;
    let cwd = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        Path::new(cwd.trim()),
        d.output.canonicalize().unwrap(),
        "relative opens land here"
    );
}
