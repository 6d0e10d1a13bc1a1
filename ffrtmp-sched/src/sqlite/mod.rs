//! The SQLite [`JobStore`].

mod checkpoint;
mod jobs;
mod nodes;
mod place;
mod rows;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ffrtmp_core::{
    Assignment, ClaimRequest, Heartbeat, HeartbeatReply, Job, JobId, JobPage, JobQuery, JobReport, JobSpec, JobStore,
    Node, NodeId, NodePage, NodeQuery, NodeRegistration, StoreError, SweepSummary, ValidSpec,
};
use rusqlite::{Connection, OpenFlags};

use self::checkpoint::Checkpointer;
use self::rows::{db, job_from_raw, load_history, load_job, queue_name, raw_job, JOB_COLUMNS};
use self::writer::Writer;
use crate::classes::{class_of, ClaimCounters, ClaimStats, ClassKey, QueuedClasses};
use crate::config::SchedConfig;

/// A [`JobStore`] in one SQLite file.
///
/// WAL journal, `BEGIN IMMEDIATE` write transactions from one writer thread that groups
/// concurrent requests (group commit) and acknowledges a write only once the WAL holding
/// it is flushed to disk, unless [`SchedConfig::durable`] is false. Reads use their own
/// connections and never block the writer.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    config: SchedConfig,
    opened_at_ms: u64,
    /// The requirement classes that may hold queued jobs.
    queued: Arc<Mutex<QueuedClasses>>,
    /// `PRAGMA data_version` of the write connection when `queued` last read the
    /// database: it changes when another connection (another master) commits.
    data_version: Arc<std::sync::atomic::AtomicI64>,
    claims: Arc<ClaimCounters>,
    _checkpointer: Checkpointer,
}

const READERS: usize = 2;
/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

fn open_connection(path: &Path, config: &SchedConfig, write: bool) -> Result<Connection, StoreError> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Backend(format!("cannot open SQLite database {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    if write {
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "could not enable WAL (journal_mode is {mode})"
            )));
        }
        let sync = if config.durable { "FULL" } else { "NORMAL" };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;"
        ))
        .map_err(db)?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Opens the write-ahead log the connection writes, for flushing. Its name comes from the
/// file SQLite actually opened (symlinks resolved), and its header must be a WAL's: flushing
/// any other file would make every durable reply a lie. It exists once a write transaction
/// has run (the migration always runs one) and stays while any connection is open.
fn open_wal(conn: &Connection) -> Result<std::fs::File, StoreError> {
    use std::io::Read;
    let db_file = conn
        .path()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| StoreError::Backend("durable commits need a database file, not an in-memory one".into()))?;
    let wal_path = PathBuf::from(format!("{db_file}-wal"));
    let mut wal = std::fs::File::open(&wal_path)
        .map_err(|e| StoreError::Backend(format!("cannot open the WAL {}: {e}", wal_path.display())))?;
    let mut magic = [0u8; 4];
    wal.read_exact(&mut magic)
        .map_err(|e| StoreError::Backend(format!("cannot read the WAL header of {}: {e}", wal_path.display())))?;
    // The two magic numbers of a WAL header (big-endian), one per checksum byte order.
    if !matches!(u32::from_be_bytes(magic), 0x377f_0682 | 0x377f_0683) {
        return Err(StoreError::Backend(format!(
            "{} is not the write-ahead log of this database",
            wal_path.display()
        )));
    }
    Ok(wal)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default settings.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, SchedConfig::default())
    }

    /// Opens the database at `path` with the given settings and migrates its schema.
    pub fn open_with(path: &Path, config: SchedConfig) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", parent.display())))?;
        }
        let mut conn = open_connection(path, &config, true)?;
        schema::migrate(&mut conn).map_err(StoreError::Backend)?;
        let mut queued = QueuedClasses::default();
        queued.merge(nodes::queued_classes(&conn)?, std::time::Instant::now());
        let data_version = nodes::data_version(&conn)?;
        let readers = (0..READERS)
            .map(|_| open_connection(path, &config, false).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        // Checkpoints run beside the writer; the automatic one stays as a safety net with a
        // high threshold in case the checkpoint thread ever falls behind.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 16000").map_err(db)?;
        // Durable commits flush the WAL on the writer's second thread (see `writer`); the
        // connection itself then only writes the frames.
        let flush = if config.durable {
            conn.execute_batch("PRAGMA synchronous = NORMAL").map_err(db)?;
            let wal = open_wal(&conn)?;
            Some(Box::new(move || wal.sync_data()) as writer::WalFlush)
        } else {
            None
        };
        let writer = Writer::spawn(conn, config.max_batch, flush)
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite writer thread: {e}")))?;
        let checkpointer =
            Checkpointer::spawn(open_connection(path, &config, true)?, CHECKPOINT_EVERY, writer.broken())
                .map_err(|e| StoreError::Backend(format!("cannot start the SQLite checkpoint thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                readers,
                next_reader: AtomicUsize::new(0),
                opened_at_ms: config.now(),
                config,
                queued: Arc::new(Mutex::new(queued)),
                data_version: Arc::new(data_version.into()),
                claims: Arc::default(),
                _checkpointer: checkpointer,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Write requests executed and transactions committed since the store was opened; their
    /// ratio is the mean group-commit size.
    pub fn write_counts(&self) -> (u64, u64) {
        let s = self.inner.writer.stats();
        (s.ops.load(Ordering::Relaxed), s.groups.load(Ordering::Relaxed))
    }

    /// WAL flushes (`fdatasync`) since the store was opened: with durable commits, one
    /// flush makes every group committed before it durable, so ops per flush says how
    /// many writes share one disk wait.
    pub fn flush_count(&self) -> u64 {
        self.inner.writer.stats().flushes.load(Ordering::Relaxed)
    }

    /// The settings in force.
    pub fn config(&self) -> &SchedConfig {
        &self.inner.config
    }

    /// How claims were answered since the store was opened.
    pub fn claim_stats(&self) -> ClaimStats {
        self.inner.claims.get()
    }

    /// Records, once a write is committed, that it queued jobs of these classes.
    fn queued(&self, classes: impl IntoIterator<Item = ClassKey>) {
        if let Ok(mut q) = self.inner.queued.lock() {
            for key in classes {
                q.add(&key);
            }
        }
    }

    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &SchedConfig, u64) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let mut f = f;
        self.inner
            .writer
            .write(move |conn| {
                let now = inner.config.now();
                f(conn, &inner.config, now)
            })
            .await
    }

    /// [`write`](Self::write), then `after` with the committed result (see
    /// [`Writer::write_then`]).
    async fn write_then<T, F, A>(&self, f: F, after: A) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &SchedConfig, u64) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&SqliteStore, &T) + Send + 'static,
    {
        let inner = self.inner.clone();
        let store = self.clone();
        let mut f = f;
        self.inner
            .writer
            .write_then(
                move |conn| {
                    let now = inner.config.now();
                    f(conn, &inner.config, now)
                },
                move |v| after(&store, v),
            )
            .await
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            let conn = inner.readers[i]
                .lock()
                .map_err(|_| StoreError::Backend("reader connection poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

/// A listing's statement and arguments.
fn list_sql(q: &JobQuery) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
    // Each filter walks the index that holds its rows (see schema migrations 6 and 9); a
    // listing without a filter walks the table by seq.
    let mut sql = match (q.node_id, q.state) {
        (None, None) if q.queue.is_some() => {
            format!("SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_queue_seq WHERE 1 = 1")
        }
        (Some(_), _) => format!("SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_node_seq WHERE 1 = 1"),
        (None, Some(s)) if s.is_active() => {
            format!("SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_active WHERE state IN ('assigned', 'running')")
        }
        (None, Some(_)) => {
            format!("SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_settled WHERE state NOT IN ('assigned', 'running')")
        }
        (None, None) => format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"),
    };
    let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
    if let Some(state) = q.state {
        args.push(Box::new(state.as_str()));
        sql.push_str(&format!(" AND state = ?{}", args.len()));
    }
    if let Some(queue) = q.queue {
        args.push(Box::new(queue_name(queue)));
        sql.push_str(&format!(" AND queue = ?{}", args.len()));
    }
    if let Some(node) = q.node_id {
        args.push(Box::new(node.to_string()));
        sql.push_str(&format!(" AND node_id = ?{}", args.len()));
    }
    if let Some(before) = q.before_seq {
        args.push(Box::new(before as i64));
        sql.push_str(&format!(" AND seq < ?{}", args.len()));
    }
    let limit = q.effective_limit();
    args.push(Box::new(i64::from(limit) + 1));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", args.len()));
    (sql, args)
}

fn list_jobs(conn: &Connection, q: &JobQuery) -> Result<JobPage, StoreError> {
    let limit = q.effective_limit();
    let (sql, args) = list_sql(q);
    let mut stmt = conn.prepare_cached(&sql).map_err(db)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), raw_job)
        .map_err(db)?;
    let mut jobs = Vec::new();
    for raw in rows {
        jobs.push(job_from_raw(raw.map_err(db)?)?.job);
    }
    let next_cursor = if jobs.len() > limit as usize {
        jobs.truncate(limit as usize);
        jobs.last().map(|j| j.seq)
    } else {
        None
    };
    Ok(JobPage { jobs, next_cursor })
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn submit(&self, spec: JobSpec) -> Result<Job, StoreError> {
        let new = jobs::NewJob::new(ValidSpec::try_from(spec)?);
        let class = class_of(&new.spec);
        self.write_then(
            move |c, _, now| jobs::submit(c, &new, now),
            move |s, _| s.queued([class]),
        )
        .await
    }

    async fn get(&self, id: JobId) -> Result<Job, StoreError> {
        self.read(move |c| {
            // One read transaction: the job and its history from the same snapshot.
            let tx = c.unchecked_transaction().map_err(db)?;
            let mut job = load_job(&tx, id)?.job;
            job.history = load_history(&tx, job.seq)?;
            Ok(job)
        })
        .await
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let q = query.clone();
        self.read(move |c| list_jobs(c, &q)).await
    }

    async fn cancel(&self, id: JobId, reason: &str) -> Result<Job, StoreError> {
        let reason = reason.to_string();
        self.write(move |c, _, now| jobs::cancel(c, id, &reason, now)).await
    }

    async fn retry(&self, id: JobId) -> Result<Job, StoreError> {
        self.write_then(
            move |c, _, now| jobs::requeue(c, id, now),
            |s, job| s.queued([class_of(&job.spec)]),
        )
        .await
    }

    async fn register_node(&self, registration: NodeRegistration) -> Result<Node, StoreError> {
        self.write(move |c, _, now| nodes::register(c, registration.clone(), now))
            .await
    }

    async fn heartbeat(&self, node_id: NodeId, heartbeat: &Heartbeat) -> Result<HeartbeatReply, StoreError> {
        let hb = heartbeat.clone();
        self.write(move |c, cfg, now| nodes::heartbeat(c, cfg, node_id, &hb, now))
            .await
    }

    async fn list_nodes(&self) -> Result<Vec<Node>, StoreError> {
        self.read(nodes::list).await
    }

    async fn list_nodes_page(&self, query: &NodeQuery) -> Result<NodePage, StoreError> {
        let q = query.clone();
        self.read(move |c| nodes::page(c, &q)).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<Assignment>, StoreError> {
        let req = request.clone();
        let inner = self.inner.clone();
        let claimed = self
            .write_then(
                move |c, cfg, now| {
                    let known = nodes::Known {
                        queued: &inner.queued,
                        data_version: &inner.data_version,
                        claims: &inner.claims,
                    };
                    nodes::claim(c, cfg, &req, now, &known)
                },
                |s, claimed| {
                    if let Ok(mut q) = s.inner.queued.lock() {
                        claimed.emptied.iter().for_each(|seen| q.remove_if_unchanged(seen));
                    }
                },
            )
            .await?;
        Ok(claimed.assignments)
    }

    async fn report(&self, report: &JobReport) -> Result<Job, StoreError> {
        report.validate()?;
        let r = report.clone();
        self.write(move |c, cfg, now| jobs::report(c, cfg, &r, now)).await
    }

    async fn sweep(&self) -> Result<SweepSummary, StoreError> {
        let opened_at = self.inner.opened_at_ms;
        let (summary, _) = self
            .write_then(
                move |c, cfg, now| nodes::sweep(c, cfg, now, opened_at),
                |s, (_, released)| s.queued(released.iter().cloned()),
            )
            .await?;
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::{JobState, Queue};

    #[test]
    fn every_listing_filter_is_served_by_an_index_not_a_scan_of_the_jobs_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("plans.db")).unwrap();
        let conn = open_connection(store.path(), store.config(), false).unwrap();
        let node = Some(NodeId::new());
        let mut queries = Vec::new();
        for state in [
            None,
            Some(JobState::Queued),
            Some(JobState::Running),
            Some(JobState::Completed),
        ] {
            for queue in [None, Some(Queue::Batch)] {
                for node_id in [None, node] {
                    for before_seq in [None, Some(1000)] {
                        let q = JobQuery {
                            state,
                            queue,
                            node_id,
                            before_seq,
                            limit: Some(10),
                        };
                        if state.is_some() || queue.is_some() || node_id.is_some() {
                            queries.push(q);
                        }
                    }
                }
            }
        }
        for q in queries {
            let (sql, args) = list_sql(&q);
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), |r| {
                    r.get(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains("SEARCH jobs USING INDEX") && !plan.contains("SCAN jobs"),
                "{q:?}: {plan}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_opened_through_a_symlink_flushes_the_log_sqlite_writes() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.db");
        drop(SqliteStore::open(&real).unwrap());
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        // A stray file where a naive `<path>-wal` would look: never the one to flush.
        std::fs::write(dir.path().join("link.db-wal"), b"not a write-ahead log").unwrap();
        let store = SqliteStore::open(&link).unwrap();
        let job = store.submit(JobSpec::new("720p-h264")).await.unwrap();
        assert_eq!(store.get(job.id).await.unwrap().id, job.id);
        assert_eq!(store.inner.writer.stats().flushes.load(Ordering::Relaxed), 1);
    }
}
