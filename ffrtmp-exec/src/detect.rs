//! What this node can do: engines and encoders present, cores and memory.

use std::path::Path;

use ffrtmp_core::Codec;

/// Software encoders FFmpeg lists in `ffmpeg -encoders` that this node can use.
///
/// Hardware encoders (NVENC, QSV, VAAPI) need a real test encode before they are
/// advertised; they are not listed by this function.
pub async fn software_encoders(ffmpeg: &Path) -> Result<Vec<String>, String> {
    let out = tokio::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-encoders"])
        .stdin(std::process::Stdio::null())
        .output()
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
    let out = tokio::process::Command::new(gst_inspect)
        .stdin(std::process::Stdio::null())
        .output()
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
