//! Node operations: registration, heartbeats, claims and failure detection.

use super::jobs::{apply, fail_attempt, mark_queued, touch_node};
use super::pool::Db;
use super::rows::{
    job_from_row, jobs_from_rows, load_job, load_node, node_id_from, node_power, node_registration, node_status,
    save_job, to_json, u, JOB_COLUMNS,
};
use super::{Ctx, Error, Result};
use crate::classes::{class_of, ClaimCounters, ClassKey, QueuedClasses, Seen};
use crate::matching::admits;
use crate::policy::{claim, heartbeat, holds, place, sweep};
use crate::power::replaces;
use std::sync::Mutex;
use std::time::Instant;

use ffrtmp_core::{
    Assignment, AttemptKey, ClaimRequest, Heartbeat, HeartbeatReply, JobId, Node, NodeId, NodePage, NodeQuery,
    NodeRegistration, NodeStatus, StoreError, SweepSummary,
};

/// Held (transaction-scoped) by the one master whose sweep runs; the others skip theirs.
pub const SWEEP_LOCK: i64 = 0x6666_7274_6d70_0002;

pub async fn register(tx: &Db<'_>, ctx: &Ctx<'_>, reg: NodeRegistration) -> Result<Node> {
    reg.validate().map_err(StoreError::from)?;
    let id = NodeId::new();
    tx.execute(
        "INSERT INTO nodes (id, registration, max_concurrent, status, registered_at_ms, last_seen_ms) \
         VALUES ($1, $2, $3, 'online', $4, $4)",
        &[
            &id.to_string(),
            &to_json(&reg),
            &i64::from(reg.max_concurrent_jobs),
            &(ctx.now as i64),
        ],
    )
    .await?;
    Ok(Node {
        id,
        registration: reg,
        status: NodeStatus::Online,
        active_jobs: 0,
        registered_at_ms: ctx.now,
        last_seen_ms: ctx.now,
        power: None,
    })
}

async fn active_count(tx: &Db<'_>, node: NodeId) -> Result<u32> {
    let row = tx
        .query_one(
            "SELECT COUNT(*) FROM jobs WHERE node_id = $1 AND state IN ('assigned', 'running')",
            &[&node.to_string()],
        )
        .await?;
    Ok(u(row.try_get(0)?) as u32)
}

fn node_not_found(node: NodeId) -> Error {
    StoreError::NotFound {
        what: "node",
        id: node.to_string(),
    }
    .into()
}

pub async fn heartbeat(tx: &Db<'_>, ctx: &Ctx<'_>, node: NodeId, hb: Heartbeat) -> Result<HeartbeatReply> {
    hb.validate().map_err(StoreError::from)?;
    let node_text = node.to_string();
    // `touch_node` that also reads the stored snapshot: the update holds the row's lock until
    // the transaction ends, so the comparison below cannot race another heartbeat.
    let row = tx
        .query_opt(
            "UPDATE nodes SET last_seen_ms = $2, status = 'online' WHERE id = $1 RETURNING power",
            &[&node_text, &(ctx.now as i64)],
        )
        .await?
        .ok_or_else(|| node_not_found(node))?;
    // A newer snapshot replaces the stored one, an older or unchanged one is not written, and a
    // heartbeat without one clears it. One that no longer parses is overwritten: telemetry
    // must not fail the heartbeat, or the node would look lost.
    let stored = node_power(row.try_get(0)?).unwrap_or(None);
    if replaces(stored.as_ref(), hb.power.as_ref()) {
        tx.execute(
            "UPDATE nodes SET power = $2 WHERE id = $1",
            &[&node_text, &hb.power.as_ref().map(to_json)],
        )
        .await?;
    }
    let mut cancel = Vec::new();
    let mut cancel_attempts = Vec::new();
    for running in &hb.running {
        let id = running.job_id.to_string();
        let attempt = i64::from(running.attempt);
        // One statement checks the fencing token and, with progress, stores it: the node must
        // hold this attempt of an active job, or it is told to stop (`policy::holds`, in SQL,
        // so that a heartbeat costs one round trip per listed job).
        let held = match &running.progress {
            Some(p) => {
                tx.execute(
                    "UPDATE jobs SET progress = $4, updated_at_ms = $5 \
                     WHERE id = $1 AND node_id = $2 AND attempt = $3 AND state IN ('assigned', 'running')",
                    &[&id, &node_text, &attempt, &to_json(p), &(ctx.now as i64)],
                )
                .await?
            }
            None => {
                tx.execute(
                    "SELECT 1 FROM jobs \
                     WHERE id = $1 AND node_id = $2 AND attempt = $3 AND state IN ('assigned', 'running')",
                    &[&id, &node_text, &attempt],
                )
                .await?
            }
        };
        if held == 0 {
            cancel.push(running.job_id);
            cancel_attempts.push(AttemptKey::new(running.job_id, running.attempt));
        }
    }
    // Jobs the node holds but no longer lists (it dropped them) go back to the queue. Jobs
    // claimed within the last two intervals are spared: the claim's answer may still be on
    // its way to the agent.
    let recent = heartbeat::spared_since(ctx.now, ctx.cfg.heartbeat_interval) as i64;
    let rows = tx
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs j WHERE node_id = $1 AND state IN ('assigned', 'running') \
                 AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.job_id = j.id AND c.attempt = j.attempt \
                 AND c.at_ms >= $2) ORDER BY seq FOR UPDATE"
            ),
            &[&node_text, &recent],
        )
        .await?;
    for mut stored in jobs_from_rows(&rows)? {
        if !heartbeat::dropped(&stored.job, &hb.running) {
            continue;
        }
        fail_attempt(tx, ctx, &mut stored, heartbeat::dropped_error(node)).await?;
        save_job(tx, &stored).await?;
    }
    Ok(HeartbeatReply {
        cancel,
        cancel_attempts,
    })
}

pub async fn claim(tx: &Db<'_>, ctx: &Ctx<'_>, req: ClaimRequest, known: &Known<'_>) -> Result<Claimed> {
    req.validate().map_err(StoreError::from)?;
    let now = ctx.now;
    // The node's row lock serializes this node's claims (and repeats of one claim) across
    // masters, which makes the concurrency check and the claim memory exact.
    let node = load_node(tx, req.node_id, true).await?;
    touch_node(tx, req.node_id, now).await?;
    let node_text = req.node_id.to_string();

    // A repeated claim returns what the first one assigned, as long as the node still holds it.
    let previous = tx
        .query(
            "SELECT job_id, attempt FROM claims WHERE claim_id = $1 AND node_id = $2 ORDER BY pos",
            &[&req.claim_id, &node_text],
        )
        .await?;
    if !previous.is_empty() {
        let mut out = Claimed::default();
        for row in previous {
            let job_id: String = row.try_get(0)?;
            let attempt = u(row.try_get(1)?);
            let id: JobId = job_id
                .parse()
                .map_err(|_| Error::backend(format!("corrupt job id {job_id:?} in claims")))?;
            let stored = load_job(tx, id, false).await?;
            let j = &stored.job;
            if u64::from(j.attempt) == attempt && holds(j, req.node_id, j.attempt) {
                out.assignments.push(Assignment { job: stored.job });
            }
        }
        return Ok(out);
    }

    // Which classes of queued jobs this node can run is known without reading the queue
    // (refreshed from the database at most every `QueuedClasses::REFRESH`, for jobs other
    // masters queued); a node that can run none of them is answered at once.
    let classes = known.runnable(tx, &node.registration).await?;
    if classes.is_empty() {
        known.claims.answered_from_memory();
        return Ok(Claimed::default());
    }
    let want = claim::wanted(
        node.registration.max_concurrent_jobs,
        active_count(tx, req.node_id).await?,
        req.max_jobs,
    );
    if want == 0 {
        return Ok(Claimed::default());
    }
    // The head of each class, in queue-entry order (also its aging order), at most `want`
    // each (plus the policy's lookahead): the best `want` jobs overall are among them. Rows
    // another transaction holds (a concurrent claim through another master, a cancel) are
    // skipped, never waited on.
    let policy = ctx.cfg.placement.as_ref();
    let needs = policy.needs();
    let limit = place::probe_limit(policy, want);
    let lock_in_probe = limit == want;
    let mut per_class = Vec::new();
    let mut emptied = Vec::new();
    for seen in classes {
        known.claims.probed();
        let heads = super::place::probe(tx, &seen.0, limit, needs.scenario, lock_in_probe).await?;
        if heads.is_empty() {
            emptied.push(seen.clone());
        }
        per_class.push(heads);
    }
    let mut out = Claimed {
        assignments: Vec::new(),
        emptied,
    };
    let target = super::place::node_view(tx, req.node_id, &node.registration, want, needs).await?;
    let chosen = place::place(policy, &target, per_class, limit, now, ctx.cfg.aging_interval);
    for c in chosen {
        if out.assignments.len() >= want as usize {
            break;
        }
        let Some(row) = super::place::lock(tx, c.seq, lock_in_probe).await? else {
            continue;
        };
        let mut stored = job_from_row(&row)?;
        if !admits(&node.registration, &stored.job) {
            continue;
        }
        let pos = out.assignments.len();
        let job = &mut stored.job;
        let step = claim::assign(job, req.node_id);
        apply(tx, job, &step, now).await?;
        save_job(tx, &stored).await?;
        tx.execute(
            "INSERT INTO claims (claim_id, node_id, job_id, attempt, pos, at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &req.claim_id,
                &node_text,
                &stored.job.id.to_string(),
                &i64::from(stored.job.attempt),
                &(pos as i64),
                &(now as i64),
            ],
        )
        .await?;
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
    pub claims: &'a ClaimCounters,
}

impl Known<'_> {
    /// The classes `node` can run that may hold queued jobs, merging in the classes in the
    /// database first when the last read is older than [`QueuedClasses::REFRESH`].
    async fn runnable(&self, tx: &Db<'_>, node: &NodeRegistration) -> Result<Vec<Seen>> {
        let due = self.lock()?.refresh_due(Instant::now());
        if due {
            let at = Instant::now();
            self.claims.read_classes();
            let read = queued_classes(tx).await?;
            self.lock()?.merge(read, at);
        }
        Ok(self.lock()?.runnable(node))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, QueuedClasses>> {
        self.queued
            .lock()
            .map_err(|_| Error::backend("queued classes poisoned".into()))
    }
}

/// The classes of the queued jobs in the database: one index probe per class (a loose
/// index scan of `jobs_class`), however many jobs each holds.
pub async fn queued_classes(tx: &Db<'_>) -> Result<Vec<ClassKey>> {
    let rows = tx
        .query(
            "WITH RECURSIVE c AS ( \
               (SELECT base_rank, req_class FROM jobs WHERE state = 'queued' ORDER BY base_rank, req_class LIMIT 1) \
               UNION ALL \
               SELECT n.base_rank, n.req_class FROM c CROSS JOIN LATERAL ( \
                 SELECT base_rank, req_class FROM jobs WHERE state = 'queued' \
                 AND (base_rank, req_class) > (c.base_rank, c.req_class) \
                 ORDER BY base_rank, req_class LIMIT 1) n \
             ) SELECT base_rank, req_class FROM c",
            &[],
        )
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

/// Runs a sweep pass; returns its summary and the classes of the jobs it put back in the
/// queue. A pass runs only when `due::anything_due` found work, so each step's condition
/// is mirrored there.
pub async fn sweep(tx: &Db<'_>, ctx: &Ctx<'_>) -> Result<(SweepSummary, Vec<ClassKey>)> {
    let mut summary = SweepSummary::default();
    let mut released = Vec::new();
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])
        .await?
        .try_get(0)?;
    if !locked {
        // Another master is sweeping right now; its pass covers this one.
        return Ok((summary, released));
    }
    let now = ctx.now;
    let deadline = sweep::lost_before(now, ctx.opened_at_ms, ctx.cfg.dead_after());
    let lost = tx
        .query(
            "SELECT id FROM nodes WHERE status = 'online' AND last_seen_ms < $1 ORDER BY id FOR UPDATE",
            &[&(deadline as i64)],
        )
        .await?;
    for row in lost {
        let node: String = row.try_get(0)?;
        tx.execute("UPDATE nodes SET status = 'offline' WHERE id = $1", &[&node])
            .await?;
        summary.nodes_lost += 1;
        let rows = tx
            .query(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE node_id = $1 AND state IN ('assigned', 'running') \
                     ORDER BY seq FOR UPDATE"
                ),
                &[&node],
            )
            .await?;
        for mut stored in jobs_from_rows(&rows)? {
            fail_attempt(tx, ctx, &mut stored, sweep::node_lost(&node, ctx.cfg.dead_after())).await?;
            sweep::count_lost_job(&mut summary, stored.job.state);
            save_job(tx, &stored).await?;
        }
    }
    summary.nodes_pruned = prune_nodes(tx, ctx).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'retrying' AND retry_at_ms <= $1 \
                 ORDER BY seq LIMIT 1000 FOR UPDATE"
            ),
            &[&(now as i64)],
        )
        .await?;
    for mut stored in jobs_from_rows(&rows)? {
        let job = &mut stored.job;
        let step = sweep::release(job);
        apply(tx, job, &step, now).await?;
        save_job(tx, &stored).await?;
        mark_queued(tx, stored.job.id, now).await?;
        released.push(class_of(&stored.job.spec));
        summary.jobs_released += 1;
    }
    // No aging here: a claim ages ranks as it compares jobs (`claim::order_key`), so the
    // sweep writes only the rows whose state it changes.
    if let Some(cutoff) = sweep::retention_cutoff(now, ctx.cfg.retention) {
        let cutoff = cutoff as i64;
        let pruned: Vec<String> = tx
            .query(
                "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state = 'completed' \
                 AND updated_at_ms < $1 ORDER BY updated_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
                &[&cutoff, &i64::from(ctx.cfg.prune_batch)],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        if !pruned.is_empty() {
            tx.execute("DELETE FROM job_history WHERE job_id = ANY($1)", &[&pruned])
                .await?;
        }
        summary.jobs_pruned = pruned.len() as u32;
    }
    tx.execute(
        "DELETE FROM claims WHERE at_ms < $1",
        &[&(claim::remembered_since(now) as i64)],
    )
    .await?;
    Ok((summary, released))
}

/// Deletes offline nodes silent for longer than the node retention (at most one prune
/// batch per sweep); a node still holding a job is kept.
async fn prune_nodes(tx: &Db<'_>, ctx: &Ctx<'_>) -> Result<u32> {
    let Some(cutoff) = sweep::retention_cutoff(ctx.now, ctx.cfg.node_retention) else {
        return Ok(0);
    };
    let cutoff = cutoff as i64;
    let pruned = tx
        .execute(
            "DELETE FROM nodes WHERE id IN (SELECT n.id FROM nodes n WHERE n.status = 'offline' \
             AND n.last_seen_ms < $1 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.node_id = n.id \
             AND j.state IN ('assigned', 'running')) ORDER BY n.id LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&cutoff, &i64::from(ctx.cfg.prune_batch)],
        )
        .await?;
    Ok(pruned as u32)
}

/// The columns [`nodes_from_rows`] reads, over `nodes n`.
const NODE_COLUMNS: &str = "n.id, n.registration, n.status, n.registered_at_ms, n.last_seen_ms, \
     (SELECT COUNT(*) FROM jobs j WHERE j.node_id = n.id AND j.state IN ('assigned', 'running')), n.power";

pub async fn list(tx: &Db<'_>) -> Result<Vec<Node>> {
    let sql = format!("SELECT {NODE_COLUMNS} FROM nodes n ORDER BY n.registered_at_ms, n.id");
    nodes_from_rows(&tx.query(&sql, &[]).await?)
}

/// One page of nodes in id order.
pub async fn page(tx: &Db<'_>, query: NodeQuery) -> Result<NodePage> {
    let limit = query.effective_limit();
    let after = query.after.map(|id| id.to_string()).unwrap_or_default();
    // COLLATE "C": byte order, the same order as the ids' own and SQLite's.
    let sql = format!(
        "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.id COLLATE \"C\" > $1 ORDER BY n.id COLLATE \"C\" LIMIT $2"
    );
    let rows = tx.query(&sql, &[&after, &(i64::from(limit) + 1)]).await?;
    Ok(NodePage::from_rows(nodes_from_rows(&rows)?, limit))
}

fn nodes_from_rows(rows: &[tokio_postgres::Row]) -> Result<Vec<Node>> {
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(Node {
            id: node_id_from(&r.try_get::<_, String>(0)?)?,
            registration: node_registration(&r.try_get::<_, String>(1)?)?,
            status: node_status(&r.try_get::<_, String>(2)?)?,
            active_jobs: u(r.try_get(5)?) as u32,
            registered_at_ms: u(r.try_get(3)?),
            last_seen_ms: u(r.try_get(4)?),
            power: node_power(r.try_get(6)?)?,
        });
    }
    Ok(out)
}
