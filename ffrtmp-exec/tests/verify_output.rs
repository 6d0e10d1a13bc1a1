//! Output verification with the real `/usr/bin/ffmpeg`: a good encode to a file completes, a
//! short or truncated one fails the job with the terminal kind `output_invalid`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::job;
use ffrtmp_core::{cancel_pair, ErrorKind, ExecOutcome, Executor, NoProgress};
use ffrtmp_exec::{Cgroups, FfmpegConfig, FfmpegExecutor};

struct Dirs {
    root: tempfile::TempDir,
    input: PathBuf,
    output: PathBuf,
}

fn dirs() -> Dirs {
    assert!(Path::new("/usr/bin/ffmpeg").exists(), "/usr/bin/ffmpeg is required");
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    let output = root.path().join("out");
    std::fs::create_dir(&input).unwrap();
    Dirs { root, input, output }
}

/// An ffmpeg that encodes with the real one and then, for encodes (the synthetic source),
/// runs `damage` on the output file `$out`; other calls (the verifying decode) pass through.
fn damaging_ffmpeg(d: &Dirs, damage: &str) -> PathBuf {
    let wrapper = d.root.path().join("ffmpeg-damaging");
    let script = format!(
        "#!/bin/sh\n/usr/bin/ffmpeg \"$@\" || exit $?\ncase \"$*\" in *lavfi*) ;; *) exit 0 ;; esac\n\
         for a; do out=\"$a\"; done\n{damage}\n"
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

async fn run(d: &Dirs, ffmpeg: &Path) -> (ExecOutcome, PathBuf) {
    let cfg = FfmpegConfig {
        ffmpeg_path: ffmpeg.to_path_buf(),
        grace: Duration::from_secs(5),
        ..FfmpegConfig::new(&d.input, &d.output)
    };
    let exec = FfmpegExecutor::with_cgroups(cfg, Cgroups::detect());
    let j = job(r#"{"scenario":"720p-h264","parameters":{"duration":1}}"#);
    let (_h, cancel) = cancel_pair();
    let outcome = exec.execute(&j, &NoProgress, cancel).await;
    (outcome, d.output.join(format!("{}-a1.mp4", j.id)))
}

#[tokio::test]
async fn a_complete_output_passes_verification() {
    let d = dirs();
    let (outcome, out) = run(&d, Path::new("/usr/bin/ffmpeg")).await;
    match outcome {
        ExecOutcome::Completed { result } => assert_eq!(result.exit_code, Some(0)),
        other => panic!("expected completed, got {other:?}"),
    }
    let found = ffrtmp_exec::verify::decode(Path::new("/usr/bin/ffmpeg"), &out, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!((found.frames, found.duration_s), (30, 1.0));
}

#[tokio::test]
async fn an_output_with_fewer_frames_than_asked_is_output_invalid() {
    let d = dirs();
    let ffmpeg = damaging_ffmpeg(
        &d,
        "/usr/bin/ffmpeg -v error -y -i \"$out\" -frames:v 10 -c copy \"$out.short.mp4\" && mv \"$out.short.mp4\" \"$out\"",
    );
    let (outcome, out) = run(&d, &ffmpeg).await;
    let error = match outcome {
        ExecOutcome::Failed { error } => error,
        other => panic!("expected failed, got {other:?}"),
    };
    assert_eq!(error.kind, ErrorKind::OutputInvalid, "{error:?}");
    assert!(!error.kind.is_transient());
    assert_eq!(
        error.message,
        "output has 10 frames (0.333 s); the job asked for 30 frames (1.000 s at 30 fps)"
    );
    assert!(!out.exists(), "the invalid output is removed");
    let json = serde_json::to_value(error.kind).unwrap();
    assert_eq!(json, "output_invalid");
}

#[tokio::test]
async fn a_truncated_output_is_output_invalid() {
    let d = dirs();
    let ffmpeg = damaging_ffmpeg(&d, "head -c 20000 \"$out\" > \"$out.cut\" && mv \"$out.cut\" \"$out\"");
    let (outcome, _) = run(&d, &ffmpeg).await;
    let error = match outcome {
        ExecOutcome::Failed { error } => error,
        other => panic!("expected failed, got {other:?}"),
    };
    assert_eq!(error.kind, ErrorKind::OutputInvalid, "{error:?}");
    assert!(error.message.contains("does not decode"), "{}", error.message);
}
