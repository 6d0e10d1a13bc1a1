//! Inputs stay inside the input directory, playlists included, against the real ffmpeg.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{have_ffmpeg, job, Recorder};
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

fn spec(input: &str) -> String {
    format!(r#"{{"scenario":"240p-h264","parameters":{{"input":"{input}","output_mode":"null"}}}}"#)
}

/// A two-second HLS stream of one-second segments in `dir`, made by ffmpeg.
fn make_hls(dir: &Path, name: &str) {
    let out = std::process::Command::new("ffmpeg")
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
    if !have_ffmpeg() {
        return;
    }
    let d = Dirs::new();
    std::fs::create_dir(d.input.join("show")).unwrap();
    make_hls(&d.input.join("show"), "index.m3u8");
    let exec = FfmpegExecutor::with_cgroups(
        config(&d, Path::new("/usr/bin/ffmpeg")),
        Cgroups::disabled("not under test"),
    );
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
