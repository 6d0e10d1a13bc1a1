//! Conversions between rows and domain types, and the one place that changes a job's state.

use ffrtmp_core::{
    HistoryEntry, Job, JobId, JobSpec, JobState, NodeId, NodePower, NodeRegistration, NodeStatus, StoreError, ValidSpec,
};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::de::DeserializeOwned;

/// Columns of `jobs` in the order [`job_from_row`] reads them.
pub const JOB_COLUMNS: &str = "id, seq, spec, state, attempt, node_id, progress, result, error, retry_at_ms, \
     created_at_ms, updated_at_ms, attempt_base, attempts_energy";

/// A job as stored, with the bookkeeping the public type does not show.
pub struct StoredJob {
    pub job: Job,
    /// Attempt number at the last operator re-queue; retries are counted from here.
    pub attempt_base: u32,
}

pub fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("corrupt {what} in database: {e}")))
}

/// A stored spec, accepted under the bounds it was submitted with ([`ValidSpec::stored`]).
fn stored_spec(spec: JobSpec) -> Result<ValidSpec, StoreError> {
    ValidSpec::stored(spec).map_err(|e| StoreError::Backend(format!("corrupt job spec in database: {e}")))
}

fn opt_json<T: DeserializeOwned>(text: Option<String>, what: &str) -> Result<Option<T>, StoreError> {
    text.map(|t| json(&t, what)).transpose()
}

pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own plain data types cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Backend(format!("corrupt {what} {text:?} in database")))
}

fn parse_state(text: &str) -> Result<JobState, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Backend(format!("corrupt state: {e}")))
}

type RawJob = (
    String,
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
    i64,
    Option<String>,
);

pub fn raw_job(r: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
    ))
}

pub fn job_from_raw(raw: RawJob) -> Result<StoredJob, StoreError> {
    let (id, seq, spec, state, attempt, node_id, progress, result, error, retry_at, created, updated, base, energy) =
        raw;
    let spec = stored_spec(json(&spec, "job spec")?)?;
    Ok(StoredJob {
        job: Job {
            id: parse_id(&id, "job id")?,
            seq: seq as u64,
            spec,
            state: parse_state(&state)?,
            attempt: attempt as u32,
            node_id: node_id.map(|n| parse_id(&n, "node id")).transpose()?,
            progress: opt_json(progress, "progress")?,
            result: opt_json(result, "result")?,
            error: opt_json(error, "error")?,
            retry_at_ms: retry_at.map(|v| v as u64),
            created_at_ms: created as u64,
            updated_at_ms: updated as u64,
            history: Vec::new(),
            attempts_energy: opt_json(energy, "attempts energy")?.unwrap_or_default(),
        },
        attempt_base: base as u32,
    })
}

/// Loads one job (without history).
pub fn load_job(conn: &Connection, id: JobId) -> Result<StoredJob, StoreError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .map_err(db)?
        .query_row([id.to_string()], raw_job)
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound {
            what: "job",
            id: id.to_string(),
        })?;
    job_from_raw(raw)
}

/// Loads one job (without history) by its `seq`.
pub fn load_job_seq(conn: &Connection, seq: u64) -> Result<StoredJob, StoreError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE seq = ?1"))
        .map_err(db)?
        .query_row([seq as i64], raw_job)
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound {
            what: "job",
            id: format!("seq {seq}"),
        })?;
    job_from_raw(raw)
}

/// Loads a job's history, oldest first.
pub fn load_history(conn: &Connection, seq: u64) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT at_ms, from_state, to_state, attempt, node_id, reason FROM job_history \
             WHERE job_seq = ?1 ORDER BY rowid",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map([seq as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (at, from, to, attempt, node, reason) = row.map_err(db)?;
        out.push(HistoryEntry {
            at_ms: at as u64,
            from: from.as_deref().map(parse_state).transpose()?,
            to: parse_state(&to)?,
            attempt: attempt as u32,
            node_id: node.map(|n| parse_id(&n, "node id")).transpose()?,
            reason,
        });
    }
    Ok(out)
}

/// Writes a job's mutable columns back, except its holder and attempt, which only a claim
/// changes ([`save_claim`]): leaving them out of the statement spares the node index.
pub fn save_job(conn: &Connection, stored: &StoredJob) -> Result<(), StoreError> {
    let j = &stored.job;
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, progress = ?3, result = ?4, error = ?5, retry_at_ms = ?6, updated_at_ms = ?7, \
         attempt_base = ?8, attempts_energy = ?9 WHERE seq = ?1",
    )
    .map_err(db)?
    .execute(params![
        j.seq as i64,
        j.state.as_str(),
        j.progress.as_ref().map(to_json),
        j.result.as_ref().map(to_json),
        j.error.as_ref().map(to_json),
        j.retry_at_ms.map(|v| v as i64),
        j.updated_at_ms as i64,
        stored.attempt_base,
        energy_json(j),
    ])
    .map_err(db)?;
    Ok(())
}

/// The `attempts_energy` column of a job: NULL while no attempt reported energy.
pub fn energy_json(job: &Job) -> Option<String> {
    (!job.attempts_energy.is_empty()).then(|| to_json(&job.attempts_energy))
}

/// The state attempt `attempt` of the job left it in, if `node` held that attempt: the last
/// history entry of that attempt by that node, re-queues aside (they belong to no attempt's
/// outcome). `None` when the node never held it.
pub fn attempt_outcome(
    conn: &Connection,
    seq: u64,
    attempt: u32,
    node: NodeId,
) -> Result<Option<JobState>, StoreError> {
    let state = conn
        .prepare_cached(
            "SELECT to_state FROM job_history WHERE job_seq = ?1 AND attempt = ?2 AND node_id = ?3 \
             AND to_state <> 'queued' ORDER BY rowid DESC LIMIT 1",
        )
        .map_err(db)?
        .query_row(params![seq as i64, attempt, node.to_string()], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map_err(db)?;
    state.as_deref().map(parse_state).transpose()
}

/// Writes a freshly claimed job back: its new holder, attempt and state, and the claim
/// (id and position in the claim's answer) that a repeated request is answered from.
pub fn save_claim(conn: &Connection, job: &Job, claim_id: &str, claim_pos: usize, now: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, attempt = ?3, node_id = ?4, progress = NULL, retry_at_ms = NULL, \
         updated_at_ms = ?5, claim_id = ?6, claim_pos = ?7, claimed_at_ms = ?5 WHERE seq = ?1",
    )
    .map_err(db)?
    .execute(params![
        job.seq as i64,
        job.state.as_str(),
        job.attempt,
        job.node_id.map(|n| n.to_string()),
        now as i64,
        claim_id,
        claim_pos as i64,
    ])
    .map_err(db)?;
    Ok(())
}

/// Appends a history entry.
pub fn append_history(
    conn: &Connection,
    job: &Job,
    from: Option<JobState>,
    reason: &str,
    now: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO job_history (job_seq, at_ms, from_state, to_state, attempt, node_id, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(db)?
    .execute(params![
        job.seq as i64,
        now as i64,
        from.map(|s| s.as_str()),
        job.state.as_str(),
        job.attempt,
        job.node_id.map(|n| n.to_string()),
        reason,
    ])
    .map_err(db)?;
    Ok(())
}

/// The only way a stored job changes state: validated by the state machine, recorded in
/// history. The caller saves the job afterwards.
pub fn transition(conn: &Connection, job: &mut Job, to: JobState, reason: &str, now: u64) -> Result<(), StoreError> {
    let from = job.state;
    job.state = from.transition(to)?;
    job.updated_at_ms = now;
    append_history(conn, job, Some(from), reason, now)
}

pub(crate) use crate::order::{queue_name, rank};

/// The parts of a node row that scheduling decisions need.
pub struct StoredNode {
    pub registration: NodeRegistration,
}

pub fn load_node(conn: &Connection, id: NodeId) -> Result<StoredNode, StoreError> {
    let raw = conn
        .prepare_cached("SELECT registration FROM nodes WHERE id = ?1")
        .map_err(db)?
        .query_row([id.to_string()], |r| r.get::<_, String>(0))
        .optional()
        .map_err(db)?
        .ok_or_else(|| StoreError::NotFound {
            what: "node",
            id: id.to_string(),
        })?;
    Ok(StoredNode {
        registration: json(&raw, "node registration")?,
    })
}

/// A node's stored power snapshot (a nullable JSON column).
pub fn node_power(text: Option<String>) -> Result<Option<NodePower>, StoreError> {
    opt_json(text, "node power snapshot")
}

pub fn node_status(text: &str) -> Result<NodeStatus, StoreError> {
    match text {
        "online" => Ok(NodeStatus::Online),
        "offline" => Ok(NodeStatus::Offline),
        other => Err(StoreError::Backend(format!("corrupt node status {other:?}"))),
    }
}

pub fn node_id_from(text: &str) -> Result<NodeId, StoreError> {
    parse_id(text, "node id")
}
