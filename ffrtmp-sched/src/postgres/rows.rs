//! Conversions between rows and domain types, and the one place that changes a job's state.

use ffrtmp_core::{
    HistoryEntry, Job, JobId, JobState, NodeId, NodePower, NodeRegistration, NodeStatus, StoreError, ValidSpec,
};
use serde::de::DeserializeOwned;
use tokio_postgres::Row;

use super::pool::Db;
use super::{Error, Result};

/// Columns of `jobs` in the order [`job_from_row`] reads them.
pub const JOB_COLUMNS: &str = "id, seq, spec, state, attempt, node_id, progress, result, error, retry_at_ms, \
     created_at_ms, updated_at_ms, attempt_base, attempts_energy";

/// A job as stored, with the bookkeeping the public type does not show.
pub struct StoredJob {
    pub job: Job,
    /// Attempt number at the last operator re-queue; retries are counted from here.
    pub attempt_base: u32,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::backend(format!("corrupt {what} in database: {detail}"))
}

fn json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

fn opt_json<T: DeserializeOwned>(text: Option<String>, what: &str) -> Result<Option<T>> {
    text.map(|t| json(&t, what)).transpose()
}

pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serializing our own plain data types cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T> {
    text.parse().map_err(|_| corrupt(what, format!("{text:?}")))
}

pub fn parse_state(text: &str) -> Result<JobState> {
    text.parse().map_err(|e| corrupt("state", e))
}

/// Milliseconds and counters are `BIGINT`; domain values are never negative.
pub fn u(v: i64) -> u64 {
    v.max(0) as u64
}

pub fn job_from_row(r: &Row) -> Result<StoredJob> {
    let spec = ValidSpec::stored(json(&r.try_get::<_, String>(2)?, "job spec")?).map_err(|e| corrupt("job spec", e))?;
    let node_id: Option<String> = r.try_get(5)?;
    Ok(StoredJob {
        job: Job {
            id: parse_id(&r.try_get::<_, String>(0)?, "job id")?,
            seq: u(r.try_get(1)?),
            spec,
            state: parse_state(&r.try_get::<_, String>(3)?)?,
            attempt: u(r.try_get(4)?) as u32,
            node_id: node_id.map(|n| parse_id(&n, "node id")).transpose()?,
            progress: opt_json(r.try_get(6)?, "progress")?,
            result: opt_json(r.try_get(7)?, "result")?,
            error: opt_json(r.try_get(8)?, "error")?,
            retry_at_ms: r.try_get::<_, Option<i64>>(9)?.map(u),
            created_at_ms: u(r.try_get(10)?),
            updated_at_ms: u(r.try_get(11)?),
            history: Vec::new(),
            attempts_energy: opt_json(r.try_get(13)?, "attempts energy")?.unwrap_or_default(),
        },
        attempt_base: u(r.try_get(12)?) as u32,
    })
}

pub fn jobs_from_rows(rows: &[Row]) -> Result<Vec<StoredJob>> {
    rows.iter().map(job_from_row).collect()
}

/// Loads one job (without history); with `lock`, holds its row lock until the transaction ends.
pub async fn load_job(tx: &Db<'_>, id: JobId, lock: bool) -> Result<StoredJob> {
    let sql = if lock {
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")
    };
    let row = tx
        .query_opt(&sql, &[&id.to_string()])
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "job",
            id: id.to_string(),
        })?;
    job_from_row(&row)
}

/// Loads a job's history, oldest first.
pub async fn load_history(tx: &Db<'_>, id: JobId) -> Result<Vec<HistoryEntry>> {
    let rows = tx
        .query(
            "SELECT at_ms, from_state, to_state, attempt, node_id, reason FROM job_history \
             WHERE job_id = $1 ORDER BY id",
            &[&id.to_string()],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let from: Option<String> = r.try_get(1)?;
        let node: Option<String> = r.try_get(4)?;
        out.push(HistoryEntry {
            at_ms: u(r.try_get(0)?),
            from: from.as_deref().map(parse_state).transpose()?,
            to: parse_state(&r.try_get::<_, String>(2)?)?,
            attempt: u(r.try_get(3)?) as u32,
            node_id: node.map(|n| parse_id(&n, "node id")).transpose()?,
            reason: r.try_get(5)?,
        });
    }
    Ok(out)
}

/// Writes every mutable column of a job back. The caller holds the row lock.
pub async fn save_job(tx: &Db<'_>, stored: &StoredJob) -> Result<()> {
    let j = &stored.job;
    tx.execute(
        "UPDATE jobs SET state = $2, attempt = $3, node_id = $4, progress = $5, result = $6, error = $7, \
         retry_at_ms = $8, updated_at_ms = $9, attempt_base = $10, attempts_energy = $11 WHERE id = $1",
        &[
            &j.id.to_string(),
            &j.state.as_str(),
            &i64::from(j.attempt),
            &j.node_id.map(|n| n.to_string()),
            &j.progress.as_ref().map(to_json),
            &j.result.as_ref().map(to_json),
            &j.error.as_ref().map(to_json),
            &j.retry_at_ms.map(|v| v as i64),
            &(j.updated_at_ms as i64),
            &i64::from(stored.attempt_base),
            &energy_json(j),
        ],
    )
    .await?;
    Ok(())
}

/// The `attempts_energy` column of a job: NULL while no attempt reported energy.
pub fn energy_json(job: &Job) -> Option<String> {
    (!job.attempts_energy.is_empty()).then(|| to_json(&job.attempts_energy))
}

/// The state attempt `attempt` of the job left it in, if `node` held that attempt: the last
/// history entry of that attempt by that node, re-queues aside (they belong to no attempt's
/// outcome). `None` when the node never held it.
pub async fn attempt_outcome(tx: &Db<'_>, id: JobId, attempt: u32, node: NodeId) -> Result<Option<JobState>> {
    let row = tx
        .query_opt(
            "SELECT to_state FROM job_history WHERE job_id = $1 AND attempt = $2 AND node_id = $3 \
             AND to_state <> 'queued' ORDER BY id DESC LIMIT 1",
            &[&id.to_string(), &i64::from(attempt), &node.to_string()],
        )
        .await?;
    row.map(|r| parse_state(&r.try_get::<_, String>(0)?)).transpose()
}

/// Appends a history entry.
pub async fn append_history(tx: &Db<'_>, job: &Job, from: Option<JobState>, reason: &str, now: u64) -> Result<()> {
    tx.execute(
        "INSERT INTO job_history (job_id, at_ms, from_state, to_state, attempt, node_id, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &job.id.to_string(),
            &(now as i64),
            &from.map(|s| s.as_str()),
            &job.state.as_str(),
            &i64::from(job.attempt),
            &job.node_id.map(|n| n.to_string()),
            &reason,
        ],
    )
    .await?;
    Ok(())
}

/// The only way a stored job changes state: validated by the state machine, recorded in
/// history. The caller saves the job afterwards.
pub async fn transition(tx: &Db<'_>, job: &mut Job, to: JobState, reason: &str, now: u64) -> Result<()> {
    let from = job.state;
    job.state = from.transition(to)?;
    job.updated_at_ms = now;
    append_history(tx, job, Some(from), reason, now).await
}

pub(crate) use crate::order::{queue_name, rank};

/// The parts of a node row that scheduling decisions need.
pub struct StoredNode {
    pub registration: NodeRegistration,
}

/// Loads a node; with `lock`, holds its row lock until the transaction ends.
pub async fn load_node(tx: &Db<'_>, id: NodeId, lock: bool) -> Result<StoredNode> {
    let sql = if lock {
        "SELECT registration FROM nodes WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT registration FROM nodes WHERE id = $1"
    };
    let row = tx
        .query_opt(sql, &[&id.to_string()])
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "node",
            id: id.to_string(),
        })?;
    Ok(StoredNode {
        registration: json(&row.try_get::<_, String>(0)?, "node registration")?,
    })
}

pub fn node_registration(text: &str) -> Result<NodeRegistration> {
    json(text, "node registration")
}

/// A node's stored power snapshot (a nullable JSON column).
pub fn node_power(text: Option<String>) -> Result<Option<NodePower>> {
    opt_json(text, "node power snapshot")
}

pub fn node_status(text: &str) -> Result<NodeStatus> {
    match text {
        "online" => Ok(NodeStatus::Online),
        "offline" => Ok(NodeStatus::Offline),
        other => Err(corrupt("node status", format!("{other:?}"))),
    }
}

pub fn node_id_from(text: &str) -> Result<NodeId> {
    parse_id(text, "node id")
}
