//! What this node can do: engines and encoders present, cores and memory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ffrtmp_core::quality::QualityMetric;
use ffrtmp_core::Codec;

use crate::cgroup::Cgroups;

/// Software encoders FFmpeg lists in `ffmpeg -encoders` that this node can use.
///
/// Hardware encoders (NVENC, QSV, VAAPI) need a real test encode before they are
/// advertised; they are not listed by this function but by [`hardware_encoders`].
pub async fn software_encoders(ffmpeg: &Path) -> Result<Vec<String>, String> {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-encoders"])
        .stdin(std::process::Stdio::null());
    let out = probe_output(cmd, PROBE_TIMEOUT)
        .await
        .map_err(|e| format!("cannot run {}: {e}", ffmpeg.display()))?;
    if !out.status.success() {
        return Err(format!("{} -encoders exited with {}", ffmpeg.display(), out.status));
    }
    Ok(parse_encoders(&String::from_utf8_lossy(&out.stdout)))
}

/// Picks the known software encoders out of `ffmpeg -encoders` output.
///
/// ```
/// let text = " V....D libx264              libx264 H.264 / AVC\n A....D aac                  AAC\n";
/// assert_eq!(ffrtmp_exec::detect::parse_encoders(text), vec!["libx264".to_string()]);
/// ```
pub fn parse_encoders(text: &str) -> Vec<String> {
    let wanted: Vec<&str> = Codec::ALL.iter().map(|c| c.software_encoder()).collect();
    let mut found = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(flags), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if flags.starts_with('V') && wanted.contains(&name) && !found.iter().any(|f| f == name) {
            found.push(name.to_string());
        }
    }
    found
}

/// Whether an `ffmpeg -filters` listing has the `libvmaf` filter (the name is the second
/// column, after the flags).
///
/// ```
/// use ffrtmp_exec::detect::lists_libvmaf;
/// let with = " ... psnr              VV->V      Calculate the PSNR between two video streams.\n \
///             ... libvmaf           VV->V      Calculate the VMAF between two video streams.\n";
/// assert!(lists_libvmaf(with));
/// assert!(!lists_libvmaf(" ... psnr  VV->V  Calculate the PSNR.\n ... vmafmotion  V->V  VMAF motion score.\n"));
/// ```
pub fn lists_libvmaf(filters: &str) -> bool {
    filters.lines().any(|l| l.split_whitespace().nth(1) == Some("libvmaf"))
}

/// Whether `ffmpeg -filters` lists `libvmaf`; `false` when ffmpeg cannot be run.
pub async fn has_libvmaf(ffmpeg: &Path) -> bool {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-filters"])
        .stdin(std::process::Stdio::null());
    match probe_output(cmd, PROBE_TIMEOUT).await {
        Ok(out) => lists_libvmaf(&String::from_utf8_lossy(&out.stdout)),
        Err(_) => false,
    }
}

/// The quality metrics `ffmpeg` can compute, as the registration advertises them: PSNR and
/// SSIM always (built-in filters), VMAF where it has `libvmaf`.
pub async fn quality_metrics(ffmpeg: &Path) -> Vec<QualityMetric> {
    let mut metrics = vec![QualityMetric::Psnr, QualityMetric::Ssim];
    if has_libvmaf(ffmpeg).await {
        metrics.push(QualityMetric::Vmaf);
    }
    metrics
}

/// Whether this node enforces jobs' CPU and memory limits, as its registration advertises:
/// job cgroups are available with both the cpu and the memory controller. Nodes that do not
/// still run best-effort limits (unlimited, reported `not enforced`), but are never given
/// jobs whose limits are required.
pub fn enforces_limits(cgroups: &Cgroups) -> bool {
    cgroups.unavailable_reason().is_none() && cgroups.has_cpu() && cgroups.has_memory()
}

/// Logical CPUs available to this process.
pub fn cpu_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// Total memory in MiB from `/proc/meminfo` (0 when unreadable).
pub fn memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// The host name from the kernel, or `"unknown"`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The elements of [`GST_ELEMENTS`](crate::gstreamer::GST_ELEMENTS) that this node's
/// GStreamer has, from the listing of `gst-inspect-1.0` (the `gstreamer` engine is usable when
/// this succeeds; which codecs it encodes depends on the encoder elements found).
pub async fn gstreamer_elements(gst_inspect: &Path) -> Result<Vec<String>, String> {
    let mut cmd = tokio::process::Command::new(gst_inspect);
    cmd.stdin(std::process::Stdio::null());
    let out = probe_output(cmd, PROBE_TIMEOUT)
        .await
        .map_err(|e| format!("cannot run {}: {e}", gst_inspect.display()))?;
    if !out.status.success() {
        return Err(format!("{} exited with {}", gst_inspect.display(), out.status));
    }
    Ok(parse_gst_inspect(&String::from_utf8_lossy(&out.stdout)))
}

/// Picks the elements the GStreamer engine uses out of a `gst-inspect-1.0` listing
/// (`plugin:  element: description` lines), in listing order.
///
/// ```
/// let text = "x264:  x264enc: x264 H.264 Encoder\nisomp4:  mp4mux: MP4 Muxer\nzxing:  zxing: Barcode detector\n";
/// assert_eq!(ffrtmp_exec::detect::parse_gst_inspect(text), vec!["x264enc", "mp4mux"]);
/// ```
pub fn parse_gst_inspect(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_plugin), Some(name), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let name = name.trim();
        if crate::gstreamer::GST_ELEMENTS.contains(&name) && !found.iter().any(|f| f == name) {
            found.push(name.to_string());
        }
    }
    found
}

/// How FFmpeg reaches a hardware encoder: the device and upload options differ per family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HwFamily {
    /// NVIDIA NVENC (`*_nvenc`): takes system-memory frames, no device options.
    Nvenc,
    /// Intel Quick Sync Video (`*_qsv`): a QSV device and frames uploaded into it.
    Qsv,
    /// VAAPI (`*_vaapi`): a DRM render node and frames uploaded into it.
    Vaapi,
}

/// The hardware encoders of our codecs that FFmpeg may list, with their family.
pub const HW_ENCODERS: [(&str, HwFamily); 11] = [
    ("h264_nvenc", HwFamily::Nvenc),
    ("hevc_nvenc", HwFamily::Nvenc),
    ("av1_nvenc", HwFamily::Nvenc),
    ("h264_qsv", HwFamily::Qsv),
    ("hevc_qsv", HwFamily::Qsv),
    ("av1_qsv", HwFamily::Qsv),
    ("vp9_qsv", HwFamily::Qsv),
    ("h264_vaapi", HwFamily::Vaapi),
    ("hevc_vaapi", HwFamily::Vaapi),
    ("av1_vaapi", HwFamily::Vaapi),
    ("vp9_vaapi", HwFamily::Vaapi),
];

/// The render node VAAPI encoders use unless configured otherwise.
pub const DEFAULT_VAAPI_DEVICE: &str = "/dev/dri/renderD128";

/// The known hardware encoder called `name` (exactly), with its family.
///
/// ```
/// use ffrtmp_exec::detect::{hardware_encoder, HwFamily};
/// assert_eq!(hardware_encoder("hevc_vaapi"), Some(("hevc_vaapi", HwFamily::Vaapi)));
/// assert_eq!(hardware_encoder("h264_magic"), None);
/// ```
pub fn hardware_encoder(name: &str) -> Option<(&'static str, HwFamily)> {
    HW_ENCODERS.iter().copied().find(|(n, _)| *n == name)
}

impl HwFamily {
    /// `nvenc`, `qsv` or `vaapi`.
    pub fn as_str(self) -> &'static str {
        match self {
            HwFamily::Nvenc => "nvenc",
            HwFamily::Qsv => "qsv",
            HwFamily::Vaapi => "vaapi",
        }
    }

    /// Global options that open the device; they go before the inputs.
    pub fn device_args(self, vaapi_device: &Path) -> Vec<OsString> {
        match self {
            HwFamily::Nvenc => Vec::new(),
            HwFamily::Qsv => ["-init_hw_device", "qsv=hw", "-filter_hw_device", "hw"]
                .map(OsString::from)
                .to_vec(),
            HwFamily::Vaapi => vec!["-vaapi_device".into(), vaapi_device.as_os_str().to_owned()],
        }
    }

    /// The filters that upload software frames into the device, appended to the video filter
    /// chain; `None` when the encoder takes system-memory frames (then `-pix_fmt` applies).
    pub fn upload_filter(self) -> Option<&'static str> {
        match self {
            HwFamily::Nvenc => None,
            HwFamily::Qsv => Some("format=nv12,hwupload=extra_hw_frames=64,format=qsv"),
            HwFamily::Vaapi => Some("format=nv12,hwupload"),
        }
    }
}

/// Settings of the hardware encoder test encodes.
#[derive(Clone, Debug, PartialEq)]
pub struct HwProbeConfig {
    /// The DRM render node for VAAPI; VAAPI encoders are rejected without testing when it
    /// does not exist.
    pub vaapi_device: PathBuf,
    /// Longest a test encode may run before the encoder is rejected.
    pub timeout: Duration,
    /// Seconds of `testsrc2` (256x256, 30 fps) each test encodes.
    pub seconds: f64,
    /// The user the test encodes run as: the workloads' (see [`RunAs`](crate::RunAs)), so
    /// that an encoder is advertised only when the jobs can reach its device. `None`: this
    /// process's user.
    pub run_as: Option<crate::RunAs>,
}

impl Default for HwProbeConfig {
    fn default() -> Self {
        HwProbeConfig {
            vaapi_device: PathBuf::from(DEFAULT_VAAPI_DEVICE),
            timeout: Duration::from_secs(10),
            seconds: 0.2,
            run_as: None,
        }
    }
}

/// A hardware encoder FFmpeg lists, and whether its test encode passed.
#[derive(Clone, Debug, PartialEq)]
pub struct HwEncoder {
    /// The FFmpeg encoder, e.g. `h264_nvenc`.
    pub name: String,
    /// Its family.
    pub family: HwFamily,
    /// `None`: the test encode exited 0 and the encoder may be advertised. Otherwise why it
    /// was rejected (the first error line of FFmpeg, a timeout, a missing device).
    pub rejected: Option<String>,
}

impl HwEncoder {
    /// Whether the test encode passed.
    pub fn validated(&self) -> bool {
        self.rejected.is_none()
    }
}

/// The hardware encoders of our codecs in `ffmpeg -encoders`, each validated by a real short
/// test encode; only those with `rejected == None` may be advertised.
///
/// The families are tested concurrently, the encoders of one family one after the other (so a
/// consumer GPU's limit on concurrent sessions cannot reject one). An FFmpeg that cannot list
/// its encoders yields an empty list.
pub async fn hardware_encoders(ffmpeg: &Path, probe: &HwProbeConfig) -> Vec<HwEncoder> {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args(["-hide_banner", "-encoders"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let listing = probe_output(cmd, PROBE_TIMEOUT).await;
    let listed = match listing {
        Ok(out) if out.status.success() => parse_hw_encoders(&String::from_utf8_lossy(&out.stdout)),
        Ok(out) => {
            tracing::warn!(ffmpeg = %ffmpeg.display(), status = %out.status, "cannot list encoders");
            return Vec::new();
        }
        Err(e) => {
            tracing::warn!(ffmpeg = %ffmpeg.display(), error = %e, "cannot list encoders");
            return Vec::new();
        }
    };
    let family = |f: HwFamily| {
        let names: Vec<&'static str> = listed
            .iter()
            .copied()
            .filter(|n| hardware_encoder(n).is_some_and(|(_, g)| g == f))
            .collect();
        async move {
            let mut tested = Vec::new();
            for name in names {
                tested.push(HwEncoder {
                    name: name.to_string(),
                    family: f,
                    rejected: test_encode(ffmpeg, name, f, probe).await.err(),
                });
            }
            tested
        }
    };
    let (nvenc, qsv, vaapi) = tokio::join!(family(HwFamily::Nvenc), family(HwFamily::Qsv), family(HwFamily::Vaapi));
    let mut all: Vec<HwEncoder> = nvenc.into_iter().chain(qsv).chain(vaapi).collect();
    all.sort_by_key(|e| listed.iter().position(|n| *n == e.name));
    all
}

/// Picks the known hardware encoders ([`HW_ENCODERS`]) out of `ffmpeg -encoders` output, in
/// listing order.
///
/// ```
/// let text = " V....D h264_nvenc  NVIDIA NVENC H.264 encoder\n V....D mjpeg_vaapi  MJPEG (VAAPI)\n";
/// assert_eq!(ffrtmp_exec::detect::parse_hw_encoders(text), vec!["h264_nvenc"]);
/// ```
pub fn parse_hw_encoders(text: &str) -> Vec<&'static str> {
    let mut found: Vec<&'static str> = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(flags), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !flags.starts_with('V') {
            continue;
        }
        if let Some((name, _)) = hardware_encoder(name) {
            if !found.contains(&name) {
                found.push(name);
            }
        }
    }
    found
}

/// The arguments (after the program) of the test encode of `encoder`: `probe.seconds` of
/// 256x256 `testsrc2` at 30 fps through the family's device and upload options into `-f null`.
pub fn hw_test_args(encoder: &str, family: HwFamily, probe: &HwProbeConfig) -> Vec<OsString> {
    let mut a: Vec<OsString> = ["-hide_banner", "-nostdin", "-loglevel", "error"]
        .map(OsString::from)
        .to_vec();
    a.extend(family.device_args(&probe.vaapi_device));
    a.extend(["-f", "lavfi", "-i"].map(OsString::from));
    a.push(format!("testsrc2=size=256x256:rate=30:duration={}", probe.seconds).into());
    match family.upload_filter() {
        Some(f) => a.extend(["-vf", f].map(OsString::from)),
        None => a.extend(["-pix_fmt", "yuv420p"].map(OsString::from)),
    }
    a.extend(["-an", "-c:v", encoder, "-f", "null", "-"].map(OsString::from));
    a
}

/// Runs the test encode of one encoder: `Ok` when it exits 0, else the reason.
async fn test_encode(ffmpeg: &Path, encoder: &str, family: HwFamily, probe: &HwProbeConfig) -> Result<(), String> {
    if family == HwFamily::Vaapi && !probe.vaapi_device.exists() {
        return Err(format!("no VAAPI render node {}", probe.vaapi_device.display()));
    }
    let args = hw_test_args(encoder, family, probe);
    tracing::debug!(ffmpeg = %ffmpeg.display(), ?args, "hardware encoder test encode");
    let mut cmd = tokio::process::Command::new(ffmpeg);
    let user = probe.run_as.as_ref().filter(|u| !u.is_root());
    crate::child_env::scrub(&mut cmd, user);
    if let Some(who) = user.map(crate::RunAs::credentials) {
        // SAFETY: `assume` only makes async-signal-safe calls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || who.assume());
        }
    }
    let child = cmd
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", ffmpeg.display()))?;
    // On timeout the child is dropped, which kills it.
    let out = match tokio::time::timeout(probe.timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("test encode failed: {e}")),
        Err(_) => return Err(format!("test encode did not finish within {:?}", probe.timeout)),
    };
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(first_error_line(&stderr).unwrap_or_else(|| format!("test encode exited with {}", out.status)))
}

/// The first non-empty line of FFmpeg's stderr, without the `[h264_nvenc @ 0x…] ` context.
///
/// ```
/// let err = "\n[h264_nvenc @ 0x55f4c569c300] Cannot load libcuda.so.1\nError initializing output stream\n";
/// assert_eq!(ffrtmp_exec::detect::first_error_line(err).as_deref(), Some("Cannot load libcuda.so.1"));
/// assert_eq!(ffrtmp_exec::detect::first_error_line(" \n"), None);
/// ```
pub fn first_error_line(stderr: &str) -> Option<String> {
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = match line.strip_prefix('[').and_then(|rest| rest.split_once("] ")) {
        Some((context, msg)) if context.contains(" @ ") && !msg.trim().is_empty() => msg.trim(),
        _ => line,
    };
    Some(line.to_string())
}

#[cfg(test)]
mod hw_tests {
    use super::*;

    const DEBIAN_LISTING: &str = "\
Encoders:
 V..... = Video
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V..... h264_qsv             H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (Intel Quick Sync Video acceleration) (codec h264)
 V....D h264_vaapi           H.264/AVC (VAAPI) (codec h264)
 V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)
 V..... hevc_qsv             HEVC (Intel Quick Sync Video acceleration) (codec hevc)
 V....D hevc_vaapi           H.265/HEVC (VAAPI) (codec hevc)
 V..... mjpeg_qsv            MJPEG (Intel Quick Sync Video acceleration) (codec mjpeg)
 V....D mpeg2_vaapi          MPEG-2 (VAAPI) (codec mpeg2video)
 V....D vp8_vaapi            VP8 (VAAPI) (codec vp8)
 V....D vp9_vaapi            VP9 (VAAPI) (codec vp9)
 V..... vp9_qsv              VP9 video (Intel Quick Sync Video acceleration) (codec vp9)
 A....D h264_nvenc_audio     not a video encoder
 V....D av1_nvenc            NVIDIA NVENC av1 encoder (codec av1)
 V....D h264_nvenc           listed twice
";

    #[test]
    fn parses_only_hardware_encoders_of_our_codecs() {
        assert_eq!(
            parse_hw_encoders(DEBIAN_LISTING),
            [
                "h264_nvenc",
                "h264_qsv",
                "h264_vaapi",
                "hevc_nvenc",
                "hevc_qsv",
                "hevc_vaapi",
                "vp9_vaapi",
                "vp9_qsv",
                "av1_nvenc"
            ]
        );
        assert!(parse_hw_encoders("").is_empty());
        // The software listing is unchanged by hardware encoders.
        assert_eq!(parse_encoders(DEBIAN_LISTING), ["libx264"]);
    }

    #[test]
    fn every_known_hardware_encoder_belongs_to_one_of_our_codecs() {
        for (name, family) in HW_ENCODERS {
            assert!(Codec::of_encoder(name).is_some(), "{name}");
            assert!(name.ends_with(family.as_str()), "{name}");
            assert_eq!(hardware_encoder(name), Some((name, family)));
        }
        assert_eq!(hardware_encoder("libx264"), None);
        assert_eq!(hardware_encoder("H264_NVENC"), None);
    }

    fn joined(args: Vec<OsString>) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn test_encode_arguments_per_family() {
        let probe = HwProbeConfig {
            vaapi_device: PathBuf::from("/dev/dri/renderD129"),
            ..HwProbeConfig::default()
        };
        let src = "-f lavfi -i testsrc2=size=256x256:rate=30:duration=0.2";
        assert_eq!(
            joined(hw_test_args("h264_nvenc", HwFamily::Nvenc, &probe)),
            format!("-hide_banner -nostdin -loglevel error {src} -pix_fmt yuv420p -an -c:v h264_nvenc -f null -")
        );
        assert_eq!(
            joined(hw_test_args("hevc_vaapi", HwFamily::Vaapi, &probe)),
            format!(
                "-hide_banner -nostdin -loglevel error -vaapi_device /dev/dri/renderD129 {src} \
                 -vf format=nv12,hwupload -an -c:v hevc_vaapi -f null -"
            )
        );
        assert_eq!(
            joined(hw_test_args("av1_qsv", HwFamily::Qsv, &probe)),
            format!(
                "-hide_banner -nostdin -loglevel error -init_hw_device qsv=hw -filter_hw_device hw {src} \
                 -vf format=nv12,hwupload=extra_hw_frames=64,format=qsv -an -c:v av1_qsv -f null -"
            )
        );
    }

    #[test]
    fn first_error_line_drops_the_context_only() {
        let qsv = "Device creation failed: -542398533.\nFailed to set value 'qsv=hw' for option 'init_hw_device'\n";
        assert_eq!(
            first_error_line(qsv).as_deref(),
            Some("Device creation failed: -542398533.")
        );
        let va = "[AVHWDeviceContext @ 0x56079b7fda80] No VA display found for device /dev/dri/renderD128.\n";
        assert_eq!(
            first_error_line(va).as_deref(),
            Some("No VA display found for device /dev/dri/renderD128.")
        );
        assert_eq!(first_error_line("[in] out\n").as_deref(), Some("[in] out"));
        assert_eq!(first_error_line(""), None);
    }
}

/// Longest a probe (`ffmpeg -encoders`, `gst-inspect-1.0`, `--version`) may take; the first
/// `gst-inspect` on a host scans every plugin, which can take a while.
pub const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a probe command to completion with a time limit. The probe gets its own process
/// group and the allowlisted environment ([`crate::child_env`]); on timeout the whole group
/// is killed (a hung `gst-inspect` leaves its `gst-plugin-scanner` child behind otherwise),
/// so agent start-up can never hang on it.
pub(crate) async fn probe_output(
    mut cmd: tokio::process::Command,
    timeout: std::time::Duration,
) -> std::io::Result<std::process::Output> {
    // Probes see no credentials either: only the allowlisted environment.
    crate::child_env::scrub(&mut cmd, None);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let child = cmd.spawn()?;
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(out) => out,
        Err(_) => {
            if let Some(pid) = pid {
                let group = nix::unistd::Pid::from_raw(pid as i32);
                let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            }
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", timeout.as_secs()),
            ))
        }
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_probe_gives_up_at_the_deadline() {
        let mut cmd = tokio::process::Command::new("sh");
        // The shell and its child both hang; the whole group must go.
        cmd.args(["-c", "sleep 30 & sleep 30"]);
        let started = std::time::Instant::now();
        let err = probe_output(cmd, std::time::Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_probe_that_answers_returns_its_output() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2"]);
        let out = probe_output(cmd, PROBE_TIMEOUT).await.unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    }
}
