//! HTTPS API of ffrtmp: the master's server, the agent's [`Transport`](ffrtmp_core::Transport)
//! and the CLI's client.
//!
//! - [`Server`] serves a [`JobStore`](ffrtmp_core::JobStore) over hyper and rustls (ring),
//!   TLS on by default with a self-signed certificate generated once ([`TlsSetup`]),
//!   `Authorization: Bearer <key>` on every route but `GET /health`, keys by [`Role`] in a
//!   [`Keyring`] (agent routes: register, heartbeat, claim, report; user routes: submit,
//!   cancel, retry, and every read; read-only keys: `GET` routes only), optional client
//!   certificates for agents, per-address connection caps and deadlines
//!   ([`ConnectionLimits`]), 1 MiB
//!   body limit, JSON errors `{"error":{"kind","message"}}` ([`ApiError`]), long-poll
//!   claims, Prometheus metrics ([`Metrics`]) and graceful shutdown.
//! - [`HttpClient`] talks to it with verified TLS, pooling, timeouts and retries of
//!   transient failures only; [`HttpTransport`] (agents) and [`ApiClient`] (users) sit on it.
//! - [`StatusServer`] is an agent's own `/health`, `/ready` and `/metrics` (plain HTTP on
//!   loopback by default; TLS and a read-only key, [`BoundStatusServer::require_key`], for
//!   remote scraping), answered by a [`StatusProbe`] (the reference agent's is
//!   `ffrtmp_farm::AgentProbe`); [`metrics::encode`] encodes scrape-time values with
//!   prometheus-client, [`PromText`] renders Prometheus text by hand.
//!
//! Routes:
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /health` (no key) | 200 `{"status":"ok"}` |
//! | `GET /ready` | 200 `{"status":"ready"}`, 503 when the store does not answer |
//! | `POST /jobs` | 201 `Job` |
//! | `GET /jobs?state=&queue=&node_id=&before_seq=&limit=` | 200 `JobPage` |
//! | `GET /jobs/{id}` | 200 `Job` with history |
//! | `POST /jobs/{id}/cancel`, `POST /jobs/{id}/retry` | 200 `Job` |
//! | `POST /jobs/{id}/report` | 200 `Job`; 409 `fenced` for a stale attempt |
//! | `GET /scenarios` | 200 `{"scenarios":[...],"grammar":"..."}` |
//! | `POST /nodes/register` | 201 `Node` |
//! | `GET /nodes?limit=&after=` | 200 `{"nodes":[...],"next_cursor":...}`, id order |
//! | `POST /nodes/{id}/heartbeat` | 200 `HeartbeatReply` |
//! | `POST /nodes/{id}/claim` | 200 `{"assignments":[...]}`, waits up to `wait_ms` (≤ 30 s) |
//! | `GET /metrics` | 200 Prometheus text |
//! | `GET /openapi.json` (no key) | 200 the OpenAPI 3 document ([`openapi::DOCUMENT`]) |
//! | `GET /ui/` (no key) | the web dashboard ([`dashboard`]) |
//! | `GET /dashboard/history`, `GET /dashboard/bench` | 200 the dashboard's chart and bench data |
//! | `POST /nodes/{id}/progress` | 200 `ProgressReply` (attempts to stop); progress kept in memory |
//! | `GET /events?job=&node=&type=` | 200 `text/event-stream` (see [`events`]) |
//!
//! Errors: 400 (`invalid_json`, `invalid_spec`, `invalid_id`, `invalid_query`,
//! `invalid_request`), 401 `unauthorized` (no or unknown key), 403 `forbidden` (a key
//! without the route's role, or an agent route without a required client certificate),
//! 404 `not_found`, 405 `method_not_allowed`, 408 `body_timeout`, 409
//! (`invalid_transition`, `fenced`), 413 `body_too_large`, 500 `backend`, 503 `not_ready`.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod body;
pub mod client;
pub mod dashboard;
mod efficiency_route;
pub mod error;
pub mod events;
mod handlers;
pub mod inputs;
pub mod keyfiles;
pub mod limits;
mod listen;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod server;
mod sla_route;
pub mod status;
pub mod tls;
pub mod transport;
pub mod wire;

pub use api::ApiClient;
pub use auth::{ApiKey, Keyring, Role, Roles};
pub use body::DEFAULT_BODY_LIMIT;
pub use client::{CallOptions, ClientConfig, EventStream, HttpClient, RawResponse, SseMessage};
pub use dashboard::{BenchSource, DashboardConfig};
pub use error::{ApiError, HttpError};
pub use handlers::{CLAIM_POLL_INTERVAL, MAX_CLAIM_WAIT};
pub use limits::ConnectionLimits;
pub use metrics::Metrics;
pub use server::{BoundServer, Server, ServerConfig};
pub use status::{BoundStatusServer, Check, PromText, ReadyReport, StatusProbe, StatusServer};
pub use tls::TlsSetup;
pub use transport::HttpTransport;
