//! The agent's status endpoint: `GET /health`, `GET /ready` and `GET /metrics` on a small
//! HTTP server, bound by default to loopback in plain HTTP (operators scrape it locally);
//! TLS with the same [`TlsSetup`] as the master is optional ([`StatusServer::bind_with_tls`]).
//!
//! What the answers say comes from a [`StatusProbe`]: `ffrtmp_farm::AgentProbe` is the reference agent's
//! (engine, disk and master checks; job, limit and CPU and GPU energy metrics); [`PromText`]
//! helps another probe render its metrics.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /health` | 200 `{"status":"ok"}`, always |
//! | `GET /ready` | 200 `{"status":"ready","ok":true,"checks":[...]}`; 503 `not_ready` (below) |
//! | `GET /metrics` | 200 Prometheus text, `text/plain; version=0.0.4` |
//!
//! A 503 from `/ready` carries `"status":"not_ready"`, `"ok":false`, the checks (each
//! `{"name","ok","detail"}`) and `"error":{"kind":"not_ready","message":"failing checks: disk"}`,
//! so clients that read the master's error shape read it too.
//!
//! Other paths get 404 `not_found`, other methods 405 `method_not_allowed` (with `Allow`),
//! in the master's error shape `{"error":{"kind","message"}}` ([`ApiError`]). By default no
//! route needs an API key: bind it where only the operator can reach it. With
//! [`BoundStatusServer::require_key`], `/ready` and `/metrics` need a read-only key (over
//! TLS, so a central Prometheus can scrape remote agents); `/health` stays open.

mod probe;
mod prom;
mod server;
#[cfg(test)]
mod tests;

pub use probe::{Check, ReadyReport, StatusProbe};
pub use prom::PromText;
pub use server::{BoundStatusServer, StatusServer};

#[cfg(doc)]
use crate::error::ApiError;
#[cfg(doc)]
use crate::tls::TlsSetup;

/// Content type of `GET /metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
