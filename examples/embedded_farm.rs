//! A master and an agent in one program: the reference HTTPS master over SQLite, an agent
//! talking to it over TLS on loopback, and a client submitting a job.
//! Run: `cargo run -p ffrtmp-examples --example embedded_farm`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ffrtmp_core::{JobSpec, JobState};
use ffrtmp_exec::{AgentBuilder, NoopExecutor};
use ffrtmp_farm::MasterBuilder;
use ffrtmp_http::{ApiClient, ClientConfig, HttpTransport, TlsSetup};
use ffrtmp_sched::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let key = "an-example-key-long-enough-to-pass";
    let store = Arc::new(SqliteStore::open(&dir.path().join("jobs.db"))?);
    let master = MasterBuilder::new(store, TlsSetup::self_signed(dir.path().join("tls")))
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

    let agent = AgentBuilder::new(
        Arc::new(HttpTransport::new(client.clone())?),
        Arc::new(NoopExecutor::new(Duration::from_millis(50))),
    )
    .name("embedded")
    .engines(["noop"])
    .heartbeat_interval(Duration::from_millis(500))
    .claim_wait(Duration::from_millis(500))
    .build();
    let (halt, halted) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = halted.await;
    }));

    let api = ApiClient::new(client)?;
    let id = api.submit(&JobSpec::new("720p-h264")).await?.id;
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = api.get(id).await?;
        if job.state.is_terminal() || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("job {id}: {} on node {:?}", job.state, job.node_id);
    assert_eq!(job.state, JobState::Completed);

    let _ = halt.send(());
    running.await?;
    let _ = stop.send(());
    serving.await??;
    Ok(())
}
