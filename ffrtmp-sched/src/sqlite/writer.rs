//! The single writer: one thread owns the write connection and commits groups of
//! concurrent requests in one transaction (group commit).
//!
//! Each request runs inside its own SAVEPOINT, so a request that fails rolls back alone
//! while the others in the group commit. Replies are sent only after COMMIT returns, so a
//! caller never sees a write that is not durable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use ffrtmp_core::StoreError;
use rusqlite::Connection;

/// Called after the group's COMMIT with the commit's result.
pub type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write request: runs on the writer's connection, says whether it succeeded.
/// `None` means the request cannot run (no transaction could be opened): reply only.
pub type WriteOp = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

/// Handle for submitting write requests.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<WriteOp>,
    stats: Arc<WriterStats>,
}

/// Counters of the writer: how well group commit is grouping.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Write requests executed.
    pub ops: AtomicU64,
    /// Transactions committed (or attempted).
    pub groups: AtomicU64,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub fn spawn(conn: Connection, max_batch: usize) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<WriteOp>();
        let stats = Arc::new(WriterStats::default());
        let s = stats.clone();
        std::thread::Builder::new()
            .name("ffrtmp-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1), &s))?;
        Ok(Writer { tx, stats })
    }

    /// Counters since start.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `f` in the next group and returns its result once the group is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
        let op: WriteOp = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Backend("no write transaction could be opened".into())),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let out = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Backend(format!("commit failed: {e}"))),
                };
                let _ = reply_tx.send(out);
            });
            (ok, finish)
        });
        self.tx
            .send(op)
            .map_err(|_| StoreError::Backend("the SQLite writer thread has stopped".into()))?;
        reply_rx
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer dropped the request".into()))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<WriteOp>, max_batch: usize, stats: &WriterStats) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        stats.ops.fetch_add(batch.len() as u64, Ordering::Relaxed);
        stats.groups.fetch_add(1, Ordering::Relaxed);
        commit_group(&conn, &mut batch);
    }
}

/// Runs a statement without parameters through the statement cache (no re-parsing per use).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit_group(conn: &Connection, batch: &mut Vec<WriteOp>) {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        let msg = e.to_string();
        tracing::error!(error = %msg, "could not begin a write transaction");
        for op in batch.drain(..) {
            let (_, finish) = op(None);
            finish(Err(msg.clone()));
        }
        return;
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        if let Err(e) = exec(conn, "SAVEPOINT op") {
            let (_, finish) = op(None);
            finishes.push(Box::new(move |_| finish(Err(format!("savepoint failed: {e}")))));
            continue;
        }
        let (ok, finish) = op(Some(conn));
        let end = if ok {
            exec(conn, "RELEASE op")
        } else {
            exec(conn, "ROLLBACK TO op").and_then(|_| exec(conn, "RELEASE op"))
        };
        if let Err(e) = end {
            tracing::error!(error = %e, "savepoint release failed");
        }
        finishes.push(finish);
    }
    match exec(conn, "COMMIT") {
        Ok(()) => finishes.into_iter().for_each(|f| f(Ok(()))),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = e.to_string();
            tracing::error!(error = %msg, "group commit failed; every write in the group was rolled back");
            finishes.into_iter().for_each(|f| f(Err(msg.clone())));
        }
    }
}
