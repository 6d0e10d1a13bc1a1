//! The single writer: one thread owns the write connection and commits groups of
//! concurrent requests in one transaction (group commit).
//!
//! A group first runs optimistically: every request straight on the transaction, with no
//! per-request savepoint. A request that fails without having changed a row (the common
//! case: refused before writing, e.g. a fenced report) leaves nothing to undo, so the group
//! goes on. Only a request that fails after changing rows sends the group down the careful
//! path: the transaction is rolled back and every request of the group runs again, each in
//! its own SAVEPOINT, so the failed one rolls back alone while the others commit. Requests
//! are therefore re-runnable closures. (`total_changes` counts rows changed by INSERT, UPDATE
//! and DELETE, triggers included, and adds nothing for a statement rolled back on its own;
//! requests change no schema.) Some errors (disk full, I/O error, out of memory) make SQLite
//! roll back the whole transaction itself; the writer notices (the connection is back in
//! autocommit), runs nothing more and fails the whole group, since none of it was kept.
//!
//! Durability is pipelined: the connection commits with `synchronous=NORMAL` (WAL frames
//! written, not yet flushed) and hands the group's replies to a second thread, which
//! flushes the WAL file (`fdatasync`) and only then replies. While one group's flush is in
//! flight the writer already runs the next, and one flush covers every group committed
//! before it. A writer never acknowledges a write before the flush that covers it, so
//! whatever a caller was told is durable; a reader on another connection may see a commit
//! during the flush window, as with any write-ahead log before its flush returns. A failed
//! flush leaves the outcome of the groups it covered unknown, so the store then refuses
//! every further write (fail-stop) until it is reopened, which recovers from the WAL.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use ffrtmp_core::StoreError;
use rusqlite::Connection;

/// A queued write request.
trait WriteOp: Send {
    /// Runs the request on the open transaction; says whether it succeeded. A later run
    /// replaces the result of an earlier one.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the result, or `commit`'s error when the group did not commit.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

/// Runs once a request's result is known to be committed (and durable, when the store is),
/// before the caller hears of it and whether or not the caller still waits.
type AfterCommit<T> = Box<dyn FnOnce(&T) + Send>;

struct Request<T, F> {
    f: F,
    result: Option<Result<T, StoreError>>,
    reply: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
    after: Option<AfterCommit<T>>,
}

impl<T, F> WriteOp for Request<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.f)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let out = match (commit, self.result) {
            (Ok(()), Some(Ok(v))) => {
                if let Some(after) = self.after {
                    after(&v);
                }
                Ok(v)
            }
            (Ok(()), Some(Err(e))) => Err(e),
            (Ok(()), None) => Err(StoreError::Backend("the write request did not run".into())),
            (Err(e), _) => Err(StoreError::Backend(e)),
        };
        let _ = self.reply.send(out);
    }
}

/// Handle for submitting write requests.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Box<dyn WriteOp>>,
    stats: Arc<WriterStats>,
    broken: Arc<AtomicBool>,
}

/// Counters of the writer: how well group commit is grouping.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Write requests executed.
    pub ops: AtomicU64,
    /// Transactions committed (or attempted).
    pub groups: AtomicU64,
    /// Groups that had to run again request by request because one failed after writing.
    pub replays: AtomicU64,
    /// WAL flushes that made committed groups durable.
    pub flushes: AtomicU64,
}

/// Makes everything committed so far durable: `fdatasync` of the WAL file.
pub type WalFlush = Box<dyn FnMut() -> std::io::Result<()> + Send>;

type Group = Vec<Box<dyn WriteOp>>;

impl Writer {
    /// Starts the writer thread on `conn`. With `flush`, replies wait for a WAL flush on a
    /// second thread (the connection should then commit with `synchronous=NORMAL`); without
    /// it, replies follow COMMIT directly.
    pub fn spawn(conn: Connection, max_batch: usize, flush: Option<WalFlush>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn WriteOp>>();
        let stats = Arc::new(WriterStats::default());
        let broken = Arc::new(AtomicBool::new(false));
        let flusher = match flush {
            Some(flush) => {
                let (ftx, frx) = mpsc::channel::<Committed>();
                let (s, b) = (stats.clone(), broken.clone());
                std::thread::Builder::new()
                    .name("ffrtmp-sqlite-flush".into())
                    .spawn(move || flush_loop(frx, flush, &b, &s))?;
                Some(ftx)
            }
            None => None,
        };
        let (s, b) = (stats.clone(), broken.clone());
        std::thread::Builder::new()
            .name("ffrtmp-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1), flusher, &b, &s))?;
        Ok(Writer { tx, stats, broken })
    }

    /// Set once a WAL flush failed: from then on the store writes nothing, and nothing else
    /// (the checkpointer) may copy the WAL into the database either.
    pub fn broken(&self) -> Arc<AtomicBool> {
        self.broken.clone()
    }

    /// Counters since start.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `f` in the next group and returns its result once the group is durable. `f` may
    /// run more than once (see the module docs); only the last run's effects are committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(f, None)?
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer dropped the request".into()))?
    }

    /// [`write`](Self::write), and `after` with the result once it is committed: it runs
    /// even when the caller stopped waiting, so in-memory state that follows the database
    /// (the queued classes) never misses a committed change.
    pub async fn write_then<T, F, A>(&self, f: F, after: A) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        A: FnOnce(&T) + Send + 'static,
    {
        self.enqueue(f, Some(Box::new(after)))?
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer dropped the request".into()))?
    }

    /// Queues `f` now; the receiver gets its result once the group is durable.
    fn enqueue<T, F>(&self, f: F, after: Option<AfterCommit<T>>) -> Result<Reply<T>, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, reply_rx) = tokio::sync::oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(Request {
            f,
            result: None,
            reply,
            after,
        });
        self.tx
            .send(op)
            .map_err(|_| StoreError::Backend("the SQLite writer thread has stopped".into()))?;
        Ok(reply_rx)
    }
}

type Reply<T> = tokio::sync::oneshot::Receiver<Result<T, StoreError>>;

const BROKEN: &str = "the store refuses writes after a failed WAL flush (the outcome of the writes it \
     covered is unknown); restart the master to recover from the write-ahead log";
/// For a group that committed but cannot be confirmed durable: it may or may not survive.
const UNCONFIRMED: &str = "the outcome of this write is unknown: it committed, but an earlier WAL flush \
     failed, so it may not be durable; the store refuses further writes until the master restarts";

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn WriteOp>>,
    max_batch: usize,
    flusher: Option<mpsc::Sender<Committed>>,
    broken: &AtomicBool,
    stats: &WriterStats,
) {
    let mut batch: Group = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if broken.load(Ordering::Acquire) {
            fail_all(&mut batch, BROKEN);
            continue;
        }
        stats.ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.groups.fetch_add(1, Ordering::Relaxed);
        let before = conn.total_changes();
        if commit_group(&conn, &mut batch, stats) {
            match &flusher {
                Some(f) => {
                    let group = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
                    let changed = conn.total_changes() != before;
                    if let Err(mpsc::SendError((mut group, _))) = f.send((group, changed)) {
                        broken.store(true, Ordering::Release);
                        fail_all(
                            &mut group,
                            "the outcome of this write is unknown: it committed, but the WAL flush thread has stopped",
                        );
                    }
                }
                None => batch.drain(..).for_each(|op| op.finish(Ok(()))),
            }
        }
    }
}

/// A committed group, and whether it changed any row.
type Committed = (Group, bool);

/// Flushes the WAL for every group committed since the last flush, then replies to them.
/// Groups that changed no row (a claim by a node with nothing to run) wrote nothing to
/// flush: when no group of the batch changed anything, they are answered without a flush,
/// every earlier group's flush having already returned.
fn flush_loop(rx: mpsc::Receiver<Committed>, mut flush: WalFlush, broken: &AtomicBool, stats: &WriterStats) {
    let mut groups: Vec<Group> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut changed = first.1;
        groups.push(first.0);
        while let Ok((g, c)) = rx.try_recv() {
            changed |= c;
            groups.push(g);
        }
        let result = if broken.load(Ordering::Acquire) {
            Err(UNCONFIRMED.to_string())
        } else if !changed {
            Ok(())
        } else {
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            flush().map_err(|e| {
                broken.store(true, Ordering::Release);
                tracing::error!(error = %e, "WAL flush failed; the store now refuses writes");
                format!("the commit may not be durable: flushing the WAL failed: {e}")
            })
        };
        for op in groups.drain(..).flatten() {
            op.finish(result.clone());
        }
    }
}

/// Runs a statement without parameters through the statement cache (no re-parsing per use).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn fail_all(batch: &mut Group, msg: &str) {
    for op in batch.drain(..) {
        op.finish(Err(msg.to_string()));
    }
}

/// Runs and commits a group. True when it committed, with the group still in `batch`
/// awaiting its replies; false when every request has already been told it failed.
fn commit_group(conn: &Connection, batch: &mut Group, stats: &WriterStats) -> bool {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = format!("could not begin a write transaction: {e}");
        tracing::error!(error = %msg, "write group refused");
        fail_all(batch, &msg);
        return false;
    }
    let optimistic = run_optimistic(conn, batch);
    if let Err(msg) = still_in_transaction(conn) {
        fail_all(batch, &msg);
        return false;
    }
    if !optimistic {
        stats.replays.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = exec(conn, "ROLLBACK").and_then(|_| exec(conn, "BEGIN IMMEDIATE")) {
            let msg = format!("could not restart the write transaction: {e}");
            tracing::error!(error = %msg, "write group refused");
            let _ = conn.execute_batch("ROLLBACK");
            fail_all(batch, &msg);
            return false;
        }
        if let Err(msg) = run_isolated(conn, batch).and_then(|()| still_in_transaction(conn)) {
            tracing::error!(error = %msg, "write group rolled back");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            fail_all(batch, &msg);
            return false;
        }
    }
    match exec(conn, "COMMIT") {
        Ok(()) => true,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = format!("commit failed: {e}");
            tracing::error!(error = %msg, "group commit failed; every write in the group was rolled back");
            fail_all(batch, &msg);
            false
        }
    }
}

/// Runs every request straight on the transaction. False when one failed after changing
/// rows: the transaction then holds a partial write and must be rolled back. Stops as soon
/// as SQLite has rolled the transaction back itself, so that no later request runs (and
/// commits) outside it.
fn run_optimistic(conn: &Connection, batch: &mut [Box<dyn WriteOp>]) -> bool {
    for op in batch.iter_mut() {
        let before = conn.total_changes();
        let ok = op.run(conn);
        if conn.is_autocommit() {
            return false;
        }
        if !ok && conn.total_changes() != before {
            return false;
        }
    }
    true
}

/// Err when SQLite ended the group's transaction on its own (disk full, I/O error, out of
/// memory): everything the group wrote is gone.
fn still_in_transaction(conn: &Connection) -> Result<(), String> {
    if conn.is_autocommit() {
        tracing::error!("SQLite rolled the write transaction back (disk full or I/O error?)");
        Err(
            "the write transaction was rolled back by SQLite (disk full or I/O error); nothing in it was kept"
                .to_string(),
        )
    } else {
        Ok(())
    }
}

/// Runs every request in its own savepoint, rolling a failed one back alone.
fn run_isolated(conn: &Connection, batch: &mut [Box<dyn WriteOp>]) -> Result<(), String> {
    for op in batch.iter_mut() {
        still_in_transaction(conn)?;
        exec(conn, "SAVEPOINT op").map_err(|e| format!("savepoint failed: {e}"))?;
        let end = if op.run(conn) {
            exec(conn, "RELEASE op")
        } else {
            exec(conn, "ROLLBACK TO op").and_then(|_| exec(conn, "RELEASE op"))
        };
        end.map_err(|e| format!("savepoint release failed: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    fn writer() -> (Writer, tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT NOT NULL UNIQUE)")
            .unwrap();
        (Writer::spawn(conn, 64, None).unwrap(), dir, path)
    }

    fn rows(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn insert(conn: &Connection, v: &str) -> Result<(), StoreError> {
        conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
            .map(|_| ())
            .map_err(|e| StoreError::Backend(e.to_string()))
    }

    /// Holds the writer inside a first group until `release` is sent, so that the requests
    /// queued meanwhile all land in the next group together.
    fn hold(w: &Writer) -> (std::sync::mpsc::SyncSender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = sync_channel::<()>(1);
        let held = std::sync::Mutex::new(held);
        let w = w.clone();
        let task = tokio::spawn(async move {
            w.write(move |_| {
                let _ = held.lock().unwrap().recv();
                Ok(())
            })
            .await
            .unwrap()
        });
        (release, task)
    }

    async fn wait_queued(w: &Writer, n: u64) {
        // The held request is counted when its group starts; the others wait in the channel.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while w.stats().ops.load(Ordering::Relaxed) < n {
            assert!(std::time::Instant::now() < deadline, "the writer never started");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_fails_after_writing_rolls_back_alone() {
        let (w, _dir, path) = writer();
        let (release, held) = hold(&w);
        wait_queued(&w, 1).await;
        // Queued while the writer is held, so all three run in the next group together.
        let a = w.enqueue(|c| insert(c, "a"), None).unwrap();
        let bad = w
            .enqueue(
                |c| {
                    insert(c, "half-written")?;
                    insert(c, "a") // duplicate of the first request's row: fails after a write
                },
                None,
            )
            .unwrap();
        let c = w.enqueue(|c| insert(c, "c"), None).unwrap();
        release.send(()).unwrap();
        held.await.unwrap();
        assert!(a.await.unwrap().is_ok());
        assert!(bad.await.unwrap().is_err());
        assert!(c.await.unwrap().is_ok());
        assert_eq!(rows(&path), ["a", "c"], "the failed request's first insert was undone");
        assert_eq!(
            w.stats().groups.load(Ordering::Relaxed),
            2,
            "one held group, then one group of three"
        );
        assert_eq!(w.stats().replays.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_refused_before_writing_does_not_replay_its_group() {
        let (w, _dir, path) = writer();
        let refused = w
            .write(|_| -> Result<(), StoreError> { Err(StoreError::InvalidRequest("no".into())) })
            .await;
        assert!(matches!(refused, Err(StoreError::InvalidRequest(_))));
        w.write(|c| insert(c, "x")).await.unwrap();
        assert_eq!(rows(&path), ["x"]);
        assert_eq!(w.stats().replays.load(Ordering::Relaxed), 0);
        let failed = w
            .write(|c| {
                insert(c, "y")?;
                insert(c, "x")
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(rows(&path), ["x"]);
        assert_eq!(
            w.stats().replays.load(Ordering::Relaxed),
            1,
            "a partial write is replayed"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_waits_for_the_flush_that_covers_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("f.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT NOT NULL)").unwrap();
        let (started_tx, started) = sync_channel::<()>(4);
        let (release, released) = sync_channel::<()>(4);
        let flush: WalFlush = Box::new(move || {
            started_tx.send(()).unwrap();
            released.recv().unwrap();
            Ok(())
        });
        let w = Writer::spawn(conn, 64, Some(flush)).unwrap();
        let mut reply = w.enqueue(|c| insert(c, "a"), None).unwrap();
        tokio::task::spawn_blocking(move || started.recv_timeout(std::time::Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the committed group was handed to the flush");
        assert!(
            matches!(reply.try_recv(), Err(tokio::sync::oneshot::error::TryRecvError::Empty)),
            "no reply before the flush returns"
        );
        release.send(()).unwrap();
        assert!(reply.await.unwrap().is_ok());
        assert_eq!(w.stats().flushes.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_that_changed_nothing_is_answered_without_a_flush_and_after_runs_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("f.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT NOT NULL)")
            .unwrap();
        let flushes = Arc::new(AtomicU64::new(0));
        let counted = flushes.clone();
        let flush: WalFlush = Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        let w = Writer::spawn(conn, 64, Some(flush)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let after = tx.clone();
        w.write_then(|c| insert(c, "a").map(|()| 7u8), move |v: &u8| after.send(*v).unwrap())
            .await
            .unwrap();
        assert_eq!(flushes.load(Ordering::Relaxed), 1);
        assert_eq!(rx.try_recv(), Ok(7), "after ran once the write was durable");
        let n: i64 = w
            .write(|c| {
                c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(flushes.load(Ordering::Relaxed), 1, "nothing changed, nothing flushed");
        let refused = w
            .write_then(
                |_| -> Result<(), StoreError> { Err(StoreError::InvalidRequest("no".into())) },
                move |_: &()| tx.send(0).unwrap(),
            )
            .await;
        assert!(refused.is_err());
        assert!(rx.try_recv().is_err(), "after runs only for a committed success");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_flush_fails_its_writes_and_stops_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT NOT NULL)")
            .unwrap();
        let flush: WalFlush = Box::new(|| Err(std::io::Error::other("disk gone")));
        let w = Writer::spawn(conn, 64, Some(flush)).unwrap();
        let first = w.write(|c| insert(c, "a")).await.unwrap_err().to_string();
        assert!(
            first.contains("may not be durable") && first.contains("disk gone"),
            "{first}"
        );
        let later = w.write(|c| insert(c, "b")).await.unwrap_err().to_string();
        assert!(later.contains("refuses writes"), "{later}");
        assert_eq!(rows(&path), ["a"], "the refused write never ran");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_sqlite_rolls_back_itself_fails_the_whole_group_and_runs_nothing_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("full.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT NOT NULL)")
            .unwrap();
        // A database that cannot grow: a big insert fails with "database or disk is full",
        // which makes SQLite roll the whole transaction back.
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        conn.execute_batch(&format!("PRAGMA max_page_count = {}", pages + 2))
            .unwrap();
        let w = Writer::spawn(conn, 64, None).unwrap();
        let (release, held) = hold(&w);
        wait_queued(&w, 1).await;
        let a = w.enqueue(|c| insert(c, "a"), None).unwrap();
        let full = w.enqueue(|c| insert(c, &"x".repeat(200_000)), None).unwrap();
        let c = w.enqueue(|c| insert(c, "c"), None).unwrap();
        release.send(()).unwrap();
        held.await.unwrap();
        let a = a.await.unwrap();
        assert!(full.await.unwrap().is_err());
        let c = c.await.unwrap();
        assert!(
            a.is_err(),
            "the first write was rolled back with the group, so it failed: {a:?}"
        );
        assert!(c.is_err(), "no write runs outside the rolled-back transaction: {c:?}");
        assert!(rows(&path).is_empty(), "nothing was committed behind the failures");
    }
}
