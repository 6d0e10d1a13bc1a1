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

async fn quality_of(metric: &str) -> ffrtmp_core::quality::QualityReport {
    let d = dirs();
    let cfg = FfmpegConfig {
        ffmpeg_path: "/usr/bin/ffmpeg".into(),
        grace: Duration::from_secs(5),
        ..FfmpegConfig::new(&d.input, &d.output)
    };
    let exec = FfmpegExecutor::with_cgroups(cfg, Cgroups::detect());
    let j = job(&format!(
        r#"{{"scenario":"720p-h264","parameters":{{"duration":1,"quality":"{metric}"}}}}"#
    ));
    let (_h, cancel) = cancel_pair();
    match exec.execute(&j, &NoProgress, cancel).await {
        ExecOutcome::Completed { result } => *result.quality.expect("a quality report"),
        other => panic!("expected completed, got {other:?}"),
    }
}

#[tokio::test]
async fn psnr_and_ssim_are_measured_against_the_regenerated_source() {
    let psnr = quality_of("psnr").await;
    let db = psnr.score.unwrap_or_else(|| panic!("{psnr:?}"));
    // A veryfast x264 encode of testsrc2 at the scenario's bitrate: good, not lossless.
    assert!((30.0..80.0).contains(&db), "psnr {db} dB");
    assert!(psnr.wall_s.unwrap() > 0.0);
    let ssim = quality_of("ssim").await;
    let s = ssim.score.unwrap_or_else(|| panic!("{ssim:?}"));
    assert!((0.9..=1.0).contains(&s), "ssim {s}");
    let json = serde_json::to_value(&ssim).unwrap();
    assert_eq!(json["metric"], "ssim");
}

#[tokio::test]
async fn vmaf_says_why_when_ffmpeg_has_no_libvmaf() {
    let filters = std::process::Command::new("/usr/bin/ffmpeg")
        .args(["-hide_banner", "-filters"])
        .output()
        .unwrap();
    let has = String::from_utf8_lossy(&filters.stdout)
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("libvmaf"));
    let vmaf = quality_of("vmaf").await;
    if has {
        assert!(vmaf.score.is_some_and(|s| (0.0..=100.0).contains(&s)), "{vmaf:?}");
    } else {
        assert_eq!(vmaf.score, None);
        assert_eq!(
            vmaf.unavailable_reason.as_deref(),
            Some(ffrtmp_exec::quality::NO_LIBVMAF)
        );
    }
}
