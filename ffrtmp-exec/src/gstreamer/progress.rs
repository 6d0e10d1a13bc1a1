//! [`GstProgressParser`]: frames and progress from `gst-launch-1.0 -v` output.

use std::time::Duration;

use ffrtmp_core::Progress;

use super::{FRAMES_ELEMENT, PROGRESS_ELEMENT};

#[cfg(doc)]
use super::GstPipeline;

/// Incremental parser of `gst-launch-1.0 -v` output of a [`GstPipeline`]: counts the frames
/// the `identity` reports (one `last-message = chain` line each, with its timestamp) and
/// returns a [`Progress`] for each `progressreport` line (once a second).
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_exec::gstreamer::GstProgressParser;
/// let mut p = GstProgressParser::new(30.0, Some(60));
/// let frame = "/GstPipeline:pipeline0/GstIdentity:ffrtmp_frames: last-message = chain   ******* \
///              (ffrtmp_frames:sink) (1382400 bytes, dts: none, pts: 0:00:00.966666666, \
///              duration: 0:00:00.033333334, offset: 29, offset_end:  30, flags: 00000000 ) 0x5581";
/// for _ in 0..30 {
///     assert!(p.feed_line(frame, Duration::from_secs(1)).is_none());
/// }
/// let prog = p.feed_line("ffrtmp_progress (00:00:01): 1 / 2 seconds (50.0 %)", Duration::from_secs(1)).unwrap();
/// assert_eq!((prog.frame, prog.percent, prog.fps), (30, 50.0, 30.0));
/// assert!((prog.out_time_s - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Debug, Default)]
pub struct GstProgressParser {
    fps: f64,
    expected_frames: Option<u64>,
    frames: u64,
    out_time_s: f64,
    source_percent: f64,
    last: Option<Progress>,
    eos: bool,
}

impl GstProgressParser {
    /// A parser for an encode at `fps` frames per second, expected to produce
    /// `expected_frames` frames when known (the percent is then frames / expected; otherwise
    /// it is the source position over its duration, as `progressreport` says).
    pub fn new(fps: f64, expected_frames: Option<u64>) -> Self {
        GstProgressParser {
            fps: if fps.is_finite() && fps > 0.0 { fps } else { 0.0 },
            expected_frames: expected_frames.filter(|n| *n > 0),
            ..Default::default()
        }
    }

    /// Takes one stdout line; `elapsed` is the wall time since the pipeline started (for
    /// the rate and speed). Returns a progress block on each `progressreport` line.
    pub fn feed_line(&mut self, line: &str, elapsed: Duration) -> Option<Progress> {
        let line = line.trim();
        if line.contains(": last-message = chain") && line.contains(FRAMES_ELEMENT) {
            self.frames += 1;
            if let Some(pts) = field(line, "pts:").and_then(parse_clock) {
                let duration = field(line, "duration:").and_then(parse_clock).unwrap_or(0.0);
                self.advance(pts + duration);
            } else if self.fps > 0.0 {
                self.advance(self.frames as f64 / self.fps);
            }
            return None;
        }
        if line.starts_with("Got EOS from element") {
            self.eos = true;
            return None;
        }
        let report = line.strip_prefix(PROGRESS_ELEMENT)?.trim_start().strip_prefix('(')?;
        let (_, rest) = report.split_once("): ")?;
        // `1 / 2 seconds (50.0 %)`, or `1 seconds` when the duration is unknown.
        if let Some(pct) = rest
            .rsplit_once('(')
            .and_then(|(_, p)| p.trim_end_matches(')').trim().strip_suffix('%'))
        {
            if let Some(v) = pct.trim().parse::<f64>().ok().filter(|v| v.is_finite()) {
                self.source_percent = self.source_percent.max(v.clamp(0.0, 100.0));
            }
        } else if !rest.ends_with("seconds") {
            return None;
        }
        Some(self.block(elapsed))
    }

    /// The progress now, monotone with respect to earlier blocks.
    fn block(&mut self, elapsed: Duration) -> Progress {
        let secs = elapsed.as_secs_f64();
        let percent = match self.expected_frames {
            Some(n) => (self.frames as f64 / n as f64 * 100.0).clamp(0.0, 100.0),
            None => self.source_percent,
        };
        let mut p = Progress {
            frame: self.frames,
            fps: if secs > 0.0 { self.frames as f64 / secs } else { 0.0 },
            // A huge timestamp over a tiny elapsed time would be infinite, which JSON cannot carry.
            speed: Some(self.out_time_s / secs).filter(|v| v.is_finite()).unwrap_or(0.0),
            percent,
            out_time_s: self.out_time_s,
            live: None,
        };
        if let Some(last) = &self.last {
            p.percent = p.percent.max(last.percent);
        }
        self.last = Some(p.clone());
        p
    }

    /// The final block after the pipeline ended well: `frames` (at least those counted) and
    /// 100 %.
    pub fn finish(&mut self, frames: u64, elapsed: Duration) -> Progress {
        self.frames = self.frames.max(frames);
        if self.fps > 0.0 {
            self.advance(self.frames as f64 / self.fps);
        }
        let mut p = self.block(elapsed);
        p.percent = 100.0;
        self.last = Some(p.clone());
        p
    }

    /// Moves the output time forward; an overflowed time (a tiny frame rate, a huge
    /// timestamp) is ignored, as JSON cannot carry an infinite number in a report.
    fn advance(&mut self, out_time_s: f64) {
        if out_time_s.is_finite() {
            self.out_time_s = self.out_time_s.max(out_time_s);
        }
    }

    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Seconds of video through the encoder so far.
    pub fn out_time_s(&self) -> f64 {
        self.out_time_s
    }

    /// The latest block, if any.
    pub fn last(&self) -> Option<&Progress> {
        self.last.as_ref()
    }

    /// Whether gst-launch said the pipeline reached its end of stream.
    pub fn reached_eos(&self) -> bool {
        self.eos
    }
}

/// The text after `key` up to the next comma.
pub(super) fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = &line[line.find(key)? + key.len()..];
    Some(rest.split(',').next()?.trim())
}

/// `H:MM:SS.nnnnnnnnn` to seconds; `none` and garbage to `None`.
pub(super) fn parse_clock(s: &str) -> Option<f64> {
    let mut parts = s.split(':');
    let h: f64 = parts.next()?.trim().parse().ok()?;
    let m: f64 = parts.next()?.trim().parse().ok()?;
    let sec: f64 = parts.next()?.trim().parse().ok()?;
    if parts.next().is_some() || ![h, m, sec].iter().all(|v| v.is_finite() && *v >= 0.0) {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + sec).filter(|t| t.is_finite())
}
