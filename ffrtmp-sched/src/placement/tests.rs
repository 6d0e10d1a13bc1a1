//! The energy-aware policy's decisions, over hand-made efficiency tables.

use std::time::Duration;

use ffrtmp_core::efficiency::{EfficiencyRow, EfficiencyTable};
use ffrtmp_core::{
    JobSpec, NodeId, Placement, PlacementCandidate, PlacementNode, PlacementPeer, Requirements, ValidSpec,
};

use super::*;

const NOW: u64 = 1_000_000;

fn row(node: NodeId, encoder: &str, jpf: f64, samples: u64) -> EfficiencyRow {
    EfficiencyRow {
        node_id: node.to_string(),
        encoder: encoder.into(),
        scenario: "720p-h264".into(),
        samples,
        median_fps: Some(100.0),
        joules_per_frame: Some(jpf),
        energy_samples: samples,
        estimated_joules_per_frame: None,
        estimated_samples: 0,
        quality: Default::default(),
    }
}

fn policy(rows: Vec<EfficiencyRow>) -> EnergyAware {
    let table = SharedEfficiency::new();
    table.replace(&EfficiencyTable {
        since_ms: 0,
        until_ms: NOW,
        rows,
    });
    EnergyAware::new(EnergyAwareConfig::default(), table)
}

fn job(seq: u64, waited: Duration) -> PlacementCandidate {
    let spec = ValidSpec::try_from(JobSpec::new("720p-h264")).unwrap();
    PlacementCandidate {
        seq,
        scenario: "720p-h264".into(),
        requirements: Some(Requirements::of(&spec)),
        base_rank: 4,
        aged_rank: 4,
        queued_at_ms: NOW - waited.as_millis() as u64,
    }
}

fn claimer(id: NodeId, peers: &[(NodeId, u32)]) -> PlacementNode {
    PlacementNode {
        id,
        name: "claimer".into(),
        free_slots: 4,
        peers: peers
            .iter()
            .map(|&(id, free_slots)| PlacementPeer {
                id,
                name: "peer".into(),
                free_slots,
                last_seen_ms: NOW,
            })
            .collect(),
    }
}

const FRESH: Duration = Duration::from_secs(1);

#[test]
fn a_job_is_left_to_a_clearly_more_efficient_idle_node() {
    let (hot, cool) = (NodeId::new(), NodeId::new());
    let p = policy(vec![
        row(hot, "ffmpeg/libx264", 2.0, 5),
        row(cool, "ffmpeg/libx264", 1.0, 5),
    ]);
    // The hot node leaves one job per free slot of the cool node, and takes the rest.
    let jobs = [job(1, FRESH), job(2, FRESH), job(3, FRESH)];
    assert_eq!(p.choose(&claimer(hot, &[(cool, 2)]), &jobs, NOW), vec![2]);
    // The cool node takes all of them.
    assert_eq!(p.choose(&claimer(cool, &[(hot, 2)]), &jobs, NOW), vec![0, 1, 2]);
}

#[test]
fn a_small_difference_is_no_reason_to_wait() {
    let (a, b) = (NodeId::new(), NodeId::new());
    // 10 % fewer joules per frame is under the 15 % margin.
    let p = policy(vec![row(a, "ffmpeg/libx264", 1.0, 5), row(b, "ffmpeg/libx264", 0.9, 5)]);
    assert_eq!(p.choose(&claimer(a, &[(b, 1)]), &[job(1, FRESH)], NOW), vec![0]);
}

#[test]
fn after_the_maximum_wait_anyone_takes_it() {
    let (hot, cool) = (NodeId::new(), NodeId::new());
    let p = policy(vec![
        row(hot, "ffmpeg/libx264", 2.0, 5),
        row(cool, "ffmpeg/libx264", 1.0, 5),
    ]);
    let max = p.config().max_wait;
    let node = claimer(hot, &[(cool, 4)]);
    assert!(p
        .choose(&node, &[job(1, max - Duration::from_millis(1))], NOW)
        .is_empty());
    assert_eq!(p.choose(&node, &[job(1, max)], NOW), vec![0]);
}

#[test]
fn a_node_with_too_few_samples_explores() {
    let (new, cool) = (NodeId::new(), NodeId::new());
    let few = p_min_samples() - 1;
    let p = policy(vec![
        row(new, "ffmpeg/libx264", 9.0, few),
        row(cool, "ffmpeg/libx264", 1.0, 5),
    ]);
    assert_eq!(
        p.choose(&claimer(new, &[(cool, 1)]), &[job(1, FRESH)], NOW),
        vec![0],
        "unknown: take it"
    );
    // Nor is a node with too few samples a reason for others to wait.
    let p = policy(vec![
        row(new, "ffmpeg/libx264", 0.1, few),
        row(cool, "ffmpeg/libx264", 1.0, 5),
    ]);
    assert_eq!(p.choose(&claimer(cool, &[(new, 1)]), &[job(1, FRESH)], NOW), vec![0]);
    // A node with no row at all for the scenario takes it too.
    let stranger = NodeId::new();
    assert_eq!(
        p.choose(&claimer(stranger, &[(cool, 1)]), &[job(1, FRESH)], NOW),
        vec![0]
    );
}

fn p_min_samples() -> u64 {
    EnergyAwareConfig::default().min_samples
}

#[test]
fn a_busy_or_offline_efficient_node_is_not_waited_for() {
    let (hot, cool) = (NodeId::new(), NodeId::new());
    let p = policy(vec![
        row(hot, "ffmpeg/libx264", 2.0, 5),
        row(cool, "ffmpeg/libx264", 1.0, 5),
    ]);
    // Busy: no free slot.
    assert_eq!(p.choose(&claimer(hot, &[(cool, 0)]), &[job(1, FRESH)], NOW), vec![0]);
    // Offline: the store lists only online peers.
    assert_eq!(p.choose(&claimer(hot, &[]), &[job(1, FRESH)], NOW), vec![0]);
}

#[test]
fn measured_energy_wins_over_estimated_and_encoders_must_match_the_job() {
    let (a, b) = (NodeId::new(), NodeId::new());
    let mut est = row(b, "ffmpeg/libx264", 9.0, 5);
    est.estimated_joules_per_frame = Some(0.1);
    est.estimated_samples = 5;
    let p = policy(vec![row(a, "ffmpeg/libx264", 2.0, 5), est]);
    assert_eq!(
        p.choose(&claimer(a, &[(b, 1)]), &[job(1, FRESH)], NOW),
        vec![0],
        "b measured 9 J/frame"
    );
    // Only estimated: the estimate counts.
    let mut est = row(b, "ffmpeg/libx264", 0.0, 5);
    (est.joules_per_frame, est.energy_samples) = (None, 0);
    (est.estimated_joules_per_frame, est.estimated_samples) = (Some(0.1), 5);
    let p = policy(vec![row(a, "ffmpeg/libx264", 2.0, 5), est]);
    assert!(p.choose(&claimer(a, &[(b, 1)]), &[job(1, FRESH)], NOW).is_empty());
    // A job pinned to GStreamer is compared on GStreamer rows only.
    let p = policy(vec![
        row(a, "gstreamer/x264enc", 2.0, 5),
        row(b, "ffmpeg/libx264", 0.1, 5),
    ]);
    let mut pinned = job(1, FRESH);
    pinned.requirements.as_mut().unwrap().engine = ffrtmp_core::EngineChoice::Gstreamer;
    assert_eq!(p.choose(&claimer(a, &[(b, 1)]), &[pinned], NOW), vec![0]);
}

#[test]
fn kinds_parse_and_build() {
    assert_eq!("energy-aware".parse::<PlacementKind>(), Ok(PlacementKind::EnergyAware));
    assert_eq!("default".parse::<PlacementKind>(), Ok(PlacementKind::Default));
    let err = "fastest".parse::<PlacementKind>().unwrap_err();
    assert!(err.to_string().contains("fastest"), "{err}");
    let (p, table) = PlacementKind::EnergyAware.build(EnergyAwareConfig::default());
    assert_eq!((p.name(), table.is_some()), ("energy-aware", true));
    let (p, table) = PlacementKind::Default.build(EnergyAwareConfig::default());
    assert_eq!((p.name(), table.is_none()), ("default", true));
}
