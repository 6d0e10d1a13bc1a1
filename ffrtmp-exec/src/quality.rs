//! The quality pass of `parameters.quality`: the output decoded against its source (for the
//! synthetic source, the same `testsrc2` regenerated) through ffmpeg's `psnr`, `ssim` or
//! `libvmaf` filter. It runs after the encode in a cgroup of its own (the attempt key with
//! `-quality`), so the job's energy stays the encode's while the node's meter measures the
//! pass's energy the same way, reported apart with its wall time.

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use ffrtmp_core::quality::{QualityMetric, QualityReport};
use ffrtmp_core::{CancelSignal, ResourceLimits, Scenario};

use crate::cgroup::Cgroups;
use crate::supervise::ProcessSpec;
use crate::workload::run_workload;

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

/// Where and how the quality pass runs: the job attempt's own quality cgroup
/// ([`quality_pass_key`](ffrtmp_core::quality::quality_pass_key)), so the node's energy meter
/// attributes the pass's energy exactly as it does the encode's, yet apart from it.
#[derive(Clone, Debug)]
pub struct QualityPass<'a> {
    /// The ffmpeg to run.
    pub ffmpeg: &'a Path,
    /// The job's cgroups (the pass gets a group without limits).
    pub cgroups: &'a Cgroups,
    /// Name of the pass's cgroup.
    pub cgroup_name: String,
    /// Niceness, as the encode's.
    pub nice: Option<i32>,
    /// The pass is given up after this long.
    pub timeout: Duration,
    /// Stops the pass with the job.
    pub cancel: CancelSignal,
}

/// Measures `output` against the synthetic source of `scenario` over `duration_s` seconds.
/// Never fails the job: a score that cannot be computed is reported unavailable with the
/// reason.
pub async fn measure_synthetic(
    pass: QualityPass<'_>,
    output: &Path,
    scenario: &Scenario,
    duration_s: f64,
    metric: QualityMetric,
) -> QualityReport {
    let filter = match metric {
        QualityMetric::Vmaf if !crate::detect::has_libvmaf(pass.ffmpeg).await => {
            return QualityReport::unavailable(metric, NO_LIBVMAF)
        }
        QualityMetric::Vmaf => "libvmaf",
        other => other.as_str(),
    };
    let source = format!(
        "testsrc2=size={}x{}:rate={}:duration={duration_s}",
        scenario.width, scenario.height, scenario.fps
    );
    // Same time base and start on both sides, so frames pair up one to one.
    let graph = format!("[0:v]settb=AVTB,setpts=PTS-STARTPTS[d];[1:v]settb=AVTB,setpts=PTS-STARTPTS[r];[d][r]{filter}");
    let mut args: Vec<OsString> = ["-nostdin", "-hide_banner", "-nostats", "-i"]
        .map(OsString::from)
        .into();
    args.push(output.as_os_str().to_owned());
    args.extend(["-f", "lavfi", "-i", &source, "-lavfi", &graph, "-f", "null", "-"].map(OsString::from));
    let mut spec = ProcessSpec::new(pass.ffmpeg, args);
    spec.nice = pass.nice;
    spec.timeout = Some(pass.timeout);
    let started = Instant::now();
    let run = run_workload(
        spec,
        &pass.cgroup_name,
        &ResourceLimits::default(),
        pass.cgroups,
        pass.cancel,
        |_| {},
    )
    .await;
    let wall_s = Some(started.elapsed().as_secs_f64());
    let exit = match run {
        Ok(run) => run.exit,
        Err(e) => return QualityReport::unavailable(metric, format!("the quality pass did not run: {e}")),
    };
    let stderr = exit.stderr_tail.join("\n");
    match parse_score(metric, &stderr) {
        Some(score) if exit.success() => QualityReport {
            score: Some(score),
            unavailable_reason: None,
            wall_s,
            ..QualityReport::unavailable(metric, "")
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
