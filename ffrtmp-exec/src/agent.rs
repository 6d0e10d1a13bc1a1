//! The agent loop: register, heartbeat, claim, execute, report, drain.
//!
//! The loop is written against the [`Transport`], [`Executor`] and [`JobEnergyMeter`] traits,
//! so the same code runs the reference agent over HTTPS and an embedded agent in-process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ffrtmp_core::power::unavailable_energy;
use ffrtmp_core::{
    AttemptKey, Backoff, CancelHandle, ClaimRequest, EnergyReport, ErrorKind, ExecOutcome, Executor, Heartbeat, Job,
    JobEnergyMeter, JobError, JobEvent, JobReport, Node, NodeId, NodePower, NodeRegistration, RunningJob, Transport,
    TransportError,
};
use tokio::sync::Notify;

mod attempt;
#[cfg(test)]
mod attempt_tests;
mod builder;
mod slots;
mod ticks;
#[cfg(test)]
mod ticks_tests;

use attempt::start_job;
pub use builder::AgentBuilder;
use slots::{attempts_to_stop, Slots};

/// Settings of an [`Agent`].
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// What the node tells the master about itself; `max_concurrent_jobs` bounds the slots.
    pub registration: NodeRegistration,
    /// Heartbeat period (must match the master's expectation).
    pub heartbeat_interval: Duration,
    /// Period of progress ticks while jobs run (progress, power, and the master's cancels).
    /// Default 500 ms, so a cancel reaches the encode within about half a second.
    pub progress_interval: Duration,
    /// How long one claim may wait at the master for work (long poll).
    pub claim_wait: Duration,
    /// Pause after a claim that returned nothing immediately (master without long poll).
    pub idle_pause: Duration,
    /// On shutdown, how long running jobs may take before they are stopped.
    pub drain_timeout: Duration,
    /// How long a finished job's report is retried while the master is unreachable.
    pub report_patience: Duration,
}

impl AgentConfig {
    /// Defaults around a registration: 30 s heartbeats, progress ticks every 500 ms, 20 s
    /// long polls, 30 s drain.
    pub fn new(registration: NodeRegistration) -> Self {
        AgentConfig {
            registration,
            heartbeat_interval: Duration::from_secs(30),
            progress_interval: Duration::from_millis(500),
            claim_wait: Duration::from_secs(20),
            idle_pause: Duration::from_millis(500),
            drain_timeout: Duration::from_secs(30),
            report_patience: Duration::from_secs(600),
        }
    }
}

/// Live counters of an agent, for its metrics and readiness endpoints.
#[derive(Debug, Default)]
pub struct AgentStats {
    /// Jobs running now.
    pub running: AtomicU64,
    /// Jobs that completed.
    pub completed: AtomicU64,
    /// Jobs that failed.
    pub failed: AtomicU64,
    /// Jobs stopped by their own timeout.
    pub timed_out: AtomicU64,
    /// Jobs stopped because the master canceled or fenced them.
    pub stopped: AtomicU64,
    /// Completed jobs whose resource limits could not be enforced.
    pub limits_not_enforced: AtomicU64,
    /// Failed heartbeats and claims.
    pub master_errors: AtomicU64,
    /// Last successful exchange with the master (ms since the Unix epoch; 0: never).
    pub last_contact_ms: AtomicU64,
}

impl AgentStats {
    fn contact(&self) {
        self.last_contact_ms.store(ffrtmp_core::now_ms(), Ordering::Relaxed);
    }

    fn count(&self, outcome: Option<&ExecOutcome>) {
        let counter = match outcome {
            Some(ExecOutcome::Completed { result }) => {
                if result.limits.starts_with("not enforced") {
                    self.limits_not_enforced.fetch_add(1, Ordering::Relaxed);
                }
                &self.completed
            }
            Some(ExecOutcome::Failed { .. }) => &self.failed,
            Some(ExecOutcome::TimedOut { .. }) => &self.timed_out,
            Some(ExecOutcome::Canceled) | None => &self.stopped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What an agent did before it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSummary {
    /// The node id the master gave this agent.
    pub node_id: Option<NodeId>,
    /// Jobs whose outcome the master accepted.
    pub reported: u64,
    /// Jobs stopped because the master canceled or fenced them.
    pub stopped: u64,
}

struct Shared {
    transport: Arc<dyn Transport>,
    executor: Arc<dyn Executor>,
    energy: Option<Arc<dyn JobEnergyMeter>>,
    config: AgentConfig,
    /// Every live attempt, stale ones still being stopped included: their number bounds claims.
    slots: Slots,
    slot_freed: Notify,
    summary: Mutex<AgentSummary>,
    stats: Arc<AgentStats>,
    reregistering: tokio::sync::Mutex<()>,
}

/// A worker agent.
pub struct Agent {
    shared: Arc<Shared>,
}

impl Agent {
    /// Builds an agent. `energy` is optional: without a meter, results say energy is
    /// unavailable and why.
    pub fn new(
        transport: Arc<dyn Transport>,
        executor: Arc<dyn Executor>,
        energy: Option<Arc<dyn JobEnergyMeter>>,
        config: AgentConfig,
    ) -> Self {
        Agent {
            shared: Arc::new(Shared {
                transport,
                executor,
                energy,
                config,
                slots: Mutex::new(HashMap::new()),
                slot_freed: Notify::new(),
                summary: Mutex::new(AgentSummary::default()),
                stats: Arc::new(AgentStats::default()),
                reregistering: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Live counters, shared with whoever serves the agent's metrics.
    pub fn stats(&self) -> Arc<AgentStats> {
        self.shared.stats.clone()
    }

    /// Runs until `shutdown` resolves, then stops claiming, drains running jobs (up to
    /// the drain timeout, after which they are stopped and reported as interrupted so the
    /// master retries them) and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> AgentSummary {
        let shared = self.shared;
        tokio::pin!(shutdown);
        let node = tokio::select! {
            node = register(&shared) => node,
            _ = &mut shutdown => return AgentSummary::default(),
        };
        tracing::info!(node_id = %node.id, "registered with master");
        lock(&shared.summary).node_id = Some(node.id);
        let heartbeats = tokio::spawn(heartbeat_loop(shared.clone()));
        let ticks = tokio::spawn(ticks::progress_loop(shared.clone()));
        tokio::select! {
            _ = claim_loop(shared.clone()) => {}
            _ = &mut shutdown => tracing::info!("shutdown requested: no new claims, draining"),
        }
        drain(&shared).await;
        heartbeats.abort();
        ticks.abort();
        let summary = lock(&shared.summary).clone();
        summary
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn register(shared: &Shared) -> Node {
    let mut n = 0;
    loop {
        match shared.transport.register(&shared.config.registration).await {
            Ok(node) => return node,
            Err(e) => {
                let wait = Backoff::TRANSPORT.delay(n.min(5));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "registration failed");
                n += 1;
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The node id the master knows this agent by now.
fn current_node(shared: &Shared) -> Option<NodeId> {
    lock(&shared.summary).node_id
}

/// The master answered 404 for our node (its database was replaced or restored): register
/// again. Jobs still running under the old id are fenced by the master and stop.
async fn reregister(shared: &Shared, stale: NodeId) {
    let _one_at_a_time = shared.reregistering.lock().await;
    if current_node(shared) != Some(stale) {
        return;
    }
    tracing::warn!(node_id = %stale, "the master no longer knows this node; registering again");
    let node = register(shared).await;
    tracing::info!(node_id = %node.id, "registered with master");
    lock(&shared.summary).node_id = Some(node.id);
}

fn is_unknown_node(e: &TransportError) -> bool {
    matches!(e, TransportError::Rejected { status: 404, .. })
}

async fn heartbeat_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let running: Vec<RunningJob> = lock(&shared.slots)
            .iter()
            .map(|(key, s)| RunningJob {
                job_id: key.job,
                attempt: key.attempt,
                progress: s.progress.get(),
            })
            .collect();
        let sent: Vec<AttemptKey> = running.iter().map(|r| AttemptKey::new(r.job_id, r.attempt)).collect();
        let Some(node_id) = current_node(&shared) else { continue };
        let power = node_power(shared.energy.as_deref());
        match shared.transport.heartbeat(node_id, &Heartbeat { running, power }).await {
            Ok(reply) => {
                shared.stats.contact();
                let slots = lock(&shared.slots);
                for key in attempts_to_stop(&reply, &sent) {
                    if let Some(slot) = slots.get(&key) {
                        tracing::info!(attempt = %key, "master says stop: canceled or fenced");
                        slot.cancel.cancel();
                    }
                }
            }
            Err(e) => {
                shared.stats.master_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "heartbeat failed");
                if is_unknown_node(&e) {
                    reregister(&shared, node_id).await;
                }
            }
        }
    }
}

async fn claim_loop(shared: Arc<Shared>) {
    let max = shared.config.registration.max_concurrent_jobs;
    let mut failures = 0u32;
    let mut pending_claim: Option<String> = None;
    loop {
        let free = max.saturating_sub(lock(&shared.slots).len() as u32);
        if free == 0 {
            shared.slot_freed.notified().await;
            continue;
        }
        // Reuse the claim id after a transport failure: the master may have assigned jobs
        // whose answer was lost, and the same id returns them.
        let claim_id = pending_claim.take().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let Some(node_id) = current_node(&shared) else { return };
        let request = ClaimRequest {
            node_id,
            claim_id: claim_id.clone(),
            max_jobs: free,
            wait_ms: shared.config.claim_wait.as_millis() as u64,
        };
        let started = Instant::now();
        match shared.transport.claim(&request).await {
            Ok(assignments) => {
                shared.stats.contact();
                failures = 0;
                let empty = assignments.is_empty();
                for a in assignments {
                    start_job(&shared, node_id, a);
                }
                if empty && started.elapsed() < shared.config.idle_pause {
                    tokio::time::sleep(shared.config.idle_pause).await;
                }
            }
            Err(e) => {
                shared.stats.master_errors.fetch_add(1, Ordering::Relaxed);
                if e.is_retryable() {
                    pending_claim = Some(claim_id);
                }
                let wait = Backoff::TRANSPORT.delay(failures.min(5));
                failures += 1;
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "claim failed");
                if is_unknown_node(&e) {
                    reregister(&shared, node_id).await;
                    continue;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Retries a final report while the master is unreachable, so a finished job's result is
/// not lost to a short outage. Returns whether the master accepted it.
async fn send_report(shared: &Shared, report: JobReport) -> bool {
    let deadline = deadline_after(shared.config.report_patience);
    let mut n = 0;
    loop {
        match shared.transport.report(&report).await {
            Ok(_) => return true,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                let wait = Backoff::TRANSPORT.delay(n.min(5));
                n += 1;
                tracing::warn!(job_id = %report.job_id, error = %e, "report failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                tracing::warn!(job_id = %report.job_id, error = %e, "report refused");
                return false;
            }
        }
    }
}

async fn drain(shared: &Arc<Shared>) {
    let deadline = deadline_after(shared.config.drain_timeout);
    while !lock(&shared.slots).is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), shared.slot_freed.notified()).await;
    }
    // Jobs still running are stopped and handed back; finished ones keep reporting.
    let remaining: Vec<(AttemptKey, CancelHandle)> = lock(&shared.slots)
        .iter()
        .filter(|(_, s)| !s.reporting.load(Ordering::SeqCst))
        .map(|(key, s)| (*key, s.cancel.clone()))
        .collect();
    let Some(node_id) = lock(&shared.summary).node_id else {
        return;
    };
    for (key, cancel) in remaining {
        cancel.cancel();
        let report = JobReport {
            job_id: key.job,
            node_id,
            attempt: key.attempt,
            event: JobEvent::Failed {
                error: JobError::new(ErrorKind::Interrupted, "agent shut down before the job finished"),
            },
        };
        // One try each: the master retries the job after this report or after the node is
        // declared lost, whichever comes first.
        if let Err(e) = shared.transport.report(&report).await {
            tracing::warn!(attempt = %key, error = %e, "could not report interrupted job");
        }
    }
    // Give the stopped processes a moment to be reaped, and finished jobs time to deliver
    // their results (their reports retry while the master is unreachable).
    let until = deadline_after(shared.config.report_patience.min(Duration::from_secs(60)));
    while !lock(&shared.slots).is_empty() && Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(200), shared.slot_freed.notified()).await;
    }
}

/// `Instant::now() + wait`, or a century on for a wait too long to add (no deadline, in effect).
fn deadline_after(wait: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(wait)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

/// The meter's snapshot for a heartbeat. One the master would refuse is left out (and
/// logged): a heartbeat must never fail over telemetry, or the node would look lost.
fn node_power(meter: Option<&dyn JobEnergyMeter>) -> Option<NodePower> {
    let power = meter?.node_power()?;
    match power.validate() {
        Ok(()) => Some(power),
        Err(e) => {
            tracing::warn!(error = %e, "node power snapshot left out of the heartbeat");
            None
        }
    }
}

/// Ends the job's energy measurement, whatever the outcome: a completed result gets its energy
/// in place; for any other outcome the energy the attempt used is returned beside it, for the
/// failure or timeout report (`None` without a meter).
fn measure(
    meter: &Option<Arc<dyn JobEnergyMeter>>,
    job: &Job,
    outcome: ExecOutcome,
) -> (ExecOutcome, Option<EnergyReport>) {
    match (meter, outcome) {
        (Some(m), ExecOutcome::Completed { mut result }) => {
            result.energy = m.finished(job, Some(&result));
            if let Some(live) = result.live.as_mut() {
                live.apply_energy(&result.energy);
            }
            let pass_energy = result.quality.is_some().then(|| m.quality_pass(job, &result)).flatten();
            if let Some(q) = result.quality.as_mut() {
                q.energy = pass_energy;
                // A partial report is a lower bound: a ratio over it would overstate.
                let encode_joules = result.energy.energy_joules.filter(|_| !result.energy.partial);
                q.score_per_joule = q.per_joule(encode_joules);
            }
            (ExecOutcome::Completed { result }, None)
        }
        (None, ExecOutcome::Completed { mut result }) => {
            result.energy = unavailable_energy("no energy meter configured on this agent");
            (ExecOutcome::Completed { result }, None)
        }
        (Some(m), other) => {
            let energy = m.finished(job, None);
            (other, Some(energy))
        }
        (None, other) => (other, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::power::WholeNodeEnergy;
    use ffrtmp_core::{EnergySample, JobId, JobResult, JobSpec, JobState, PowerError, PowerSource, ZoneEnergy};

    struct Counter(Mutex<u64>);
    impl PowerSource for Counter {
        fn name(&self) -> &str {
            "test"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            let mut v = self.0.lock().unwrap();
            *v += 5_000_000;
            Ok(EnergySample {
                zones: vec![ZoneEnergy {
                    zone: "package-0".into(),
                    energy_uj: *v,
                }],
                wraps: 0,
            })
        }
    }

    fn job() -> Job {
        Job {
            state: JobState::Running,
            attempt: 1,
            ..Job::submitted(JobId::new(), 1, JobSpec::new("720p-h264").try_into().unwrap(), 0)
        }
    }

    #[test]
    fn completed_jobs_carry_the_meters_energy() {
        let meter: Option<Arc<dyn JobEnergyMeter>> =
            Some(Arc::new(WholeNodeEnergy::new(Arc::new(Counter(Mutex::new(0))))));
        let j = job();
        meter.as_ref().unwrap().started(&j);
        let done = ExecOutcome::Completed {
            result: JobResult {
                frames: 50,
                ..Default::default()
            },
        };
        let (ExecOutcome::Completed { result }, None) = measure(&meter, &j, done) else {
            panic!("outcome changed")
        };
        assert_eq!(result.energy.energy_joules, Some(5.0));
        assert_eq!(result.energy.joules_per_frame, Some(0.1));
        assert_eq!(result.energy.attribution.as_deref(), Some("whole-node"));
    }

    /// A meter that reports a fixed node snapshot.
    struct Snapshot(Option<NodePower>);
    impl JobEnergyMeter for Snapshot {
        fn started(&self, _job: &Job) {}
        fn finished(&self, _job: &Job, _result: Option<&JobResult>) -> ffrtmp_core::EnergyReport {
            unavailable_energy("test")
        }
        fn node_power(&self) -> Option<NodePower> {
            self.0.clone()
        }
    }

    #[test]
    fn heartbeats_carry_the_meters_valid_snapshot_only() {
        let power = NodePower {
            source: "rapl".into(),
            energy_joules: 10.0,
            measured_s: 1.0,
            watts: Some(10.0),
            idle_watts: Some(8.0),
            counting_since_ms: 5,
            sampled_at_ms: 1005,
            cpus: None,
        };
        assert_eq!(node_power(Some(&Snapshot(Some(power.clone())))), Some(power.clone()));
        let broken = NodePower {
            watts: Some(f64::NAN),
            ..power
        };
        assert_eq!(node_power(Some(&Snapshot(Some(broken)))), None);
        assert_eq!(node_power(Some(&Snapshot(None))), None);
        assert_eq!(node_power(None), None);
        // A meter that does not override the method says nothing.
        let whole = WholeNodeEnergy::new(Arc::new(Counter(Mutex::new(0))));
        assert_eq!(node_power(Some(&whole)), None);
    }

    #[test]
    fn failed_and_timed_out_jobs_carry_the_energy_they_used() {
        let meter: Option<Arc<dyn JobEnergyMeter>> =
            Some(Arc::new(WholeNodeEnergy::new(Arc::new(Counter(Mutex::new(0))))));
        let j = job();
        meter.as_ref().unwrap().started(&j);
        let failed = ExecOutcome::Failed {
            error: JobError::new(ErrorKind::EncodeError, "unknown encoder"),
        };
        let (outcome, energy) = measure(&meter, &j, failed);
        assert!(matches!(outcome, ExecOutcome::Failed { .. }), "{outcome:?}");
        let energy = energy.expect("a failed job's energy");
        assert_eq!((energy.source.as_str(), energy.energy_joules), ("test", Some(5.0)));

        meter.as_ref().unwrap().started(&j);
        let timed_out = ExecOutcome::TimedOut {
            message: "ran past 1 s".into(),
        };
        let (_, energy) = measure(&meter, &j, timed_out);
        assert_eq!(energy.and_then(|e| e.energy_joules), Some(5.0));
        let (_, energy) = measure(&None, &j, ExecOutcome::Canceled);
        assert_eq!(energy, None, "no meter, no figure");
    }

    #[test]
    fn without_a_meter_energy_says_why() {
        let done = ExecOutcome::Completed {
            result: JobResult::default(),
        };
        let (ExecOutcome::Completed { result }, None) = measure(&None, &job(), done) else {
            panic!("outcome changed")
        };
        assert_eq!(result.energy.source, "unavailable");
        assert!(result.energy.unavailable_reason.unwrap().contains("no energy meter"));
    }
}
