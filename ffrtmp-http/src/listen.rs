//! The accept loop and connection driver that both HTTP servers (the master's API and the
//! agent's status endpoint) run: a bounded number of connections at once and per client
//! address, an optional TLS handshake with a deadline, HTTP/1.1 with a header-read timeout,
//! the peer's details on every request ([`PeerInfo`]), and a graceful shutdown
//! that stops accepting, lets in-flight requests finish within a grace period and then drops
//! what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::limits::{ConnectionLimits, PerIp};

/// Who sent a request; put into every request's extensions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerInfo {
    /// Whether the client presented a certificate that the server's client CA verified.
    pub client_cert: bool,
}

/// Lets a handler close its request's connection at once (a stream whose client stopped
/// reading); put into every request's extensions.
#[derive(Clone, Debug)]
pub(crate) struct ConnAbort(Arc<tokio::sync::Notify>);

impl ConnAbort {
    /// Closes the connection, whatever it is doing.
    pub(crate) fn close(&self) {
        self.0.notify_one();
    }
}

/// How one server listens.
pub(crate) struct Listen {
    /// What the logs call this server ("API", "status endpoint").
    pub what: &'static str,
    pub tls: Option<TlsAcceptor>,
    /// One permit per connection served at once; more wait in the listen backlog.
    pub limiter: Arc<Semaphore>,
    /// Per-address cap and deadlines.
    pub limits: ConnectionLimits,
    /// On shutdown, how long in-flight requests may take before their connections drop.
    pub grace: Duration,
}

/// Serves `handler` on `listener` until `shutdown` completes; then sends `true` on `stop`
/// (connections and anything else subscribed to it wind down) and drains.
pub(crate) async fn serve<H, Fut, F, B>(
    listener: TcpListener,
    listen: Listen,
    stop: watch::Sender<bool>,
    shutdown: F,
    handler: H,
) where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    F: Future<Output = ()> + Send,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Listen {
        what,
        tls,
        limiter,
        limits,
        grace,
    } = listen;
    let per_ip = PerIp::default();
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
                let Some(slot) = per_ip.admit(peer.ip(), limits.per_ip) else {
                    tracing::debug!(%peer, max = limits.per_ip, "{what}: too many connections from this address");
                    continue;
                };
                let (tls, handler, stopped) = (tls.clone(), handler.clone(), stop.subscribe());
                connections.spawn(async move {
                    serve_connection(what, tcp, peer, tls, limits, handler, stopped).await;
                    drop((permit, slot));
                });
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    tracing::info!(in_flight = connections.len(), "{what}: shutting down");
    let drained = tokio::time::timeout(grace, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "{what}: shutdown grace ended; dropping connections"
        );
        connections.shutdown().await;
    }
}

async fn serve_connection<H, Fut, B>(
    what: &'static str,
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    handler: H,
    stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = tcp.set_nodelay(true);
    let timeout = limits.header_read_timeout;
    let plain = PeerInfo { client_cert: false };
    match tls {
        None => serve_http(what, TokioIo::new(tcp), peer, plain, timeout, handler, stop).await,
        Some(acceptor) => match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                // A certificate is only there once the configured client verifier accepted it.
                let info = PeerInfo {
                    client_cert: stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()),
                };
                serve_http(what, TokioIo::new(stream), peer, info, timeout, handler, stop).await
            }
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "{what}: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "{what}: TLS handshake timed out"),
        },
    }
}

async fn serve_http<S, H, Fut, B>(
    what: &'static str,
    io: TokioIo<S>,
    peer: SocketAddr,
    info: PeerInfo,
    header_read_timeout: Duration,
    handler: H,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let abort = Arc::new(tokio::sync::Notify::new());
    let conn_abort = ConnAbort(abort.clone());
    let service = service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(info);
        request.extensions_mut().insert(conn_abort.clone());
        let answer = handler(request);
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = abort.notified() => {
            tracing::debug!(%peer, "{what}: connection closed by its handler");
            return;
        }
        _ = stopped(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "{what}: connection ended with an error");
    }
}

/// Completes when the server shuts down (or its sender is gone). A function of its own so the
/// borrow `wait_for` returns ends here instead of living across the connection's await.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
