//! What a PostgreSQL claim reads for its placement policy: the head of a requirement class
//! (with each job's scenario when the policy asks), and the other online nodes.

use ffrtmp_core::{NodeId, NodeRegistration, PlacementNeeds, PlacementNode, PlacementPeer};

use super::pool::Db;
use super::rows::{node_id_from, u, JOB_COLUMNS};
use super::Result;
use crate::classes::{decode, ClassKey};
use crate::policy::claim::Candidate;
use crate::policy::place::Head;

/// The first `limit` queued jobs of class `key` in queue-entry order. With `lock`, they are
/// locked for this claim and rows another transaction holds are skipped, never waited on:
/// right when the claim takes every job it probes but those over its free slots. A probe
/// with a lookahead reads without locking instead, and [`lock`] locks only the jobs the
/// claim takes: otherwise the jobs probed but not taken would stay locked, and concurrent
/// claims skipping them would find nothing to run while jobs wait.
pub async fn probe(tx: &Db<'_>, key: &ClassKey, limit: u32, scenario: bool, lock: bool) -> Result<Vec<Head>> {
    let (base_rank, class) = key;
    let column = if scenario {
        "COALESCE(spec::jsonb->>'scenario', '')"
    } else {
        "''::text"
    };
    let rows = tx
        .query(
            &format!(
                "SELECT seq, queued_at_ms, {column} FROM jobs WHERE state = 'queued' AND base_rank = $1 \
                 AND req_class = $2 ORDER BY queued_at_ms, seq LIMIT $3{}",
                if lock { " FOR UPDATE SKIP LOCKED" } else { "" }
            ),
            &[base_rank, class, &i64::from(limit)],
        )
        .await?;
    let requirements = decode(class);
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        out.push(Head {
            candidate: Candidate {
                seq: u(r.try_get(0)?),
                base_rank: *base_rank,
                queued_at_ms: u(r.try_get(1)?),
            },
            scenario: r.try_get(2)?,
            requirements: requirements.clone(),
        });
    }
    Ok(out)
}

/// The row of job `seq` for a claim to take: read as is when the probe locked it
/// (`locked`); else locked now, `None` when another transaction holds it or it left the
/// queue since the probe read it.
pub async fn lock(tx: &Db<'_>, seq: u64, locked: bool) -> Result<Option<tokio_postgres::Row>> {
    let sql = if locked {
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE seq = $1")
    } else {
        format!("SELECT {JOB_COLUMNS} FROM jobs WHERE seq = $1 AND state = 'queued' FOR UPDATE SKIP LOCKED")
    };
    Ok(tx.query_opt(&sql, &[&(seq as i64)]).await?)
}

/// The claiming `node` (registered as `reg`) as the policy sees it, free to take `want` jobs; with its online
/// peers when the policy asks (one scan of the nodes, counting each one's active jobs).
pub async fn node_view(
    tx: &Db<'_>,
    node: NodeId,
    reg: &NodeRegistration,
    want: u32,
    needs: PlacementNeeds,
) -> Result<PlacementNode> {
    let mut peers = Vec::new();
    if needs.peers {
        let rows = tx
            .query(
                "SELECT n.id, COALESCE(n.registration::jsonb->>'name', ''), n.max_concurrent, n.last_seen_ms, \
                 (SELECT COUNT(*) FROM jobs j WHERE j.node_id = n.id AND j.state IN ('assigned', 'running')) \
                 FROM nodes n WHERE n.status = 'online' AND n.id <> $1",
                &[&node.to_string()],
            )
            .await?;
        for r in &rows {
            let id: String = r.try_get(0)?;
            let max: i64 = r.try_get(2)?;
            let active: i64 = r.try_get(4)?;
            peers.push(PlacementPeer {
                id: node_id_from(&id)?,
                name: r.try_get(1)?,
                free_slots: max.saturating_sub(active).max(0) as u32,
                last_seen_ms: u(r.try_get(3)?),
            });
        }
    }
    Ok(PlacementNode {
        id: node,
        name: reg.name.clone(),
        free_slots: want,
        peers,
    })
}
