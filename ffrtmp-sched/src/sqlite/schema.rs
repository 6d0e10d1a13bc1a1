//! Schema migrations, applied in order and recorded in `schema_version`.

use rusqlite::{Connection, OptionalExtension};

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, history, nodes, claims.
    r#"
    CREATE TABLE jobs (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT    NOT NULL UNIQUE,
        spec          TEXT    NOT NULL,
        state         TEXT    NOT NULL,
        rank          INTEGER NOT NULL,
        queue         TEXT    NOT NULL,
        attempt       INTEGER NOT NULL DEFAULT 0,
        attempt_base  INTEGER NOT NULL DEFAULT 0,
        max_retries   INTEGER NOT NULL,
        node_id       TEXT,
        progress      TEXT,
        result        TEXT,
        error         TEXT,
        retry_at_ms   INTEGER,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    -- Matches the claim query's ORDER BY exactly (both ascending), so SQLite walks the
    -- index instead of sorting on every claim.
    CREATE INDEX jobs_claim ON jobs (state, rank, seq);
    CREATE INDEX jobs_node ON jobs (node_id, state);
    CREATE INDEX jobs_state_seq ON jobs (state, seq);
    CREATE TABLE job_history (
        job_id     TEXT    NOT NULL,
        at_ms      INTEGER NOT NULL,
        from_state TEXT,
        to_state   TEXT    NOT NULL,
        attempt    INTEGER NOT NULL,
        node_id    TEXT,
        reason     TEXT    NOT NULL
    );
    CREATE INDEX job_history_job ON job_history (job_id);
    CREATE TABLE nodes (
        id               TEXT    PRIMARY KEY,
        registration     TEXT    NOT NULL,
        max_concurrent   INTEGER NOT NULL,
        status           TEXT    NOT NULL,
        registered_at_ms INTEGER NOT NULL,
        last_seen_ms     INTEGER NOT NULL
    );
    CREATE TABLE claims (
        claim_id TEXT    NOT NULL,
        node_id  TEXT    NOT NULL,
        job_id   TEXT    NOT NULL,
        attempt  INTEGER NOT NULL,
        at_ms    INTEGER NOT NULL,
        PRIMARY KEY (claim_id, job_id)
    );
    CREATE INDEX claims_at ON claims (at_ms);
    "#,
    // 2: aging (base rank, time queued), capability matching (codec, encoder), retention.
    r#"
    ALTER TABLE jobs ADD COLUMN base_rank INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN queued_at_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN codec TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN encoder TEXT;
    UPDATE jobs SET base_rank = rank, queued_at_ms = updated_at_ms;
    CREATE INDEX jobs_state_updated ON jobs (state, updated_at_ms);
    "#,
    // 3: the claim id moves onto the job row (found through the node index), so a claim
    // writes no extra table and no index keyed by a random id.
    r#"
    ALTER TABLE jobs ADD COLUMN claim_id TEXT;
    ALTER TABLE jobs ADD COLUMN claim_pos INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN claimed_at_ms INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET claim_id = (SELECT c.claim_id FROM claims c WHERE c.job_id = jobs.id AND c.attempt = jobs.attempt),
                    claimed_at_ms = COALESCE((SELECT c.at_ms FROM claims c WHERE c.job_id = jobs.id AND c.attempt = jobs.attempt), 0);
    DROP TABLE claims;
    "#,
    // 4: retention walks completed jobs by (state, seq); one index fewer to maintain on every
    // state change.
    r#"
    DROP INDEX jobs_state_updated;
    "#,
];

/// The version this build of the store writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`CURRENT_VERSION`]; refuses a database from a newer build.
pub fn migrate(conn: &mut Connection) -> Result<i64, String> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(|e| e.to_string())?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let version: i64 = tx
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    if version > CURRENT_VERSION {
        return Err(format!(
            "database schema version {version} is newer than this build supports ({CURRENT_VERSION})"
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql).map_err(|e| format!("migration {}: {e}", i + 1))?;
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(|e| e.to_string())?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [CURRENT_VERSION])
        .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok(CURRENT_VERSION)
}
