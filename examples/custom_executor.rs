//! Swap in your own `Executor`: a master store, an in-process agent and a custom executor
//! in one process, each job's energy still measured (RAPL over the job's run, or the reason
//! there is none). Run: `cargo run -p ffrtmp-examples --example custom_executor`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ffrtmp_core::power::{UnavailableSource, WholeNodeEnergy};
use ffrtmp_core::{
    CancelSignal, ExecOutcome, Executor, Job, JobResult, JobSpec, JobState, JobStore, PowerError, PowerSource,
    Progress, ProgressSink,
};
use ffrtmp_exec::AgentBuilder;
use ffrtmp_power::{RaplSource, SYSTEM_POWERCAP};
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

    // Energy stays with a custom executor: any `JobEnergyMeter` measures its jobs. This one
    // charges each job the node's RAPL energy over its run (exact with one job at a time).
    let source: Arc<dyn PowerSource> = match RaplSource::open(SYSTEM_POWERCAP) {
        Ok(rapl) => Arc::new(rapl),
        Err(PowerError::Unavailable(reason) | PowerError::Read(reason)) => Arc::new(UnavailableSource::new(reason)),
    };
    let agent = AgentBuilder::new(Arc::new(StoreTransport::new(store.clone())), Arc::new(FrameCounter))
        .name("example")
        .engines(["example"])
        .energy_meter(Arc::new(WholeNodeEnergy::new(source)))
        .heartbeat_interval(Duration::from_millis(200))
        .config(|c| c.idle_pause = Duration::from_millis(20))
        .build();

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
        assert_eq!(job.state, JobState::Completed);
        let result = job.result.as_ref().expect("a completed job has a result");
        let energy = match (result.energy.energy_joules, &result.energy.unavailable_reason) {
            (Some(joules), _) => format!("{joules:.3} J"),
            (None, Some(reason)) => format!("no energy: {reason}"),
            (None, None) => panic!("neither energy nor a reason: {:?}", result.energy),
        };
        println!(
            "{:<12} {:<10} frames={} {energy}",
            job.spec.scenario, job.state, result.frames
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
