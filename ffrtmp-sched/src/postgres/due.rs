//! The sweep's first look: one read-only statement, outside any transaction, that says
//! whether any step of a sweep pass would find something to do. Most passes find nothing;
//! they then cost one round trip, take no lock and open no write transaction, so a pass
//! neither waits for writers nor makes them wait.
//!
//! Every condition here is the `WHERE` of one step of [`super::nodes::sweep`], each served
//! by an index (or the small nodes table): a step added there must be added here too.

use tokio_postgres::Client;

use super::pool::{prepared, StatementCache};
use super::{Ctx, Result};
use crate::policy::{claim, sweep};

/// Lost nodes, prunable nodes, retrying jobs due, completed jobs past retention, forgotten
/// claims. A cutoff that does not apply (no retention) is `i64::MIN`: nothing is older.
const ANYTHING_DUE: &str = "SELECT \
       EXISTS (SELECT 1 FROM nodes WHERE status = 'online' AND last_seen_ms < $1) \
    OR EXISTS (SELECT 1 FROM nodes n WHERE n.status = 'offline' AND n.last_seen_ms < $2 \
               AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.node_id = n.id AND j.state IN ('assigned', 'running'))) \
    OR EXISTS (SELECT 1 FROM jobs WHERE state = 'retrying' AND retry_at_ms <= $3) \
    OR EXISTS (SELECT 1 FROM jobs WHERE state = 'completed' AND updated_at_ms < $4) \
    OR EXISTS (SELECT 1 FROM claims WHERE at_ms < $5)";

/// Whether a sweep pass at `ctx.now` has anything to change.
pub async fn anything_due(client: &Client, cache: &StatementCache, ctx: &Ctx<'_>) -> Result<bool> {
    let cutoff = |c: Option<u64>| c.map_or(i64::MIN, |c| c as i64);
    let lost_before = sweep::lost_before(ctx.now, ctx.opened_at_ms, ctx.cfg.dead_after()) as i64;
    let prune_nodes = cutoff(sweep::retention_cutoff(ctx.now, ctx.cfg.node_retention));
    let prune_jobs = cutoff(sweep::retention_cutoff(ctx.now, ctx.cfg.retention));
    let forget_claims = claim::remembered_since(ctx.now) as i64;
    let statement = prepared(client, cache, ANYTHING_DUE).await?;
    let row = client
        .query_one(
            &statement,
            &[
                &lost_before,
                &prune_nodes,
                &(ctx.now as i64),
                &prune_jobs,
                &forget_claims,
            ],
        )
        .await?;
    Ok(row.try_get(0)?)
}
