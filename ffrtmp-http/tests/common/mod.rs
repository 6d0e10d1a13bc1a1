//! A real server on 127.0.0.1:0 with a self-signed certificate and a SQLite store.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{Backoff, JobStore, NodeRegistration};
use ffrtmp_http::{ApiClient, ClientConfig, HttpClient, HttpError, HttpTransport, Server, ServerConfig, TlsSetup};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const KEY: &str = "test-api-key-0123456789";

/// Retries fast enough for tests.
pub const FAST: Backoff = Backoff {
    base: Duration::from_millis(10),
    cap: Duration::from_millis(40),
    max_retries: 2,
};

pub struct TestServer {
    pub addr: SocketAddr,
    pub base_url: String,
    /// The server's certificate, to trust.
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), HttpError>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_, _| {}).await
    }

    /// A server whose configuration `adjust` changes first (it gets the temporary
    /// directory, e.g. for key or CA files).
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store = ffrtmp_sched::SqliteStore::open(&dir.path().join("jobs.db")).unwrap();
        let store: Arc<dyn JobStore> = Arc::new(store);
        let tls_dir = dir.path().join("tls");
        let mut config = ServerConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            TlsSetup::self_signed(&tls_dir),
            KEY,
            store,
        );
        config.shutdown_grace = Duration::from_secs(10);
        adjust(&mut config, dir.path());
        let server = Server::bind(config).await.unwrap();
        assert!(server.is_tls());
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let base_url = server.base_url();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            base_url,
            ca: tls_dir.join("cert.pem"),
            dir,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    pub fn config(&self, key: &str) -> ClientConfig {
        let mut config = ClientConfig::new(&self.base_url, key).with_ca_cert(&self.ca);
        config.backoff = FAST;
        config.request_timeout = Duration::from_secs(20);
        config
    }

    pub fn client(&self) -> HttpClient {
        HttpClient::new(self.config(KEY)).unwrap()
    }

    pub fn api(&self) -> ApiClient {
        ApiClient::new(self.config(KEY)).unwrap()
    }

    pub fn transport(&self) -> HttpTransport {
        HttpTransport::new(self.config(KEY)).unwrap()
    }

    /// Triggers the graceful shutdown and waits for `run` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), handle)
                .await
                .expect("server did not shut down")
                .unwrap()
                .unwrap();
        }
    }
}

pub fn registration(name: &str, slots: u32) -> NodeRegistration {
    NodeRegistration {
        name: name.to_string(),
        cpu_cores: 2,
        memory_mb: 2048,
        max_concurrent_jobs: slots,
        encoders: vec!["libx264".into()],
        engines: vec!["ffmpeg".into()],
        version: "test".into(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    }
}
