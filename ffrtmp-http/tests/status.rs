//! The agent status server on 127.0.0.1:0, driven over raw HTTP/1.1.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_http::status::METRICS_CONTENT_TYPE;
use ffrtmp_http::{Check, HttpError, PromText, ReadyReport, StatusProbe, StatusServer, TlsSetup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A probe whose disk check the test flips.
#[derive(Default)]
struct FlipProbe {
    disk_full: AtomicBool,
}

impl StatusProbe for FlipProbe {
    fn ready(&self) -> ReadyReport {
        let disk = if self.disk_full.load(Ordering::SeqCst) {
            Check::fail("disk", "96 % of /var/lib/ffrtmp used")
        } else {
            Check::pass("disk", "40 % used")
        };
        ReadyReport::from_checks(vec![Check::pass("ffmpeg", "ffmpeg 5.1"), disk])
    }

    fn metrics(&self) -> String {
        let mut p = PromText::new();
        p.gauge("ffrtmp_agent_jobs_running", "Jobs running on this agent.", &[], 1.0);
        for (outcome, n) in [("completed", 3.0), ("failed", 1.0)] {
            p.counter(
                "ffrtmp_agent_jobs_total",
                "Jobs finished on this agent, by outcome.",
                &[("outcome", outcome)],
                n,
            );
        }
        p.counter(
            "ffrtmp_energy_joules_total",
            "Energy by powercap zone.",
            &[("zone", "package-0")],
            1234.5,
        );
        p.finish()
    }
}

struct Running {
    addr: SocketAddr,
    probe: Arc<FlipProbe>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), HttpError>>,
}

async fn start() -> Running {
    let probe = Arc::new(FlipProbe::default());
    let server = StatusServer::bind("127.0.0.1:0".parse().unwrap(), probe.clone())
        .await
        .unwrap();
    assert!(!server.is_tls());
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        probe,
        stop: Some(stop),
        handle,
    }
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// One request on its own connection (`Connection: close`), read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("answer within 10 s");
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_string(),
    }
}

fn assert_error(a: &Answer, status: u16, kind: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    assert_eq!(v["error"]["kind"], kind, "{}", a.body);
    assert!(!v["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_always_ok() {
    let s = start().await;
    s.probe.disk_full.store(true, Ordering::SeqCst);
    for path in ["/health", "/health/"] {
        let a = request(s.addr, "GET", path).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.json(), serde_json::json!({"status": "ok"}));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_probe() {
    let s = start().await;
    let a = request(s.addr, "GET", "/ready").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 2);
    assert!(v.get("error").is_none());

    s.probe.disk_full.store(true, Ordering::SeqCst);
    let a = request(s.addr, "GET", "/ready").await;
    assert_error(&a, 503, "not_ready");
    let v = a.json();
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["ok"], false);
    assert!(v["error"]["message"].as_str().unwrap().contains("disk"), "{}", a.body);
    let failing: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["disk"]);
    assert_eq!(v["checks"][1]["detail"], "96 % of /var/lib/ffrtmp used");

    s.probe.disk_full.store(false, Ordering::SeqCst);
    assert_eq!(request(s.addr, "GET", "/ready").await.status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text() {
    let s = start().await;
    let a = request(s.addr, "GET", "/metrics").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), Some(METRICS_CONTENT_TYPE));
    assert!(a
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let expected = "# HELP ffrtmp_agent_jobs_running Jobs running on this agent.\n\
# TYPE ffrtmp_agent_jobs_running gauge\n\
ffrtmp_agent_jobs_running 1\n\
# HELP ffrtmp_agent_jobs_total Jobs finished on this agent, by outcome.\n\
# TYPE ffrtmp_agent_jobs_total counter\n\
ffrtmp_agent_jobs_total{outcome=\"completed\"} 3\n\
ffrtmp_agent_jobs_total{outcome=\"failed\"} 1\n\
# HELP ffrtmp_energy_joules_total Energy by powercap zone.\n\
# TYPE ffrtmp_energy_joules_total counter\n\
ffrtmp_energy_joules_total{zone=\"package-0\"} 1234.5\n";
    assert_eq!(a.body, expected);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_get_json_errors() {
    let s = start().await;
    for path in ["/", "/jobs", "/nodes/register", "/metrics/extra", "/nope"] {
        assert_error(&request(s.addr, "GET", path).await, 404, "not_found");
    }
    for (method, path) in [("POST", "/health"), ("DELETE", "/ready"), ("PUT", "/metrics")] {
        let a = request(s.addr, method, path).await;
        assert_error(&a, 405, "method_not_allowed");
        assert_eq!(a.header("allow"), Some("GET"));
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_tls_reuses_the_setup() {
    let dir = tempfile::tempdir().unwrap();
    let probe: Arc<dyn StatusProbe> = Arc::new(FlipProbe::default());
    let server = StatusServer::bind_with_tls(
        "127.0.0.1:0".parse().unwrap(),
        probe,
        &TlsSetup::self_signed(dir.path()),
    )
    .await
    .unwrap();
    assert!(server.is_tls());
    let base = format!("https://{}", server.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let config = ffrtmp_http::ClientConfig::new(base, "").with_ca_cert(dir.path().join("cert.pem"));
    let client = ffrtmp_http::HttpClient::new(config).unwrap();
    let r = client
        .send(http::Method::GET, "/ready", None, ffrtmp_http::CallOptions::default())
        .await
        .unwrap();
    assert_eq!(r.status, http::StatusCode::OK);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn with_keys_ready_and_metrics_need_a_read_key() {
    use ffrtmp_http::{Keyring, Role, Roles};
    let mut keys = Keyring::new();
    keys.add("status-read-key-0001", Roles::of(Role::ReadOnly)).unwrap();
    keys.add("status-user-key-0001", Roles::of(Role::User)).unwrap();
    keys.add("status-agent-key-001", Roles::of(Role::Agent)).unwrap();
    let probe: Arc<dyn StatusProbe> = Arc::new(FlipProbe::default());
    let server = StatusServer::bind("127.0.0.1:0".parse().unwrap(), probe)
        .await
        .unwrap()
        .require_key(keys);
    let addr = server.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let with_key = |path: &'static str, key: &'static str| async move {
        let exchange = async {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            let req = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
            );
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut raw = String::new();
            tcp.read_to_string(&mut raw).await.unwrap();
            raw
        };
        let raw = tokio::time::timeout(Duration::from_secs(10), exchange).await.unwrap();
        raw.split_whitespace().nth(1).unwrap().parse::<u16>().unwrap()
    };
    assert_error(&request(addr, "GET", "/metrics").await, 401, "unauthorized");
    assert_error(&request(addr, "GET", "/ready").await, 401, "unauthorized");
    assert_error(&request(addr, "GET", "/nope").await, 401, "unauthorized");
    assert_eq!(request(addr, "GET", "/health").await.status, 200);
    assert_eq!(with_key("/metrics", "status-wrong-key-001").await, 401);
    assert_eq!(with_key("/metrics", "status-agent-key-001").await, 403);
    assert_eq!(with_key("/metrics", "status-read-key-0001").await, 200);
    assert_eq!(with_key("/metrics", "status-user-key-0001").await, 200);
    assert_eq!(with_key("/ready", "status-read-key-0001").await, 200);
    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
