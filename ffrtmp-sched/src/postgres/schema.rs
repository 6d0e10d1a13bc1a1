//! Schema migrations, applied in order under an advisory lock and recorded in
//! `schema_version`, so masters starting together migrate once.

use tokio_postgres::Client;

use super::{Error, Result};

/// Each entry moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: jobs (with aging, capability and retention columns), history, nodes, claims.
    r#"
    CREATE TABLE jobs (
        seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id            TEXT   NOT NULL UNIQUE,
        spec          TEXT   NOT NULL,
        state         TEXT   NOT NULL,
        rank          BIGINT NOT NULL,
        base_rank     BIGINT NOT NULL,
        queue         TEXT   NOT NULL,
        codec         TEXT   NOT NULL,
        encoder       TEXT,
        attempt       BIGINT NOT NULL DEFAULT 0,
        attempt_base  BIGINT NOT NULL DEFAULT 0,
        max_retries   BIGINT NOT NULL,
        node_id       TEXT,
        progress      TEXT,
        result        TEXT,
        error         TEXT,
        retry_at_ms   BIGINT,
        queued_at_ms  BIGINT NOT NULL,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL
    );
    -- The claim query walks this partial index in ORDER BY order (rank, seq).
    CREATE INDEX jobs_claim ON jobs (rank, seq) WHERE state = 'queued';
    CREATE INDEX jobs_node ON jobs (node_id, state);
    CREATE INDEX jobs_state_seq ON jobs (state, seq);
    CREATE INDEX jobs_retry ON jobs (retry_at_ms) WHERE state = 'retrying';
    -- Retention walks completed jobs oldest first.
    CREATE INDEX jobs_completed ON jobs (updated_at_ms) WHERE state = 'completed';
    CREATE TABLE job_history (
        id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id     TEXT   NOT NULL,
        at_ms      BIGINT NOT NULL,
        from_state TEXT,
        to_state   TEXT   NOT NULL,
        attempt    BIGINT NOT NULL,
        node_id    TEXT,
        reason     TEXT   NOT NULL
    );
    CREATE INDEX job_history_job ON job_history (job_id, id);
    CREATE TABLE nodes (
        id               TEXT   PRIMARY KEY,
        registration     TEXT   NOT NULL,
        max_concurrent   BIGINT NOT NULL,
        status           TEXT   NOT NULL,
        registered_at_ms BIGINT NOT NULL,
        last_seen_ms     BIGINT NOT NULL
    );
    CREATE TABLE claims (
        claim_id TEXT   NOT NULL,
        node_id  TEXT   NOT NULL,
        job_id   TEXT   NOT NULL,
        attempt  BIGINT NOT NULL,
        pos      BIGINT NOT NULL,
        at_ms    BIGINT NOT NULL,
        PRIMARY KEY (claim_id, job_id)
    );
    CREATE INDEX claims_at ON claims (at_ms);
    "#,
    // 2: the latest heartbeat's energy snapshot of each node (`NodePower` as JSON).
    r#"
    ALTER TABLE nodes ADD COLUMN power TEXT;
    "#,
    // 3: routing by engine and by enforcement of limits: the engine a job is pinned to
    // ('' for auto) and whether its limits must be enforced. Jobs stored before keep their
    // pinned engine; none of them required enforcement.
    r#"
    ALTER TABLE jobs ADD COLUMN engine TEXT NOT NULL DEFAULT '';
    ALTER TABLE jobs ADD COLUMN needs_enforcement BOOLEAN NOT NULL DEFAULT FALSE;
    UPDATE jobs SET engine = spec::jsonb->>'engine'
     WHERE spec::jsonb->>'engine' IN ('ffmpeg', 'gstreamer');
    "#,
    // 4: the energy of every attempt of a job (`AttemptsEnergy` as JSON), kept whatever the
    // attempt's outcome; NULL for jobs stored before, which read as having none.
    r#"
    ALTER TABLE jobs ADD COLUMN attempts_energy TEXT;
    "#,
    // 5: costs that do not grow with the queue (see the SQLite store's migration 9): the
    // requirement class column, the claim's per-(base rank, class) index in queue-entry
    // order, and one index per listing filter, each ordered by seq like the listing.
    r#"
    ALTER TABLE jobs ADD COLUMN req_class TEXT NOT NULL DEFAULT '';
    UPDATE jobs SET req_class = engine || '|' || CASE WHEN needs_enforcement THEN '1' ELSE '0' END || '|'
                                || codec || '|' || COALESCE(encoder, '');
    DROP INDEX jobs_claim;
    CREATE INDEX jobs_class ON jobs (base_rank, req_class, queued_at_ms, seq) WHERE state = 'queued';
    CREATE INDEX jobs_queue_seq ON jobs (queue, seq);
    CREATE INDEX jobs_node_seq ON jobs (node_id, seq) WHERE node_id IS NOT NULL;
    "#,
];

/// The version this build of the store writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Serializes migrations of one database (advisory locks are per database).
const MIGRATION_LOCK: i64 = 0x6666_7274_6d70_0001;

/// Brings the database to [`CURRENT_VERSION`]; refuses a database from a newer build.
pub async fn migrate(client: &mut Client) -> Result<i64> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
        .await?;
    let version: i64 = tx
        .query_opt("SELECT max(version) FROM schema_version", &[])
        .await?
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .unwrap_or(0);
    if version > CURRENT_VERSION {
        return Err(Error::backend(format!(
            "database schema version {version} is newer than this build supports ({CURRENT_VERSION})"
        )));
    }
    if version == CURRENT_VERSION {
        tx.commit().await?;
        return Ok(version);
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)
            .await
            .map_err(|e| Error::backend(format!("migration {}: {}", i + 1, super::pg_message(&e))))?;
    }
    tx.execute("DELETE FROM schema_version", &[]).await?;
    tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&CURRENT_VERSION])
        .await?;
    tx.commit().await?;
    Ok(CURRENT_VERSION)
}
