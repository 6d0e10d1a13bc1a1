//! What a live push does when its destination goes away: [`ReconnectPolicy`] (capped
//! backoff for a bounded window) and [`is_connection_loss`] (which failures are that).

use std::time::Duration;

use ffrtmp_core::Backoff;

/// Stderr text of FFmpeg and GStreamer meaning the connection to a live destination was lost
/// or refused (not the job's fault: the server went away).
pub const CONNECTION_LOST: &[&str] = &[
    "Broken pipe",
    "Connection refused",
    "Connection reset by peer",
    "Connection timed out",
    "Cannot open connection",
    "Error writing trailer of rtmp",
    "Could not connect",
    "GstRtmp2Sink",
];

/// Whether a failed run's stderr says its live connection was lost.
///
/// ```
/// use ffrtmp_exec::live::is_connection_loss;
/// assert!(is_connection_loss(&["av_interleaved_write_frame(): Broken pipe".to_string()]));
/// assert!(!is_connection_loss(&["Unknown encoder 'libnope'".to_string()]));
/// ```
pub fn is_connection_loss(stderr_tail: &[String]) -> bool {
    stderr_tail
        .iter()
        .any(|l| CONNECTION_LOST.iter().any(|p| l.contains(p)))
}

/// How long and how often a live push reconnects after its destination goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// How long the destination may stay away (from the loss, reset by every run that
    /// delivers stream again) before the job fails `destination_lost`. Zero: never reconnect.
    pub window: Duration,
    /// Delay before the first reconnect; doubled each time, up to `max_delay`.
    pub first_delay: Duration,
    /// Largest delay between reconnects.
    pub max_delay: Duration,
}

impl Default for ReconnectPolicy {
    /// 30 s window, 0.5 s doubling to at most 4 s.
    fn default() -> Self {
        ReconnectPolicy {
            window: Duration::from_secs(30),
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl ReconnectPolicy {
    /// The delay before reconnect `n` (0-based) of one outage, jittered, never beyond the
    /// time `left` in the window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ffrtmp_exec::live::ReconnectPolicy;
    /// let p = ReconnectPolicy::default();
    /// assert!(p.delay(10, Duration::from_secs(60)) <= Duration::from_secs(4));
    /// assert!(p.delay(0, Duration::from_millis(100)) <= Duration::from_millis(100));
    /// ```
    pub fn delay(&self, n: u32, left: Duration) -> Duration {
        Backoff {
            base: self.first_delay,
            cap: self.max_delay,
            max_retries: u32::MAX,
        }
        .delay(n)
        .min(left)
    }
}
