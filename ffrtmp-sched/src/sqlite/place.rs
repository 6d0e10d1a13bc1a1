//! What a SQLite claim reads for its placement policy: the head of a requirement class (with
//! each job's scenario when the policy asks), and the other online nodes.

use ffrtmp_core::{NodeId, NodeRegistration, PlacementNeeds, PlacementNode, PlacementPeer, StoreError};
use rusqlite::{params, Connection};

use super::rows::{db, node_id_from};
use crate::classes::{decode, ClassKey};
use crate::policy::claim::Candidate;
use crate::policy::place::Head;

/// The first `limit` queued jobs of class `key`, in queue-entry order. Without the scenario
/// the claim index answers alone; with it, each job's row is read too.
pub fn probe(conn: &Connection, key: &ClassKey, limit: u32, scenario: bool) -> Result<Vec<Head>, StoreError> {
    let (base_rank, class) = key;
    let column = if scenario {
        "COALESCE(json_extract(spec, '$.scenario'), '')"
    } else {
        "''"
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT seq, queued_at_ms, {column} FROM jobs INDEXED BY jobs_class WHERE state = 'queued' \
             AND base_rank = ?1 AND req_class = ?2 ORDER BY queued_at_ms, seq LIMIT ?3"
        ))
        .map_err(db)?;
    let requirements = decode(class);
    let rows = stmt
        .query_map(params![base_rank, class, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, queued_at, scenario) = row.map_err(db)?;
        out.push(Head {
            candidate: Candidate {
                seq: seq as u64,
                base_rank: *base_rank,
                queued_at_ms: queued_at as u64,
            },
            scenario,
            requirements: requirements.clone(),
        });
    }
    Ok(out)
}

/// The claiming `node` (registered as `reg`) as the policy sees it, free to take `want` jobs; with its online
/// peers when the policy asks (one scan of the nodes, counting each one's active jobs
/// through the `jobs_active` index).
pub fn node_view(
    conn: &Connection,
    node: NodeId,
    reg: &NodeRegistration,
    want: u32,
    needs: PlacementNeeds,
) -> Result<PlacementNode, StoreError> {
    let mut peers = Vec::new();
    if needs.peers {
        let mut stmt = conn
            .prepare_cached(
                "SELECT n.id, COALESCE(json_extract(n.registration, '$.name'), ''), n.max_concurrent, n.last_seen_ms, \
                 (SELECT COUNT(*) FROM jobs j INDEXED BY jobs_active \
                  WHERE j.node_id = n.id AND j.state IN ('assigned', 'running')) \
                 FROM nodes n WHERE n.status = 'online' AND n.id <> ?1",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([node.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(db)?;
        for row in rows {
            let (id, name, max, seen, active) = row.map_err(db)?;
            peers.push(PlacementPeer {
                id: node_id_from(&id)?,
                name,
                free_slots: max.saturating_sub(active).max(0) as u32,
                last_seen_ms: seen.max(0) as u64,
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
