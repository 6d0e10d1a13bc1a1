//! Job operations; each runs inside one transaction.

use ffrtmp_core::{
    EnergyReport, Job, JobError, JobEvent, JobId, JobPage, JobQuery, JobReport, JobState, NodeId, StoreError, ValidSpec,
};
use tokio_postgres::types::ToSql;

use super::pool::Db;
use super::rows::{
    append_history, attempt_outcome, energy_json, job_from_row, load_job, queue_name, rank, save_job, to_json,
    transition, u, StoredJob, JOB_COLUMNS,
};
use super::{Ctx, Result};
use crate::classes::class_of;
use crate::matching::{engine_column, needs_enforcement};
use crate::policy::energy::{keep_energy, keep_reported_energy};
use crate::policy::report::{self, ReportDecision};
use crate::policy::Step;

pub async fn submit(tx: &Db<'_>, ctx: &Ctx<'_>, spec: ValidSpec) -> Result<Job> {
    let codec = spec.scenario().codec;
    let id = JobId::new();
    let now = ctx.now as i64;
    let rank = rank(spec.queue, spec.priority);
    let row = tx
        .query_one(
            "INSERT INTO jobs (id, spec, state, rank, base_rank, queue, codec, encoder, max_retries, queued_at_ms, \
             created_at_ms, updated_at_ms, engine, needs_enforcement, req_class) \
             VALUES ($1, $2, 'queued', $3, $3, $4, $5, $6, $7, $8, $8, $8, $9, $10, $11) RETURNING seq",
            &[
                &id.to_string(),
                &to_json(&spec),
                &rank,
                &queue_name(spec.queue),
                &codec.as_str(),
                &spec.parameters.encoder,
                &i64::from(spec.max_retries),
                &now,
                &engine_column(&spec),
                &needs_enforcement(&spec),
                &class_of(&spec).1,
            ],
        )
        .await?;
    let job = Job::submitted(id, u(row.try_get(0)?), spec, ctx.now);
    append_history(tx, &job, None, "submitted", ctx.now).await?;
    Ok(job)
}

pub async fn cancel(tx: &Db<'_>, ctx: &Ctx<'_>, id: JobId, reason: String) -> Result<Job> {
    let mut stored = load_job(tx, id, true).await?;
    // The node keeps its id on the job so that its next heartbeat is told to stop.
    transition(tx, &mut stored.job, JobState::Canceled, &reason, ctx.now).await?;
    stored.job.retry_at_ms = None;
    save_job(tx, &stored).await?;
    Ok(stored.job)
}

pub async fn requeue(tx: &Db<'_>, ctx: &Ctx<'_>, id: JobId) -> Result<Job> {
    let mut stored = load_job(tx, id, true).await?;
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
    stored.job.updated_at_ms = ctx.now;
    stored.attempt_base = stored.job.attempt;
    append_history(tx, &stored.job, Some(from), "re-queued by operator", ctx.now).await?;
    save_job(tx, &stored).await?;
    mark_queued(tx, id, ctx.now).await?;
    Ok(stored.job)
}

/// Applies a node's report, refusing it unless the node holds that attempt.
pub async fn report(tx: &Db<'_>, ctx: &Ctx<'_>, r: JobReport) -> Result<Job> {
    let now = ctx.now;
    // Node row first, then the job row: the lock order of every operation. A refused report
    // rolls the touch back.
    touch_node(tx, r.node_id, now).await?;
    let mut stored = load_job(tx, r.job_id, true).await?;
    if let JobEvent::Energy { energy } = &r.event {
        return record_energy(tx, stored, &r, energy).await;
    }
    report::fence(&stored.job, &r)?;
    match report::decide(stored.job.state, &r.event) {
        ReportDecision::Advance { steps, record } => {
            for step in &steps {
                apply(tx, &mut stored.job, step, now).await?;
            }
            record.apply(&mut stored.job, now);
        }
        ReportDecision::EndAttempt(error) => fail_attempt(tx, ctx, &mut stored, error).await?,
    }
    keep_reported_energy(&mut stored.job, &r);
    save_job(tx, &stored).await?;
    Ok(stored.job)
}

/// Records an attempt's energy sent after the attempt ended: accepted from the node that
/// held that attempt, whatever the job's state now, and it writes nothing but the
/// per-attempt energy (no state, history or timestamps).
async fn record_energy(tx: &Db<'_>, mut stored: StoredJob, r: &JobReport, energy: &EnergyReport) -> Result<Job> {
    let job = &mut stored.job;
    let Some(outcome) = attempt_outcome(tx, job.id, r.attempt, r.node_id).await? else {
        return Err(StoreError::Fenced {
            job_id: r.job_id,
            attempt: r.attempt,
            node_id: r.node_id,
            state: job.state,
            current_attempt: job.attempt,
        }
        .into());
    };
    keep_energy(job, r, outcome, Some(energy));
    tx.execute(
        "UPDATE jobs SET attempts_energy = $2 WHERE id = $1",
        &[&job.id.to_string(), &energy_json(job)],
    )
    .await?;
    Ok(stored.job)
}

/// Ends the current attempt with `error` as [`report::end_attempt`] decides. The caller
/// saves the job.
pub async fn fail_attempt(tx: &Db<'_>, ctx: &Ctx<'_>, stored: &mut StoredJob, error: JobError) -> Result<()> {
    let job = &stored.job;
    let end = report::end_attempt(
        job.attempt,
        stored.attempt_base,
        job.spec.max_retries,
        &error,
        &ctx.cfg.job_backoff,
        ctx.now,
    );
    stored.attempt_base = end.attempt_base;
    if let Some(at) = end.outcome.retry_at_ms() {
        stored.job.retry_at_ms = Some(at);
    }
    apply(tx, &mut stored.job, &end.outcome.step(), ctx.now).await?;
    stored.job.error = Some(error);
    Ok(())
}

/// Applies a policy [`Step`], recording it in the job's history.
pub async fn apply(tx: &Db<'_>, job: &mut Job, step: &Step, now: u64) -> Result<()> {
    transition(tx, job, step.to, &step.reason, now).await
}

/// Marks the node alive; returns whether it exists. Takes the node's row lock.
pub async fn touch_node(tx: &Db<'_>, node: NodeId, now: u64) -> Result<bool> {
    let n = tx
        .execute(
            "UPDATE nodes SET last_seen_ms = $2, status = 'online' WHERE id = $1",
            &[&node.to_string(), &(now as i64)],
        )
        .await?;
    Ok(n > 0)
}

/// A job (re-)entering the queue starts at its own rank and ages from now.
pub async fn mark_queued(tx: &Db<'_>, id: JobId, now: u64) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET rank = base_rank, queued_at_ms = $2 WHERE id = $1",
        &[&id.to_string(), &(now as i64)],
    )
    .await?;
    Ok(())
}

/// A listing's statement and arguments. Each filter is served by an index ordered by seq
/// (`jobs_state_seq`, `jobs_queue_seq`, `jobs_node_seq`); no filter walks the primary key.
fn list_sql(q: &JobQuery) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    if let Some(state) = q.state {
        args.push(Box::new(state.as_str()));
        sql.push_str(&format!(" AND state = ${}", args.len()));
    }
    if let Some(queue) = q.queue {
        args.push(Box::new(queue_name(queue)));
        sql.push_str(&format!(" AND queue = ${}", args.len()));
    }
    if let Some(node) = q.node_id {
        args.push(Box::new(node.to_string()));
        sql.push_str(&format!(" AND node_id = ${}", args.len()));
    }
    if let Some(before) = q.before_seq {
        args.push(Box::new(i64::try_from(before).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" AND seq < ${}", args.len()));
    }
    let limit = q.effective_limit();
    args.push(Box::new(i64::from(limit) + 1));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", args.len()));
    (sql, args)
}

pub async fn list(tx: &Db<'_>, q: JobQuery) -> Result<JobPage> {
    let limit = q.effective_limit();
    let (sql, args) = list_sql(&q);
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = tx.query(&sql, &params).await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for r in &rows {
        jobs.push(job_from_row(r)?.job);
    }
    let next_cursor = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.seq)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use super::*;
    use crate::conformance::pg::PgBackend;
    use ffrtmp_core::{NodeId, Queue};

    /// Each listing filter (and combination) is answered through an index that narrows the
    /// rows by the filter, never by a sequential scan or a walk of every row, on a table of
    /// 20,000 jobs where each filtered value is rare (the case a walk by seq costs most).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_listing_filter_is_served_by_an_index_not_a_scan_of_the_jobs_table() {
        let Some(b) = PgBackend::create().await else { return };
        let store = crate::PgStore::connect(b.url(), Default::default()).await.unwrap();
        drop(store);
        let (db, conn) = tokio_postgres::connect(b.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let node = NodeId::new();
        db.execute(
            "INSERT INTO jobs (id, spec, state, rank, base_rank, queue, codec, max_retries, queued_at_ms, \
             created_at_ms, updated_at_ms, node_id) \
             SELECT 'job-' || i, '{}', \
                    CASE i % 100 WHEN 1 THEN 'queued' WHEN 2 THEN 'assigned' WHEN 3 THEN 'running' \
                                 WHEN 4 THEN 'failed' ELSE 'completed' END, \
                    4, 4, CASE i % 97 WHEN 1 THEN 'batch' WHEN 2 THEN 'live' ELSE 'default' END, 'h264', 3, i, i, i, \
                    CASE WHEN i % 100 IN (2, 3) THEN 'node-' || (i % 7) END \
             FROM generate_series(1, 20000) AS i",
            &[],
        )
        .await
        .unwrap();
        db.batch_execute("ANALYZE jobs").await.unwrap();
        // Rare values: for a common one (completed here) the planner rightly walks seq and
        // reads about a page of rows.
        for state in [
            None,
            Some(JobState::Queued),
            Some(JobState::Running),
            Some(JobState::Failed),
        ] {
            for queue in [None, Some(Queue::Batch)] {
                for node_id in [None, Some(node)] {
                    for before_seq in [None, Some(10_000)] {
                        if state.is_none() && queue.is_none() && node_id.is_none() {
                            continue;
                        }
                        let q = JobQuery {
                            state,
                            queue,
                            node_id,
                            before_seq,
                            limit: Some(10),
                        };
                        let (sql, args) = list_sql(&q);
                        let params: Vec<&(dyn ToSql + Sync)> =
                            args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
                        let plan: Vec<String> = db
                            .query(&format!("EXPLAIN {sql}"), &params)
                            .await
                            .unwrap()
                            .iter()
                            .map(|r| r.get(0))
                            .collect();
                        let plan = plan.join("\n");
                        // The index narrows the rows by a filter, through its condition or,
                        // for a partial index on one state, its predicate (a walk of the
                        // primary key that filters every row would not).
                        let narrowed = plan.lines().any(|l| {
                            l.contains("Index Cond")
                                && ["state", "queue", "node_id"]
                                    .iter()
                                    .any(|c| l.contains(&format!("({c} =")))
                        }) || ["using jobs_class ", "using jobs_retry ", "using jobs_completed "]
                            .iter()
                            .any(|i| plan.contains(i));
                        assert!(narrowed && !plan.contains("Seq Scan"), "{q:?}:\n{plan}");
                    }
                }
            }
        }
    }

    /// `settle` leaves the job tables vacuumed and analyzed (their statistics count the
    /// jobs, where a table never analyzed says -1) and, as the tests' superuser, runs the
    /// checkpoint; no job is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settle_analyzes_the_job_tables_and_checkpoints_without_losing_a_job() {
        use ffrtmp_core::{JobSpec, JobStore};
        let Some(b) = PgBackend::create().await else { return };
        let store = crate::PgStore::connect(b.url(), Default::default()).await.unwrap();
        for _ in 0..20 {
            store.submit(JobSpec::new("720p-h264")).await.unwrap();
        }
        let (db, conn) = tokio_postgres::connect(b.url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let estimate = |db: tokio_postgres::Client| async move {
            let row = db
                .query_one("SELECT reltuples::bigint FROM pg_class WHERE relname = 'jobs'", &[])
                .await
                .unwrap();
            (db, row.get::<_, i64>(0))
        };
        let (db, before) = estimate(db).await;
        assert_ne!(before, 20, "the fresh table's statistics already counted the jobs");
        assert!(
            store.settle().await.unwrap(),
            "the tests' role is a superuser: CHECKPOINT runs"
        );
        let (_db, after) = estimate(db).await;
        assert_eq!(after, 20);
        let page = store
            .list(&JobQuery {
                limit: Some(100),
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.jobs.len(), 20);
    }
}
