//! Job operations; each runs inside the writer's transaction.

use ffrtmp_core::{
    EnergyReport, ErrorKind, Job, JobError, JobEvent, JobId, JobReport, JobSpec, JobState, NodeId, StoreError,
};
use rusqlite::{params, Connection};

use super::rows::{
    append_history, attempt_outcome, db, energy_json, load_job, queue_name, rank, save_job, to_json, transition,
    StoredJob,
};
use crate::attempt_energy::keep_energy;
use crate::config::SchedConfig;
use crate::matching::{engine_column, needs_enforcement};

/// A job about to be inserted: its id and serialized spec are made before the writer
/// runs, off the one thread every write waits on.
pub struct NewJob {
    pub id: JobId,
    pub spec: JobSpec,
    pub spec_json: String,
}

impl NewJob {
    pub fn new(spec: JobSpec) -> NewJob {
        NewJob {
            id: JobId::new(),
            spec_json: to_json(&spec),
            spec,
        }
    }
}

pub fn submit(conn: &Connection, new: &NewJob, now: u64) -> Result<Job, StoreError> {
    let spec = new.spec.clone();
    let scenario = spec.validate()?;
    let id = new.id;
    conn.prepare_cached(
        "INSERT INTO jobs (id, spec, state, rank, base_rank, queue, max_retries, created_at_ms, updated_at_ms, \
         queued_at_ms, codec, encoder, engine, needs_enforcement) \
         VALUES (?1, ?2, 'queued', ?3, ?3, ?4, ?5, ?6, ?6, ?6, ?7, ?8, ?9, ?10)",
    )
    .map_err(db)?
    .execute(params![
        id.to_string(),
        new.spec_json,
        rank(spec.queue, spec.priority),
        queue_name(spec.queue),
        spec.max_retries,
        now as i64,
        scenario.codec.as_str(),
        spec.parameters.encoder.as_deref(),
        engine_column(&spec),
        needs_enforcement(&spec),
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
    let job = &stored.job;
    if job.node_id != Some(r.node_id) || job.attempt != r.attempt || !job.state.is_active() {
        return Err(StoreError::Fenced {
            job_id: r.job_id,
            attempt: r.attempt,
            node_id: r.node_id,
            state: job.state,
            current_attempt: job.attempt,
        });
    }
    touch_node(conn, r.node_id, now, seen_slack_ms(cfg))?;
    let job = &mut stored.job;
    match &r.event {
        JobEvent::Started => {
            if job.state == JobState::Assigned {
                transition(conn, job, JobState::Running, "workload started", now)?;
            }
        }
        JobEvent::Progress { progress } => {
            if job.state == JobState::Assigned {
                transition(conn, job, JobState::Running, "progress reported", now)?;
            }
            job.progress = Some(progress.clone());
            job.updated_at_ms = now;
        }
        JobEvent::Completed { result } => {
            if job.state == JobState::Assigned {
                transition(conn, job, JobState::Running, "workload started", now)?;
            }
            transition(conn, job, JobState::Completed, "completed", now)?;
            job.result = Some(result.clone());
            job.error = None;
            keep_energy(job, r, JobState::Completed, Some(&result.energy));
        }
        JobEvent::Failed { error } => {
            fail_attempt(conn, cfg, &mut stored, error.clone(), now)?;
            let job = &mut stored.job;
            keep_energy(job, r, job.state, error.energy.as_ref());
        }
        JobEvent::TimedOut { message, energy } => {
            transition(conn, job, JobState::TimedOut, message, now)?;
            // A job that outran its own limit would outrun it again: no retry.
            job.error = Some(JobError {
                energy: energy.clone(),
                ..JobError::new(ErrorKind::Timeout, message.clone())
            });
            transition(conn, job, JobState::Failed, "timed out; not retried", now)?;
            keep_energy(job, r, JobState::TimedOut, energy.as_ref());
        }
        // Recorded before the holder check, which it does not need.
        JobEvent::Energy { .. } => {}
    }
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

/// Ends the current attempt with `error`: `retrying` with backoff when the error is
/// transient and retries remain, `failed` otherwise. The caller saves the job.
pub fn fail_attempt(
    conn: &Connection,
    cfg: &SchedConfig,
    stored: &mut StoredJob,
    error: JobError,
    now: u64,
) -> Result<(), StoreError> {
    if error.kind == ErrorKind::Interrupted {
        // A graceful hand-back (agent drain, dropped job) is not the job's failure: it
        // costs no retry.
        stored.attempt_base = stored.attempt_base.saturating_add(1);
    }
    let used = stored.job.attempt.saturating_sub(stored.attempt_base);
    let job = &mut stored.job;
    let reason = format!("{:?}: {}", error.kind, error.message);
    if error.kind.is_transient() && used <= job.spec.max_retries {
        let delay = cfg.job_backoff.delay(used.saturating_sub(1));
        job.retry_at_ms = Some(now + delay.as_millis() as u64);
        transition(conn, job, JobState::Retrying, &reason, now)?;
    } else {
        let why = if error.kind.is_transient() {
            format!("retries exhausted; {reason}")
        } else {
            reason
        };
        transition(conn, job, JobState::Failed, &why, now)?;
    }
    job.error = Some(error);
    Ok(())
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
