//! A whole master in a few calls: a [`JobStore`] behind the HTTPS API, with the sweeper that
//! finds lost nodes, releases retries and prunes old jobs.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::JobStore;

use ffrtmp_http::{BoundServer, HttpError, Keyring, Server, ServerConfig, TlsSetup};

/// Builds a master: the API server over a store plus its periodic sweep.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn ffrtmp_core::JobStore>) -> Result<(), ffrtmp_http::HttpError> {
/// use ffrtmp_farm::MasterBuilder;
/// use ffrtmp_http::TlsSetup;
/// let master = MasterBuilder::new(store, TlsSetup::self_signed("/var/lib/ffrtmp/tls"))
///     .addr("127.0.0.1:0".parse().unwrap())
///     .api_key("a-long-random-api-key")
///     .build()
///     .await?;
/// println!("listening on {}", master.base_url());
/// master.run(std::future::pending()).await
/// # }
/// ```
#[derive(Debug)]
pub struct MasterBuilder {
    config: ServerConfig,
    sweep_interval: Duration,
}

impl MasterBuilder {
    /// A master over `store` with `tls`, on `127.0.0.1:8443`, sweeping every 5 s; give it at
    /// least one key ([`api_key`](Self::api_key) or [`keys`](Self::keys)).
    pub fn new(store: Arc<dyn JobStore>, tls: TlsSetup) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8443));
        MasterBuilder {
            config: ServerConfig::new(addr, tls, String::new(), store),
            sweep_interval: Duration::from_secs(5),
        }
    }

    /// Where to listen; port 0 picks a free port.
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.config.addr = addr;
        self
    }

    /// A key with every role (agent, user, read).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_key = key.into();
        self
    }

    /// Keys by role.
    pub fn keys(mut self, keys: Keyring) -> Self {
        self.config.keys = keys;
        self
    }

    /// How often the store is swept (lost nodes, due retries, retention).
    pub fn sweep_interval(mut self, every: Duration) -> Self {
        self.sweep_interval = every;
        self
    }

    /// Any other server setting (client CA, connection limits, body limit, …).
    pub fn server_config(mut self, edit: impl FnOnce(&mut ServerConfig)) -> Self {
        edit(&mut self.config);
        self
    }

    /// Prepares TLS, checks the keys and opens the listening socket (see [`Server::bind`]).
    pub async fn build(self) -> Result<Master, HttpError> {
        let server = Server::bind(self.config).await?;
        // The server's own store wrapper: the sweep's changes reach the event stream too.
        let store = server.store();
        Ok(Master {
            server,
            store,
            sweep_interval: self.sweep_interval,
        })
    }
}

/// A bound master, ready to [`run`](Master::run).
pub struct Master {
    server: BoundServer,
    store: Arc<dyn JobStore>,
    sweep_interval: Duration,
}

impl std::fmt::Debug for Master {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Master")
            .field("local_addr", &self.server.local_addr())
            .field("sweep_interval", &self.sweep_interval)
            .finish_non_exhaustive()
    }
}

impl Master {
    /// A URL clients on this host can use (see [`BoundServer::base_url`]).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// The API server, e.g. for its metrics.
    pub fn server(&self) -> &BoundServer {
        &self.server
    }

    /// Sweeps and serves until `shutdown` completes, then stops both (see [`BoundServer::run`]).
    pub async fn run<F>(self, shutdown: F) -> Result<(), HttpError>
    where
        F: Future<Output = ()> + Send,
    {
        let sweeper = ffrtmp_sched::spawn_sweeper(self.store, self.sweep_interval);
        let served = self.server.run(shutdown).await;
        sweeper.abort();
        served
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use ffrtmp_core::{NodeRegistration, NodeStatus};
    use ffrtmp_sched::{SchedConfig, SqliteStore};

    use super::*;
    use ffrtmp_http::{ApiClient, ClientConfig};

    const KEY: &str = "a-test-key-long-enough-to-pass";

    /// The master serves the store over TLS and sweeps it: a node that registered and fell
    /// silent goes offline without anyone calling `sweep`.
    #[tokio::test]
    async fn a_built_master_serves_over_tls_and_sweeps_silent_nodes_offline() {
        let dir = tempfile::tempdir().unwrap();
        let config = SchedConfig {
            heartbeat_interval: Duration::from_millis(50),
            dead_after_intervals: 1,
            ..SchedConfig::default()
        };
        let store = Arc::new(SqliteStore::open_with(&dir.path().join("jobs.db"), config).unwrap());
        let node = store
            .register_node(NodeRegistration {
                name: "silent".into(),
                cpu_cores: 1,
                memory_mb: 64,
                max_concurrent_jobs: 1,
                encoders: vec![],
                engines: vec![],
                version: "0".into(),
                enforces_limits: false,
                quality_metrics: Vec::new(),
            })
            .await
            .unwrap();
        let master = MasterBuilder::new(store, TlsSetup::self_signed(dir.path().join("tls")))
            .addr("127.0.0.1:0".parse().unwrap())
            .api_key(KEY)
            .sweep_interval(Duration::from_millis(20))
            .build()
            .await
            .unwrap();
        assert!(
            master.base_url().starts_with("https://127.0.0.1:"),
            "{}",
            master.base_url()
        );
        let mut client = ClientConfig::new(master.base_url(), KEY);
        client.ca_cert = Some(dir.path().join("tls/cert.pem"));
        let api = ApiClient::new(client).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(master.run(async {
            let _ = stopped.await;
        }));

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let nodes = api.nodes().await.unwrap();
            let status = nodes.iter().find(|n| n.id == node.id).map(|n| n.status);
            if status == Some(NodeStatus::Offline) {
                break;
            }
            assert!(Instant::now() < deadline, "the node never went offline: {status:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
    }
}
