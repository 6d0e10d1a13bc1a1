//! WAL checkpoints on their own thread and connection, so the writer never stops to copy
//! pages into the database file (SQLite's automatic checkpoint runs inside the committing
//! transaction, on the writer's critical path).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// Stops and joins its thread when dropped.
pub struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Runs `PRAGMA wal_checkpoint(PASSIVE)` on `conn` every `every`. Passive checkpoints
    /// never block the writer or readers; the WAL is reset once a checkpoint has caught up.
    /// Once `broken` is set (a WAL flush failed) it checkpoints no more: a later sync could
    /// report success for pages whose write-back failed, and copying them into the database
    /// would mix versions that recovery from the WAL cannot undo.
    pub fn spawn(conn: Connection, every: Duration, broken: Arc<AtomicBool>) -> std::io::Result<Checkpointer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ffrtmp-sqlite-checkpoint".into())
            .spawn(move || {
                let (lock, cvar) = &*s;
                let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    let (guard, _) = cvar
                        .wait_timeout(stopped, every)
                        .unwrap_or_else(PoisonError::into_inner);
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    if broken.load(Ordering::Acquire) {
                        continue;
                    }
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::debug!(error = %e, "passive WAL checkpoint did not run");
                    }
                }
            })?;
        Ok(Checkpointer {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cvar.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
