//! A store written outside this crate runs the public conformance suite.
//!
//! `MemStore` is a small in-memory [`JobStore`] built only on public API: it keeps rows in
//! a mutex and asks `ffrtmp_sched::policy` every scheduling question (fencing, transitions,
//! retries and backoff, capacity, sweep outcomes, heartbeat reconciliation). That it passes
//! the same suite as SQLite and PostgreSQL shows both that the suite is usable by a
//! third-party store and that the policy functions are the whole policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, AttemptKey, ClaimRequest, Heartbeat, HeartbeatReply, HistoryEntry, Job, JobError, JobEvent, JobId,
    JobPage, JobQuery, JobReport, JobSpec, JobState, JobStore, Node, NodeId, NodePage, NodeQuery, NodeRegistration,
    NodeStatus, PlacementNode, PlacementPeer, Requirements, StoreError, SweepSummary, ValidSpec,
};
use ffrtmp_sched::conformance::Backend;
use ffrtmp_sched::policy::report::{self, ReportDecision};
use ffrtmp_sched::policy::{claim, energy, heartbeat, holds, place, sweep, Step};
use ffrtmp_sched::{conformance_tests, SchedConfig};

conformance_tests!(Some(MemBackend::default()));

/// A job with what the scheduler keeps beside it.
struct Row {
    job: Job,
    history: Vec<HistoryEntry>,
    attempt_base: u32,
    base_rank: i64,
    rank: i64,
    queued_at_ms: u64,
    claimed_at_ms: u64,
}

/// A claim remembered so that its repeat returns the same jobs.
struct Claimed {
    claim_id: String,
    node: NodeId,
    key: AttemptKey,
    at_ms: u64,
}

#[derive(Default)]
struct State {
    jobs: BTreeMap<u64, Row>,
    seqs: HashMap<JobId, u64>,
    nodes: HashMap<NodeId, Node>,
    claims: Vec<Claimed>,
    last_seq: u64,
}

/// The "storage": every store opened on it shares the state, as masters share a database.
#[derive(Default)]
struct MemBackend {
    state: Arc<Mutex<State>>,
}

#[async_trait]
impl Backend for MemBackend {
    async fn open(&self, config: SchedConfig) -> Arc<dyn JobStore> {
        Arc::new(MemStore {
            opened_at: config.now(),
            state: self.state.clone(),
            cfg: config,
        })
    }
    fn name(&self) -> &'static str {
        "memory"
    }
}

struct MemStore {
    state: Arc<Mutex<State>>,
    cfg: SchedConfig,
    opened_at: u64,
}

fn job_not_found(id: JobId) -> StoreError {
    StoreError::NotFound {
        what: "job",
        id: id.to_string(),
    }
}

fn node_not_found(id: NodeId) -> StoreError {
    StoreError::NotFound {
        what: "node",
        id: id.to_string(),
    }
}

/// Applies a policy step and records it in the history.
fn apply(row: &mut Row, step: &Step, now: u64) -> Result<(), StoreError> {
    let from = row.job.state;
    row.job.state = from.transition(step.to)?;
    row.job.updated_at_ms = now;
    row.history.push(HistoryEntry {
        at_ms: now,
        from: Some(from),
        to: row.job.state,
        attempt: row.job.attempt,
        node_id: row.job.node_id,
        reason: step.reason.clone(),
    });
    Ok(())
}

/// Ends the row's attempt as the policy decides.
fn fail_attempt(row: &mut Row, cfg: &SchedConfig, error: JobError, now: u64) -> Result<(), StoreError> {
    let end = report::end_attempt(
        row.job.attempt,
        row.attempt_base,
        row.job.spec.max_retries,
        &error,
        &cfg.job_backoff,
        now,
    );
    row.attempt_base = end.attempt_base;
    if let Some(at) = end.outcome.retry_at_ms() {
        row.job.retry_at_ms = Some(at);
    }
    apply(row, &end.outcome.step(), now)?;
    row.job.error = Some(error);
    Ok(())
}

fn mark_queued(row: &mut Row, now: u64) {
    row.rank = row.base_rank;
    row.queued_at_ms = now;
}

impl State {
    fn row(&mut self, id: JobId) -> Result<&mut Row, StoreError> {
        let seq = self.seqs.get(&id).ok_or_else(|| job_not_found(id))?;
        self.jobs.get_mut(seq).ok_or_else(|| job_not_found(id))
    }

    fn touch(&mut self, node: NodeId, now: u64) -> Result<&mut Node, StoreError> {
        let n = self.nodes.get_mut(&node).ok_or_else(|| node_not_found(node))?;
        n.last_seen_ms = now;
        n.status = NodeStatus::Online;
        Ok(n)
    }

    fn active_on(&self, node: NodeId) -> impl Iterator<Item = &Row> {
        self.jobs
            .values()
            .filter(move |r| r.job.node_id == Some(node) && r.job.state.is_active())
    }

    /// The online nodes other than `node`, with their free slots.
    fn peers(&self, node: NodeId) -> Vec<PlacementPeer> {
        self.nodes
            .values()
            .filter(|n| n.id != node && n.status == NodeStatus::Online)
            .map(|n| PlacementPeer {
                id: n.id,
                name: n.registration.name.clone(),
                free_slots: n
                    .registration
                    .max_concurrent_jobs
                    .saturating_sub(self.active_on(n.id).count() as u32),
                last_seen_ms: n.last_seen_ms,
            })
            .collect()
    }

    fn with_active_count(&self, mut node: Node) -> Node {
        node.active_jobs = self.active_on(node.id).count() as u32;
        node
    }

    fn repeated_claim(&self, req: &ClaimRequest, now: u64) -> Vec<Assignment> {
        let since = claim::remembered_since(now);
        self.claims
            .iter()
            .filter(|c| c.claim_id == req.claim_id && c.node == req.node_id && c.at_ms >= since)
            .filter_map(|c| {
                let row = self.seqs.get(&c.key.job).and_then(|s| self.jobs.get(s))?;
                holds(&row.job, req.node_id, c.key.attempt).then(|| Assignment { job: row.job.clone() })
            })
            .collect()
    }

    fn lose_nodes(&mut self, cfg: &SchedConfig, before: u64, s: &mut SweepSummary, now: u64) -> Result<(), StoreError> {
        let lost: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.status == NodeStatus::Online && n.last_seen_ms < before)
            .map(|n| n.id)
            .collect();
        for id in lost {
            self.nodes.get_mut(&id).expect("listed").status = NodeStatus::Offline;
            s.nodes_lost += 1;
            for row in self.jobs.values_mut() {
                if row.job.node_id == Some(id) && row.job.state.is_active() {
                    fail_attempt(row, cfg, sweep::node_lost(&id.to_string(), cfg.dead_after()), now)?;
                    sweep::count_lost_job(s, row.job.state);
                }
            }
        }
        Ok(())
    }

    fn prune_nodes(&mut self, cfg: &SchedConfig, now: u64) -> u32 {
        let Some(cutoff) = sweep::retention_cutoff(now, cfg.node_retention) else {
            return 0;
        };
        let old: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.status == NodeStatus::Offline && n.last_seen_ms < cutoff)
            .filter(|n| self.active_on(n.id).next().is_none())
            .map(|n| n.id)
            .take(cfg.prune_batch as usize)
            .collect();
        for id in &old {
            self.nodes.remove(id);
        }
        old.len() as u32
    }

    fn prune_jobs(&mut self, cfg: &SchedConfig, now: u64) -> u32 {
        let Some(cutoff) = sweep::retention_cutoff(now, cfg.retention) else {
            return 0;
        };
        let old: Vec<u64> = self
            .jobs
            .values()
            .filter(|r| r.job.state == JobState::Completed && r.job.updated_at_ms < cutoff)
            .map(|r| r.job.seq)
            .take(cfg.prune_batch as usize)
            .collect();
        for seq in &old {
            if let Some(row) = self.jobs.remove(seq) {
                self.seqs.remove(&row.job.id);
            }
        }
        old.len() as u32
    }
}

impl MemStore {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("state lock")
    }
}

#[async_trait]
impl JobStore for MemStore {
    async fn submit(&self, spec: JobSpec) -> Result<Job, StoreError> {
        let spec = ValidSpec::try_from(spec)?;
        let now = self.cfg.now();
        let mut st = self.lock();
        st.last_seq += 1;
        let seq = st.last_seq;
        let base_rank = claim::rank(spec.queue, spec.priority);
        let job = Job::submitted(JobId::new(), seq, spec, now);
        let history = vec![HistoryEntry {
            at_ms: now,
            from: None,
            to: JobState::Queued,
            attempt: 0,
            node_id: None,
            reason: "submitted".into(),
        }];
        st.seqs.insert(job.id, seq);
        st.jobs.insert(
            seq,
            Row {
                job: job.clone(),
                history,
                attempt_base: 0,
                base_rank,
                rank: base_rank,
                queued_at_ms: now,
                claimed_at_ms: 0,
            },
        );
        Ok(job)
    }

    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        let mut st = self.lock();
        let row = st.row(id)?;
        Ok(Job {
            history: row.history.clone(),
            ..row.job.clone()
        })
    }

    async fn list(&self, q: &JobQuery) -> Result<JobPage, StoreError> {
        let st = self.lock();
        let limit = q.effective_limit() as usize;
        let mut jobs: Vec<Job> = st
            .jobs
            .values()
            .rev()
            .map(|r| &r.job)
            .filter(|j| q.state.is_none_or(|s| j.state == s))
            .filter(|j| q.queue.is_none_or(|s| j.spec.queue == s))
            .filter(|j| q.node_id.is_none_or(|n| j.node_id == Some(n)))
            .filter(|j| q.before_seq.is_none_or(|b| j.seq < b))
            .take(limit + 1)
            .cloned()
            .collect();
        let next_cursor = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|j| j.seq)
        } else {
            None
        };
        Ok(JobPage { jobs, next_cursor })
    }

    async fn cancel(&self, id: JobId, reason: &str) -> Result<Job, StoreError> {
        let now = self.cfg.now();
        let mut st = self.lock();
        let row = st.row(id)?;
        // The node keeps its id on the job so that its next heartbeat is told to stop.
        apply(row, &Step::new(JobState::Canceled, reason), now)?;
        row.job.retry_at_ms = None;
        Ok(row.job.clone())
    }

    async fn retry(&self, id: JobId) -> Result<Job, StoreError> {
        let now = self.cfg.now();
        let mut st = self.lock();
        let row = st.row(id)?;
        let from = row.job.state;
        if !from.can_requeue() {
            return Err(ffrtmp_core::InvalidTransition {
                from,
                to: JobState::Queued,
            }
            .into());
        }
        row.job.state = JobState::Queued;
        row.job.retry_at_ms = None;
        row.job.updated_at_ms = now;
        row.attempt_base = row.job.attempt;
        row.history.push(HistoryEntry {
            at_ms: now,
            from: Some(from),
            to: JobState::Queued,
            attempt: row.job.attempt,
            node_id: row.job.node_id,
            reason: "re-queued by operator".into(),
        });
        mark_queued(row, now);
        Ok(row.job.clone())
    }

    async fn register_node(&self, registration: NodeRegistration) -> Result<Node, StoreError> {
        registration.validate()?;
        let now = self.cfg.now();
        let node = Node {
            id: NodeId::new(),
            registration,
            status: NodeStatus::Online,
            active_jobs: 0,
            registered_at_ms: now,
            last_seen_ms: now,
            power: None,
        };
        self.lock().nodes.insert(node.id, node.clone());
        Ok(node)
    }

    async fn heartbeat(&self, node: NodeId, hb: &Heartbeat) -> Result<HeartbeatReply, StoreError> {
        hb.validate()?;
        let now = self.cfg.now();
        let mut st = self.lock();
        let n = st.touch(node, now)?;
        if heartbeat::power_replaces(n.power.as_ref(), hb.power.as_ref()) {
            n.power = hb.power.clone();
        }
        let mut reply = HeartbeatReply::default();
        for running in &hb.running {
            let row = st.row(running.job_id).ok();
            if heartbeat::must_cancel(row.as_ref().map(|r| &r.job), node, running) {
                reply.cancel.push(running.job_id);
                reply
                    .cancel_attempts
                    .push(AttemptKey::new(running.job_id, running.attempt));
            } else if let (Some(row), Some(p)) = (row, &running.progress) {
                row.job.progress = Some(p.clone());
                row.job.updated_at_ms = now;
            }
        }
        let spared = heartbeat::spared_since(now, self.cfg.heartbeat_interval);
        for row in st.jobs.values_mut() {
            let held = row.job.node_id == Some(node) && row.job.state.is_active();
            if held && row.claimed_at_ms < spared && heartbeat::dropped(&row.job, &hb.running) {
                fail_attempt(row, &self.cfg, heartbeat::dropped_error(node), now)?;
            }
        }
        Ok(reply)
    }

    async fn list_nodes(&self) -> Result<Vec<Node>, StoreError> {
        let st = self.lock();
        let mut nodes: Vec<Node> = st.nodes.values().map(|n| st.with_active_count(n.clone())).collect();
        nodes.sort_by_key(|n| (n.registered_at_ms, n.id.to_string()));
        Ok(nodes)
    }

    async fn list_nodes_page(&self, q: &NodeQuery) -> Result<NodePage, StoreError> {
        let st = self.lock();
        let after = q.after.map(|id| id.to_string()).unwrap_or_default();
        let mut nodes: Vec<Node> = st
            .nodes
            .values()
            .filter(|n| n.id.to_string() > after)
            .map(|n| st.with_active_count(n.clone()))
            .collect();
        nodes.sort_by_key(|n| n.id.to_string());
        let limit = q.effective_limit();
        nodes.truncate(limit as usize + 1);
        Ok(NodePage::from_rows(nodes, limit))
    }

    async fn claim(&self, req: &ClaimRequest) -> Result<Vec<Assignment>, StoreError> {
        req.validate()?;
        let now = self.cfg.now();
        let mut st = self.lock();
        let reg = st.touch(req.node_id, now)?.registration.clone();
        // A repeated claim returns what the first one assigned, as long as the node holds it.
        let again = st.repeated_claim(req, now);
        if !again.is_empty() {
            return Ok(again);
        }
        let want = claim::wanted(
            reg.max_concurrent_jobs,
            st.active_on(req.node_id).count() as u32,
            req.max_jobs,
        );
        // Every queued job the node can run, as one class: none lies beyond what is shown,
        // so the placement policy decides over all of them.
        let heads: Vec<place::Head> = st
            .jobs
            .values()
            .filter(|r| r.job.state == JobState::Queued && reg.can_take(&r.job.spec).is_ok())
            .map(|r| place::Head {
                candidate: claim::Candidate {
                    seq: r.job.seq,
                    base_rank: r.base_rank,
                    queued_at_ms: r.queued_at_ms,
                },
                scenario: r.job.spec.scenario.clone(),
                requirements: Some(Requirements::of(&r.job.spec)),
            })
            .collect();
        let policy = self.cfg.placement.clone();
        let node = PlacementNode {
            id: req.node_id,
            name: reg.name.clone(),
            free_slots: want,
            peers: if policy.needs().peers {
                st.peers(req.node_id)
            } else {
                Vec::new()
            },
        };
        let limit = heads.len() as u32 + 1;
        let order = place::place(policy.as_ref(), &node, vec![heads], limit, now, self.cfg.aging_interval);
        let mut out = Vec::new();
        for seq in order.into_iter().take(want as usize).map(|c| c.seq) {
            let row = st.jobs.get_mut(&seq).expect("listed");
            let step = claim::assign(&mut row.job, req.node_id);
            apply(row, &step, now)?;
            row.claimed_at_ms = now;
            let job = row.job.clone();
            st.claims.push(Claimed {
                claim_id: req.claim_id.clone(),
                node: req.node_id,
                key: AttemptKey::new(job.id, job.attempt),
                at_ms: now,
            });
            out.push(Assignment { job });
        }
        Ok(out)
    }

    async fn report(&self, r: &JobReport) -> Result<Job, StoreError> {
        r.validate()?;
        let now = self.cfg.now();
        let mut st = self.lock();
        if let JobEvent::Energy { energy: e } = &r.event {
            // An ended attempt's energy: checked against the history, not the holder.
            let row = st.row(r.job_id)?;
            let Some(outcome) = energy::attempt_outcome(&row.history, r.attempt, r.node_id) else {
                return Err(StoreError::Fenced {
                    job_id: r.job_id,
                    attempt: r.attempt,
                    node_id: r.node_id,
                    state: row.job.state,
                    current_attempt: row.job.attempt,
                });
            };
            energy::keep_energy(&mut row.job, r, outcome, Some(e));
            return Ok(row.job.clone());
        }
        report::fence(&st.row(r.job_id)?.job, r)?;
        st.touch(r.node_id, now)?;
        let row = st.row(r.job_id)?;
        match report::decide(row.job.state, &r.event) {
            ReportDecision::Advance { steps, record } => {
                for step in &steps {
                    apply(row, step, now)?;
                }
                record.apply(&mut row.job, now);
            }
            ReportDecision::EndAttempt(error) => fail_attempt(row, &self.cfg, error, now)?,
        }
        energy::keep_reported_energy(&mut row.job, r);
        Ok(row.job.clone())
    }

    async fn sweep(&self) -> Result<SweepSummary, StoreError> {
        let now = self.cfg.now();
        let mut s = SweepSummary::default();
        let mut st = self.lock();
        let before = sweep::lost_before(now, self.opened_at, self.cfg.dead_after());
        st.lose_nodes(&self.cfg, before, &mut s, now)?;
        s.nodes_pruned = st.prune_nodes(&self.cfg, now);
        for row in st.jobs.values_mut() {
            if sweep::retry_due(&row.job, now) {
                let step = sweep::release(&mut row.job);
                apply(row, &step, now)?;
                mark_queued(row, now);
                s.jobs_released += 1;
            }
        }
        for row in st.jobs.values_mut().filter(|r| r.job.state == JobState::Queued) {
            let aged = sweep::aged_rank(row.base_rank, row.queued_at_ms, now, self.cfg.aging_interval);
            if row.rank > aged {
                row.rank = aged;
                s.jobs_aged += 1;
            }
        }
        s.jobs_pruned = st.prune_jobs(&self.cfg, now);
        let since = claim::remembered_since(now);
        st.claims.retain(|c| c.at_ms >= since);
        Ok(s)
    }
}
