//! Job operations; each runs inside the writer's transaction.

use ffrtmp_core::{EnergyReport, Job, JobError, JobEvent, JobId, JobReport, JobState, NodeId, StoreError, ValidSpec};
use rusqlite::{params, Connection};

use super::rows::{
    append_history, attempt_outcome, db, energy_json, load_job, queue_name, rank, save_job, to_json, transition,
    StoredJob,
};
use crate::classes::class_of;
use crate::config::SchedConfig;
use crate::matching::{engine_column, needs_enforcement};
use crate::policy::energy::{keep_energy, keep_reported_energy};
use crate::policy::report::{self, ReportDecision};
use crate::policy::Step;

/// A job about to be inserted: its id and serialized spec are made before the writer
/// runs, off the one thread every write waits on.
pub struct NewJob {
    pub id: JobId,
    pub spec: ValidSpec,
    pub spec_json: String,
}

impl NewJob {
    pub fn new(spec: ValidSpec) -> NewJob {
        NewJob {
            id: JobId::new(),
            spec_json: to_json(&spec),
            spec,
        }
    }
}

pub fn submit(conn: &Connection, new: &NewJob, now: u64) -> Result<Job, StoreError> {
    let spec = new.spec.clone();
    let codec = spec.scenario().codec;
    let id = new.id;
    conn.prepare_cached(
        "INSERT INTO jobs (id, spec, state, rank, base_rank, queue, max_retries, created_at_ms, updated_at_ms, \
         queued_at_ms, codec, encoder, engine, needs_enforcement, req_class) \
         VALUES (?1, ?2, 'queued', ?3, ?3, ?4, ?5, ?6, ?6, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .map_err(db)?
    .execute(params![
        id.to_string(),
        new.spec_json,
        rank(spec.queue, spec.priority),
        queue_name(spec.queue),
        spec.max_retries,
        now as i64,
        codec.as_str(),
        spec.parameters.encoder.as_deref(),
        engine_column(&spec),
        needs_enforcement(&spec),
        class_of(&spec).1,
    ])
    .map_err(db)?;
    let job = Job::submitted(id, conn.last_insert_rowid() as u64, spec, now);
    append_history(conn, &job, None, "submitted", now)?;
    Ok(job)
}

pub fn cancel(conn: &Connection, id: JobId, reason: &str, now: u64) -> Result<Job, StoreError> {
    let mut stored = load_job(conn, id)?;
    // The node keeps its id on the job so that its next heartbeat is told to stop.
    transition(conn, &mut stored.job, JobState::Canceled, reason, now)?;
    stored.job.retry_at_ms = None;
    save_job(conn, &stored)?;
    Ok(stored.job)
}

pub fn requeue(conn: &Connection, id: JobId, now: u64) -> Result<Job, StoreError> {
    let mut stored = load_job(conn, id)?;
    let from = stored.job.state;
    if !from.can_requeue() {
        return Err(ffrtmp_core::InvalidTransition {
            from,
            to: JobState::Queued,
        }
        .into());
    }
    stored.job.state = JobState::Queued;
    stored.job.retry_at_ms = None;
    stored.job.updated_at_ms = now;
    stored.attempt_base = stored.job.attempt;
    append_history(conn, &stored.job, Some(from), "re-queued by operator", now)?;
    save_job(conn, &stored)?;
    mark_queued(conn, stored.job.seq, now)?;
    Ok(stored.job)
}

/// Applies a node's report, refusing it unless the node holds that attempt.
pub fn report(conn: &Connection, cfg: &SchedConfig, r: &JobReport, now: u64) -> Result<Job, StoreError> {
    let mut stored = load_job(conn, r.job_id)?;
    if let JobEvent::Energy { energy } = &r.event {
        return record_energy(conn, stored, r, energy);
    }
    report::fence(&stored.job, r)?;
    touch_node(conn, r.node_id, now, seen_slack_ms(cfg))?;
    match report::decide(stored.job.state, &r.event) {
        ReportDecision::Advance { steps, record } => {
            for step in &steps {
                apply(conn, &mut stored.job, step, now)?;
            }
            record.apply(&mut stored.job, now);
        }
        ReportDecision::EndAttempt(error) => fail_attempt(conn, cfg, &mut stored, error, now)?,
    }
    keep_reported_energy(&mut stored.job, r);
    save_job(conn, &stored)?;
    Ok(stored.job)
}

/// Records an attempt's energy sent after the attempt ended: accepted from the node that
/// held that attempt, whatever the job's state now, and it writes nothing but the
/// per-attempt energy (no state, history or timestamps).
fn record_energy(
    conn: &Connection,
    mut stored: StoredJob,
    r: &JobReport,
    energy: &EnergyReport,
) -> Result<Job, StoreError> {
    let job = &mut stored.job;
    let Some(outcome) = attempt_outcome(conn, job.seq, r.attempt, r.node_id)? else {
        return Err(StoreError::Fenced {
            job_id: r.job_id,
            attempt: r.attempt,
            node_id: r.node_id,
            state: job.state,
            current_attempt: job.attempt,
        });
    };
    keep_energy(job, r, outcome, Some(energy));
    conn.prepare_cached("UPDATE jobs SET attempts_energy = ?2 WHERE seq = ?1")
        .map_err(db)?
        .execute(params![job.seq as i64, energy_json(job)])
        .map_err(db)?;
    Ok(stored.job)
}

/// Ends the current attempt with `error` as [`report::end_attempt`] decides. The caller
/// saves the job.
pub fn fail_attempt(
    conn: &Connection,
    cfg: &SchedConfig,
    stored: &mut StoredJob,
    error: JobError,
    now: u64,
) -> Result<(), StoreError> {
    let job = &stored.job;
    let end = report::end_attempt(
        job.attempt,
        stored.attempt_base,
        job.spec.max_retries,
        &error,
        &cfg.job_backoff,
        now,
    );
    stored.attempt_base = end.attempt_base;
    if let Some(at) = end.outcome.retry_at_ms() {
        stored.job.retry_at_ms = Some(at);
    }
    apply(conn, &mut stored.job, &end.outcome.step(), now)?;
    stored.job.error = Some(error);
    Ok(())
}

/// Applies a policy [`Step`], recording it in the job's history.
pub fn apply(conn: &Connection, job: &mut Job, step: &Step, now: u64) -> Result<(), StoreError> {
    transition(conn, job, step.to, &step.reason, now)
}

/// How stale claims and reports may leave a node's `last_seen_ms`: they rewrite it only
/// when it is older than a quarter heartbeat interval (at most a second), so a busy node's
/// stream of reports does not rewrite its row each time. Heartbeats, the liveness signal
/// the dead-node sweep counts on, always write it (slack 0).
pub fn seen_slack_ms(cfg: &SchedConfig) -> u64 {
    (cfg.heartbeat_interval.as_millis() as u64 / 4).min(1000)
}

/// Records that the node was seen at `now`, unless it was seen within `slack_ms`.
pub fn touch_node(conn: &Connection, node: NodeId, now: u64, slack_ms: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE nodes SET last_seen_ms = ?2, status = 'online' WHERE id = ?1 \
         AND (last_seen_ms < ?3 OR last_seen_ms > ?2 OR status <> 'online')",
    )
    .map_err(db)?
    .execute(params![
        node.to_string(),
        now as i64,
        now.saturating_sub(slack_ms) as i64
    ])
    .map_err(db)?;
    Ok(())
}

/// A job (re-)entering the queue starts at its own rank and ages from now.
pub fn mark_queued(conn: &Connection, seq: u64, now: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE jobs SET rank = base_rank, queued_at_ms = ?2 WHERE seq = ?1")
        .map_err(db)?
        .execute(params![seq as i64, now as i64])
        .map_err(db)?;
    Ok(())
}
