//! Parsing FFmpeg's `-progress pipe:1` output into [`Progress`].
//!
//! FFmpeg writes blocks of `key=value` lines, each ended by `progress=continue` (or
//! `progress=end` for the last one). Keys used: `frame`, `fps`, `out_time_us`,
//! `out_time_ms` (which, despite its name, holds microseconds in FFmpeg 5.1), `out_time`
//! (`HH:MM:SS.micro`, fallback) and `speed` (`2.03x` or `N/A`).

use ffrtmp_core::Progress;

/// Incremental parser of `-progress` output; feed it lines, get a [`Progress`] per block.
///
/// ```
/// use ffrtmp_exec::ProgressParser;
/// let mut p = ProgressParser::new(Some(2.0), Some(30.0));
/// assert!(p.feed_line("frame=30").is_none());
/// p.feed_line("fps=29.50");
/// p.feed_line("out_time_us=1000000");
/// p.feed_line("speed=1.5x");
/// let prog = p.feed_line("progress=continue").unwrap();
/// assert_eq!(prog.frame, 30);
/// assert_eq!(prog.percent, 50.0);
/// assert_eq!(prog.speed, 1.5);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ProgressParser {
    expected_duration_s: Option<f64>,
    expected_frames: Option<f64>,
    current: Progress,
    last: Option<Progress>,
    ended: bool,
}

impl ProgressParser {
    /// A parser for an encode expected to produce `expected_duration_s` seconds of output at
    /// `fps` frames per second (either may be unknown; the percent is then estimated from what
    /// is known, or stays 0).
    pub fn new(expected_duration_s: Option<f64>, fps: Option<f64>) -> Self {
        let expected_duration_s = expected_duration_s.filter(|d| d.is_finite() && *d > 0.0);
        let expected_frames = match (expected_duration_s, fps) {
            (Some(d), Some(f)) if f.is_finite() && f > 0.0 => Some((d * f).round().max(1.0)),
            _ => None,
        };
        ProgressParser {
            expected_duration_s,
            expected_frames,
            ..Default::default()
        }
    }

    /// Takes one line (with or without its newline). Returns the block's progress when the
    /// line ends a block (`progress=...`).
    pub fn feed_line(&mut self, line: &str) -> Option<Progress> {
        let (key, value) = line.trim().split_once('=')?;
        let value = value.trim();
        let c = &mut self.current;
        match key.trim() {
            "frame" => c.frame = value.parse().unwrap_or(c.frame),
            "fps" => c.fps = parse_f64(value).unwrap_or(c.fps),
            "out_time_us" | "out_time_ms" => {
                if let Some(us) = value.parse::<i64>().ok().filter(|v| *v >= 0) {
                    c.out_time_s = us as f64 / 1e6;
                }
            }
            // Only a fallback: the microsecond keys come first and are exact.
            "out_time" if c.out_time_s == 0.0 => c.out_time_s = parse_clock(value).unwrap_or(0.0),
            "speed" => c.speed = parse_f64(value.trim_end_matches('x')).unwrap_or(0.0),
            "progress" => {
                self.ended |= value == "end";
                let mut p = std::mem::take(&mut self.current);
                p.percent = self.percent(&p);
                // Keep counters from going backwards when a block omits them.
                if let Some(last) = &self.last {
                    p.frame = p.frame.max(last.frame);
                    p.out_time_s = p.out_time_s.max(last.out_time_s);
                    p.percent = p.percent.max(last.percent);
                }
                self.last = Some(p.clone());
                self.current = Progress {
                    frame: p.frame,
                    out_time_s: 0.0,
                    ..Default::default()
                };
                return Some(p);
            }
            _ => {}
        }
        None
    }

    /// The latest complete block, if any.
    pub fn last(&self) -> Option<&Progress> {
        self.last.as_ref()
    }

    /// Frames in the latest complete block (0 before the first).
    pub fn frames(&self) -> u64 {
        self.last.as_ref().map_or(0, |p| p.frame)
    }

    /// Whether FFmpeg wrote its final `progress=end` block.
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn percent(&self, p: &Progress) -> f64 {
        let by_time = self.expected_duration_s.map(|d| p.out_time_s / d);
        let by_frames = self.expected_frames.map(|f| p.frame as f64 / f);
        let ratio = match (by_time, by_frames) {
            (Some(t), Some(f)) => t.max(f),
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => 0.0,
        };
        (ratio * 100.0).clamp(0.0, 100.0)
    }
}

fn parse_f64(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// `HH:MM:SS.ffffff` to seconds.
fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || h < 0.0 || m < 0.0 || sec < 0.0 {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from `ffmpeg 5.1.9 ... -progress pipe:1 -f lavfi -i testsrc2=size=1280x720:rate=30:duration=2`.
    const CAPTURED: &str = "frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=N/A
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=34
fps=33.50
stream_0_0_q=28.0
bitrate=N/A
total_size=N/A
out_time_us=1033333
out_time_ms=1033333
out_time=00:00:01.033333
dup_frames=0
drop_frames=0
speed=1.02x
progress=continue
frame=60
fps=0.00
stream_0_0_q=-1.0
bitrate=N/A
total_size=N/A
out_time_us=1933333
out_time_ms=1933333
out_time=00:00:01.933333
dup_frames=0
drop_frames=0
speed=3.74x
progress=end
";

    fn parse_all(p: &mut ProgressParser, text: &str) -> Vec<Progress> {
        text.lines().filter_map(|l| p.feed_line(l)).collect()
    }

    #[test]
    fn captured_blocks() {
        let mut p = ProgressParser::new(Some(2.0), Some(30.0));
        let blocks = parse_all(&mut p, CAPTURED);
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].frame, 1);
        assert_eq!(blocks[0].speed, 0.0);
        assert_eq!(blocks[1].frame, 34);
        assert_eq!(blocks[1].fps, 33.5);
        assert!((blocks[1].out_time_s - 1.033333).abs() < 1e-9);
        assert!((blocks[1].percent - 56.666).abs() < 0.01, "{}", blocks[1].percent);
        assert_eq!(blocks[1].speed, 1.02);
        // The last frame's timestamp is 1.93 s, but all 60 frames are out: 100 %.
        assert_eq!(blocks[2].frame, 60);
        assert_eq!(blocks[2].percent, 100.0);
        assert_eq!(blocks[2].speed, 3.74);
        assert!(p.ended());
        assert_eq!(p.frames(), 60);
    }

    #[test]
    fn out_time_ms_holds_microseconds() {
        let mut p = ProgressParser::new(Some(10.0), None);
        let b = parse_all(&mut p, "frame=5\nout_time_ms=2500000\nspeed=N/A\nprogress=continue\n");
        assert_eq!(b[0].out_time_s, 2.5);
        assert_eq!(b[0].percent, 25.0);
    }

    #[test]
    fn unknown_duration_and_odd_values() {
        let mut p = ProgressParser::new(None, Some(30.0));
        let text = "frame=10\nfps=nan\nout_time_us=-9223372036854775807\nout_time=00:01:02.500000\n\
                    speed=  2.5x\nprogress=continue\nframe=N/A\ngarbage line\nprogress=continue\n";
        let b = parse_all(&mut p, text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].fps, 0.0);
        assert_eq!(b[0].out_time_s, 62.5);
        assert_eq!(b[0].speed, 2.5);
        assert_eq!(b[0].percent, 0.0);
        // A block that omits counters does not go backwards.
        assert_eq!(b[1].frame, 10);
        assert_eq!(b[1].out_time_s, 62.5);
        assert!(!p.ended());
    }

    #[test]
    fn handles_crlf_and_percent_is_clamped() {
        let mut p = ProgressParser::new(Some(1.0), Some(30.0));
        let b = parse_all(&mut p, "frame=90\r\nout_time_us=3000000\r\nprogress=end\r\n");
        assert_eq!(b[0].frame, 90);
        assert_eq!(b[0].percent, 100.0);
        assert!(p.ended());
    }
}
