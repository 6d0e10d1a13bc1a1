//! Output verification: after an encode to a file, the output is decoded in full and its frame
//! count and duration are checked against what the job asked for, so that a truncated or short
//! file fails the job ([`ErrorKind::OutputInvalid`](ffrtmp_core::ErrorKind::OutputInvalid))
//! instead of completing it.

use std::path::Path;
use std::time::Duration;

use crate::ExecError;

/// What a full decode of an output found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decoded {
    /// Video frames decoded.
    pub frames: u64,
    /// Seconds of video: the end time of the last decoded frame.
    pub duration_s: f64,
}

/// What the job asked for: `duration_s` seconds at `fps`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    /// Seconds of output.
    pub duration_s: f64,
    /// Frames per second.
    pub fps: f64,
}

impl Expected {
    /// Frames the output should hold: `duration × fps`, rounded.
    pub fn frames(&self) -> u64 {
        (self.duration_s * self.fps).round().max(0.0) as u64
    }
}

/// Checks a decode against what was asked: the frame count within ±1 frame and the duration
/// within ±1 frame's duration. The error says what was found and what was asked.
///
/// ```
/// use ffrtmp_exec::verify::{check, Decoded, Expected};
/// let asked = Expected { duration_s: 2.0, fps: 30.0 };
/// assert!(check(&Decoded { frames: 60, duration_s: 2.0 }, &asked).is_ok());
/// assert!(check(&Decoded { frames: 59, duration_s: 1.9667 }, &asked).is_ok());
/// assert_eq!(
///     check(&Decoded { frames: 10, duration_s: 0.3333 }, &asked).unwrap_err(),
///     "output has 10 frames (0.333 s); the job asked for 60 frames (2.000 s at 30 fps)"
/// );
/// ```
pub fn check(found: &Decoded, asked: &Expected) -> Result<(), String> {
    let want = asked.frames();
    let frame_s = if asked.fps > 0.0 { 1.0 / asked.fps } else { 0.0 };
    let frames_ok = found.frames.abs_diff(want) <= 1;
    // A little slack beyond one frame for timestamp rounding in the container.
    let duration_ok = (found.duration_s - asked.duration_s).abs() <= frame_s * 1.01 + 1e-3;
    if frames_ok && duration_ok {
        return Ok(());
    }
    Err(format!(
        "output has {} frames ({:.3} s); the job asked for {want} frames ({:.3} s at {} fps)",
        found.frames, found.duration_s, asked.duration_s, asked.fps
    ))
}

/// The last `frame=` and `out_time_us=` of ffmpeg's `-progress` output.
///
/// ```
/// let text = "frame=30\nout_time_us=1000000\nprogress=continue\nframe=60\nout_time_us=2000000\nprogress=end\n";
/// let d = ffrtmp_exec::verify::parse_progress(text).unwrap();
/// assert_eq!((d.frames, d.duration_s), (60, 2.0));
/// ```
pub fn parse_progress(text: &str) -> Option<Decoded> {
    let mut frames = None;
    let mut time_us: Option<i64> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("frame=") {
            frames = v.trim().parse::<u64>().ok().or(frames);
        } else if let Some(v) = line.strip_prefix("out_time_us=") {
            time_us = v.trim().parse::<i64>().ok().or(time_us);
        }
    }
    Some(Decoded {
        frames: frames?,
        duration_s: time_us.unwrap_or(0).max(0) as f64 / 1e6,
    })
}

/// Decodes the video of `output` in full with `ffmpeg` (to the null muxer) and returns what it
/// found. A file that does not decode to the end is [`ExecError::OutputInvalid`] with ffmpeg's
/// words; an ffmpeg that cannot be run, or a decode running past `timeout`, is an internal
/// error (a retry may succeed).
pub async fn decode(ffmpeg: &Path, output: &Path, timeout: Duration) -> Result<Decoded, ExecError> {
    let mut cmd = tokio::process::Command::new(ffmpeg);
    cmd.args([
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-xerror",
        "-progress",
        "pipe:1",
        "-nostats",
        "-i",
    ])
    .arg(output)
    .args(["-map", "0:v:0", "-f", "null", "-"])
    .stdin(std::process::Stdio::null());
    let out = crate::detect::probe_output(cmd, timeout)
        .await
        .map_err(|e| ExecError::io(format!("verifying {}", output.display()), e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !out.status.success() {
        let why = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no message");
        return Err(ExecError::OutputInvalid(format!(
            "output {name} does not decode: {}",
            why.trim()
        )));
    }
    parse_progress(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| ExecError::OutputInvalid(format!("output {name} holds no video frames")))
}

/// [`decode`] then [`check`]: `Ok` when `output` decodes in full and, when `asked` is known,
/// holds what was asked.
pub async fn verify(
    ffmpeg: &Path,
    output: &Path,
    asked: Option<Expected>,
    timeout: Duration,
) -> Result<Decoded, ExecError> {
    let found = decode(ffmpeg, output, timeout).await?;
    if let Some(asked) = asked {
        check(&found, &asked).map_err(ExecError::OutputInvalid)?;
    }
    Ok(found)
}
