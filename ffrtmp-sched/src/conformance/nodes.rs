//! Node listing pages and node retention.

use std::time::Duration;

use crate::SchedConfig;
use ffrtmp_core::{Heartbeat, NodeId, NodeQuery, NodeStatus, StoreError};

use super::support::*;
use super::Backend;

/// Node listing is paginated.
pub async fn node_listing_is_paginated(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let mut registered = Vec::new();
    for i in 0..5 {
        registered.push(store.register_node(registration(&format!("n{i}"), 1)).await.unwrap().id);
    }
    registered.sort();

    let mut seen: Vec<NodeId> = Vec::new();
    let mut query = NodeQuery {
        after: None,
        limit: Some(2),
    };
    let mut pages = 0;
    loop {
        let page = store.list_nodes_page(&query).await.unwrap();
        pages += 1;
        assert!(page.nodes.len() <= 2);
        seen.extend(page.nodes.iter().map(|n| n.id));
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(Some(cursor), page.nodes.last().map(|n| n.id));
                query.after = Some(cursor);
            }
            None => break,
        }
        assert!(pages < 10, "pages never end");
    }
    assert_eq!(seen, registered, "every node once, in id order");
    assert_eq!(pages, 3);

    let all = store.list_nodes_page(&NodeQuery::default()).await.unwrap();
    assert_eq!(all.nodes.len(), 5);
    assert_eq!(all.next_cursor, None);
    let past_the_end = NodeQuery {
        after: registered.last().copied(),
        limit: None,
    };
    assert!(store.list_nodes_page(&past_the_end).await.unwrap().nodes.is_empty());
}

/// Offline nodes are pruned after their retention.
pub async fn offline_nodes_are_pruned_after_their_retention(b: &dyn Backend) {
    let clock = ManualClock::new();
    let config = SchedConfig {
        node_retention: Some(Duration::from_secs(3600)),
        ..clock.config()
    };
    let store = b.open(config).await;
    let gone = store.register_node(registration("gone", 1)).await.unwrap();
    let alive = store.register_node(registration("alive", 1)).await.unwrap();
    let step = |d: Duration| {
        let (store, clock) = (&store, &clock);
        async move {
            clock.advance(d);
            store.heartbeat(alive.id, &Heartbeat::default()).await.unwrap();
            store.sweep().await.unwrap()
        }
    };

    assert_eq!(step(Duration::from_secs(91)).await.nodes_lost, 1);
    let status = |nodes: &[ffrtmp_core::Node], id| nodes.iter().find(|n| n.id == id).map(|n| n.status);
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(status(&nodes, gone.id), Some(NodeStatus::Offline));
    // Offline for less than the retention: kept.
    assert_eq!(step(Duration::from_secs(1800)).await.nodes_pruned, 0);
    assert_eq!(store.list_nodes().await.unwrap().len(), 2);
    // Silent for longer than the retention: deleted; the online node stays.
    assert_eq!(step(Duration::from_secs(1800)).await.nodes_pruned, 1);
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.id).collect::<Vec<_>>(), vec![alive.id]);
    assert_eq!(status(&nodes, alive.id), Some(NodeStatus::Online));
    assert_eq!(step(Duration::from_secs(1)).await.nodes_pruned, 0, "pruned once");
    // A pruned node that comes back is unknown (its agent registers again).
    assert!(matches!(
        store.heartbeat(gone.id, &Heartbeat::default()).await,
        Err(StoreError::NotFound { .. })
    ));
}
