//! Wrap the `JobStore`: a store that records every call, behind the reference master (the
//! HTTPS API on loopback), while a client submits a job and reads it back.
//! Run: `cargo run -p ffrtmp-examples --example recording_store`.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobId, JobPage, JobQuery, JobReport, JobSpec, JobState,
    JobStore, Node, NodeId, NodePage, NodeQuery, NodeRegistration, StoreError, SweepSummary,
};
use ffrtmp_farm::MasterBuilder;
use ffrtmp_http::{ApiClient, ClientConfig, TlsSetup};
use ffrtmp_sched::SqliteStore;

/// Records the name of every call, then hands it to `inner`.
struct Recording<S> {
    inner: S,
    calls: Mutex<Vec<&'static str>>,
}

impl<S> Recording<S> {
    fn record(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait]
impl<S: JobStore> JobStore for Recording<S> {
    async fn submit(&self, spec: JobSpec) -> Result<Job, StoreError> {
        self.record("submit");
        self.inner.submit(spec).await
    }
    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        self.record("get");
        self.inner.get(id).await
    }
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        self.record("list");
        self.inner.list(query).await
    }
    async fn cancel(&self, id: JobId, reason: &str) -> Result<Job, StoreError> {
        self.record("cancel");
        self.inner.cancel(id, reason).await
    }
    async fn retry(&self, id: JobId) -> Result<Job, StoreError> {
        self.record("retry");
        self.inner.retry(id).await
    }
    async fn register_node(&self, registration: NodeRegistration) -> Result<Node, StoreError> {
        self.record("register_node");
        self.inner.register_node(registration).await
    }
    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, StoreError> {
        self.record("heartbeat");
        self.inner.heartbeat(node_id, heartbeat).await
    }
    async fn list_nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.record("list_nodes");
        self.inner.list_nodes().await
    }
    async fn list_nodes_page(&self, query: &NodeQuery) -> Result<NodePage, StoreError> {
        self.record("list_nodes_page");
        self.inner.list_nodes_page(query).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, StoreError> {
        self.record("claim");
        self.inner.claim(request).await
    }
    async fn report(&self, report: &JobReport) -> Result<Job, StoreError> {
        self.record("report");
        self.inner.report(report).await
    }
    async fn sweep(&self) -> Result<SweepSummary, StoreError> {
        self.record("sweep");
        self.inner.sweep().await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let key = "an-example-key-long-enough-to-pass";
    let store = Arc::new(Recording {
        inner: SqliteStore::open(&dir.path().join("jobs.db"))?,
        calls: Mutex::new(Vec::new()),
    });
    let master = MasterBuilder::new(store.clone(), TlsSetup::self_signed(dir.path().join("tls")))
        .addr("127.0.0.1:0".parse()?)
        .api_key(key)
        .build()
        .await?;
    let mut client = ClientConfig::new(master.base_url(), key);
    client.ca_cert = Some(dir.path().join("tls/cert.pem"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(master.run(async {
        let _ = stopped.await;
    }));

    let api = ApiClient::new(client)?;
    let submitted = api.submit(&JobSpec::new("1080p-h265")).await?;
    let read = api.get(submitted.id).await?;
    let canceled = api.cancel(submitted.id).await?;
    let _ = stop.send(());
    serving.await??;

    let calls = store.calls.lock().unwrap().clone();
    println!(
        "job {}: {} then {}; store calls: {calls:?}",
        read.id, read.state, canceled.state
    );
    assert_eq!(read.state, JobState::Queued);
    assert_eq!(canceled.state, JobState::Canceled);
    // The master's own background work also goes through the store: sweeps, and the reads
    // behind the dashboard's history and the event stream's node view.
    let background = ["sweep", "list", "list_nodes"];
    let api_calls: Vec<_> = calls.iter().filter(|c| !background.contains(c)).copied().collect();
    assert_eq!(
        api_calls,
        ["submit", "get", "cancel"],
        "every API call reached the wrapper"
    );
    Ok(())
}
