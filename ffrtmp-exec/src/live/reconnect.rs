//! What a live push does when its destination goes away: [`ReconnectPolicy`] (capped
//! backoff for a bounded window), [`is_connection_loss`] (which failures are that) and
//! [`Reconnects`] (the one decision both engines take after a loss).

use std::time::{Duration, Instant};

use ffrtmp_core::{Backoff, CancelSignal, ErrorKind, JobError};

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

/// What to do after a live destination was lost.
#[derive(Clone, Debug, PartialEq)]
pub enum AfterLoss {
    /// Reconnect after this delay.
    Retry(Duration),
    /// Stop: the job fails `destination_lost` with this error.
    GiveUp(Box<JobError>),
}

/// The reconnects of one live job, for either engine: which outage it is in, how many
/// tries that outage had, and how many reconnects the stream made in all.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_exec::live::{AfterLoss, ReconnectPolicy, Reconnects};
/// let mut r = Reconnects::new(ReconnectPolicy::default());
/// let AfterLoss::Retry(d) = r.lost("rtmp://h/live/k", true, true, 4.0, "Broken pipe") else { panic!() };
/// assert!(d <= Duration::from_millis(500));
/// r.reconnected();
/// assert_eq!(r.count(), 1);
/// // A file input cannot resume: the job fails at once.
/// let AfterLoss::GiveUp(e) = r.lost("rtmp://h/live/k", false, false, 4.0, "Broken pipe") else { panic!() };
/// assert!(e.message.contains("a file input cannot resume mid-stream"), "{}", e.message);
/// ```
#[derive(Clone, Debug)]
pub struct Reconnects {
    policy: ReconnectPolicy,
    lost_since: Option<Instant>,
    outage_tries: u32,
    count: u32,
}

impl Reconnects {
    /// No reconnect yet.
    pub fn new(policy: ReconnectPolicy) -> Self {
        Reconnects {
            policy,
            lost_since: None,
            outage_tries: 0,
            count: 0,
        }
    }

    /// Reconnects made so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The destination `url` was lost after a run; `delivered`: that run sent stream (which
    /// starts a new outage), `resumable`: the source can go on where it stopped. Retries
    /// with capped, jittered backoff until the window from the loss has passed.
    pub fn lost(&mut self, url: &str, delivered: bool, resumable: bool, uptime_s: f64, last_error: &str) -> AfterLoss {
        if delivered {
            self.lost_since = Some(Instant::now());
            self.outage_tries = 0;
        }
        let since = *self.lost_since.get_or_insert_with(Instant::now);
        let left = self.policy.window.saturating_sub(since.elapsed());
        if resumable && !left.is_zero() {
            return AfterLoss::Retry(self.policy.delay(self.outage_tries, left));
        }
        let why = match resumable {
            true => format!(
                "not back within the {:.0} s reconnect window",
                self.policy.window.as_secs_f64()
            ),
            false => "a file input cannot resume mid-stream".to_string(),
        };
        let message = format!(
            "live destination {url} lost: {why} ({} reconnects, {uptime_s:.1} s streamed); last error: {last_error}",
            self.count
        );
        AfterLoss::GiveUp(Box::new(JobError::new(ErrorKind::DestinationLost, message)))
    }

    /// Waits `delay` before the next reconnect; false when the job was canceled meanwhile.
    pub async fn wait(&mut self, delay: Duration, cancel: &mut CancelSignal) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => {
                self.reconnected();
                true
            }
            _ = cancel.canceled() => false,
        }
    }

    /// Counts a reconnect (one more try in this outage).
    pub fn reconnected(&mut self) {
        self.outage_tries += 1;
        self.count += 1;
    }
}
