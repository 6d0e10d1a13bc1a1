//! `ffrtmp bench placement` through the real binary, tiny: a master per policy and three
//! real agents with simulated power run four real encodes per policy; the JSON has both
//! policies, every job completed with joules, no run attributed more energy than the
//! simulated counters advanced by, and it says plainly that the power is simulated.

use serde_json::Value;

#[path = "support/offline.rs"]
mod offline;
use offline::{ffrtmp, text};

#[test]
fn placement_json_compares_both_policies_on_simulated_power() {
    let out = ffrtmp(&[
        "--output",
        "json",
        "bench",
        "placement",
        "--jobs",
        "4",
        "--repeats",
        "1",
        "--warmup-samples",
        "1",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(
        v["note"],
        "power figures are simulated: each agent's powercap counters are advanced by this bench at a fixed wattage"
    );
    let nodes = v["nodes"].as_object().unwrap();
    assert_eq!(nodes.len(), 3, "{v}");
    assert_eq!(nodes["node3-60w"]["busy_watts"], 60.0);
    assert_eq!(v["stream"].as_array().unwrap().len(), 4);
    assert!(v["capacity_jobs_per_s"].as_f64().unwrap() > 0.0, "{v}");

    let policies: Vec<&str> = v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["default", "energy-aware"], "{v}");
    for p in v["policies"].as_array().unwrap() {
        assert!(p["joules"]["mean"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["makespan_s"]["mean"].as_f64().unwrap() > 0.0, "{p}");
    }
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{v}");
    for run in runs {
        assert_eq!(run["completed"], 4, "{run}");
        assert_eq!(
            (run["failed"].as_u64(), run["without_energy"].as_u64()),
            (Some(0), Some(0)),
            "{run}"
        );
        let per_node: u64 = run["jobs_per_node"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(per_node, 4, "{run}");
        // Jobs are charged from the counters this bench advanced: never more than they moved.
        let simulated: f64 = run["simulated_joules"]
            .as_object()
            .unwrap()
            .values()
            .map(|j| j.as_f64().unwrap())
            .sum();
        let joules = run["joules"].as_f64().unwrap();
        assert!(
            joules > 0.0 && joules <= simulated,
            "{joules} J of {simulated} J: {run}"
        );
    }
    let change = &v["changes"][0];
    assert_eq!(
        (change["policy"].as_str(), change["baseline"].as_str()),
        (Some("energy-aware"), Some("default"))
    );
    let (j, m) = (
        change["joules"]["change"].as_f64().unwrap(),
        change["makespan"]["change"].as_f64().unwrap(),
    );
    assert_eq!(change["goal_met"].as_bool(), Some(j <= -0.25 && m <= 0.10), "{change}");
}

#[test]
fn bad_placement_flags_are_clear_errors() {
    let out = ffrtmp(&["bench", "placement", "--watts", "15,0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid power \"0\""), "{}", text(&out));
    let out = ffrtmp(&["bench", "placement", "--policies", "default,default"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("policy \"default\" is given twice"),
        "{}",
        text(&out)
    );
    let out = ffrtmp(&["bench", "placement", "--bin-dir", "/nonexistent"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("/nonexistent/ffrtmp-master not found"),
        "{}",
        text(&out)
    );
}
