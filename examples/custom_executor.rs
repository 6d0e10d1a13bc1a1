//! Swap in your own `Executor`: a master store, an in-process agent and a custom executor
//! in one process. Run: `cargo run -p ffrtmp-examples --example custom_executor`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ffrtmp_core::{
    CancelSignal, ExecOutcome, Executor, Job, JobResult, JobSpec, JobState, JobStore, NodeRegistration, Progress,
    ProgressSink,
};
use ffrtmp_exec::agent::{Agent, AgentConfig};
use ffrtmp_sched::{SqliteStore, StoreTransport};

/// An executor that "encodes" by counting frames for a while, honouring cancel.
struct FrameCounter;

#[async_trait]
impl Executor for FrameCounter {
    async fn execute(&self, job: &Job, progress: &dyn ProgressSink, mut cancel: CancelSignal) -> ExecOutcome {
        let scenario = match job.spec.check() {
            Ok(s) => s,
            Err(e) => {
                return ExecOutcome::Failed {
                    error: ffrtmp_core::JobError::new(ffrtmp_core::ErrorKind::InvalidParameter, e.to_string()),
                }
            }
        };
        let total = (job.spec.parameters.duration.unwrap_or(1.0) * f64::from(scenario.fps)) as u64;
        let start = std::time::Instant::now();
        for frame in 1..=total {
            tokio::select! {
                _ = cancel.canceled() => return ExecOutcome::Canceled,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            progress.update(Progress {
                frame,
                percent: frame as f64 * 100.0 / total as f64,
                ..Default::default()
            });
        }
        let wall_s = start.elapsed().as_secs_f64();
        ExecOutcome::Completed {
            result: JobResult {
                frames: total,
                wall_s,
                avg_fps: total as f64 / wall_s,
                encoder: "example/frame-counter".into(),
                limits: "none requested".into(),
                ..Default::default()
            },
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ffrtmp-example-{}", std::process::id()));
    let store = Arc::new(SqliteStore::open(&dir.join("jobs.db"))?);
    let mut ids = Vec::new();
    for scenario in ["720p-h264", "1080p-h265", "4K60-h265"] {
        let mut spec = JobSpec::new(scenario);
        spec.parameters.duration = Some(0.5);
        ids.push(store.submit(spec).await?.id);
    }

    let registration = NodeRegistration {
        name: "example".into(),
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: 2,
        encoders: vec![],
        engines: vec!["example".into()],
        version: "0".into(),
        enforces_limits: false,
    };
    let mut config = AgentConfig::new(registration);
    config.heartbeat_interval = Duration::from_millis(200);
    config.idle_pause = Duration::from_millis(20);
    let agent = Agent::new(
        Arc::new(StoreTransport::new(store.clone())),
        Arc::new(FrameCounter),
        None,
        config,
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut done = 0;
        for id in &ids {
            if store.get(*id).await?.state.is_terminal() {
                done += 1;
            }
        }
        if done == ids.len() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await?;
    for id in ids {
        let job = store.get(id).await?;
        let frames = job.result.as_ref().map(|r| r.frames).unwrap_or(0);
        println!("{:<12} {:<10} frames={frames}", job.spec.scenario, job.state);
        assert_eq!(job.state, JobState::Completed);
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
