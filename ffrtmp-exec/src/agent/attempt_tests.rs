//! The agent loop against a scripted master and executor: attempts keep their own slots, a
//! panicking job task frees its slot and reports `internal`, huge timeouts do not overflow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, AttemptKey, CancelSignal, ClaimRequest, ErrorKind, ExecOutcome, Executor, Heartbeat, HeartbeatReply,
    Job, JobEvent, JobId, JobReport, JobResult, JobSpec, JobState, Node, NodeId, NodeRegistration, NodeStatus,
    ProgressSink, Transport, TransportError,
};
use tokio::sync::Notify;

use super::{slots::attempts_to_stop, Agent, AgentConfig, AgentSummary};
use crate::supervise::{self, ProcessSpec};

/// A master that hands out scripted batches, answers heartbeats with a settable reply and
/// records everything.
#[derive(Default)]
struct Master {
    registered: Mutex<Vec<NodeRegistration>>,
    batches: Mutex<VecDeque<Vec<Job>>>,
    claims: Mutex<Vec<ClaimRequest>>,
    heartbeats: Mutex<Vec<Heartbeat>>,
    reply: Mutex<HeartbeatReply>,
    reports: Mutex<Vec<JobReport>>,
}

#[async_trait]
impl Transport for Master {
    async fn register(&self, registration: &NodeRegistration) -> Result<Node, TransportError> {
        self.registered.lock().unwrap().push(registration.clone());
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
    async fn heartbeat(&self, _node: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, TransportError> {
        self.heartbeats.lock().unwrap().push(heartbeat.clone());
        Ok(self.reply.lock().unwrap().clone())
    }
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, TransportError> {
        self.claims.lock().unwrap().push(request.clone());
        let batch = self.batches.lock().unwrap().pop_front().unwrap_or_default();
        Ok(batch.into_iter().map(|job| Assignment { job }).collect())
    }
    async fn report(&self, report: &JobReport) -> Result<Job, TransportError> {
        self.reports.lock().unwrap().push(report.clone());
        Ok(job(report.job_id, report.attempt))
    }
}

impl Master {
    fn push(&self, jobs: Vec<Job>) {
        self.batches.lock().unwrap().push_back(jobs);
    }
    fn reports(&self) -> Vec<JobReport> {
        self.reports.lock().unwrap().clone()
    }
    /// The final (not `started`) reports so far, as (attempt, event).
    fn outcomes(&self) -> Vec<(AttemptKey, JobEvent)> {
        self.reports()
            .into_iter()
            .filter(|r| !matches!(r.event, JobEvent::Started))
            .map(|r| (AttemptKey::new(r.job_id, r.attempt), r.event))
            .collect()
    }
}

fn job(id: JobId, attempt: u32) -> Job {
    Job {
        state: JobState::Assigned,
        attempt,
        ..Job::submitted(id, 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
    }
}

fn config(max: u32) -> AgentConfig {
    let mut c = AgentConfig::new(NodeRegistration {
        name: "test".into(),
        cpu_cores: 2,
        memory_mb: 1024,
        max_concurrent_jobs: max,
        encoders: vec![],
        engines: vec![],
        enforces_limits: false,
        quality_metrics: Vec::new(),
        version: String::new(),
    });
    c.heartbeat_interval = Duration::from_millis(20);
    c.claim_wait = Duration::ZERO;
    c.idle_pause = Duration::from_millis(10);
    c.drain_timeout = Duration::from_secs(5);
    c.report_patience = Duration::from_secs(5);
    c
}

/// Polls `cond` until it holds; panics with `what` after 10 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs an agent until `stop` is notified; returns its summary.
fn spawn_agent(
    master: &Arc<Master>,
    executor: Arc<dyn Executor>,
    config: AgentConfig,
) -> (Arc<Notify>, tokio::task::JoinHandle<AgentSummary>) {
    let stop = Arc::new(Notify::new());
    let agent = Agent::new(master.clone(), executor, None, config);
    let stopped = stop.clone();
    let handle = tokio::spawn(agent.run(async move { stopped.notified().await }));
    (stop, handle)
}

/// Attempt 1 runs until it is stopped; attempt 2 until the test releases it. Every start
/// and end is logged in order.
#[derive(Default)]
struct Gated {
    log: Mutex<Vec<String>>,
    release: Notify,
}

#[async_trait]
impl Executor for Gated {
    async fn execute(&self, job: &Job, _p: &dyn ProgressSink, mut cancel: CancelSignal) -> ExecOutcome {
        self.log.lock().unwrap().push(format!("start a{}", job.attempt));
        let outcome = tokio::select! {
            _ = cancel.canceled() => ExecOutcome::Canceled,
            _ = self.release.notified(), if job.attempt > 1 => ExecOutcome::Completed { result: JobResult::default() },
        };
        self.log.lock().unwrap().push(format!("end a{}", job.attempt));
        outcome
    }
}

#[tokio::test]
async fn a_stale_attempt_never_touches_the_newer_attempt_of_its_job() {
    let master = Arc::new(Master::default());
    let exec = Arc::new(Gated::default());
    let id = JobId::new();
    let (stale, newer) = (AttemptKey::new(id, 1), AttemptKey::new(id, 2));
    master.push(vec![job(id, 1)]);
    let (stop, agent) = spawn_agent(&master, exec.clone(), config(2));
    until("attempt 1 runs", || exec.log.lock().unwrap().len() == 1).await;

    // The master declared the node lost and hands it the job again.
    master.push(vec![job(id, 2)]);
    until("attempt 2 runs", || exec.log.lock().unwrap().len() == 3).await;
    assert_eq!(
        *exec.log.lock().unwrap(),
        ["start a1", "end a1", "start a2"],
        "two attempts overlapped"
    );

    // The stale attempt's clean-up left the newer one's slot alone: heartbeats list it, and
    // claims count it against the two slots.
    let listed = |hb: &Heartbeat| {
        hb.running
            .iter()
            .map(|r| AttemptKey::new(r.job_id, r.attempt))
            .collect::<Vec<_>>()
    };
    until("a heartbeat listing only attempt 2", || {
        master.heartbeats.lock().unwrap().last().map(listed) == Some(vec![newer])
    })
    .await;
    until("a claim for the one free slot", || {
        master.claims.lock().unwrap().last().map(|c| c.max_jobs) == Some(1)
    })
    .await;

    // A master fencing the stale attempt does not stop the newer one.
    *master.reply.lock().unwrap() = HeartbeatReply {
        cancel: vec![id],
        cancel_attempts: vec![stale],
    };
    let seen = master.heartbeats.lock().unwrap().len();
    until("three fenced heartbeats", || {
        master.heartbeats.lock().unwrap().len() > seen + 3
    })
    .await;
    assert_eq!(exec.log.lock().unwrap().len(), 3, "attempt 2 was stopped");

    exec.release.notify_one();
    until("attempt 2 reported", || !master.outcomes().is_empty()).await;
    stop.notify_one();
    let summary = agent.await.unwrap();
    let outcomes = master.outcomes();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].0, newer);
    assert!(matches!(outcomes[0].1, JobEvent::Completed { .. }), "{outcomes:?}");
    assert_eq!((summary.reported, summary.stopped), (1, 1));
}

#[test]
fn heartbeat_cancels_name_attempts_and_job_only_cancels_reach_listed_ones() {
    let (a, b) = (JobId::new(), JobId::new());
    let sent = [AttemptKey::new(a, 1), AttemptKey::new(b, 4)];
    let keyed = HeartbeatReply {
        cancel: vec![a],
        cancel_attempts: vec![AttemptKey::new(a, 1)],
    };
    assert_eq!(attempts_to_stop(&keyed, &sent), [AttemptKey::new(a, 1)]);
    // An older master names jobs only: the attempts the heartbeat listed stop, not attempt
    // 5 of `b` that started after it was sent.
    let legacy = HeartbeatReply {
        cancel: vec![b],
        cancel_attempts: vec![],
    };
    assert_eq!(attempts_to_stop(&legacy, &sent), [AttemptKey::new(b, 4)]);
    let legacy_json: HeartbeatReply = serde_json::from_str(&format!(r#"{{"cancel":["{b}"]}}"#)).unwrap();
    assert_eq!(legacy_json, legacy);
}

/// Starts a real process group, and panics from the output callback once it runs: the
/// supervisor's future is dropped mid-run, as in an executor bug.
struct Panicking {
    pid: Arc<AtomicU64>,
}

#[async_trait]
impl Executor for Panicking {
    async fn execute(&self, job: &Job, _p: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome {
        if job.seq == 2 {
            return ExecOutcome::Completed {
                result: JobResult::default(),
            };
        }
        let spec = ProcessSpec::new("sh", ["-c", "echo $$; exec sleep 30"]);
        let pid = self.pid.clone();
        let _ = supervise::run(&spec, cancel, move |line| {
            pid.store(line.trim().parse().unwrap(), Ordering::SeqCst);
            panic!("executor bug");
        })
        .await;
        unreachable!("the callback panics")
    }
}

fn alive(pid: u64) -> bool {
    // Zombies count as gone: /proc/<pid>/stat says `Z` until the reaper collects it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_task_frees_its_slot_kills_its_processes_and_reports_internal() {
    let master = Arc::new(Master::default());
    let pid = Arc::new(AtomicU64::new(0));
    let exec = Arc::new(Panicking { pid: pid.clone() });
    let broken = job(JobId::new(), 1);
    let next = Job {
        seq: 2,
        ..job(JobId::new(), 1)
    };
    master.push(vec![broken.clone()]);
    master.push(vec![next.clone()]);
    // One slot: the second job only starts if the panicked one freed it.
    let (stop, agent) = spawn_agent(&master, exec, config(1));
    until("both jobs reported", || master.outcomes().len() == 2).await;
    stop.notify_one();
    agent.await.unwrap();

    let outcomes = master.outcomes();
    assert_eq!(outcomes[0].0, broken.attempt_key());
    match &outcomes[0].1 {
        JobEvent::Failed { error } => {
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(error.message.contains("executor bug"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(outcomes[1].0, next.attempt_key());
    assert!(matches!(outcomes[1].1, JobEvent::Completed { .. }));
    let pid = pid.load(Ordering::SeqCst);
    assert!(pid > 0, "the workload never ran");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the panicked job's process {pid} is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a real one-second encode as the job's workload under the job's own limits, as the
/// engines do, without the spec checks in front of them: what an embedded transport could
/// hand an agent.
struct RawEncode;

#[async_trait]
impl Executor for RawEncode {
    async fn execute(&self, job: &Job, _p: &dyn ProgressSink, cancel: CancelSignal) -> ExecOutcome {
        let args = [
            "-hide_banner",
            "-nostdin",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30:duration=1",
        ];
        let spec = ProcessSpec::new("ffmpeg", args.into_iter().chain(["-c:v", "libx264", "-f", "null", "-"]));
        let name = crate::job_cgroup_name(job);
        let limits = &job.spec.resource_limits;
        match crate::run_workload(spec, &name, limits, &crate::Cgroups::detect(), cancel, |_| {}).await {
            Ok(run) if run.exit.success() => ExecOutcome::Completed {
                result: JobResult {
                    wall_s: run.exit.wall.as_secs_f64(),
                    ..JobResult::default()
                },
            },
            other => ExecOutcome::Failed {
                error: ffrtmp_core::JobError::new(ErrorKind::EncodeError, format!("{other:?}")),
            },
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_encode_with_the_largest_timeout_runs_to_completion() {
    let mut huge = job(JobId::new(), 1);
    // Beyond today's bound: only a spec stored under older bounds carries it.
    let mut spec = huge.spec.clone().into_spec();
    spec.resource_limits.timeout_sec = Some(u64::MAX);
    huge.spec = ffrtmp_core::ValidSpec::stored(spec).unwrap();
    let master = Arc::new(Master::default());
    master.push(vec![huge.clone()]);
    let (stop, agent) = spawn_agent(&master, Arc::new(RawEncode), config(1));
    until("the encode reported", || !master.outcomes().is_empty()).await;
    stop.notify_one();
    agent.await.unwrap();
    match &master.outcomes()[0] {
        (key, JobEvent::Completed { result }) => {
            assert_eq!(*key, huge.attempt_key());
            assert!(result.wall_s > 0.0);
        }
        other => panic!("{other:?}"),
    }
}

/// What the builder is told reaches the master, and the meter it is given measures each job.
#[tokio::test]
async fn a_built_agent_registers_as_told_and_meters_its_jobs() {
    use ffrtmp_core::power::{UnavailableSource, WholeNodeEnergy};

    let master = Arc::new(Master::default());
    master.push(vec![job(JobId::new(), 1)]);
    let meter = Arc::new(WholeNodeEnergy::new(Arc::new(UnavailableSource::new(
        "the test's meter",
    ))));
    let agent = super::AgentBuilder::new(
        master.clone(),
        Arc::new(crate::NoopExecutor::new(Duration::from_millis(1))),
    )
    .name("built")
    .engines(["noop"])
    .max_concurrent_jobs(3)
    .energy_meter(meter)
    .heartbeat_interval(Duration::from_millis(50))
    .config(|c| c.idle_pause = Duration::from_millis(5))
    .build();
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let handle = tokio::spawn(agent.run(async move { stopped.notified().await }));
    until("the job's outcome", || !master.outcomes().is_empty()).await;
    stop.notify_one();
    handle.await.unwrap();

    let registered = master.registered.lock().unwrap().clone();
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].name, "built");
    assert_eq!(registered[0].engines, ["noop"]);
    assert_eq!(registered[0].max_concurrent_jobs, 3);
    match &master.outcomes()[0].1 {
        JobEvent::Completed { result } => {
            assert_eq!(result.energy.unavailable_reason.as_deref(), Some("the test's meter"))
        }
        other => panic!("expected completed, got {other:?}"),
    }
}

/// A meter that says every attempt used 4 J.
struct FourJoules;

impl ffrtmp_core::JobEnergyMeter for FourJoules {
    fn started(&self, _job: &Job) {}
    fn finished(&self, _job: &Job, _result: Option<&JobResult>) -> ffrtmp_core::EnergyReport {
        ffrtmp_core::EnergyReport {
            source: "test".into(),
            energy_joules: Some(4.0),
            ..Default::default()
        }
    }
}

fn metered_agent(
    master: &Arc<Master>,
    exec: Arc<dyn Executor>,
) -> (Arc<Notify>, tokio::task::JoinHandle<AgentSummary>) {
    let stop = Arc::new(Notify::new());
    let agent = Agent::new(master.clone(), exec, Some(Arc::new(FourJoules)), config(1));
    let stopped = stop.clone();
    (stop, tokio::spawn(agent.run(async move { stopped.notified().await })))
}

fn energy_of(event: &JobEvent) -> Option<f64> {
    match event {
        JobEvent::Energy { energy } => energy.energy_joules,
        _ => None,
    }
}

#[tokio::test]
async fn a_canceled_attempt_reports_the_energy_it_used() {
    let master = Arc::new(Master::default());
    let exec = Arc::new(Gated::default());
    let key = AttemptKey::new(JobId::new(), 1);
    master.push(vec![job(key.job, 1)]);
    let (stop, agent) = metered_agent(&master, exec.clone());
    until("the attempt runs", || exec.log.lock().unwrap().len() == 1).await;
    *master.reply.lock().unwrap() = HeartbeatReply {
        cancel: vec![key.job],
        cancel_attempts: vec![key],
    };
    until("the energy report", || !master.outcomes().is_empty()).await;
    stop.notify_one();
    agent.await.unwrap();
    let outcomes = master.outcomes();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!((outcomes[0].0, energy_of(&outcomes[0].1)), (key, Some(4.0)));
}

#[tokio::test]
async fn a_drained_attempt_reports_interrupted_then_its_energy() {
    let master = Arc::new(Master::default());
    let exec = Arc::new(Gated::default());
    let key = AttemptKey::new(JobId::new(), 1);
    master.push(vec![job(key.job, 1)]);
    let (stop, agent) = metered_agent(&master, exec.clone());
    until("the attempt runs", || exec.log.lock().unwrap().len() == 1).await;
    stop.notify_one();
    agent.await.unwrap();
    let outcomes = master.outcomes();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0].1, JobEvent::Failed { error } if error.kind == ErrorKind::Interrupted),
        "{outcomes:?}"
    );
    assert_eq!((outcomes[1].0, energy_of(&outcomes[1].1)), (key, Some(4.0)));
}

/// A meter that tells the quality pass from the encode: 20 J for the encode, 3 J for the pass.
struct SplitMeter;

impl ffrtmp_core::JobEnergyMeter for SplitMeter {
    fn started(&self, _job: &Job) {}
    fn finished(&self, _job: &Job, _result: Option<&JobResult>) -> ffrtmp_core::EnergyReport {
        ffrtmp_core::EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(20.0),
            ..Default::default()
        }
    }
    fn quality_pass(&self, _job: &Job, _result: &JobResult) -> Option<ffrtmp_core::EnergyReport> {
        Some(ffrtmp_core::EnergyReport {
            source: "rapl".into(),
            energy_joules: Some(3.0),
            ..Default::default()
        })
    }
}

/// The quality pass's energy goes in the quality report, the encode's in the job's, and
/// quality per joule divides by the encode's alone.
#[test]
fn the_quality_pass_energy_is_reported_apart_and_quality_per_joule_is_of_the_encode() {
    use ffrtmp_core::quality::{QualityMetric, QualityReport};
    let meter: Option<Arc<dyn ffrtmp_core::JobEnergyMeter>> = Some(Arc::new(SplitMeter));
    let done = ExecOutcome::Completed {
        result: JobResult {
            quality: Some(Box::new(QualityReport {
                score: Some(40.0),
                wall_s: Some(0.5),
                ..QualityReport::unavailable(QualityMetric::Psnr, "")
            })),
            ..Default::default()
        },
    };
    let (ExecOutcome::Completed { result }, None) = super::measure(&meter, &job(JobId::new(), 1), done) else {
        panic!("outcome changed")
    };
    assert_eq!(result.energy.energy_joules, Some(20.0));
    let q = result.quality.unwrap();
    assert_eq!(q.energy.and_then(|e| e.energy_joules), Some(3.0));
    assert_eq!(q.score_per_joule, Some(2.0));
}
