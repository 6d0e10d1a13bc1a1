//! The master's store-derived series on a real SQLite store: queue depth by queue and
//! priority, nodes by status, and a node's power from its last heartbeat.

use std::sync::Arc;

use ffrtmp_core::{Heartbeat, JobSpec, JobStore, NodePower, NodeRegistration, Priority, Queue};
use ffrtmp_http::metrics::ClusterSnapshot;
use ffrtmp_http::Metrics;

#[tokio::test]
async fn queue_depth_nodes_and_node_power_come_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn JobStore> = Arc::new(ffrtmp_sched::SqliteStore::open(&dir.path().join("jobs.db")).unwrap());
    for (queue, priority, n) in [(Queue::Live, Priority::High, 2), (Queue::Batch, Priority::Low, 3)] {
        for _ in 0..n {
            let mut spec = JobSpec::new("720p-h264");
            spec.queue = queue;
            spec.priority = priority;
            store.submit(spec).await.unwrap();
        }
    }
    let registration: NodeRegistration = serde_json::from_value(serde_json::json!({
        "name": "rack-7", "cpu_cores": 4, "memory_mb": 4096, "max_concurrent_jobs": 1
    }))
    .unwrap();
    let node = store.register_node(registration).await.unwrap();
    let now = ffrtmp_core::now_ms();
    let heartbeat = Heartbeat {
        running: vec![],
        power: Some(NodePower {
            source: "rapl".into(),
            energy_joules: 120.0,
            measured_s: 10.0,
            watts: Some(12.5),
            idle_watts: Some(11.0),
            counting_since_ms: now - 10_000,
            sampled_at_ms: now,
            cpus: Some(4),
        }),
    };
    store.heartbeat(node.id, &heartbeat).await.unwrap();

    let snapshot = ClusterSnapshot::read(&store).await.unwrap();
    let text = Metrics::default().render_with(&snapshot);
    for needle in [
        r#"ffrtmp_queue_depth{queue="live",priority="high"} 2"#,
        r#"ffrtmp_queue_depth{queue="batch",priority="low"} 3"#,
        r#"ffrtmp_queue_depth{queue="default",priority="medium"} 0"#,
        "ffrtmp_queue_depth_truncated 0",
        r#"ffrtmp_nodes{status="online"} 1"#,
        r#"ffrtmp_nodes{status="offline"} 0"#,
        &format!(r#"ffrtmp_node_power_watts{{node="{}",name="rack-7"}} 12.5"#, node.id),
        &format!(r#"ffrtmp_node_idle_watts{{node="{}",name="rack-7"}} 11"#, node.id),
        &format!(r#"ffrtmp_node_energy_joules{{node="{}",name="rack-7"}} 120"#, node.id),
        "# TYPE ffrtmp_queue_depth gauge",
    ] {
        assert!(text.contains(needle), "lacks {needle}\n{text}");
    }
}
