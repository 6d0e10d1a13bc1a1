//! Progress ticks against a scripted master: they flow while a job runs whatever the
//! heartbeat interval, and a cancel in a tick's answer stops the job without a heartbeat.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, AttemptKey, CancelSignal, ClaimRequest, ExecOutcome, Executor, Heartbeat, HeartbeatReply, Job, JobId,
    JobReport, JobSpec, JobState, Node, NodeId, NodeRegistration, NodeStatus, Progress, ProgressReply, ProgressSink,
    ProgressTick, Transport, TransportError,
};

use super::{Agent, AgentConfig};

#[derive(Default)]
struct TickMaster {
    job: Mutex<Option<Job>>,
    ticks: Mutex<Vec<ProgressTick>>,
    heartbeats: Mutex<u32>,
    cancel: Mutex<Vec<AttemptKey>>,
}

#[async_trait]
impl Transport for TickMaster {
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError> {
        Ok(Node {
            id: NodeId::new(),
            registration: registration.clone(),
            status: NodeStatus::Online,
            active_jobs: 0,
            registered_at_ms: 0,
            last_seen_ms: 0,
            power: None,
        })
    }
    async fn heartbeat(&self, _node: NodeId, _hb: &Heartbeat) -> Result<HeartbeatReply, TransportError> {
        *self.heartbeats.lock().unwrap() += 1;
        Ok(HeartbeatReply::default())
    }
    async fn claim(&self, _request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(self
            .job
            .lock()
            .unwrap()
            .take()
            .map(|job| Assignment { job })
            .into_iter()
            .collect())
    }
    async fn report(&self, report: &JobReport) -> Result<Job, TransportError> {
        Ok(Job {
            state: JobState::Running,
            attempt: report.attempt,
            ..Job::submitted(report.job_id, 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
        })
    }
    async fn progress(&self, _node: NodeId, tick: &ProgressTick) -> Result<ProgressReply, TransportError> {
        self.ticks.lock().unwrap().push(tick.clone());
        Ok(ProgressReply {
            cancel_attempts: self.cancel.lock().unwrap().clone(),
        })
    }
}

/// Counts frames every 20 ms until canceled.
struct Counting;

#[async_trait]
impl Executor for Counting {
    async fn execute(&self, _job: &Job, progress: &dyn ProgressSink, mut cancel: CancelSignal) -> ExecOutcome {
        let mut frame = 0;
        loop {
            tokio::select! {
                _ = cancel.canceled() => return ExecOutcome::Canceled,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            frame += 1;
            progress.update(Progress {
                frame,
                fps: 50.0,
                ..Progress::default()
            });
        }
    }
}

async fn until(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn ticks_carry_progress_between_heartbeats_and_their_cancels_stop_the_job() {
    let master = Arc::new(TickMaster::default());
    let id = JobId::new();
    *master.job.lock().unwrap() = Some(Job {
        state: JobState::Assigned,
        attempt: 1,
        ..Job::submitted(id, 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
    });
    let mut config = AgentConfig::new(NodeRegistration {
        name: "ticks".into(),
        cpu_cores: 1,
        memory_mb: 64,
        max_concurrent_jobs: 1,
        encoders: vec![],
        engines: vec![],
        version: String::new(),
        enforces_limits: false,
        quality_metrics: Vec::new(),
    });
    config.heartbeat_interval = Duration::from_secs(30);
    config.progress_interval = Duration::from_millis(100);
    config.claim_wait = Duration::ZERO;
    let agent = Agent::new(master.clone(), Arc::new(Counting), None, config);
    let stats = agent.stats();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let run = tokio::spawn(agent.run(async move { stopped.notified().await }));

    let frames = |m: &TickMaster| -> Vec<u64> {
        let ticks = m.ticks.lock().unwrap();
        let mut f: Vec<u64> = ticks
            .iter()
            .flat_map(|t| t.running.iter().filter_map(|r| r.progress.as_ref().map(|p| p.frame)))
            .collect();
        f.dedup();
        f
    };
    until("five distinct progress values", Duration::from_secs(5), || {
        frames(&master).len() >= 5
    })
    .await;
    assert!(
        *master.heartbeats.lock().unwrap() <= 1,
        "progress came with heartbeats, not ticks"
    );

    let asked = Instant::now();
    master.cancel.lock().unwrap().push(AttemptKey::new(id, 1));
    until("the job stopped", Duration::from_secs(2), || {
        stats.running.load(std::sync::atomic::Ordering::Relaxed) == 0
    })
    .await;
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    stop.notify_one();
    let summary = run.await.unwrap();
    assert_eq!(summary.stopped, 1);
}
