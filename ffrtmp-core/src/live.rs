//! Live-stream quality of experience ([`LiveQoe`]), kept in a live job's result.

use serde::{Deserialize, Serialize};

use crate::bounds::{
    finite_at_most, in_range, FieldError, MAX_FRAMES, MAX_JOB_JOULES, MAX_JOB_WATTS, MAX_RATE, MAX_REPORT_SECONDS,
};
use crate::job::EnergyReport;

/// How a live stream went: real-time factor, dropped and duplicated frames, bitrate against
/// the target, uptime, reconnects, and its energy as power while streaming.
///
/// ```
/// use ffrtmp_core::LiveQoe;
/// let (watts, per_minute) = LiveQoe::energy_rates(600.0, 60.0).unwrap();
/// assert_eq!((watts, per_minute), (10.0, 600.0));
/// assert_eq!(LiveQoe::energy_rates(600.0, 0.0), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveQoe {
    /// Mean real-time factor over the stream (1.0 = real time).
    pub speed: f64,
    /// Lowest real-time factor reported.
    pub min_speed: f64,
    /// Frames the encoder dropped to keep up.
    pub drop_frames: u64,
    /// Frames it duplicated to keep the rate.
    pub dup_frames: u64,
    /// Measured output bitrate in kbit/s, when anything was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<f64>,
    /// The bitrate the job asked for, in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_bitrate_kbps: Option<f64>,
    /// Seconds of stream delivered.
    pub uptime_s: f64,
    /// Times the stream was reconnected after its destination went away.
    pub reconnects: u32,
    /// Longest stretch, in seconds, with the real-time factor below the node's threshold.
    pub behind_realtime_s: f64,
    /// Whether that stretch exceeded the node's limit: the stream fell behind real time.
    pub behind_realtime: bool,
    /// Mean power while streaming, in watts, when the energy was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watts: Option<f64>,
    /// Energy per minute of stream, in joules, when the energy was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joules_per_minute: Option<f64>,
}

impl LiveQoe {
    /// Watts and joules per minute of `joules` spent over `uptime_s` seconds of stream;
    /// `None` without stream time or with a non-finite input.
    pub fn energy_rates(joules: f64, uptime_s: f64) -> Option<(f64, f64)> {
        if !(joules.is_finite() && uptime_s.is_finite() && uptime_s > 0.0 && joules >= 0.0) {
            return None;
        }
        let watts = joules / uptime_s;
        Some((watts, watts * 60.0))
    }

    /// Fills [`watts`](Self::watts) and [`joules_per_minute`](Self::joules_per_minute) from
    /// the job's measured energy (left empty when none was measured).
    pub fn apply_energy(&mut self, energy: &EnergyReport) {
        let rates = energy
            .energy_joules
            .and_then(|j| LiveQoe::energy_rates(j, self.uptime_s));
        self.watts = rates.map(|r| r.0);
        self.joules_per_minute = rates.map(|r| r.1);
    }

    /// Checks every figure is finite, non-negative and bounded (counts at most
    /// [`MAX_FRAMES`], rates at most [`MAX_RATE`], seconds at most [`MAX_REPORT_SECONDS`]).
    pub fn validate(&self) -> Result<(), FieldError> {
        in_range("result.live.drop_frames", self.drop_frames, 0, MAX_FRAMES)?;
        in_range("result.live.dup_frames", self.dup_frames, 0, MAX_FRAMES)?;
        in_range("result.live.reconnects", u64::from(self.reconnects), 0, MAX_FRAMES)?;
        let figures = [
            ("result.live.speed", Some(self.speed), MAX_RATE),
            ("result.live.min_speed", Some(self.min_speed), MAX_RATE),
            ("result.live.bitrate_kbps", self.bitrate_kbps, MAX_RATE * 1e3),
            (
                "result.live.target_bitrate_kbps",
                self.target_bitrate_kbps,
                MAX_RATE * 1e3,
            ),
            ("result.live.uptime_s", Some(self.uptime_s), MAX_REPORT_SECONDS),
            (
                "result.live.behind_realtime_s",
                Some(self.behind_realtime_s),
                MAX_REPORT_SECONDS,
            ),
            ("result.live.watts", self.watts, MAX_JOB_WATTS),
            ("result.live.joules_per_minute", self.joules_per_minute, MAX_JOB_JOULES),
        ];
        for (field, value, max) in figures {
            if let Some(v) = value {
                finite_at_most(field, v, max)?;
            }
        }
        Ok(())
    }

    /// One line for people: `speed 1.00x (min 0.97x), 0 dropped, 0 dup, 2480/2500 kbit/s, up 60.0 s, 0 reconnects, 12.3 W, 738 J/min`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "speed {:.2}x (min {:.2}x), {} dropped, {} dup",
            self.speed, self.min_speed, self.drop_frames, self.dup_frames
        );
        match (self.bitrate_kbps, self.target_bitrate_kbps) {
            (Some(b), Some(t)) => s += &format!(", {b:.0}/{t:.0} kbit/s"),
            (Some(b), None) => s += &format!(", {b:.0} kbit/s"),
            _ => {}
        }
        s += &format!(", up {:.1} s, {} reconnects", self.uptime_s, self.reconnects);
        if self.behind_realtime {
            s += &format!(", BEHIND REAL TIME for {:.1} s", self.behind_realtime_s);
        }
        if let (Some(w), Some(j)) = (self.watts, self.joules_per_minute) {
            s += &format!(", {w:.1} W, {j:.0} J/min");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_and_bounds() {
        let mut q = LiveQoe {
            speed: 1.0,
            min_speed: 0.9,
            uptime_s: 30.0,
            ..Default::default()
        };
        q.apply_energy(&EnergyReport::default());
        assert_eq!((q.watts, q.joules_per_minute), (None, None));
        q.apply_energy(&EnergyReport {
            energy_joules: Some(450.0),
            ..Default::default()
        });
        assert_eq!((q.watts, q.joules_per_minute), (Some(15.0), Some(900.0)));
        assert!(q.validate().is_ok());
        assert!(q.line().ends_with("15.0 W, 900 J/min"), "{}", q.line());
        let bad = LiveQoe {
            speed: f64::NAN,
            ..q.clone()
        };
        assert_eq!(bad.validate().unwrap_err().field, "result.live.speed");
        assert_eq!(LiveQoe::energy_rates(-1.0, 10.0), None);
    }
}
