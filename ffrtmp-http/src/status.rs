//! The agent's status endpoint: `GET /health`, `GET /ready` and `GET /metrics` on a small
//! HTTP server, bound by default to loopback in plain HTTP (operators scrape it locally);
//! TLS with the same [`TlsSetup`] as the master is optional ([`StatusServer::bind_with_tls`]).
//!
//! What the answers say comes from a [`StatusProbe`] the agent implements; [`PromText`]
//! helps it render its metrics.
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
//! in the master's error shape `{"error":{"kind","message"}}` ([`ApiError`]). No route needs
//! an API key: bind it where only the operator can reach it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::body::{json, text};
use crate::error::{ApiError, HttpError};
use crate::routes::Route;
use crate::tls::TlsSetup;
use crate::wire::{ErrorDetail, Status};

/// Content type of `GET /metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long the probe may take to answer before `/ready` says 503 (or `/metrics` 500).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Request headers must arrive within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake must finish within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// On shutdown, how long in-flight requests may take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One readiness check: `{"name":"disk","ok":false,"detail":"93 % used"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Short stable name (`ffmpeg`, `disk`, `master`…).
    pub name: String,
    /// Whether it passes.
    pub ok: bool,
    /// For people: what was found, or why it fails.
    pub detail: String,
}

impl Check {
    /// A passing check.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
        }
    }

    /// A failing check.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        }
    }
}

/// What `GET /ready` reports.
///
/// ```
/// use ffrtmp_http::status::{Check, ReadyReport};
/// let r = ReadyReport::from_checks(vec![Check::pass("ffmpeg", "5.1"), Check::fail("disk", "96 % used")]);
/// assert!(!r.ok);
/// assert_eq!(r.failing().collect::<Vec<_>>(), ["disk"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyReport {
    /// Whether the node is ready (200) or not (503).
    pub ok: bool,
    /// The individual checks.
    pub checks: Vec<Check>,
}

impl ReadyReport {
    /// A report that is ready exactly when every check passes.
    pub fn from_checks(checks: Vec<Check>) -> Self {
        ReadyReport {
            ok: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// Names of the failing checks.
    pub fn failing(&self) -> impl Iterator<Item = &str> {
        self.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str())
    }
}

/// What the status server asks the agent. Called from a blocking-task thread, at most
/// 5 s is waited for an answer; keep both calls cheap (cached state,
/// a `statvfs`), never a network round trip.
pub trait StatusProbe: Send + Sync {
    /// Readiness and its checks.
    fn ready(&self) -> ReadyReport;
    /// The Prometheus text exposition (see [`PromText`]).
    fn metrics(&self) -> String;
}

/// Entry point: `StatusServer::bind(addr, probe).await?.run(shutdown).await`.
///
/// ```no_run
/// # async fn demo(probe: std::sync::Arc<dyn ffrtmp_http::status::StatusProbe>) -> Result<(), ffrtmp_http::HttpError> {
/// use ffrtmp_http::status::StatusServer;
/// let server = StatusServer::bind("127.0.0.1:9464".parse().unwrap(), probe).await?;
/// println!("status on http://{}", server.local_addr());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// # drop(stop);
/// server.run(async { let _ = stopped.await; }).await
/// # }
/// ```
#[derive(Debug)]
pub struct StatusServer;

impl StatusServer {
    /// Opens the listening socket for plain HTTP.
    pub async fn bind(addr: SocketAddr, probe: Arc<dyn StatusProbe>) -> Result<BoundStatusServer, HttpError> {
        Self::bind_with_tls(addr, probe, &TlsSetup::Plaintext).await
    }

    /// Opens the listening socket, serving TLS unless `tls` is [`TlsSetup::Plaintext`].
    pub async fn bind_with_tls(
        addr: SocketAddr,
        probe: Arc<dyn StatusProbe>,
        tls: &TlsSetup,
    ) -> Result<BoundStatusServer, HttpError> {
        let tls = tls.server_config()?.map(TlsAcceptor::from);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { addr, source })?;
        if !local_addr.ip().is_loopback() {
            tracing::warn!(addr = %local_addr, "the status endpoint has no authentication and is not on loopback");
        }
        Ok(BoundStatusServer {
            listener,
            local_addr,
            tls,
            probe,
        })
    }
}

/// A status server whose socket is open; [`BoundStatusServer::run`] serves it.
pub struct BoundStatusServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    probe: Arc<dyn StatusProbe>,
}

impl fmt::Debug for BoundStatusServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundStatusServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl BoundStatusServer {
    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves until `shutdown` completes, then stops accepting and lets in-flight requests
    /// finish (up to 5 s).
    pub async fn run<F>(self, shutdown: F) -> Result<(), HttpError>
    where
        F: Future<Output = ()> + Send,
    {
        let BoundStatusServer {
            listener,
            local_addr,
            tls,
            probe,
        } = self;
        tracing::info!(addr = %local_addr, tls = tls.is_some(), "serving /health, /ready and /metrics");
        let limiter = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let (stop_tx, _) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            while connections.try_join_next().is_some() {}
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = limiter.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let (tls, probe, stop) = (tls.clone(), probe.clone(), stop_tx.subscribe());
                    connections.spawn(async move {
                        serve_connection(tcp, peer, tls, probe, stop).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "status endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            connections.shutdown().await;
        }
        Ok(())
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    probe: Arc<dyn StatusProbe>,
    stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    match tls {
        None => serve_http(TokioIo::new(tcp), peer, probe, stop).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => serve_http(TokioIo::new(stream), peer, probe, stop).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "status endpoint: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "status endpoint: TLS handshake timed out"),
        },
    }
}

async fn serve_http<S>(io: TokioIo<S>, peer: SocketAddr, probe: Arc<dyn StatusProbe>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let probe = probe.clone();
        async move { Ok::<_, Infallible>(handle(probe, request.method(), request.uri().path()).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "status endpoint: connection ended with an error");
    }
}

/// Completes when the server shuts down (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers one request.
async fn handle(probe: Arc<dyn StatusProbe>, method: &Method, path: &str) -> Response<Full<Bytes>> {
    let route = Route::parse(path).filter(|r| matches!(r, Route::Health | Route::Ready | Route::Metrics));
    let answer = match route {
        None => Err(ApiError::not_found(format!("no route {path}"))),
        Some(route) if !route.methods().contains(&method.as_str()) => {
            let mut response = ApiError::method_not_allowed(route.methods()).into_response();
            if let Ok(allow) = HeaderValue::from_str(&route.methods().join(", ")) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return response;
        }
        Some(Route::Health) => json(StatusCode::OK, &Status { status: "ok".into() }),
        Some(Route::Ready) => ready(probe).await,
        Some(_) => match ask(probe, |p| p.metrics()).await {
            Ok(body) => Ok(text(METRICS_CONTENT_TYPE, body)),
            Err(why) => Err(ApiError::internal(format!("rendering the metrics failed: {why}"))),
        },
    };
    answer.unwrap_or_else(ApiError::into_response)
}

/// The body of `GET /ready`.
#[derive(Serialize)]
struct ReadyAnswer<'a> {
    status: &'static str,
    #[serde(flatten)]
    report: &'a ReadyReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

async fn ready(probe: Arc<dyn StatusProbe>) -> Result<Response<Full<Bytes>>, ApiError> {
    let report = ask(probe, |p| p.ready())
        .await
        .unwrap_or_else(|why| ReadyReport::from_checks(vec![Check::fail("probe", why)]));
    if report.ok {
        return json(
            StatusCode::OK,
            &ReadyAnswer {
                status: "ready",
                report: &report,
                error: None,
            },
        );
    }
    let failing: Vec<&str> = report.failing().collect();
    let message = if failing.is_empty() {
        "not ready".to_string()
    } else {
        format!("failing checks: {}", failing.join(", "))
    };
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &ReadyAnswer {
            status: "not_ready",
            report: &report,
            error: Some(ErrorDetail {
                kind: "not_ready".into(),
                message,
            }),
        },
    )
}

/// Calls the probe on a blocking thread, waiting at most [`PROBE_TIMEOUT`].
async fn ask<T, F>(probe: Arc<dyn StatusProbe>, f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&dyn StatusProbe) -> T + Send + 'static,
{
    let task = tokio::task::spawn_blocking(move || f(probe.as_ref()));
    match tokio::time::timeout(PROBE_TIMEOUT, task).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("the probe failed: {e}")),
        Err(_) => Err(format!("the probe did not answer within {PROBE_TIMEOUT:?}")),
    }
}

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: String,
}

/// A builder of Prometheus text (format 0.0.4): families in the order first seen, each with
/// its `# HELP` and `# TYPE` once and all its samples together, label values escaped, and
/// `+Inf`/`-Inf`/`NaN` spelled as Prometheus expects.
///
/// ```
/// use ffrtmp_http::PromText;
/// let mut p = PromText::new();
/// p.gauge("ffrtmp_agent_jobs_running", "Jobs running on this agent.", &[], 2.0);
/// p.counter("ffrtmp_agent_jobs_total", "Jobs finished, by outcome.", &[("outcome", "completed")], 7.0);
/// p.counter("ffrtmp_agent_jobs_total", "Jobs finished, by outcome.", &[("outcome", "failed")], 1.0);
/// p.gauge("ffrtmp_power_watts", "Power.", &[("zone", "package-0 \"cpu\"")], 41.5);
/// let text = p.finish();
/// assert_eq!(text.matches("# TYPE ffrtmp_agent_jobs_total counter").count(), 1);
/// assert!(text.contains("ffrtmp_agent_jobs_running 2\n"));
/// assert!(text.contains("ffrtmp_agent_jobs_total{outcome=\"failed\"} 1\n"));
/// assert!(text.contains(r#"ffrtmp_power_watts{zone="package-0 \"cpu\""} 41.5"#));
/// ```
#[derive(Default)]
pub struct PromText {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for PromText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromText")
            .field("families", &self.families.len())
            .finish()
    }
}

impl PromText {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter sample (`name` should end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.sample(name, help, Kind::Counter, name, labels, None, value)
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.sample(name, help, Kind::Gauge, name, labels, None, value)
    }

    /// A histogram: `buckets` holds `(upper bound, cumulative count)` in increasing bound
    /// order (an infinite bound is skipped: the `+Inf` bucket is always `count`); then
    /// `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        let bucket = format!("{name}_bucket");
        for (bound, n) in buckets.iter().filter(|(b, _)| b.is_finite()) {
            let le = fmt_value(*bound);
            self.sample(name, help, Kind::Histogram, &bucket, labels, Some(&le), *n as f64);
        }
        self.sample(name, help, Kind::Histogram, &bucket, labels, Some("+Inf"), count as f64);
        self.sample(name, help, Kind::Histogram, &format!("{name}_sum"), labels, None, sum);
        self.sample(
            name,
            help,
            Kind::Histogram,
            &format!("{name}_count"),
            labels,
            None,
            count as f64,
        )
    }

    /// The text, ending with a newline (empty when nothing was added).
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|f| f.samples.len() + 128).sum());
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn sample(
        &mut self,
        family: &str,
        help: &str,
        kind: Kind,
        series: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: f64,
    ) -> &mut Self {
        debug_assert!(valid_name(family), "invalid metric name {family:?}");
        let i = match self.index.get(family) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: family.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: String::new(),
                });
                self.index.insert(family.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let f = &mut self.families[i];
        debug_assert_eq!(f.kind, kind, "metric {family} used as two types");
        let out = &mut f.samples;
        out.push_str(series);
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        let mut first = true;
        for (k, v) in all {
            debug_assert!(valid_name(k) && !k.contains(':'), "invalid label name {k:?}");
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_into(out, v);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        out.push_str(&fmt_value(value));
        out.push('\n');
        self
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Escapes `\`, `"` and newlines in a label value.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `\` and newlines in help text.
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_and_escaping() {
        let mut p = PromText::new();
        p.histogram(
            "ffrtmp_job_seconds",
            "Job wall time.\nSecond line \\ here.",
            &[("engine", "ffmpeg")],
            &[(0.5, 1), (1.0, 3), (f64::INFINITY, 3)],
            2.25,
            4,
        );
        p.gauge("ffrtmp_x", "x", &[("a", "back\\slash\nnl")], f64::NAN);
        let text = p.finish();
        let expected = "# HELP ffrtmp_job_seconds Job wall time.\\nSecond line \\\\ here.\n\
# TYPE ffrtmp_job_seconds histogram\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"0.5\"} 1\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"1\"} 3\n\
ffrtmp_job_seconds_bucket{engine=\"ffmpeg\",le=\"+Inf\"} 4\n\
ffrtmp_job_seconds_sum{engine=\"ffmpeg\"} 2.25\n\
ffrtmp_job_seconds_count{engine=\"ffmpeg\"} 4\n\
# HELP ffrtmp_x x\n\
# TYPE ffrtmp_x gauge\n\
ffrtmp_x{a=\"back\\\\slash\\nnl\"} NaN\n";
        assert_eq!(text, expected);
        assert_eq!(PromText::new().finish(), "");
    }

    #[test]
    fn families_stay_together() {
        let mut p = PromText::new();
        p.counter("a_total", "A.", &[("k", "1")], 1.0)
            .gauge("b", "B.", &[], 0.0)
            .counter("a_total", "A.", &[("k", "2")], 2.0);
        assert_eq!(
            p.finish(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{k=\"1\"} 1\na_total{k=\"2\"} 2\n\
             # HELP b B.\n# TYPE b gauge\nb 0\n"
        );
    }

    #[test]
    fn names() {
        assert!(valid_name("ffrtmp_energy_joules_total"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name(""));
        assert!(!valid_name("a-b"));
    }
}
