//! The baseline that store benchmarks are compared against: raw SQLite single-row update
//! transactions on the same file system, with the same journal and durability settings.

use std::path::Path;
use std::time::Instant;

use ffrtmp_core::StoreError;

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Runs `n` transactions of `BEGIN IMMEDIATE; UPDATE one row; COMMIT` (WAL,
/// `synchronous=FULL` when `durable`) in `dir/baseline.db` and returns transactions per
/// second.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let rate = ffrtmp_sched::baseline::raw_update_tx_per_s(dir.path(), 50, false).unwrap();
/// assert!(rate > 0.0);
/// ```
pub fn raw_update_tx_per_s(dir: &Path, n: usize, durable: bool) -> Result<f64, StoreError> {
    let conn = rusqlite::Connection::open(dir.join("baseline.db")).map_err(db)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        .map_err(db)?;
    let sync = if durable { "FULL" } else { "NORMAL" };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; \
         CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, state TEXT NOT NULL, n INTEGER NOT NULL);"
    ))
    .map_err(db)?;
    for i in 0..1000 {
        conn.execute("INSERT OR REPLACE INTO t VALUES (?1, 'queued', 0)", [i])
            .map_err(db)?;
    }
    let start = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        conn.execute(
            "UPDATE t SET state = 'done', n = n + 1 WHERE id = ?1",
            [(i % 1000) as i64],
        )
        .map_err(db)?;
        conn.execute_batch("COMMIT").map_err(db)?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
