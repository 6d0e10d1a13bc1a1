//! [`QoeTracker`]: a live stream's quality of experience from FFmpeg's `-progress` blocks
//! or the GStreamer engine's readings ([`QoeSample`]), across the reconnects of one job.

use std::time::Duration;

use ffrtmp_core::{LiveProgress, LiveQoe};

/// Real-time factors below this count as behind real time: FFmpeg paced by `-re` reports
/// 0.99x..1.01x while it keeps up, so exactly 1.0 would flag every healthy stream.
pub const BEHIND_SPEED: f64 = 0.97;

/// Wall-clock seconds over which one real-time factor is measured: long enough that one
/// frame more or less (33 ms at 30 fps) stays inside the [`BEHIND_SPEED`] margin.
pub const SPEED_WINDOW_S: f64 = 2.0;

/// Default longest time a stream may stay behind real time before it is flagged.
pub const DEFAULT_BEHIND_LIMIT: Duration = Duration::from_secs(5);

/// Figures of one process run (one connection).
#[derive(Clone, Copy, Debug, Default)]
struct RunFigures {
    drop_frames: u64,
    dup_frames: u64,
    total_size: u64,
    out_time_s: f64,
}

/// One reading of a process run's counters, all since that run started: what the GStreamer
/// engine reads from its pipeline where FFmpeg prints a `-progress` block.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QoeSample {
    /// Frames dropped to keep the output rate.
    pub drop_frames: u64,
    /// Frames duplicated to keep the output rate.
    pub dup_frames: u64,
    /// Bytes of stream sent.
    pub total_size: u64,
    /// Seconds of stream sent.
    pub out_time_s: f64,
    /// The engine's own real-time factor of the run, shown until a window has passed.
    pub speed: Option<f64>,
}

/// Accumulates a live stream's QoE from `-progress` lines (see [`QoeTracker::feed_line`]);
/// [`QoeTracker::new_run`] starts the counters of a reconnected process.
///
/// FFmpeg's own `speed=` is cumulative since the process started (connecting counts), so
/// the real-time factor is measured here from the stream time delivered over each
/// [`SPEED_WINDOW_S`] of wall-clock time.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_exec::live::QoeTracker;
/// let mut t = QoeTracker::new(Some(2_000_000), Duration::from_secs(5));
/// // 0..4 s: real time; 4..8 s: half real time; 8..10 s: real time again.
/// let stream = |wall: f64| if wall <= 4.0 { wall } else if wall <= 8.0 { 4.0 + (wall - 4.0) / 2.0 } else { wall - 2.0 };
/// for i in 0..=10 {
///     let wall = f64::from(i);
///     for line in [format!("total_size={}", (stream(wall) * 250_000.0) as u64),
///                  format!("out_time_us={}", (stream(wall) * 1e6) as u64),
///                  "drop_frames=1".to_string(), "speed=1x".to_string(), "progress=continue".to_string()] {
///         t.feed_line_at(&line, wall);
///     }
/// }
/// let q = t.finish(0);
/// assert_eq!((q.drop_frames, q.uptime_s), (1, 8.0));
/// assert_eq!(q.bitrate_kbps, Some(2000.0));
/// assert_eq!(q.min_speed, 0.5);
/// assert_eq!(q.behind_realtime_s, 4.0);
/// assert!(!q.behind_realtime);
/// ```
#[derive(Clone, Debug)]
pub struct QoeTracker {
    target_bps: Option<u64>,
    behind_limit: Duration,
    done: RunFigures,
    current: RunFigures,
    reported_speed: Option<f64>,
    window_start: Option<(f64, f64)>,
    speeds: Vec<f64>,
    behind_since: Option<f64>,
    longest_behind_s: f64,
    started: std::time::Instant,
}

impl QoeTracker {
    /// A tracker for a stream aiming at `target_bps`, flagged when it stays behind real time
    /// longer than `behind_limit`.
    pub fn new(target_bps: Option<u64>, behind_limit: Duration) -> Self {
        QoeTracker {
            target_bps,
            behind_limit,
            done: RunFigures::default(),
            current: RunFigures::default(),
            reported_speed: None,
            window_start: None,
            speeds: Vec::new(),
            behind_since: None,
            longest_behind_s: 0.0,
            started: std::time::Instant::now(),
        }
    }

    /// Takes one `-progress` line, timed by the wall clock.
    pub fn feed_line(&mut self, line: &str) {
        let now = self.started.elapsed().as_secs_f64();
        self.feed_line_at(line, now);
    }

    /// Takes one `-progress` line seen `at_s` seconds into the stream.
    pub fn feed_line_at(&mut self, line: &str, at_s: f64) {
        let Some((key, value)) = line.trim().split_once('=') else {
            return;
        };
        let value = value.trim();
        let c = &mut self.current;
        match key {
            "drop_frames" => c.drop_frames = value.parse().unwrap_or(c.drop_frames),
            "dup_frames" => c.dup_frames = value.parse().unwrap_or(c.dup_frames),
            "total_size" => c.total_size = value.parse().unwrap_or(c.total_size),
            "out_time_us" => {
                if let Ok(us) = value.parse::<i64>() {
                    c.out_time_s = us.max(0) as f64 / 1e6;
                }
            }
            "speed" => {
                if let Ok(v) = value.trim_end_matches('x').trim().parse::<f64>() {
                    self.reported_speed = Some(v).filter(|v| v.is_finite() && *v >= 0.0);
                }
            }
            "progress" => self.block_at(at_s),
            _ => {}
        }
    }

    /// Takes one reading of the current run, timed by the wall clock: the end of a block.
    pub fn sample(&mut self, s: QoeSample) {
        let now = self.started.elapsed().as_secs_f64();
        self.sample_at(s, now);
    }

    /// Takes one reading of the current run seen `at_s` seconds into the stream.
    pub fn sample_at(&mut self, s: QoeSample, at_s: f64) {
        self.current = RunFigures {
            drop_frames: s.drop_frames,
            dup_frames: s.dup_frames,
            total_size: s.total_size,
            out_time_s: if s.out_time_s.is_finite() {
                s.out_time_s.max(0.0)
            } else {
                self.current.out_time_s
            },
        };
        if let Some(v) = s.speed.filter(|v| v.is_finite() && *v >= 0.0) {
            self.reported_speed = Some(v);
        }
        self.block_at(at_s);
    }

    /// The end of one `-progress` block: a real-time factor once a window has passed.
    fn block_at(&mut self, at_s: f64) {
        let out_s = self.current.out_time_s;
        let Some((start_at, start_out)) = self.window_start else {
            self.window_start = Some((at_s, out_s));
            return;
        };
        let wall = at_s - start_at;
        if wall < SPEED_WINDOW_S {
            return;
        }
        let speed = ((out_s - start_out) / wall).max(0.0);
        self.window_start = Some((at_s, out_s));
        self.speeds.push(speed);
        if speed < BEHIND_SPEED {
            let since = *self.behind_since.get_or_insert(start_at);
            self.longest_behind_s = self.longest_behind_s.max(at_s - since);
        } else {
            self.behind_since = None;
        }
    }

    /// Starts a new process run (after a reconnect): the finished run's counters are kept.
    pub fn new_run(&mut self) {
        let c = std::mem::take(&mut self.current);
        self.done.drop_frames += c.drop_frames;
        self.done.dup_frames += c.dup_frames;
        self.done.total_size += c.total_size;
        self.done.out_time_s += c.out_time_s;
        self.behind_since = None;
        self.window_start = None;
    }

    /// Seconds of stream delivered so far, all runs together.
    pub fn uptime_s(&self) -> f64 {
        self.done.out_time_s + self.current.out_time_s
    }

    /// Seconds of stream the current run has delivered.
    pub fn run_uptime_s(&self) -> f64 {
        self.current.out_time_s
    }

    /// The QoE so far, sent with each progress update while the stream runs: the latest
    /// window's real-time factor (FFmpeg's own until a window has passed) and the counters of
    /// all runs so far.
    pub fn snapshot(&self, reconnects: u32) -> LiveProgress {
        let (d, c) = (self.done, self.current);
        let (size, out_s) = (d.total_size + c.total_size, d.out_time_s + c.out_time_s);
        LiveProgress {
            speed: self.speeds.last().copied().or(self.reported_speed).unwrap_or(0.0),
            drop_frames: d.drop_frames + c.drop_frames,
            dup_frames: d.dup_frames + c.dup_frames,
            bitrate_kbps: (out_s > 0.0 && size > 0).then(|| size as f64 * 8.0 / out_s / 1e3),
            uptime_s: out_s,
            reconnects,
            behind_realtime_s: self.longest_behind_s,
            behind_realtime: self.longest_behind_s > self.behind_limit.as_secs_f64(),
        }
    }

    /// The QoE of the whole stream.
    pub fn finish(mut self, reconnects: u32) -> LiveQoe {
        self.new_run();
        let d = self.done;
        // A stream too short for one window keeps FFmpeg's own figure.
        let (speed, min_speed) = if self.speeds.is_empty() {
            let s = self.reported_speed.unwrap_or(0.0);
            (s, s)
        } else {
            (
                self.speeds.iter().sum::<f64>() / self.speeds.len() as f64,
                self.speeds.iter().copied().fold(f64::INFINITY, f64::min),
            )
        };
        LiveQoe {
            speed,
            min_speed,
            drop_frames: d.drop_frames,
            dup_frames: d.dup_frames,
            bitrate_kbps: (d.out_time_s > 0.0 && d.total_size > 0)
                .then(|| d.total_size as f64 * 8.0 / d.out_time_s / 1e3),
            target_bitrate_kbps: self.target_bps.map(|b| b as f64 / 1e3),
            uptime_s: d.out_time_s,
            reconnects,
            behind_realtime_s: self.longest_behind_s,
            behind_realtime: self.longest_behind_s > self.behind_limit.as_secs_f64(),
            watts: None,
            joules_per_minute: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One block at `wall` seconds with `out` seconds of stream delivered.
    fn block(t: &mut QoeTracker, wall: f64, out: f64, drop: u64, dup: u64, size: u64) {
        for line in [
            format!("dup_frames={dup}"),
            format!("drop_frames={drop}"),
            format!("total_size={size}"),
            format!("out_time_us={}", (out * 1e6) as u64),
            "speed=1x".to_string(),
            "progress=continue".into(),
        ] {
            t.feed_line_at(&line, wall);
        }
    }

    #[test]
    fn a_stream_that_stays_behind_real_time_is_flagged() {
        let mut t = QoeTracker::new(None, Duration::from_secs(3));
        block(&mut t, 0.0, 0.0, 0, 0, 0);
        block(&mut t, 2.0, 2.0, 0, 0, 100);
        // 6 s at 0.6x.
        for i in 1..=3 {
            let wall = 2.0 + 2.0 * f64::from(i);
            block(&mut t, wall, 2.0 + 1.2 * f64::from(i), 3, 0, 200);
        }
        let now = t.snapshot(0);
        assert!(now.behind_realtime, "{now:?}");
        assert!((now.speed - 0.6).abs() < 1e-9, "{now:?}");
        assert_eq!(now.drop_frames, 3);
        let q = t.finish(0);
        assert!(q.behind_realtime, "{q:?}");
        assert!((q.behind_realtime_s - 6.0).abs() < 1e-9, "{q:?}");
        assert!((q.min_speed - 0.6).abs() < 1e-9, "{q:?}");
        assert_eq!(q.drop_frames, 3);
    }

    #[test]
    fn a_slow_start_is_not_behind_real_time() {
        // FFmpeg's cumulative speed stays under 1 long after a slow connect; the
        // windowed factor does not.
        let mut t = QoeTracker::new(None, Duration::from_secs(3));
        for i in 0..=10 {
            let wall = 1.0 + f64::from(i);
            t.feed_line_at(&format!("out_time_us={}", i * 1_000_000), wall);
            t.feed_line_at(&format!("speed={:.2}x", f64::from(i) / wall), wall);
            t.feed_line_at("progress=continue", wall);
        }
        let q = t.finish(0);
        assert!(!q.behind_realtime, "{q:?}");
        assert_eq!((q.speed, q.min_speed, q.behind_realtime_s), (1.0, 1.0, 0.0));
    }

    #[test]
    fn counters_add_up_across_reconnects_and_ffmpeg_na_is_ignored() {
        let mut t = QoeTracker::new(Some(1_000_000), DEFAULT_BEHIND_LIMIT);
        block(&mut t, 0.0, 0.0, 0, 0, 0);
        block(&mut t, 2.0, 2.0, 1, 2, 250_000);
        t.feed_line_at("speed=N/A", 2.5);
        t.feed_line_at("progress=continue", 2.5);
        t.new_run();
        block(&mut t, 5.0, 0.0, 0, 0, 0);
        block(&mut t, 7.0, 2.0, 1, 0, 250_000);
        let now = t.snapshot(1);
        assert_eq!((now.drop_frames, now.dup_frames, now.reconnects), (2, 2, 1));
        assert_eq!((now.uptime_s, now.bitrate_kbps), (4.0, Some(1000.0)));
        let q = t.finish(1);
        assert_eq!((q.drop_frames, q.dup_frames, q.reconnects), (2, 2, 1));
        assert_eq!(q.uptime_s, 4.0);
        assert_eq!(q.bitrate_kbps, Some(1000.0));
        assert_eq!(q.target_bitrate_kbps, Some(1000.0));
        assert_eq!(q.speed, 1.0);
        assert!(!q.behind_realtime);
        let empty = QoeTracker::new(None, DEFAULT_BEHIND_LIMIT).finish(0);
        assert_eq!((empty.speed, empty.min_speed, empty.bitrate_kbps), (0.0, 0.0, None));
    }

    #[test]
    fn samples_count_like_progress_blocks() {
        let mut t = QoeTracker::new(Some(800_000), DEFAULT_BEHIND_LIMIT);
        let s = |out: f64, dup: u64| QoeSample {
            drop_frames: 1,
            dup_frames: dup,
            total_size: (out * 100_000.0) as u64,
            out_time_s: out,
            speed: Some(0.5),
        };
        t.sample_at(s(0.0, 0), 0.0);
        assert_eq!(
            t.snapshot(0).speed,
            0.5,
            "the engine's figure until a window has passed"
        );
        t.sample_at(s(2.0, 3), 2.0);
        t.new_run();
        t.sample_at(s(1.0, 2), 3.0);
        t.sample_at(s(f64::NAN, 2), 3.5);
        t.sample_at(s(3.0, 2), 5.0);
        let q = t.finish(1);
        assert_eq!((q.drop_frames, q.dup_frames, q.reconnects), (2, 5, 1));
        assert_eq!((q.uptime_s, q.speed), (5.0, 1.0));
        assert_eq!(q.bitrate_kbps, Some(800.0));
    }
}
