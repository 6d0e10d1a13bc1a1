//! Swap in your own `Transport`: a wrapper that counts and logs every call an agent makes,
//! around the in-process transport (the agent and the master's store in one program).
//! Run: `cargo run -p ffrtmp-examples --example custom_transport`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobEvent, JobReport, JobSpec, JobState, JobStore, Node,
    NodeId, NodeRegistration, Transport, TransportError,
};
use ffrtmp_exec::{AgentBuilder, NoopExecutor};
use ffrtmp_sched::{SqliteStore, StoreTransport};

/// Counts calls by kind (reports: completions) and logs completions; everything else goes to `inner` unchanged.
struct Counting<T> {
    inner: T,
    calls: [AtomicU64; 4],
}

impl<T> Counting<T> {
    fn count(&self, call: usize) {
        self.calls[call].fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<T: Transport> Transport for Counting<T> {
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError> {
        self.count(0);
        self.inner.register(registration).await
    }
    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, TransportError> {
        self.count(1);
        self.inner.heartbeat(node_id, heartbeat).await
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError> {
        self.count(2);
        self.inner.claim(request).await
    }
    async fn report(&self, report: &JobReport) -> Result<Job, TransportError> {
        if matches!(report.event, JobEvent::Completed { .. }) {
            self.count(3);
            println!("completed: job {} attempt {}", report.job_id, report.attempt);
        }
        self.inner.report(report).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db"))?);
    let transport = Arc::new(Counting {
        inner: StoreTransport::new(store.clone()),
        calls: Default::default(),
    });
    let agent = AgentBuilder::new(
        transport.clone(),
        Arc::new(NoopExecutor::new(Duration::from_millis(20))),
    )
    .heartbeat_interval(Duration::from_millis(200))
    .config(|c| c.idle_pause = Duration::from_millis(20))
    .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(store.submit(JobSpec::new("720p-h264")).await?.id);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for id in &ids {
        while !store.get(*id).await?.state.is_terminal() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.get(*id).await?.state, JobState::Completed);
    }
    let _ = stop.send(());
    running.await?;

    let [register, heartbeat, claim, report] = transport.calls.each_ref().map(|c| c.load(Ordering::Relaxed));
    println!("calls: register={register} heartbeat={heartbeat} claim={claim} completed={report}");
    assert_eq!(register, 1);
    assert_eq!(report, 3, "one completion per job");
    assert!(claim >= 1);
    Ok(())
}
