//! A live stream's running quality of experience ([`LiveProgress`]), carried with each
//! progress update of a live job while it streams.

use serde::{Deserialize, Serialize};

use crate::bounds::{finite_at_most, in_range, FieldError, MAX_FRAMES, MAX_RATE, MAX_REPORT_SECONDS};

/// A live stream's QoE so far: what [`LiveQoe`](crate::LiveQoe) will say at the end, as it
/// stands now, with the real-time factor of the latest window instead of the mean.
///
/// ```
/// use ffrtmp_core::{LiveProgress, Progress};
/// let p = Progress { live: Some(LiveProgress { speed: 1.0, uptime_s: 4.0, ..Default::default() }), ..Default::default() };
/// let json = serde_json::to_string(&p).unwrap();
/// assert_eq!(serde_json::from_str::<Progress>(&json).unwrap(), p);
/// // A file encode's progress has no `live` member at all.
/// assert!(!serde_json::to_string(&Progress::default()).unwrap().contains("live"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveProgress {
    /// Real-time factor over the latest measuring window (1.0 = real time).
    pub speed: f64,
    /// Frames dropped so far, all reconnects together.
    pub drop_frames: u64,
    /// Frames duplicated so far.
    pub dup_frames: u64,
    /// Output bitrate so far in kbit/s, once anything was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bitrate_kbps: Option<f64>,
    /// Seconds of stream delivered so far.
    pub uptime_s: f64,
    /// Reconnects so far after the destination went away.
    pub reconnects: u32,
    /// Longest stretch so far, in seconds, below the node's real-time threshold.
    pub behind_realtime_s: f64,
    /// Whether that stretch already exceeds the node's limit.
    pub behind_realtime: bool,
}

impl LiveProgress {
    /// Checks every figure is finite, non-negative and bounded like
    /// [`LiveQoe::validate`](crate::LiveQoe::validate); `field` prefixes the names in the error.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        in_range(&format!("{field}.drop_frames"), self.drop_frames, 0, MAX_FRAMES)?;
        in_range(&format!("{field}.dup_frames"), self.dup_frames, 0, MAX_FRAMES)?;
        in_range(
            &format!("{field}.reconnects"),
            u64::from(self.reconnects),
            0,
            MAX_FRAMES,
        )?;
        finite_at_most(&format!("{field}.speed"), self.speed, MAX_RATE)?;
        if let Some(b) = self.bitrate_kbps {
            finite_at_most(&format!("{field}.bitrate_kbps"), b, MAX_RATE * 1e3)?;
        }
        finite_at_most(&format!("{field}.uptime_s"), self.uptime_s, MAX_REPORT_SECONDS)?;
        finite_at_most(
            &format!("{field}.behind_realtime_s"),
            self.behind_realtime_s,
            MAX_REPORT_SECONDS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Progress, ProgressTick, RunningJob};

    fn live() -> LiveProgress {
        LiveProgress {
            speed: 0.98,
            drop_frames: 2,
            dup_frames: 1,
            bitrate_kbps: Some(1200.0),
            uptime_s: 3.5,
            reconnects: 1,
            behind_realtime_s: 0.0,
            behind_realtime: false,
        }
    }

    #[test]
    fn progress_with_live_figures_round_trips_through_a_tick() {
        let tick = ProgressTick {
            running: vec![RunningJob {
                job_id: crate::JobId::new(),
                attempt: 1,
                progress: Some(Progress {
                    frame: 90,
                    live: Some(live()),
                    ..Default::default()
                }),
            }],
            power: None,
        };
        let json = serde_json::to_string(&tick).unwrap();
        assert!(json.contains(r#""drop_frames":2"#), "{json}");
        assert_eq!(serde_json::from_str::<ProgressTick>(&json).unwrap(), tick);
        // Older agents send no `live`: still a valid tick.
        let old = r#"{"running":[{"job_id":"00000000-0000-0000-0000-000000000001","attempt":1,
            "progress":{"frame":1,"fps":1.0,"speed":1.0,"percent":0.0,"out_time_s":0.1}}]}"#;
        let parsed: ProgressTick = serde_json::from_str(old).unwrap();
        assert_eq!(parsed.running[0].progress.as_ref().unwrap().live, None);
    }

    #[test]
    fn live_figures_are_bounded_in_progress_validation() {
        let ok = Progress {
            live: Some(live()),
            ..Default::default()
        };
        assert!(ok.validate("progress").is_ok());
        let cases = [
            (
                LiveProgress {
                    speed: f64::NAN,
                    ..live()
                },
                "progress.live.speed",
            ),
            (LiveProgress { speed: -1.0, ..live() }, "progress.live.speed"),
            (
                LiveProgress {
                    drop_frames: MAX_FRAMES + 1,
                    ..live()
                },
                "progress.live.drop_frames",
            ),
            (
                LiveProgress {
                    bitrate_kbps: Some(f64::INFINITY),
                    ..live()
                },
                "progress.live.bitrate_kbps",
            ),
            (
                LiveProgress {
                    uptime_s: MAX_REPORT_SECONDS * 2.0,
                    ..live()
                },
                "progress.live.uptime_s",
            ),
            (
                LiveProgress {
                    behind_realtime_s: -0.5,
                    ..live()
                },
                "progress.live.behind_realtime_s",
            ),
        ];
        for (bad, field) in cases {
            let p = Progress {
                live: Some(bad),
                ..Default::default()
            };
            let err = p.validate("progress").unwrap_err();
            assert_eq!(err.field, field);
        }
    }
}
