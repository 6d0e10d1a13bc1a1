//! Connection limits on a real server over TLS on loopback: idle sockets from one address
//! cannot starve agents, a trickled body is cut off, a request without a key loses its
//! connection.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{registration, TestServer, KEY};
use ffrtmp_core::Transport;
use ffrtmp_http::ConnectionLimits;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const IDLE_SOCKETS: usize = 1030;

/// Lifts the soft descriptor limit to the hard one (the test holds over 1,030 sockets).
fn raise_fd_limit() {
    // SAFETY: plain libc calls on a stack value.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A TCP connection from `source` (another loopback address than the agent's).
async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Whether the server closed `stream` (EOF or reset) before `deadline`.
async fn closed_by(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout_at(deadline, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_starve_agents() {
    raise_fd_limit();
    let server = TestServer::start_with(|config, _| {
        config.limits = ConnectionLimits {
            per_ip: 256,
            handshake_timeout: Duration::from_secs(3),
            ..ConnectionLimits::default()
        };
    })
    .await;
    let mut idle = Vec::with_capacity(IDLE_SOCKETS);
    for _ in 0..IDLE_SOCKETS {
        idle.push(connect_from("127.0.0.2", server.addr).await);
    }

    // An agent on another address registers and heartbeats at once.
    let started = Instant::now();
    let agent = server.transport();
    let node = agent.register(&registration("busy", 1)).await.unwrap();
    agent.heartbeat(node.id, &Default::default()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the agent waited {:?} behind idle sockets",
        started.elapsed()
    );

    // Past the per-address cap, sockets are closed right away…
    let soon = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut closed_at_once = 0;
    let mut open = Vec::new();
    for mut stream in idle {
        if closed_by(&mut stream, soon).await {
            closed_at_once += 1;
        } else {
            open.push(stream);
        }
    }
    assert!(
        closed_at_once >= IDLE_SOCKETS - 256,
        "only {closed_at_once} closed at once"
    );
    // …and the ones let in are closed when they do not complete a handshake in time.
    let later = tokio::time::Instant::now() + Duration::from_secs(6);
    for stream in &mut open {
        assert!(
            closed_by(stream, later).await,
            "an idle socket outlived the handshake deadline"
        );
    }
    server.stop().await;
}

async fn tls_connect(server: &TestServer) -> TlsStream<TcpStream> {
    let config = ffrtmp_http::tls::client_config(Some(&server.ca)).unwrap();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap()
}

/// Everything the server sends until it closes the connection, or `None` when it keeps
/// it open past `within`.
async fn read_until_closed(stream: &mut TlsStream<TcpStream>, within: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|_| String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_by_the_deadline() {
    let server = TestServer::start_with(|config, _| {
        config.limits.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = tls_connect(&server).await;
    let head = format!(
        "POST /jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = async {
        // One byte every 250 ms: 100 bytes would take 25 s.
        for _ in 0..100 {
            if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            if started.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        stream
    };
    let mut stream = trickle.await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection stayed open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_key_loses_its_connection() {
    let server = TestServer::start().await;
    let mut stream = tls_connect(&server).await;
    stream
        .write_all(b"GET /jobs HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("an unauthenticated connection was kept alive");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    server.stop().await;
}
