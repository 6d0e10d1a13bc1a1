use super::*;

fn run(policy: &str, repeat: usize, joules: f64, makespan_s: f64, per_node: [usize; 3]) -> RunOutcome {
    let names = ["node1-15w", "node2-30w", "node3-60w"];
    RunOutcome {
        policy: policy.into(),
        repeat,
        joules,
        makespan_s,
        completed: per_node.iter().sum(),
        failed: 0,
        without_energy: 0,
        jobs_per_node: names.iter().map(|n| n.to_string()).zip(per_node).collect(),
        joules_per_node: BTreeMap::new(),
        simulated_joules: BTreeMap::new(),
    }
}

fn policies() -> Vec<String> {
    vec!["default".into(), "energy-aware".into()]
}

#[test]
fn summaries_are_per_policy_and_the_goal_is_judged_on_the_change() {
    let runs = vec![
        run("default", 1, 100.0, 40.0, [4, 3, 3]),
        run("energy-aware", 1, 60.0, 41.0, [8, 2, 0]),
        run("default", 2, 104.0, 42.0, [3, 4, 3]),
        run("energy-aware", 2, 62.0, 43.0, [7, 3, 0]),
        run("default", 3, 96.0, 41.0, [3, 3, 4]),
        run("energy-aware", 3, 58.0, 42.0, [9, 1, 0]),
    ];
    let (summaries, changes) = summarise(&policies(), &runs);
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].policy, "default");
    assert_eq!(summaries[0].joules.mean, 100.0);
    assert_eq!(summaries[1].joules.mean, 60.0);
    assert_eq!(summaries[1].jobs_per_node["node1-15w"], 24);
    assert_eq!(summaries[1].jobs_per_node["node3-60w"], 0);
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!((c.policy.as_str(), c.baseline.as_str()), ("energy-aware", "default"));
    assert!((c.joules.change + 0.4).abs() < 1e-12, "{c:?}");
    assert!((c.makespan.change - 42.0 / 41.0 + 1.0).abs() < 1e-12, "{c:?}");
    assert!(c.goal_met && c.goal_met_with_confidence, "{c:?}");

    // 20 % less energy is not the goal, whatever the makespan.
    let mut weak = runs.clone();
    for r in weak.iter_mut().filter(|r| r.policy == "energy-aware") {
        r.joules = 80.0;
    }
    assert!(!summarise(&policies(), &weak).1[0].goal_met);
    // 40 % less energy at 20 % longer makespan is not either.
    let mut slow = runs.clone();
    for r in slow.iter_mut().filter(|r| r.policy == "energy-aware") {
        r.makespan_s *= 1.2;
    }
    assert!(!summarise(&policies(), &slow).1[0].goal_met);
}

#[test]
fn the_text_names_both_policies_the_note_and_the_verdict() {
    let runs = vec![
        run("default", 1, 100.0, 40.0, [4, 3, 3]),
        run("energy-aware", 1, 90.0, 40.0, [5, 3, 2]),
    ];
    let (policies, changes) = summarise(&policies(), &runs);
    let report = PlacementReport {
        note: SIMULATED_NOTE.into(),
        goal: "at least 25% fewer joules at most 10% longer makespan than default".into(),
        nodes: ["node1-15w", "node2-30w", "node3-60w"]
            .iter()
            .map(|n| n.to_string())
            .zip([15.0, 30.0, 60.0].map(busy_watts))
            .collect(),
        jobs: 10,
        repeats: 1,
        seed: 1,
        load: 0.5,
        capacity_jobs_per_s: Some(1.5),
        mean_gap_s: 1.333,
        stream: Vec::new(),
        runs,
        policies,
        changes,
    };
    let text = render_text(&report);
    assert!(text.contains(SIMULATED_NOTE), "{text}");
    assert!(text.contains("node1-15w 15.00 W busy / 1.50 W idle"), "{text}");
    let policy_rows: Vec<&str> = text
        .lines()
        .filter(|l| (l.starts_with("default ") || l.starts_with("energy-aware ")) && !l.contains(" vs "))
        .collect();
    // One row per run and one per policy.
    assert_eq!(policy_rows.len(), 4, "{text}");
    assert!(
        text.contains("energy-aware vs default: joules -10.00%, makespan +0.00%"),
        "{text}"
    );
    assert!(text.contains(": NOT met"), "{text}");
    assert!(text.contains("node1-15w=5 node2-30w=3 node3-60w=2"), "{text}");
}

#[test]
fn bad_settings_are_refused_before_anything_starts() {
    let mut cfg = PlacementConfig::new(PathBuf::from("/nonexistent"));
    cfg.policies.clear();
    assert!(cfg.check().unwrap_err().to_string().contains("--policies"));
    let mut cfg = PlacementConfig::new(PathBuf::from("/nonexistent"));
    cfg.policies = vec!["default".into(), "default".into()];
    assert!(cfg
        .check()
        .unwrap_err()
        .to_string()
        .contains("\"default\" is given twice"));
    let mut cfg = PlacementConfig::new(PathBuf::from("/nonexistent"));
    cfg.repeats = 0;
    assert!(cfg.check().unwrap_err().to_string().contains("--repeats"));
    let mut cfg = PlacementConfig::new(PathBuf::from("/nonexistent"));
    cfg.load = 0.0;
    assert!(cfg.check().unwrap_err().to_string().contains("--load"));
    // A missing binary is named, with how to get it.
    let cfg = PlacementConfig::new(PathBuf::from("/nonexistent"));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(run_quietly(&cfg, dir.path())).unwrap_err().chain();
    assert!(err.contains("/nonexistent/ffrtmp-master not found"), "{err}");
}

async fn run_quietly(cfg: &PlacementConfig, dir: &Path) -> Result<PlacementReport> {
    super::run(cfg, dir, &|_| {}).await
}
