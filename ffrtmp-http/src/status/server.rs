//! The status HTTP server: binding, connections, routing and the `/ready` answer.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::auth::{Keyring, Role};
use crate::body::{json, text};
use crate::error::{ApiError, HttpError};
use crate::limits::ConnectionLimits;
use crate::listen::{self, Listen};
use crate::routes::{grants, Route};
use crate::tls::TlsSetup;
use crate::wire::{ErrorDetail, Status};

use super::{Check, ReadyReport, StatusProbe, METRICS_CONTENT_TYPE};

/// How long the probe may take to answer before `/ready` says 503 (or `/metrics` 500).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Request headers must arrive within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;

/// On shutdown, how long in-flight requests may take.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
        Ok(BoundStatusServer {
            listener,
            local_addr,
            tls,
            probe,
            keys: None,
        })
    }
}

/// A status server whose socket is open; [`BoundStatusServer::run`] serves it.
pub struct BoundStatusServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    probe: Arc<dyn StatusProbe>,
    keys: Option<Arc<Keyring>>,
}

impl fmt::Debug for BoundStatusServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundStatusServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .field("keys", &self.keys.is_some())
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

    /// Requires `Authorization: Bearer <key>` with a read-only (or user) key of `keys` on
    /// `/ready` and `/metrics`; `/health` stays open. 401 without a known key, 403 for a key
    /// without the read role.
    pub fn require_key(mut self, keys: Keyring) -> Self {
        self.keys = Some(Arc::new(keys));
        self
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
            keys,
        } = self;
        if keys.is_none() && !local_addr.ip().is_loopback() {
            tracing::warn!(addr = %local_addr, "the status endpoint has no authentication and is not on loopback");
        }
        tracing::info!(addr = %local_addr, tls = tls.is_some(), key = keys.is_some(), "serving /health, /ready and /metrics");
        let listen = Listen {
            what: "status endpoint",
            tls,
            limiter: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            limits: ConnectionLimits {
                header_read_timeout: HEADER_READ_TIMEOUT,
                ..ConnectionLimits::default()
            },
            grace: SHUTDOWN_GRACE,
        };
        let (stop, _) = watch::channel(false);
        let handler = move |request: Request<Incoming>| {
            let probe = probe.clone();
            let keys = keys.clone();
            async move {
                if let Err(e) = authorize(keys.as_deref(), &request) {
                    return e.into_response();
                }
                handle(probe, request.method(), request.uri().path()).await
            }
        };
        listen::serve(listener, listen, stop, shutdown, handler).await;
        Ok(())
    }
}

/// With keys, every path but `/health` needs a key granting the read role; paths that do
/// not exist answer 401 too, so no key learns nothing.
fn authorize<B>(keys: Option<&Keyring>, request: &Request<B>) -> Result<(), ApiError> {
    let Some(keys) = keys else { return Ok(()) };
    if Route::parse(request.uri().path()) == Some(Route::Health) {
        return Ok(());
    }
    let roles = keys.roles(request.headers()).ok_or_else(ApiError::unauthorized)?;
    if !grants(roles, Role::ReadOnly) {
        return Err(ApiError::forbidden(
            "this key may not read the status endpoint: it needs the read role",
        ));
    }
    Ok(())
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
