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
    // 5: the latest heartbeat's energy snapshot of each node (`NodePower` as JSON).
    r#"
    ALTER TABLE nodes ADD COLUMN power TEXT;
    "#,
    // 6: lighter writes on the hot path. Each index covers only the rows its queries read,
    // so most transitions leave most indexes alone: the claim walk reads queued jobs, the
    // holder checks read a node's active jobs, listings by state read settled states (active
    // jobs are few and found through `jobs_active`). History is found by the job's integer
    // seq rather than its 36-byte id. Queries name the partial index they rely on
    // (`INDEXED BY`), so a plan can never silently fall back to a scan.
    r#"
    DROP INDEX jobs_claim;
    CREATE INDEX jobs_queued ON jobs (state, rank, seq) WHERE state = 'queued';
    DROP INDEX jobs_node;
    CREATE INDEX jobs_active ON jobs (state, node_id) WHERE state IN ('assigned', 'running');
    CREATE INDEX jobs_node_seq ON jobs (node_id, seq) WHERE node_id IS NOT NULL;
    DROP INDEX jobs_state_seq;
    CREATE INDEX jobs_settled ON jobs (state, seq) WHERE state NOT IN ('assigned', 'running');
    ALTER TABLE job_history ADD COLUMN job_seq INTEGER NOT NULL DEFAULT 0;
    UPDATE job_history SET job_seq = COALESCE((SELECT seq FROM jobs WHERE jobs.id = job_history.job_id), 0);
    DROP INDEX job_history_job;
    ALTER TABLE job_history DROP COLUMN job_id;
    CREATE INDEX job_history_seq ON job_history (job_seq);
    "#,
    // 7: routing by engine and by enforcement of limits: the engine a job is pinned to
    // ('' for auto) and whether its limits must be enforced. Jobs stored before keep their
    // pinned engine; none of them required enforcement.
    r#"
    ALTER TABLE jobs ADD COLUMN engine TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN needs_enforcement INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET engine = json_extract(spec, '$.engine')
     WHERE json_extract(spec, '$.engine') IN ('ffmpeg', 'gstreamer');
    "#,
    // 8: the energy of every attempt of a job (`AttemptsEnergy` as JSON), kept whatever the
    // attempt's outcome; NULL for jobs stored before, which read as having none.
    r#"
    ALTER TABLE jobs ADD COLUMN attempts_energy TEXT;
    "#,
    // 9: costs that do not grow with the queue. A queued job's requirement class (what a
    // node needs to run it, `crate::classes`) is one column, and the claim probes the head
    // of each (base rank, class) range of `jobs_class` in queue-entry order, ageing ranks
    // as it compares them, so no sweep rewrites ranks and no claim walks jobs its node
    // cannot run. Listing by queue has its own index; the other filters already had one.
    // The sweep finds due retries and expired completed jobs through their own indexes.
    r#"
    ALTER TABLE jobs ADD COLUMN req_class TEXT NOT NULL DEFAULT '';
    UPDATE jobs SET req_class = engine || '|' || CAST(needs_enforcement AS TEXT) || '|' || codec || '|'
                                || COALESCE(encoder, '');
    DROP INDEX jobs_queued;
    CREATE INDEX jobs_class ON jobs (base_rank, req_class, queued_at_ms, seq) WHERE state = 'queued';
    CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
    CREATE INDEX jobs_retry ON jobs (retry_at_ms) WHERE state = 'retrying';
    CREATE INDEX jobs_completed ON jobs (updated_at_ms) WHERE state = 'completed';
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_4_database_gains_an_empty_power_column() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for sql in &MIGRATIONS[..4] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO schema_version (version) VALUES (4);
             INSERT INTO nodes (id, registration, max_concurrent, status, registered_at_ms, last_seen_ms)
             VALUES ('n1', '{}', 1, 'online', 1, 2);",
        )
        .unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), CURRENT_VERSION);
        let power: Option<String> = conn
            .query_row("SELECT power FROM nodes WHERE id = 'n1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(power, None);
        assert_eq!(
            migrate(&mut conn).unwrap(),
            CURRENT_VERSION,
            "migrating again changes nothing"
        );
    }

    fn at_version(v: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for sql in &MIGRATIONS[..v] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute("INSERT INTO schema_version (version) VALUES (?1)", [v as i64])
            .unwrap();
        conn
    }

    #[test]
    fn jobs_pinned_to_an_engine_before_version_7_keep_their_engine_after_it() {
        let mut conn = at_version(6);
        conn.execute_batch(
            r#"INSERT INTO jobs (seq, id, spec, state, rank, queue, max_retries, created_at_ms, updated_at_ms)
             VALUES (1, 'gst', '{"scenario":"720p-h264","engine":"gstreamer"}', 'queued', 0, 'default', 3, 1, 2),
                    (2, 'ff', '{"scenario":"720p-h264","engine":"ffmpeg"}', 'retrying', 0, 'default', 3, 1, 2),
                    (3, 'auto', '{"scenario":"720p-h264","engine":"auto"}', 'queued', 0, 'default', 3, 1, 2);"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT engine, needs_enforcement FROM jobs ORDER BY seq")
            .unwrap();
        let rows: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [("gstreamer", 0), ("ffmpeg", 0), ("", 0)].map(|(e, n)| (e.to_string(), n));
        assert_eq!(rows, expected);
    }

    #[test]
    fn history_written_before_version_6_is_found_by_job_seq_after_it() {
        let mut conn = at_version(5);
        conn.execute_batch(
            "INSERT INTO jobs (seq, id, spec, state, rank, queue, max_retries, created_at_ms, updated_at_ms)
             VALUES (7, 'job-a', '{}', 'completed', 0, 'default', 3, 1, 2),
                    (9, 'job-b', '{}', 'queued', 0, 'default', 3, 1, 2);
             INSERT INTO job_history (job_id, at_ms, from_state, to_state, attempt, reason)
             VALUES ('job-a', 1, NULL, 'queued', 0, 'submitted'),
                    ('job-b', 1, NULL, 'queued', 0, 'submitted'),
                    ('job-a', 2, 'queued', 'assigned', 1, 'claimed');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let reasons = |seq: i64| -> Vec<String> {
            let mut stmt = conn
                .prepare("SELECT reason FROM job_history WHERE job_seq = ?1 ORDER BY rowid")
                .unwrap();
            let rows = stmt.query_map([seq], |r| r.get(0)).unwrap();
            rows.collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(reasons(7), ["submitted", "claimed"]);
        assert_eq!(reasons(9), ["submitted"]);
    }

    #[test]
    fn jobs_queued_before_version_9_are_found_by_their_requirement_class() {
        let mut conn = at_version(8);
        conn.execute_batch(
            r#"INSERT INTO jobs (seq, id, spec, state, rank, base_rank, queue, max_retries, created_at_ms,
                                 updated_at_ms, codec, encoder, engine, needs_enforcement)
             VALUES (1, 'a', '{}', 'queued', 3, 4, 'default', 3, 1, 2, 'h264', 'h264_nvenc', 'gstreamer', 1),
                    (2, 'b', '{}', 'queued', 8, 8, 'batch', 3, 1, 2, 'av1', NULL, '', 0);"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare("SELECT req_class FROM jobs ORDER BY seq").unwrap();
        let classes: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(classes, ["gstreamer|1|h264|h264_nvenc", "|0|av1|"]);
        for c in &classes {
            assert!(crate::classes::decode(c).is_some(), "{c}");
        }
    }

    #[test]
    fn the_queued_classes_are_read_one_index_seek_per_class() {
        let mut conn = at_version(0);
        migrate(&mut conn).unwrap();
        conn.execute_batch(
            "INSERT INTO jobs (id, spec, state, rank, base_rank, queue, max_retries, created_at_ms, updated_at_ms, \
                               req_class)
             VALUES ('a', '{}', 'queued', 4, 4, 'default', 3, 1, 2, '|0|h264|'),
                    ('b', '{}', 'queued', 4, 4, 'default', 3, 1, 2, '|0|h264|'),
                    ('c', '{}', 'queued', 4, 4, 'default', 3, 1, 2, '|0|av1|'),
                    ('d', '{}', 'queued', 8, 8, 'batch', 3, 1, 2, '|0|h264|'),
                    ('e', '{}', 'completed', 0, 0, 'live', 3, 1, 2, '|0|vp9|');",
        )
        .unwrap();
        let classes = crate::sqlite::nodes::queued_classes(&conn).unwrap();
        let expected = [(4, "|0|av1|"), (4, "|0|h264|"), (8, "|0|h264|")].map(|(b, k)| (b, k.to_string()));
        assert_eq!(classes, expected);
        let mut stmt = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT base_rank FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
                 AND (base_rank, req_class) > (4, '') ORDER BY base_rank, req_class LIMIT 1",
            )
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.contains("(base_rank,req_class)>(?,?)"),
            "the next class is sought: {plan}"
        );
    }

    #[test]
    fn jobs_stored_before_version_8_read_with_no_attempts_energy() {
        let mut conn = at_version(7);
        conn.execute_batch(
            r#"INSERT INTO jobs (seq, id, spec, state, rank, queue, max_retries, created_at_ms, updated_at_ms)
             VALUES (1, '0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11', '{"scenario":"720p-h264"}', 'failed', 0,
                     'default', 3, 1, 2);"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let id = "0b7d4f3e-3c57-4f7c-9a57-7b0b1d9e2f11".parse().unwrap();
        let job = crate::sqlite::rows::load_job(&conn, id).unwrap().job;
        assert!(job.attempts_energy.is_empty());
        assert_eq!(job.attempts_energy.total_joules, None);
    }

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    #[test]
    fn the_claim_walk_and_listings_read_their_index_in_order_without_sorting() {
        let mut conn = at_version(0);
        migrate(&mut conn).unwrap();
        let claim = plan(
            &conn,
            "SELECT seq, queued_at_ms FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
             AND base_rank = 4 AND req_class = '|0|h264|' ORDER BY queued_at_ms, seq LIMIT 16",
        );
        assert!(
            claim.contains("jobs_class") && !claim.contains("TEMP B-TREE"),
            "{claim}"
        );
        assert!(
            claim.contains("base_rank=? AND req_class=?"),
            "a class's head is sought, not scanned: {claim}"
        );
        let by_state = plan(
            &conn,
            "SELECT seq FROM jobs INDEXED BY jobs_settled WHERE state NOT IN ('assigned', 'running') \
             AND state = 'completed' ORDER BY seq DESC LIMIT 51",
        );
        let retries = plan(
            &conn,
            "SELECT seq FROM jobs INDEXED BY jobs_retry WHERE state = 'retrying' AND retry_at_ms <= 5 \
             ORDER BY retry_at_ms LIMIT 1000",
        );
        assert!(
            retries.contains("retry_at_ms<?") && !retries.contains("TEMP B-TREE"),
            "{retries}"
        );
        let expired = plan(
            &conn,
            "SELECT seq FROM jobs INDEXED BY jobs_completed WHERE state = 'completed' AND updated_at_ms < 5 \
             ORDER BY updated_at_ms LIMIT 500",
        );
        assert!(
            expired.contains("updated_at_ms<?") && !expired.contains("TEMP B-TREE"),
            "{expired}"
        );
        assert!(!by_state.contains("TEMP B-TREE"), "{by_state}");
        let by_node = plan(
            &conn,
            "SELECT seq FROM jobs INDEXED BY jobs_node_seq WHERE node_id = 'n' ORDER BY seq DESC LIMIT 51",
        );
        assert!(!by_node.contains("TEMP B-TREE"), "{by_node}");
        let active = plan(
            &conn,
            "SELECT COUNT(*) FROM jobs INDEXED BY jobs_active WHERE node_id = 'n' \
             AND state IN ('assigned', 'running')",
        );
        assert!(
            active.contains("node_id=?"),
            "a node's active jobs are sought, not scanned: {active}"
        );
    }
}
