//! Retry policy of the client against tiny hand-written HTTP servers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{Backoff, Heartbeat, NodeId, Transport, TransportError};
use ffrtmp_http::{ClientConfig, HttpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(10),
    cap: Duration::from_millis(40),
    max_retries: 3,
};

fn transport(base_url: &str, timeout: Duration) -> HttpTransport {
    let mut config = ClientConfig::new(base_url, "retry-test-key").with_plaintext_allowed();
    config.backoff = BACKOFF;
    config.request_timeout = timeout;
    HttpTransport::new(config).unwrap()
}

/// Serves plain HTTP/1.1; the n-th request (0-based) gets `answer(n)`: `Some((status,
/// body))`, or `None` to never answer. Returns the base URL and the request counter.
async fn tiny_server<F>(answer: F) -> (String, Arc<AtomicUsize>)
where
    F: Fn(usize) -> Option<(u16, &'static str)> + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (answer, counter) = (answer.clone(), counter.clone());
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() {
                    return;
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let Some((status, body)) = answer(n) else {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, seen)
}

/// Reads one request (headers and a Content-Length body).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

async fn heartbeat(t: &HttpTransport) -> Result<ffrtmp_core::HeartbeatReply, TransportError> {
    t.heartbeat(NodeId::new(), &Heartbeat::default()).await
}

#[tokio::test]
async fn nothing_listening_is_unreachable_after_the_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = transport(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2));
    let started = Instant::now();
    let err = heartbeat(&t).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable(_)), "{err}");
    assert!(err.to_string().contains("after 4 attempts"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let (url, seen) = tiny_server(|n| {
        Some(if n < 2 {
            (503, r#"{"error":{"kind":"not_ready","message":"busy"}}"#)
        } else {
            (200, r#"{"cancel":[]}"#)
        })
    })
    .await;
    let reply = heartbeat(&transport(&url, Duration::from_secs(5))).await.unwrap();
    assert!(reply.cancel.is_empty());
    assert_eq!(seen.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn never_retries_a_400() {
    let (url, seen) = tiny_server(|_| Some((400, r#"{"error":{"kind":"invalid_json","message":"bad"}}"#))).await;
    let err = heartbeat(&transport(&url, Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(
        err,
        TransportError::Rejected {
            status: 400,
            kind: "invalid_json".into(),
            message: "bad".into()
        }
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_409_is_fenced_and_not_retried() {
    let (url, seen) = tiny_server(|_| Some((409, r#"{"error":{"kind":"fenced","message":"stale attempt"}}"#))).await;
    let err = heartbeat(&transport(&url, Duration::from_secs(5))).await.unwrap_err();
    assert_eq!(err, TransportError::Fenced("stale attempt".into()));
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn persistent_5xx_and_429_give_up_after_max_retries() {
    for status in [500u16, 503, 429] {
        let (url, seen) = tiny_server(move |_| Some((status, r#"{"error":{"kind":"x","message":"down"}}"#))).await;
        let err = heartbeat(&transport(&url, Duration::from_secs(5))).await.unwrap_err();
        assert!(matches!(err, TransportError::Unreachable(_)), "{status}: {err}");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1 + BACKOFF.max_retries as usize,
            "{status}"
        );
    }
}

#[tokio::test]
async fn timeouts_are_retried() {
    let (url, seen) = tiny_server(|n| (n >= 1).then_some((200, r#"{"cancel":[]}"#))).await;
    let reply = heartbeat(&transport(&url, Duration::from_millis(300))).await.unwrap();
    assert!(reply.cancel.is_empty());
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn registration_is_not_repeated_after_a_timeout() {
    let (url, seen) = tiny_server(|_| None).await;
    let t = transport(&url, Duration::from_millis(200));
    let err = t
        .register(&ffrtmp_core::NodeRegistration {
            name: "n".into(),
            cpu_cores: 1,
            memory_mb: 1,
            max_concurrent_jobs: 1,
            encoders: vec![],
            engines: vec![],
            version: String::new(),
            enforces_limits: false,
            quality_metrics: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Unreachable(_)), "{err}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
