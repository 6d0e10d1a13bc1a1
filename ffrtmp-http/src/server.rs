//! The HTTPS server: a TCP listener, TLS handshakes, hyper HTTP/1.1 connections and a
//! graceful shutdown that stops accepting and lets in-flight requests finish.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::JobStore;
use hyper::body::Incoming;
use hyper::Request;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::auth::{Keyring, Roles};
use crate::body::DEFAULT_BODY_LIMIT;
use crate::dashboard::{DashboardConfig, DashboardState};
use crate::error::HttpError;
use crate::events::{EventBus, EventedStore, Events};
use crate::limits::ConnectionLimits;
use crate::listen::{self, Listen};
use crate::metrics::Metrics;
use crate::routes::{self, AppState};
use crate::tls::TlsSetup;

/// Everything needed to start a server.
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (see [`BoundServer::local_addr`]).
    pub addr: SocketAddr,
    /// Certificate source. Use [`TlsSetup::Plaintext`] only to opt out of TLS explicitly.
    pub tls: TlsSetup,
    /// A Bearer key with every role (agent, user, read); empty for none, when
    /// [`ServerConfig::keys`] holds the keys.
    pub api_key: String,
    /// Keys by role (agent, user, read-only), several per role for rotation; used together
    /// with [`ServerConfig::api_key`]. At least one key must be configured.
    pub keys: Keyring,
    /// PEM file of the CA that signs agents' client certificates. When set, a client
    /// presenting a certificate it did not sign fails the TLS handshake.
    pub client_ca: Option<PathBuf>,
    /// Agent routes (register, heartbeat, claim, report) answer 403 unless the client
    /// presented a certificate verified against [`ServerConfig::client_ca`].
    pub require_client_cert_for_agents: bool,
    /// Per-address connection cap and handshake, header and body deadlines.
    pub limits: ConnectionLimits,
    /// The job store behind the API.
    pub store: Arc<dyn JobStore>,
    /// Largest request body; larger ones get 413. Default 1 MiB.
    pub body_limit: usize,
    /// On shutdown, how long in-flight requests may take before their connections are
    /// dropped. Default 30 s.
    pub shutdown_grace: Duration,
    /// Connections served at once; further clients wait in the listen backlog. Default 1024.
    pub max_connections: usize,
    /// The web dashboard under `/ui/`: on by default, with no bench results.
    pub dashboard: DashboardConfig,
}

impl ServerConfig {
    /// A configuration with the default body limit and shutdown grace.
    pub fn new(addr: SocketAddr, tls: TlsSetup, api_key: impl Into<String>, store: Arc<dyn JobStore>) -> Self {
        ServerConfig {
            addr,
            tls,
            api_key: api_key.into(),
            keys: Keyring::new(),
            client_ca: None,
            require_client_cert_for_agents: false,
            limits: ConnectionLimits::default(),
            store,
            body_limit: DEFAULT_BODY_LIMIT,
            shutdown_grace: Duration::from_secs(30),
            max_connections: 1024,
            dashboard: DashboardConfig::default(),
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .field("api_key", &"<redacted>")
            .field("keys", &self.keys)
            .field("client_ca", &self.client_ca)
            .field("require_client_cert_for_agents", &self.require_client_cert_for_agents)
            .field("limits", &self.limits)
            .field("body_limit", &self.body_limit)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("max_connections", &self.max_connections)
            .field("dashboard", &self.dashboard)
            .finish_non_exhaustive()
    }
}

/// Entry point: `Server::bind(config).await?.run(shutdown).await`.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn ffrtmp_core::JobStore>) -> Result<(), ffrtmp_http::HttpError> {
/// use ffrtmp_http::{Server, ServerConfig, TlsSetup};
/// let config = ServerConfig::new(
///     "127.0.0.1:8443".parse().unwrap(),
///     TlsSetup::self_signed("/var/lib/ffrtmp/tls"),
///     "a-long-random-api-key",
///     store,
/// );
/// let server = Server::bind(config).await?;
/// println!("listening on {}", server.base_url());
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// // Keep `stop` and send on it (or drop it) to shut the server down gracefully.
/// # drop(stop);
/// server.run(async { let _ = stopped.await; }).await
/// # }
/// ```
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Prepares TLS (generating the self-signed certificate when needed), checks the API
    /// keys and opens the listening socket.
    pub async fn bind(config: ServerConfig) -> Result<BoundServer, HttpError> {
        let keys = keyring(&config)?;
        if config.require_client_cert_for_agents && config.client_ca.is_none() {
            return Err(HttpError::Config(
                "requiring client certificates for agents needs a client CA file".into(),
            ));
        }
        if config.client_ca.is_some() && config.tls == TlsSetup::Plaintext {
            return Err(HttpError::Config("client certificates need TLS".into()));
        }
        let tls = config
            .tls
            .server_config_with_client_ca(config.client_ca.as_deref())?
            .map(TlsAcceptor::from);
        if tls.is_none() {
            tracing::warn!("TLS is disabled: API keys and job data travel in clear text");
        }
        let listener = TcpListener::bind(config.addr).await.map_err(|source| HttpError::Bind {
            addr: config.addr,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: config.addr,
            source,
        })?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let evented = Arc::new(EventedStore::new(config.store, Events::new(EventBus::DEFAULT_CAPACITY)));
        let state = Arc::new(AppState {
            store: evented.clone(),
            evented,
            keys,
            agent_cert_required: config.require_client_cert_for_agents,
            metrics: Arc::new(Metrics::default()),
            work: Arc::new(Notify::new()),
            shutdown: shutdown_rx,
            body_limit: config.body_limit,
            body_timeout: config.limits.body_read_timeout,
            dashboard: DashboardState::new(&config.dashboard),
        });
        Ok(BoundServer {
            listener,
            local_addr,
            tls,
            state,
            shutdown_tx,
            grace: config.shutdown_grace,
            limits: config.limits,
            limiter: Arc::new(Semaphore::new(config.max_connections.max(1))),
        })
    }
}

/// A server whose socket is open; [`BoundServer::run`] serves it.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    shutdown_tx: watch::Sender<bool>,
    grace: Duration,
    limits: ConnectionLimits,
    limiter: Arc<Semaphore>,
}

impl fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl BoundServer {
    /// The address actually bound (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A URL clients on this host can use, e.g. `https://127.0.0.1:8443` (an unspecified
    /// bind address becomes the loopback address).
    pub fn base_url(&self) -> String {
        let ip = match self.local_addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", SocketAddr::new(ip, self.local_addr.port()))
    }

    /// The signal that wakes waiting claims. Notify it (`notify_waiters`) after changes
    /// made outside this server that create work, e.g. a sweep releasing retrying jobs.
    pub fn work_signal(&self) -> Arc<Notify> {
        self.state.work.clone()
    }

    /// The event bus behind `GET /events`: to publish from outside, or to watch its size.
    pub fn events(&self) -> EventBus {
        self.state.evented.events().bus.clone()
    }

    /// The store as the server uses it: every change made through it is published on the
    /// event bus. Give this one to a sweeper so its changes are announced too.
    pub fn store(&self) -> Arc<dyn JobStore> {
        self.state.store.clone()
    }

    /// The metrics this server records (also served on `GET /metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Serves until `shutdown` completes; then stops accepting, ends waiting claims,
    /// lets in-flight requests finish (up to the shutdown grace) and returns.
    pub async fn run<F>(self, shutdown: F) -> Result<(), HttpError>
    where
        F: Future<Output = ()> + Send,
    {
        let BoundServer {
            listener,
            local_addr,
            tls,
            state,
            shutdown_tx,
            grace,
            limits,
            limiter,
        } = self;
        tracing::info!(addr = %local_addr, tls = tls.is_some(), "serving the API");
        let sampler = state
            .dashboard
            .enabled
            .then(|| state.dashboard.history.spawn_sampler(state.store.clone()));
        let listen = Listen {
            what: "API",
            tls,
            limiter,
            limits,
            grace,
        };
        let handler = move |request: Request<Incoming>| {
            let state = state.clone();
            async move { routes::handle_any(&state, request).await }
        };
        listen::serve(listener, listen, shutdown_tx, shutdown, handler).await;
        if let Some(sampler) = sampler {
            sampler.abort();
        }
        Ok(())
    }
}

/// The configured keys: `api_key` (all roles) plus the role keys. Refuses a server with none.
fn keyring(config: &ServerConfig) -> Result<Keyring, HttpError> {
    let mut keys = config.keys.clone();
    if !config.api_key.is_empty() {
        keys.add(&config.api_key, Roles::ALL)?;
    }
    if keys.is_empty() {
        return Err(HttpError::Config(
            "no API key: give one key for all roles or keys by role".into(),
        ));
    }
    Ok(keys)
}
