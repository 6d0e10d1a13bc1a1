//! The PostgreSQL [`JobStore`] (cargo feature `postgres`).
//!
//! Several masters may share one database. Every operation is one `READ COMMITTED`
//! transaction that takes row locks in one order (node, then jobs), so concurrent masters
//! never hand out a job twice, never exceed a node's concurrency and never apply a report
//! twice:
//!
//! - claims lock the node row (`FOR UPDATE`), count its active jobs, then take queued jobs
//!   with `FOR UPDATE SKIP LOCKED`: concurrent claims pick disjoint jobs without waiting;
//! - reports lock the node row, then the job row, and check the fencing token under the
//!   lock;
//! - a sweep runs only under `pg_try_advisory_xact_lock`: when another master is sweeping,
//!   it returns an empty summary at once.
//!
//! Transactions that fail with a serialization failure or a deadlock (SQLSTATE `40001`,
//! `40P01`) are retried a few times.

mod due;
mod jobs;
mod nodes;
mod place;
mod pool;
mod rows;
mod schema;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, InvalidTransition, Job, JobId, JobPage, JobQuery, JobReport,
    JobSpec, JobStore, Node, NodeId, NodePage, NodeQuery, NodeRegistration, SpecError, StoreError, SweepSummary,
    ValidSpec,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::IsolationLevel;

use self::pool::{describe, Db, Pool};
use crate::classes::{class_of, ClaimCounters, ClaimStats, ClassKey, QueuedClasses};
use crate::config::SchedConfig;

/// A [`JobStore`] in a PostgreSQL database, shareable by several masters.
///
/// Jobs, history, nodes and claims live in four tables created (and migrated, recorded in
/// `schema_version`) on [`PgStore::connect`]. Claims use `SELECT … FOR UPDATE SKIP LOCKED`,
/// so masters sharing the database never assign a job twice; [`JobStore::sweep`] runs under
/// a transaction-scoped advisory lock, so failure detection happens once however many
/// masters sweep. The behaviour is otherwise exactly that of
/// [`SqliteStore`](crate::SqliteStore): the same conformance suite runs against both.
///
/// Connections are plain TCP or Unix-socket connections without TLS: use a socket, a private
/// network or a tunnel. Each connection keeps its prepared statements, so put no
/// transaction-pooling proxy (PgBouncer in `transaction` mode) in between. The store is cheap
/// to clone and usable from any tokio runtime.
///
/// One difference from SQLite is only visible under contention: a claim skips queued jobs
/// that a concurrent claim holds at that instant, so it may return fewer jobs than are
/// queued; they go to the claim holding them, or to the next claim if that one rolls back.
/// A claim knows which requirement classes of queued jobs exist without reading the queue;
/// jobs another master queued join that knowledge within half a second (a loose index scan
/// of the classes at most every 500 ms), so a node polling one master is offered a job
/// queued through another within about that time.
/// All timestamps come from [`SchedConfig::clock`] of the master doing the write, so masters
/// sharing a database need synchronized clocks (NTP), as their nodes' leases depend on them.
///
/// ```no_run
/// # async fn demo() -> Result<(), ffrtmp_core::StoreError> {
/// use ffrtmp_core::{JobSpec, JobState, JobStore};
/// use ffrtmp_sched::{PgStore, SchedConfig};
///
/// let store = PgStore::connect("postgres://ffrtmp:secret@db.internal:5432/ffrtmp", SchedConfig::default()).await?;
/// let job = store.submit(JobSpec::new("1080p-h264")).await?;
/// assert_eq!(job.state, JobState::Queued);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: SchedConfig,
    opened_at_ms: u64,
    target: String,
    /// The requirement classes that may hold queued jobs, as this master knows them.
    queued: std::sync::Mutex<QueuedClasses>,
    claims: ClaimCounters,
}

/// What an operation knows besides its arguments.
pub(crate) struct Ctx<'c> {
    pub cfg: &'c SchedConfig,
    /// Now, from the configured clock, taken once per transaction attempt.
    pub now: u64,
    /// When this store was opened: no node is declared lost before `opened_at + dead_after`.
    pub opened_at_ms: u64,
}

/// Errors inside the store: domain errors pass through, database errors keep their
/// SQLSTATE until the transaction decides whether to retry.
pub(crate) enum Error {
    Store(StoreError),
    Pg(tokio_postgres::Error),
}

impl Error {
    fn backend(msg: String) -> Error {
        Error::Store(StoreError::Backend(msg))
    }

    fn retryable(&self) -> bool {
        matches!(self, Error::Pg(e) if matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
        ))
    }

    /// The connection broke (closed, server shutdown, administrator termination, SQLSTATE
    /// classes `08` and `57P`): before COMMIT was sent, nothing was committed.
    fn connection_lost(&self) -> bool {
        match self {
            Error::Pg(e) => {
                e.is_closed()
                    || e.code()
                        .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"))
            }
            Error::Store(_) => false,
        }
    }

    fn into_store(self) -> StoreError {
        match self {
            Error::Store(e) => e,
            Error::Pg(e) => StoreError::Backend(pg_message(&e)),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Pg(e)
    }
}

impl From<InvalidTransition> for Error {
    fn from(e: InvalidTransition) -> Self {
        Error::Store(e.into())
    }
}

impl From<SpecError> for Error {
    fn from(e: SpecError) -> Self {
        Error::Store(e.into())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A database error as one line for people: SQLSTATE and server message, or the client-side
/// cause chain. Never contains the connection URL.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL error {}: {db}", db.code().code());
    }
    let mut msg = format!("PostgreSQL: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Attempts of a transaction that fails with a serialization failure or deadlock.
const TX_ATTEMPTS: u32 = 5;

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname` or
    /// `host=… user=… dbname=…`), creating or migrating the schema, with a pool of
    /// [`PgStore::DEFAULT_POOL_SIZE`] connections.
    pub async fn connect(url: &str, config: SchedConfig) -> std::result::Result<PgStore, StoreError> {
        PgStore::connect_with_pool_size(url, config, PgStore::DEFAULT_POOL_SIZE).await
    }

    /// Connections a store opens at most, unless told otherwise.
    pub const DEFAULT_POOL_SIZE: usize = 8;

    /// The advisory lock key (`pg_try_advisory_xact_lock`) held by the master whose sweep
    /// runs; a master that cannot take it skips its sweep. Advisory locks are per database.
    pub const SWEEP_LOCK_KEY: i64 = nodes::SWEEP_LOCK;

    /// [`PgStore::connect`] with at most `pool_size` connections (at least 1).
    pub async fn connect_with_pool_size(
        url: &str,
        config: SchedConfig,
        pool_size: usize,
    ) -> std::result::Result<PgStore, StoreError> {
        // The parse error names the offending option, never its value.
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            StoreError::Backend(format!("invalid PostgreSQL URL: {}", pg_message(&e)))
        })?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(std::time::Duration::from_secs(10));
        }
        if pg.get_application_name().is_none() {
            pg.application_name("ffrtmp");
        }
        let target = describe(&pg);
        let pool = Pool::new(pg, pool_size).map_err(Error::into_store)?;
        {
            let mut pooled = pool.get().await.map_err(Error::into_store)?;
            schema::migrate(pooled.parts().0)
                .await
                .map_err(|e| StoreError::Backend(format!("migrating {target}: {}", e.into_store())))?;
        }
        let opened_at_ms = config.now();
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                config,
                opened_at_ms,
                target,
                queued: Default::default(),
                claims: ClaimCounters::default(),
            }),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &SchedConfig {
        &self.inner.config
    }

    /// How claims were answered since the store was opened.
    pub fn claim_stats(&self) -> ClaimStats {
        self.inner.claims.get()
    }

    /// Records that this master committed jobs of these classes to the queue.
    fn queued(&self, classes: impl IntoIterator<Item = ClassKey>) {
        if let Ok(mut q) = self.inner.queued.lock() {
            for key in classes {
                q.add(&key);
            }
        }
    }

    /// Whether a sweep pass now would change anything (see `due`). When the look itself
    /// fails, true: the pass, with its retries, reports what is wrong.
    async fn sweep_due(&self) -> bool {
        let look = async {
            let mut pooled = self.inner.pool.get().await?;
            let (client, cache) = pooled.parts();
            let ctx = Ctx {
                cfg: &self.inner.config,
                now: self.inner.config.now(),
                opened_at_ms: self.inner.opened_at_ms,
            };
            due::anything_due(client, cache, &ctx).await
        };
        match look.await {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e.into_store(), "sweep pre-check failed; running the full pass");
                true
            }
        }
    }

    /// Leaves the job tables as autovacuum would after a bulk load, now rather than at some
    /// later moment: `VACUUM (ANALYZE)` of `jobs` and `job_history`, then a `CHECKPOINT`
    /// where the role may run one (a superuser or a member of `pg_checkpoint`). Benchmarks
    /// call it between filling and measuring, so the measurement does not overlap the
    /// load's own maintenance. Returns whether the checkpoint ran.
    pub async fn settle(&self) -> std::result::Result<bool, StoreError> {
        let mut pooled = self.inner.pool.get().await.map_err(Error::into_store)?;
        let (client, _) = pooled.parts();
        // VACUUM cannot run inside a transaction block: one statement per call.
        client
            .batch_execute("VACUUM (ANALYZE) jobs, job_history")
            .await
            .map_err(|e| StoreError::Backend(format!("VACUUM (ANALYZE) of the job tables: {}", pg_message(&e))))?;
        match client.batch_execute("CHECKPOINT").await {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => Ok(false),
            Err(e) => Err(StoreError::Backend(format!("CHECKPOINT: {}", pg_message(&e)))),
        }
    }

    /// `user@host:port/dbname` of the database (without the password).
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// Runs `f` in a transaction. Retried: serialization failures and deadlocks, and any
    /// failure of a connection before COMMIT was sent (nothing was committed; the pool
    /// replaces the connection). A connection lost during COMMIT is an error: the outcome is
    /// unknown.
    async fn tx<T, F>(&self, read_only: bool, mut f: F) -> std::result::Result<T, StoreError>
    where
        F: for<'a> FnMut(&'a Db<'a>, &'a Ctx<'a>) -> TxFuture<'a, T>,
    {
        let mut conflicts = 0;
        let mut lost = 0;
        loop {
            let mut pooled = self.inner.pool.get().await.map_err(Error::into_store)?;
            let (client, cache) = pooled.parts();
            let begin = client
                .build_transaction()
                .isolation_level(if read_only {
                    IsolationLevel::RepeatableRead
                } else {
                    IsolationLevel::ReadCommitted
                })
                .read_only(read_only)
                .start()
                .await;
            let e = match begin {
                Ok(tx) => {
                    let tx = Db::new(tx, cache);
                    let ctx = Ctx {
                        cfg: &self.inner.config,
                        now: self.inner.config.now(),
                        opened_at_ms: self.inner.opened_at_ms,
                    };
                    match f(&tx, &ctx).await {
                        Ok(v) => match tx.commit().await {
                            Ok(()) => return Ok(v),
                            // A serialization failure at COMMIT rolled back; anything else
                            // leaves the outcome unknown.
                            Err(e) => {
                                let e = Error::Pg(e);
                                if !e.retryable() {
                                    return Err(e.into_store());
                                }
                                e
                            }
                        },
                        // Dropping the transaction rolls it back.
                        Err(e) => e,
                    }
                }
                Err(e) => Error::Pg(e),
            };
            if e.retryable() && conflicts + 1 < TX_ATTEMPTS {
                conflicts += 1;
                tracing::debug!(error = %e.into_store(), conflicts, "retrying PostgreSQL transaction");
                tokio::task::yield_now().await;
            } else if e.connection_lost() && lost < self.inner.pool.size() + 1 {
                lost += 1;
                tracing::debug!(error = %e.into_store(), lost, "PostgreSQL connection lost; retrying on another");
            } else {
                return Err(e.into_store());
            }
        }
    }
}

#[async_trait]
impl JobStore for PgStore {
    async fn submit(&self, spec: JobSpec) -> std::result::Result<Job, StoreError> {
        let spec = ValidSpec::try_from(spec)?;
        let class = class_of(&spec);
        let job = self
            .tx(false, |tx, ctx| Box::pin(jobs::submit(tx, ctx, spec.clone())))
            .await?;
        self.queued([class]);
        Ok(job)
    }

    async fn get(&self, id: JobId) -> std::result::Result<Job, StoreError> {
        self.tx(true, |tx, _| {
            Box::pin(async move {
                let mut job = rows::load_job(tx, id, false).await?.job;
                job.history = rows::load_history(tx, id).await?;
                Ok(job)
            })
        })
        .await
    }

    async fn list(&self, query: &JobQuery) -> std::result::Result<JobPage, StoreError> {
        self.tx(true, |tx, _| Box::pin(jobs::list(tx, query.clone()))).await
    }

    async fn cancel(&self, id: JobId, reason: &str) -> std::result::Result<Job, StoreError> {
        self.tx(false, |tx, ctx| Box::pin(jobs::cancel(tx, ctx, id, reason.to_string())))
            .await
    }

    async fn retry(&self, id: JobId) -> std::result::Result<Job, StoreError> {
        let job = self.tx(false, |tx, ctx| Box::pin(jobs::requeue(tx, ctx, id))).await?;
        self.queued([class_of(&job.spec)]);
        Ok(job)
    }

    async fn register_node(&self, registration: NodeRegistration) -> std::result::Result<Node, StoreError> {
        self.tx(false, |tx, ctx| {
            Box::pin(nodes::register(tx, ctx, registration.clone()))
        })
        .await
    }

    async fn heartbeat(
        &self,
        node_id: NodeId,
        heartbeat: &Heartbeat,
    ) -> std::result::Result<HeartbeatReply, StoreError> {
        self.tx(false, |tx, ctx| {
            Box::pin(nodes::heartbeat(tx, ctx, node_id, heartbeat.clone()))
        })
        .await
    }

    async fn list_nodes(&self) -> std::result::Result<Vec<Node>, StoreError> {
        self.tx(true, |tx, _| Box::pin(nodes::list(tx))).await
    }

    async fn list_nodes_page(&self, query: &NodeQuery) -> std::result::Result<NodePage, StoreError> {
        self.tx(true, |tx, _| Box::pin(nodes::page(tx, query.clone()))).await
    }

    async fn claim(&self, request: &ClaimRequest) -> std::result::Result<Vec<Assignment>, StoreError> {
        let inner = self.inner.clone();
        let claimed = self
            .tx(false, |tx, ctx| {
                let (inner, request) = (inner.clone(), request.clone());
                Box::pin(async move {
                    let known = nodes::Known {
                        queued: &inner.queued,
                        claims: &inner.claims,
                    };
                    nodes::claim(tx, ctx, request, &known).await
                })
            })
            .await?;
        if let Ok(mut q) = self.inner.queued.lock() {
            claimed.emptied.iter().for_each(|seen| q.remove_if_unchanged(seen));
        }
        Ok(claimed.assignments)
    }

    async fn report(&self, report: &JobReport) -> std::result::Result<Job, StoreError> {
        report.validate()?;
        self.tx(false, |tx, ctx| Box::pin(jobs::report(tx, ctx, report.clone())))
            .await
    }

    async fn sweep(&self) -> std::result::Result<SweepSummary, StoreError> {
        if !self.sweep_due().await {
            return Ok(SweepSummary::default());
        }
        let (summary, released) = self.tx(false, |tx, ctx| Box::pin(nodes::sweep(tx, ctx))).await?;
        self.queued(released);
        Ok(summary)
    }
}
