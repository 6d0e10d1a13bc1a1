//! Live streaming: where a job may push to and pull from ([`LiveRoutes`]).

mod routes;

pub use routes::{muxer_for, LiveRoutes};
