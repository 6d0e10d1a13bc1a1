//! Node power snapshots: the latest heartbeat's snapshot is what `list_nodes` shows; the
//! energy of failed and timed-out attempts is kept with the job's error.

use crate::SchedConfig;
use ffrtmp_core::{
    EnergyReport, ErrorKind, Heartbeat, JobError, JobEvent, JobReport, JobState, Node, NodePower, StoreError,
};

use super::support::*;
use super::Backend;

fn power(joules: f64) -> NodePower {
    NodePower {
        source: "rapl".into(),
        energy_joules: joules,
        measured_s: joules / 10.0,
        watts: Some(10.5),
        idle_watts: Some(8.25),
        counting_since_ms: 1_700_000_000_000,
        sampled_at_ms: 1_700_000_000_000 + (joules * 100.0) as u64,
        cpus: None,
    }
}

fn beat(power: Option<NodePower>) -> Heartbeat {
    Heartbeat { running: vec![], power }
}

fn listed(nodes: &[Node], id: ffrtmp_core::NodeId) -> &Node {
    nodes.iter().find(|n| n.id == id).expect("node listed")
}

/// A heartbeat's snapshot replaces the node's last one and survives a restart; claims leave it
/// alone; a heartbeat without one clears it (a meter that stopped working is never shown
/// with a stale reading); an invalid one is refused and changes nothing.
pub async fn the_latest_heartbeats_power_snapshot_is_listed(b: &dyn Backend) {
    let node = {
        let store = b.open(SchedConfig::default()).await;
        let node = store.register_node(registration("metered", 1)).await.unwrap();
        let quiet = store.register_node(registration("unmetered", 1)).await.unwrap();
        assert_eq!(node.power, None, "no snapshot before a heartbeat");
        store.heartbeat(node.id, &beat(Some(power(100.0)))).await.unwrap();
        store.heartbeat(quiet.id, &beat(None)).await.unwrap();
        let nodes = store.list_nodes().await.unwrap();
        assert_eq!(listed(&nodes, node.id).power, Some(power(100.0)));
        assert_eq!(listed(&nodes, quiet.id).power, None);

        store.heartbeat(node.id, &beat(Some(power(250.0)))).await.unwrap();
        store.claim(&claim_request(&node, "c1", 1)).await.unwrap();
        let nodes = store.list_nodes().await.unwrap();
        assert_eq!(listed(&nodes, node.id).power, Some(power(250.0)), "claims keep it");
        node
    };
    let store = b.open(SchedConfig::default()).await;
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(power(250.0)), "survives a restart");

    let broken = NodePower {
        watts: Some(-3.0),
        ..power(300.0)
    };
    assert!(matches!(
        store.heartbeat(node.id, &beat(Some(broken))).await,
        Err(StoreError::InvalidRequest(_))
    ));
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(
        listed(&nodes, node.id).power,
        Some(power(250.0)),
        "a refused heartbeat changes nothing"
    );

    store.heartbeat(node.id, &beat(None)).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, None, "a heartbeat without one clears it");
}

/// A delayed or retried heartbeat's older snapshot does not replace a newer one, nor does the
/// same snapshot again; one from another meter (a restarted agent's) does, even with less
/// counted.
pub async fn an_older_power_snapshot_does_not_replace_a_newer_one(b: &dyn Backend) {
    let store = b.open(SchedConfig::default()).await;
    let node = store.register_node(registration("metered", 1)).await.unwrap();
    store.heartbeat(node.id, &beat(Some(power(250.0)))).await.unwrap();
    store.heartbeat(node.id, &beat(Some(power(100.0)))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(power(250.0)), "older, delayed");
    store.heartbeat(node.id, &beat(Some(power(250.0)))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(power(250.0)), "the same, retried");
    store.heartbeat(node.id, &beat(Some(power(260.0)))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(power(260.0)), "newer");

    let start = power(0.0).counting_since_ms + 60_000;
    let restarted = NodePower {
        counting_since_ms: start,
        sampled_at_ms: start + 1_000,
        ..power(10.0)
    };
    store.heartbeat(node.id, &beat(Some(restarted.clone()))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(restarted.clone()), "another meter");
    let older = NodePower {
        energy_joules: 5.0,
        measured_s: 0.5,
        sampled_at_ms: start + 500,
        ..restarted.clone()
    };
    store.heartbeat(node.id, &beat(Some(older))).await.unwrap();
    let nodes = store.list_nodes().await.unwrap();
    assert_eq!(listed(&nodes, node.id).power, Some(restarted), "older on the new meter");
}

fn spent(joules: f64, partial_reason: Option<&str>) -> EnergyReport {
    EnergyReport {
        source: "rapl".into(),
        energy_joules: Some(joules),
        avg_watts: Some(joules / 2.0),
        attribution: Some("cgroup-cpu-share".into()),
        wall_s: Some(2.0),
        intervals: 20,
        partial: partial_reason.is_some(),
        partial_reason: partial_reason.map(String::from),
        ..EnergyReport::default()
    }
}

/// A failed encode and a timed-out one used energy too: the node's figure, partial flag and
/// reason included, is stored with the job's error, read back by `get`, and survives a restart.
pub async fn failed_and_timed_out_jobs_keep_the_energy_they_used(b: &dyn Backend) {
    let (failed_id, timed_out_id) = {
        let store = b.open(SchedConfig::default()).await;
        let node = store.register_node(registration("n1", 2)).await.unwrap();
        let failed = store.submit(spec("720p-h264")).await.unwrap();
        let timed_out = store.submit(spec("720p-h264")).await.unwrap();
        let claimed = claim(&*store, &node, 2).await;
        let attempt = |id| claimed.iter().find(|a| a.job.id == id).unwrap().job.attempt;
        let error = JobError {
            energy: Some(spent(12.5, Some("the final reading failed: energy read failed: gone"))),
            ..JobError::new(ErrorKind::EncodeError, "unknown encoder")
        };
        let j = store
            .report(&JobReport {
                job_id: failed.id,
                node_id: node.id,
                attempt: attempt(failed.id),
                event: JobEvent::Failed { error: error.clone() },
            })
            .await
            .unwrap();
        assert_eq!((j.state, j.error.as_ref()), (JobState::Failed, Some(&error)));
        let j = store
            .report(&JobReport {
                job_id: timed_out.id,
                node_id: node.id,
                attempt: attempt(timed_out.id),
                event: JobEvent::TimedOut {
                    message: "ran past 10 s".into(),
                    energy: Some(spent(40.0, None)),
                },
            })
            .await
            .unwrap();
        assert_eq!(j.state, JobState::Failed);
        (failed.id, timed_out.id)
    };
    let store = b.open(SchedConfig::default()).await;
    let failed = store.get(failed_id).await.unwrap();
    let energy = failed.error.and_then(|e| e.energy).expect("stored with the error");
    assert_eq!(
        energy,
        spent(12.5, Some("the final reading failed: energy read failed: gone"))
    );
    let timed_out = store.get(timed_out_id).await.unwrap();
    let error = timed_out.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert_eq!(error.energy, Some(spent(40.0, None)));
    assert_eq!(timed_out.result, None, "a failed job has no result");
}
