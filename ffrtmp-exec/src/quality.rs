//! The quality pass of `parameters.quality`: the output decoded against its source (for the
//! synthetic source, the same `testsrc2` regenerated) through ffmpeg's `psnr`, `ssim` or
//! `libvmaf` filter. It runs after the encode and outside the job's cgroup, so the job's
//! energy stays the encode's; its own wall time is reported apart.

use std::path::Path;
use std::time::{Duration, Instant};

use ffrtmp_core::quality::{QualityMetric, QualityReport};
use ffrtmp_core::Scenario;

/// Why VMAF is unavailable where ffmpeg lacks the filter.
pub const NO_LIBVMAF: &str = "this node's ffmpeg has no libvmaf filter (Debian's ffmpeg is built without it)";

/// The score in the filter's summary line on ffmpeg's stderr: PSNR's `average:`, SSIM's
/// `All:`, VMAF's `VMAF score:`.
///
/// ```
/// use ffrtmp_core::quality::QualityMetric;
/// use ffrtmp_exec::quality::parse_score;
/// let psnr = "[Parsed_psnr_2 @ 0x1] PSNR y:41.87 u:41.62 v:42.14 average:41.871642 min:40.52 max:44.54\n";
/// assert_eq!(parse_score(QualityMetric::Psnr, psnr), Some(41.871642));
/// let ssim = "[Parsed_ssim_2 @ 0x1] SSIM Y:0.991 (20.6) U:0.993 (22.1) V:0.996 (25.2) All:0.992697 (21.36)\n";
/// assert_eq!(parse_score(QualityMetric::Ssim, ssim), Some(0.992697));
/// assert_eq!(parse_score(QualityMetric::Vmaf, "[libvmaf @ 0x1] VMAF score: 93.5\n"), Some(93.5));
/// ```
pub fn parse_score(metric: QualityMetric, stderr: &str) -> Option<f64> {
    let (line_key, key) = match metric {
        QualityMetric::Psnr => ("PSNR ", "average:"),
        QualityMetric::Ssim => ("SSIM ", "All:"),
        QualityMetric::Vmaf => ("VMAF score", "VMAF score:"),
    };
    let line = stderr.lines().rev().find(|l| l.contains(line_key) && l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    // `inf` for identical frames is a PSNR too.
    rest.split_whitespace().next()?.parse::<f64>().ok()
}

/// Whether `ffmpeg -filters` lists `libvmaf`.
async fn has_libvmaf(ffmpeg: &Path) -> bool {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-filters"])
        .stdin(std::process::Stdio::null());
    match crate::detect::probe_output(cmd, Duration::from_secs(30)).await {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("libvmaf")),
        Err(_) => false,
    }
}

/// Measures `output` against the synthetic source of `scenario` over `duration_s` seconds.
/// Never fails the job: a score that cannot be computed is reported unavailable with the
/// reason.
pub async fn measure_synthetic(
    ffmpeg: &Path,
    output: &Path,
    scenario: &Scenario,
    duration_s: f64,
    metric: QualityMetric,
    timeout: Duration,
) -> QualityReport {
    let filter = match metric {
        QualityMetric::Vmaf if !has_libvmaf(ffmpeg).await => return QualityReport::unavailable(metric, NO_LIBVMAF),
        QualityMetric::Vmaf => "libvmaf",
        other => other.as_str(),
    };
    let source = format!(
        "testsrc2=size={}x{}:rate={}:duration={duration_s}",
        scenario.width, scenario.height, scenario.fps
    );
    // Same time base and start on both sides, so frames pair up one to one.
    let graph = format!("[0:v]settb=AVTB,setpts=PTS-STARTPTS[d];[1:v]settb=AVTB,setpts=PTS-STARTPTS[r];[d][r]{filter}");
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-nostats", "-i"])
        .arg(output)
        .args(["-f", "lavfi", "-i", &source, "-lavfi", &graph, "-f", "null", "-"])
        .stdin(std::process::Stdio::null());
    let started = Instant::now();
    let out = crate::detect::probe_output(cmd, timeout).await;
    let wall_s = Some(started.elapsed().as_secs_f64());
    let out = match out {
        Ok(out) => out,
        Err(e) => return QualityReport::unavailable(metric, format!("the quality pass did not run: {e}")),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    match parse_score(metric, &stderr) {
        Some(score) if out.status.success() => QualityReport {
            metric,
            score: Some(score),
            unavailable_reason: None,
            wall_s,
        },
        _ => {
            let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
            QualityReport {
                wall_s,
                ..QualityReport::unavailable(metric, format!("the quality pass failed: {}", last.trim()))
            }
        }
    }
}
