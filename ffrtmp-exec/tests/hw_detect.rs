//! Hardware encoder detection: against the installed FFmpeg (no GPU here, so every listed
//! hardware encoder must be rejected with a reason) and against fake `ffmpeg` scripts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ffrtmp_exec::detect::{hardware_encoders, HwEncoder, HwFamily, HwProbeConfig};

/// Whether this machine has a device a hardware encoder could use.
fn has_gpu_devices() -> bool {
    Path::new("/dev/dri").exists() || Path::new("/dev/nvidia0").exists()
}

#[tokio::test]
async fn installed_ffmpeg_validates_no_hardware_encoder_without_hardware() {
    let ffmpeg = Path::new("/usr/bin/ffmpeg");
    if !ffmpeg.exists() {
        eprintln!("skipped: no /usr/bin/ffmpeg");
        return;
    }
    let listing = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-encoders"])
        .output()
        .unwrap();
    let listed = ffrtmp_exec::detect::parse_hw_encoders(&String::from_utf8_lossy(&listing.stdout));

    let started = Instant::now();
    let found = hardware_encoders(ffmpeg, &HwProbeConfig::default()).await;
    for e in &found {
        eprintln!("{} ({}): {:?}", e.name, e.family.as_str(), e.rejected);
    }
    assert_eq!(found.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), listed);
    for e in &found {
        if let Some(reason) = &e.rejected {
            assert!(!reason.trim().is_empty(), "{}: empty reason", e.name);
        }
    }
    if !has_gpu_devices() {
        assert!(found.iter().all(|e| !e.validated()), "{found:?}");
        for e in found.iter().filter(|e| e.family == HwFamily::Vaapi) {
            assert_eq!(e.rejected.as_deref(), Some("no VAAPI render node /dev/dri/renderD128"));
        }
        for e in found.iter().filter(|e| e.family == HwFamily::Nvenc) {
            // Debian's FFmpeg loads the CUDA driver at run time; without it the encoder cannot open.
            let reason = e.rejected.as_deref().unwrap();
            assert!(
                reason.contains("libcuda") || reason.contains("CUDA"),
                "{}: {reason}",
                e.name
            );
        }
    }
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
}

/// Writes an executable `ffmpeg` script into `dir` that lists `listing` for `-encoders`, records
/// every other invocation's arguments in `calls.log`, and then runs `encode` (shell).
fn fake_ffmpeg(dir: &Path, listing: &str, encode: &str) -> PathBuf {
    let path = dir.join("ffmpeg");
    let log = dir.join("calls.log");
    let script = format!(
        "#!/bin/sh\n\
         case \"$*\" in\n\
         *-encoders*) printf '%s\\n' '{listing}'; exit 0 ;;\n\
         esac\n\
         echo \"$*\" >> '{}'\n\
         {encode}\n",
        log.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn names(found: &[HwEncoder]) -> Vec<(&str, Option<&str>)> {
    found.iter().map(|e| (e.name.as_str(), e.rejected.as_deref())).collect()
}

// One test for all fake scripts: writing an executable while another test thread forks can
// make exec fail with "Text file busy".
#[tokio::test]
async fn fake_ffmpeg_test_encodes_decide_what_is_advertised() {
    let listing = " V....D libx264   libx264 H.264\n V....D h264_nvenc   NVIDIA NVENC H.264 encoder (codec h264)";
    let ok_dir = tempfile::tempdir().unwrap();
    let ok = fake_ffmpeg(ok_dir.path(), listing, "exit 0");
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = fake_ffmpeg(
        bad_dir.path(),
        listing,
        "echo '[h264_nvenc @ 0x5581d0c0] Cannot load libcuda.so.1' >&2\n\
         echo 'Error initializing output stream 0:0 -- Error while opening encoder' >&2\nexit 1",
    );
    let mixed_dir = tempfile::tempdir().unwrap();
    let mixed_listing = " V....D h264_nvenc  NVENC\n V....D hevc_nvenc  NVENC\n V..... h264_qsv  QSV\n \
                         V....D h264_vaapi  VAAPI\n V....D mjpeg_vaapi  MJPEG";
    let mixed = fake_ffmpeg(
        mixed_dir.path(),
        mixed_listing,
        "case \"$*\" in\n*hevc_nvenc*) exec sleep 30 ;;\n*h264_qsv*) exit 3 ;;\nesac\nexit 0",
    );
    let broken_dir = tempfile::tempdir().unwrap();
    let broken = broken_dir.path().join("ffmpeg");
    std::fs::write(&broken, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The test encode exits 0: advertised.
    let found = hardware_encoders(&ok, &HwProbeConfig::default()).await;
    assert_eq!(names(&found), [("h264_nvenc", None)]);
    assert!(found[0].validated());
    assert_eq!(found[0].family, HwFamily::Nvenc);
    let c = calls(ok_dir.path());
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(
        c[0].contains("-f lavfi -i testsrc2=size=256x256:rate=30:duration=0.2"),
        "{}",
        c[0]
    );
    assert!(c[0].ends_with("-c:v h264_nvenc -f null -"), "{}", c[0]);

    // The test encode fails: rejected with FFmpeg's first error line.
    let found = hardware_encoders(&bad, &HwProbeConfig::default()).await;
    assert_eq!(names(&found), [("h264_nvenc", Some("Cannot load libcuda.so.1"))]);
    assert!(!found[0].validated());

    // A hanging test encode times out, a silent failure gets its exit status, a missing render
    // node rejects VAAPI without running it (when that node does exist, its test encode passes).
    let probe = HwProbeConfig {
        vaapi_device: mixed_dir.path().join("renderD128"),
        timeout: Duration::from_millis(500),
        ..HwProbeConfig::default()
    };
    let started = Instant::now();
    let found = hardware_encoders(&mixed, &probe).await;
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let missing = format!("no VAAPI render node {}", probe.vaapi_device.display());
    assert_eq!(
        names(&found),
        [
            ("h264_nvenc", None),
            ("hevc_nvenc", Some("test encode did not finish within 500ms")),
            ("h264_qsv", Some("test encode exited with exit status: 3")),
            ("h264_vaapi", Some(missing.as_str())),
        ]
    );
    let qsv_call = calls(mixed_dir.path())
        .into_iter()
        .find(|c| c.contains("h264_qsv"))
        .unwrap();
    assert!(
        qsv_call.contains("-init_hw_device qsv=hw -filter_hw_device hw"),
        "{qsv_call}"
    );
    assert!(
        qsv_call.contains("hwupload=extra_hw_frames=64,format=qsv"),
        "{qsv_call}"
    );
    assert!(!calls(mixed_dir.path()).iter().any(|c| c.contains("vaapi")));

    std::fs::write(&probe.vaapi_device, b"").unwrap();
    let found = hardware_encoders(&mixed, &probe).await;
    assert_eq!(found[3].name, "h264_vaapi");
    assert!(found[3].validated(), "{found:?}");
    let vaapi_call = calls(mixed_dir.path())
        .into_iter()
        .find(|c| c.contains("h264_vaapi"))
        .unwrap();
    assert!(
        vaapi_call.contains(&format!("-vaapi_device {}", probe.vaapi_device.display())),
        "{vaapi_call}"
    );
    assert!(vaapi_call.contains("-vf format=nv12,hwupload"), "{vaapi_call}");

    // An FFmpeg that cannot list its encoders advertises no hardware encoder.
    assert!(hardware_encoders(&broken, &HwProbeConfig::default()).await.is_empty());
    assert!(
        hardware_encoders(Path::new("/nonexistent/ffmpeg"), &HwProbeConfig::default())
            .await
            .is_empty()
    );
}

/// The `libvmaf` filter is found in a filter list that has it (as an ffmpeg built with
/// `--enable-libvmaf` prints it), and not in one with only its neighbours.
#[test]
fn the_filter_list_parser_finds_libvmaf_only_where_listed() {
    let with = " TS. psnr              VV->V      Calculate the PSNR between two video streams.\n \
                ... libvmaf           VV->V      Calculate the VMAF between two video streams.\n \
                TS. ssim              VV->V      Calculate the SSIM between two video streams.\n";
    assert!(ffrtmp_exec::detect::lists_libvmaf(with));
    let without = " TS. psnr              VV->V      Calculate the PSNR between two video streams.\n \
                   ... vmafmotion        V->V       Calculate the VMAF Motion score.\n";
    assert!(!ffrtmp_exec::detect::lists_libvmaf(without));
    assert!(
        !ffrtmp_exec::detect::lists_libvmaf("libvmaf\n"),
        "the name is the second column"
    );
}

/// On the installed FFmpeg (Debian's has no libvmaf) the advertised metrics are PSNR and SSIM
/// alone; VMAF only where the filter list has it.
#[tokio::test]
async fn the_installed_ffmpeg_advertises_vmaf_only_with_libvmaf() {
    use ffrtmp_core::quality::QualityMetric;
    let ffmpeg = Path::new("/usr/bin/ffmpeg");
    assert!(ffmpeg.exists(), "ffmpeg is needed (scripts/test.sh installs it)");
    let filters = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-filters"])
        .output()
        .unwrap();
    let has = String::from_utf8_lossy(&filters.stdout).contains(" libvmaf ");
    let metrics = ffrtmp_exec::detect::quality_metrics(ffmpeg).await;
    let mut expected = vec![QualityMetric::Psnr, QualityMetric::Ssim];
    if has {
        expected.push(QualityMetric::Vmaf);
    }
    assert_eq!(metrics, expected);
    // A missing ffmpeg advertises no VMAF rather than failing.
    assert!(!ffrtmp_exec::detect::has_libvmaf(Path::new("/nonexistent/ffmpeg")).await);
}
