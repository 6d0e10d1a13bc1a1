//! Live streaming: where a job may push to and pull from ([`LiveRoutes`]), what happens when
//! its destination goes away ([`ReconnectPolicy`], decided by [`Reconnects`] for both
//! engines), and how the stream went ([`QoeTracker`]).

mod abr;
mod push;
mod qoe;
mod reconnect;
mod routes;

pub use abr::{abr_command, is_abr, ladder, Rendition, ABR_SCENARIO};
pub(crate) use push::{run_ffmpeg_live, with_duration};
pub use qoe::{QoeSample, QoeTracker, BEHIND_SPEED, DEFAULT_BEHIND_LIMIT, SPEED_WINDOW_S};
pub use reconnect::{is_connection_loss, AfterLoss, ReconnectPolicy, Reconnects, CONNECTION_LOST};
pub use routes::{muxer_for, LiveRoutes};

/// Node-side settings of live jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveSettings {
    /// Reconnecting after the destination goes away.
    pub reconnect: ReconnectPolicy,
    /// Longest time a stream may stay behind real time before it is flagged
    /// (`behind_realtime` in its QoE).
    pub behind_limit: std::time::Duration,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            reconnect: ReconnectPolicy::default(),
            behind_limit: DEFAULT_BEHIND_LIMIT,
        }
    }
}
