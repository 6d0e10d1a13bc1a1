//! Node operations: registration, heartbeats, claims and failure detection.

use ffrtmp_core::{
    Assignment, AttemptKey, ClaimRequest, Heartbeat, HeartbeatReply, Node, NodeId, NodePage, NodeQuery,
    NodeRegistration, NodeStatus, StoreError, SweepSummary,
};
use rusqlite::{params, Connection};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use super::jobs::{apply, fail_attempt, mark_queued, seen_slack_ms, touch_node};
use super::rows::{
    db, job_from_raw, load_job, load_job_seq, load_node, node_id_from, node_power, node_status, raw_job, save_claim,
    save_job, to_json, JOB_COLUMNS,
};
use crate::classes::{class_of, ClaimCounters, ClassKey, QueuedClasses, Seen};
use crate::config::SchedConfig;
use crate::matching::admits;
use crate::policy::{claim, heartbeat, place, sweep};
use crate::power::replaces;

pub fn register(conn: &Connection, reg: NodeRegistration, now: u64) -> Result<Node, StoreError> {
    reg.validate()?;
    let id = NodeId::new();
    conn.prepare_cached(
        "INSERT INTO nodes (id, registration, max_concurrent, status, registered_at_ms, last_seen_ms) \
         VALUES (?1, ?2, ?3, 'online', ?4, ?4)",
    )
    .map_err(db)?
    .execute(params![
        id.to_string(),
        to_json(&reg),
        reg.max_concurrent_jobs,
        now as i64
    ])
    .map_err(db)?;
    Ok(Node {
        id,
        registration: reg,
        status: NodeStatus::Online,
        active_jobs: 0,
        registered_at_ms: now,
        last_seen_ms: now,
        power: None,
    })
}

fn active_count(conn: &Connection, node: NodeId) -> Result<u32, StoreError> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM jobs INDEXED BY jobs_active WHERE node_id = ?1 AND state IN ('assigned', 'running')",
    )
    .map_err(db)?
    .query_row([node.to_string()], |r| r.get::<_, i64>(0))
    .map(|n| n as u32)
    .map_err(db)
}

pub fn heartbeat(
    conn: &Connection,
    cfg: &SchedConfig,
    node: NodeId,
    hb: &Heartbeat,
    now: u64,
) -> Result<HeartbeatReply, StoreError> {
    hb.validate()?;
    load_node(conn, node)?;
    touch_node(conn, node, now, 0)?;
    store_power(conn, node, hb)?;
    let mut cancel = Vec::new();
    let mut cancel_attempts = Vec::new();
    for running in &hb.running {
        let mut stored = match load_job(conn, running.job_id) {
            Ok(s) => Some(s),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(stored) = stored
            .as_mut()
            .filter(|s| !heartbeat::must_cancel(Some(&s.job), node, running))
        else {
            cancel.push(running.job_id);
            cancel_attempts.push(AttemptKey::new(running.job_id, running.attempt));
            continue;
        };
        let job = &mut stored.job;
        if let Some(p) = &running.progress {
            job.progress = Some(p.clone());
            job.updated_at_ms = now;
            save_job(conn, stored)?;
        }
    }
    // Jobs the node holds but no longer lists (it dropped them) go back to the queue. Jobs
    // claimed within the last two intervals are spared: the claim's answer may still be on
    // its way to the agent.
    let recent = heartbeat::spared_since(now, cfg.heartbeat_interval) as i64;
    let dropped = {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_active \
                 WHERE node_id = ?1 AND state IN ('assigned', 'running') AND claimed_at_ms < ?2 ORDER BY seq"
            ))
            .map_err(db)?;
        let rows = stmt.query_map(params![node.to_string(), recent], raw_job).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)?
    };
    for raw in dropped {
        let mut stored = job_from_raw(raw)?;
        if !heartbeat::dropped(&stored.job, &hb.running) {
            continue;
        }
        fail_attempt(conn, cfg, &mut stored, heartbeat::dropped_error(node), now)?;
        save_job(conn, &stored)?;
    }
    Ok(HeartbeatReply {
        cancel,
        cancel_attempts,
    })
}

/// Keeps the heartbeat's power snapshot when it is newer than the stored one, and clears it
/// when there is none ([`replaces`]). Read and write are in the writer's one transaction.
fn store_power(conn: &Connection, node: NodeId, hb: &Heartbeat) -> Result<(), StoreError> {
    let id = node.to_string();
    let raw: Option<String> = conn
        .prepare_cached("SELECT power FROM nodes WHERE id = ?1")
        .map_err(db)?
        .query_row([&id], |r| r.get(0))
        .map_err(db)?;
    // A stored snapshot that no longer parses is overwritten: telemetry must not fail the
    // heartbeat, or the node would look lost.
    let stored = node_power(raw).unwrap_or(None);
    if !replaces(stored.as_ref(), hb.power.as_ref()) {
        return Ok(());
    }
    conn.prepare_cached("UPDATE nodes SET power = ?2 WHERE id = ?1")
        .map_err(db)?
        .execute(params![id, hb.power.as_ref().map(to_json)])
        .map_err(db)?;
    Ok(())
}

pub fn claim(
    conn: &Connection,
    cfg: &SchedConfig,
    req: &ClaimRequest,
    now: u64,
    known: &Known<'_>,
) -> Result<Claimed, StoreError> {
    req.validate()?;
    let node = load_node(conn, req.node_id)?;
    touch_node(conn, req.node_id, now, seen_slack_ms(cfg))?;

    // A repeated claim returns what the first one assigned, as long as the node still holds
    // it. The claim id lives on the job row: a later claim of the job overwrites it, so only
    // the current holder's attempt can match.
    let previous = {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_active WHERE node_id = ?1 \
                 AND state IN ('assigned', 'running') \
                 AND claim_id = ?2 AND claimed_at_ms >= ?3 ORDER BY claim_pos"
            ))
            .map_err(db)?;
        let since = claim::remembered_since(now) as i64;
        let rows = stmt
            .query_map(params![req.node_id.to_string(), req.claim_id, since], raw_job)
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)?
    };
    if !previous.is_empty() {
        let assignments = previous
            .into_iter()
            .map(|raw| job_from_raw(raw).map(|s| Assignment { job: s.job }))
            .collect::<Result<_, _>>()?;
        return Ok(Claimed {
            assignments,
            emptied: Vec::new(),
        });
    }

    // Which classes of queued jobs this node can run is known without reading the queue;
    // a node that can run none of them is answered at once.
    let classes = known.runnable(conn, &node.registration)?;
    if classes.is_empty() {
        known.claims.answered_from_memory();
        return Ok(Claimed::default());
    }
    let want = claim::wanted(
        node.registration.max_concurrent_jobs,
        active_count(conn, req.node_id)?,
        req.max_jobs,
    );
    if want == 0 {
        return Ok(Claimed::default());
    }
    // The head of each class, in queue-entry order (also its aging order), at most `want`
    // each (plus the policy's lookahead): the best `want` jobs overall are among them.
    let policy = cfg.placement.as_ref();
    let needs = policy.needs();
    let limit = place::probe_limit(policy, want);
    let mut per_class = Vec::new();
    let mut emptied = Vec::new();
    for seen in classes {
        known.claims.probed();
        let heads = super::place::probe(conn, &seen.0, limit, needs.scenario)?;
        if heads.is_empty() {
            emptied.push(seen.clone());
        }
        per_class.push(heads);
    }
    let mut out = Claimed {
        assignments: Vec::new(),
        emptied,
    };
    let target = super::place::node_view(conn, req.node_id, &node.registration, want, needs)?;
    let chosen = place::place(policy, &target, per_class, limit, now, cfg.aging_interval);
    for c in chosen {
        if out.assignments.len() >= want as usize {
            break;
        }
        let mut stored = load_job_seq(conn, c.seq)?;
        if !admits(&node.registration, &stored.job) {
            continue;
        }
        let job = &mut stored.job;
        let step = claim::assign(job, req.node_id);
        apply(conn, job, &step, now)?;
        save_claim(conn, job, &req.claim_id, out.assignments.len(), now)?;
        out.assignments.push(Assignment { job: stored.job });
    }
    Ok(out)
}

/// What a claim answered, and the classes its probes found empty (to forget once it is
/// committed).
#[derive(Default)]
pub struct Claimed {
    pub assignments: Vec<Assignment>,
    pub emptied: Vec<Seen>,
}

/// What a claim knows of the queue without reading it.
pub struct Known<'a> {
    pub queued: &'a Mutex<QueuedClasses>,
    pub data_version: &'a AtomicI64,
    pub claims: &'a ClaimCounters,
}

impl Known<'_> {
    /// The classes `node` can run that may hold queued jobs. When another connection
    /// (another master on this file) committed since the last look, the classes in the
    /// database are merged in first; this runs in the claim's write transaction, so nothing
    /// commits in between.
    fn runnable(&self, conn: &Connection, node: &NodeRegistration) -> Result<Vec<Seen>, StoreError> {
        let version = data_version(conn)?;
        let mut queued = self
            .queued
            .lock()
            .map_err(|_| StoreError::Backend("queued classes poisoned".into()))?;
        if self.data_version.swap(version, Ordering::Relaxed) != version {
            self.claims.read_classes();
            queued.merge(queued_classes(conn)?, std::time::Instant::now());
        }
        Ok(queued.runnable(node))
    }
}

/// `PRAGMA data_version`: changes when another connection commits to the database.
pub fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("PRAGMA data_version")
        .map_err(db)?
        .query_row([], |r| r.get(0))
        .map_err(db)
}

/// The classes of the queued jobs in the database: one index seek per class (a loose
/// index scan of `jobs_class`), however many jobs each holds.
pub fn queued_classes(conn: &Connection) -> Result<Vec<ClassKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "WITH RECURSIVE c(b, k) AS ( \
               SELECT * FROM (SELECT base_rank, req_class FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
                              ORDER BY base_rank, req_class LIMIT 1) \
               UNION ALL \
               SELECT (SELECT base_rank FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
                         AND (base_rank, req_class) > (c.b, c.k) ORDER BY base_rank, req_class LIMIT 1), \
                      (SELECT req_class FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
                         AND (base_rank, req_class) > (c.b, c.k) ORDER BY base_rank, req_class LIMIT 1) \
               FROM c WHERE c.b IS NOT NULL \
             ) SELECT b, k FROM c WHERE b IS NOT NULL",
        )
        .map_err(db)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
    rows.collect::<Result<_, _>>().map_err(db)
}

/// Runs a sweep pass; returns its summary and the classes of the jobs it put back in the
/// queue.
pub fn sweep(
    conn: &Connection,
    cfg: &SchedConfig,
    now: u64,
    opened_at: u64,
) -> Result<(SweepSummary, Vec<ClassKey>), StoreError> {
    let mut released = Vec::new();
    let mut summary = SweepSummary::default();
    let deadline = sweep::lost_before(now, opened_at, cfg.dead_after());
    let lost: Vec<String> = {
        let mut stmt = conn
            .prepare_cached("SELECT id FROM nodes WHERE status = 'online' AND last_seen_ms < ?1")
            .map_err(db)?;
        let rows = stmt.query_map([deadline as i64], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<_, _>>().map_err(db)?
    };
    for node in lost {
        conn.prepare_cached("UPDATE nodes SET status = 'offline' WHERE id = ?1")
            .map_err(db)?
            .execute([&node])
            .map_err(db)?;
        summary.nodes_lost += 1;
        let jobs = {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_active \
                     WHERE node_id = ?1 AND state IN ('assigned', 'running')"
                ))
                .map_err(db)?;
            let rows = stmt.query_map([&node], raw_job).map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)?
        };
        for raw in jobs {
            let mut stored = job_from_raw(raw)?;
            fail_attempt(conn, cfg, &mut stored, sweep::node_lost(&node, cfg.dead_after()), now)?;
            sweep::count_lost_job(&mut summary, stored.job.state);
            save_job(conn, &stored)?;
        }
    }
    summary.nodes_pruned = prune_nodes(conn, cfg, now)?;
    let due = {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_retry WHERE state = 'retrying' \
                 AND retry_at_ms <= ?1 ORDER BY retry_at_ms LIMIT 1000"
            ))
            .map_err(db)?;
        let rows = stmt.query_map([now as i64], raw_job).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)?
    };
    for raw in due {
        let mut stored = job_from_raw(raw)?;
        let job = &mut stored.job;
        let step = sweep::release(job);
        apply(conn, job, &step, now)?;
        save_job(conn, &stored)?;
        mark_queued(conn, stored.job.seq, now)?;
        released.push(class_of(&stored.job.spec));
        summary.jobs_released += 1;
    }
    // No aging here: a claim ages ranks as it compares jobs (`claim::order_key`), so the
    // sweep writes only the rows whose state it changes.
    if let Some(cutoff) = sweep::retention_cutoff(now, cfg.retention) {
        let cutoff = cutoff as i64;
        let old: Vec<i64> = {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq FROM jobs INDEXED BY jobs_completed WHERE state = 'completed' \
                     AND updated_at_ms < ?1 ORDER BY updated_at_ms LIMIT ?2",
                )
                .map_err(db)?;
            let rows = stmt
                .query_map(params![cutoff, cfg.prune_batch], |r| r.get(0))
                .map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        for seq in &old {
            conn.prepare_cached("DELETE FROM job_history WHERE job_seq = ?1")
                .map_err(db)?
                .execute([seq])
                .map_err(db)?;
            conn.prepare_cached("DELETE FROM jobs WHERE seq = ?1")
                .map_err(db)?
                .execute([seq])
                .map_err(db)?;
        }
        summary.jobs_pruned = old.len() as u32;
    }
    Ok((summary, released))
}

/// Deletes offline nodes silent for longer than the node retention (at most one prune
/// batch per sweep); a node still holding a job is kept.
fn prune_nodes(conn: &Connection, cfg: &SchedConfig, now: u64) -> Result<u32, StoreError> {
    let Some(cutoff) = sweep::retention_cutoff(now, cfg.node_retention) else {
        return Ok(0);
    };
    let cutoff = cutoff as i64;
    let pruned = conn
        .prepare_cached(
            "DELETE FROM nodes WHERE id IN (SELECT n.id FROM nodes n WHERE n.status = 'offline' \
             AND n.last_seen_ms < ?1 AND NOT EXISTS (SELECT 1 FROM jobs j INDEXED BY jobs_active \
             WHERE j.node_id = n.id AND j.state IN ('assigned', 'running')) LIMIT ?2)",
        )
        .map_err(db)?
        .execute(params![cutoff, cfg.prune_batch])
        .map_err(db)?;
    Ok(pruned as u32)
}

/// The columns [`node_rows`] reads, over `nodes n`.
const NODE_COLUMNS: &str = "n.id, n.registration, n.status, n.registered_at_ms, n.last_seen_ms, \
     (SELECT COUNT(*) FROM jobs j INDEXED BY jobs_active \
     WHERE j.node_id = n.id AND j.state IN ('assigned', 'running')), n.power";

pub fn list(conn: &Connection) -> Result<Vec<Node>, StoreError> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes n ORDER BY n.registered_at_ms, n.id");
    node_rows(conn, &sql, &[])
}

/// One page of nodes in id order.
pub fn page(conn: &Connection, query: &NodeQuery) -> Result<NodePage, StoreError> {
    let limit = query.effective_limit();
    let after = query.after.map(|id| id.to_string()).unwrap_or_default();
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes n WHERE n.id > ?1 ORDER BY n.id LIMIT ?2");
    let nodes = node_rows(conn, &sql, params![after, limit + 1])?;
    Ok(NodePage::from_rows(nodes, limit))
}

fn node_rows(conn: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Node>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, reg, status, registered, seen, active, power) = row.map_err(db)?;
        out.push(Node {
            id: node_id_from(&id)?,
            registration: serde_json::from_str(&reg)
                .map_err(|e| StoreError::Backend(format!("corrupt node registration: {e}")))?,
            status: node_status(&status)?,
            active_jobs: active as u32,
            registered_at_ms: registered as u64,
            last_seen_ms: seen as u64,
            power: node_power(power)?,
        });
    }
    Ok(out)
}
