//! `ffrtmp nodes efficiency` with the real binaries: two agents (one metered by a fake RAPL
//! tree, one estimating from a power model) run real short encodes; the table has one row per
//! (node, encoder, scenario) with the jobs' count and median fps, measured and estimated
//! energy in their own columns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const KEY: &str = "efficiency-test-key-0123456789ab";

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

struct Farm {
    dir: tempfile::TempDir,
    cli: Cli,
    _rapl: FakeRapl,
    _procs: Vec<Proc>,
}

impl Farm {
    /// A master, agent `metered` on a fake RAPL tree and agent `modelled` with a power model
    /// and no RAPL.
    fn start() -> Farm {
        let dir = cluster::shared_dir();
        let d = dir.path();
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms"])
            .start();
        let mut procs = vec![master];
        let rapl = FakeRapl::start(&d.join("powercap"));
        std::fs::write(
            d.join("model.toml"),
            "name = \"test-vm\"\nidle_watts = 20\nfull_load_watts = 120\n",
        )
        .unwrap();
        for (name, powercap, model) in [("metered", "powercap", false), ("modelled", "no-powercap", true)] {
            let mut agent = cluster::agent(d, &url, KEY)
                .args(["--name", name, "--heartbeat-interval", "500ms"])
                .args(["--claim-wait", "2s", "--status-addr", "none", "--idle-window", "0s"])
                .path("--output-dir", format!("out-{name}"))
                .path("--powercap-root", powercap)
                .log(&format!("{name}.log"));
            if model {
                agent = agent.path("--power-model", "model.toml");
            }
            procs.push(agent.spawn());
        }
        Farm {
            cli: Cli::new(d, &url, KEY),
            dir,
            _rapl: rapl,
            _procs: procs,
        }
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }

    /// Waits until both agents are registered; their ids by name.
    fn wait_for_agents(&self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let nodes = self.cli.json(&["nodes", "list"]);
            let ids: BTreeMap<String, String> = nodes
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    let name = n["registration"]["name"].as_str().unwrap().to_string();
                    (name, n["id"].as_str().unwrap().to_string())
                })
                .collect();
            if ids.len() == 2 {
                return ids;
            }
            assert!(Instant::now() < deadline, "agents did not register\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[test]
fn nodes_efficiency_has_a_row_per_node_encoder_and_scenario() {
    let farm = Farm::start();
    let names = farm.wait_for_agents();
    let mut ids = Vec::new();
    for scenario in ["720p-h264", "720p-h264", "360p-h264", "360p-h264", "720p-h264"] {
        let job = farm.cli.json(&[
            "jobs",
            "submit",
            "--scenario",
            scenario,
            "--duration",
            "1",
            "--output-mode",
            "null",
        ]);
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    let mut wait = vec!["jobs", "wait", "--timeout", "120s"];
    wait.extend(ids.iter().map(String::as_str));
    let done = farm.cli.json(&wait);

    // What the table must say, from the finished jobs themselves.
    let mut expected: BTreeMap<(String, String, String), Vec<&serde_json::Value>> = BTreeMap::new();
    for job in done.as_array().unwrap() {
        assert_eq!(job["state"], "completed", "{job:#}\n{}", farm.logs());
        let key = (
            job["node_id"].as_str().unwrap().to_string(),
            job["result"]["encoder"].as_str().unwrap().to_string(),
            job["spec"]["scenario"].as_str().unwrap().to_string(),
        );
        expected.entry(key).or_default().push(job);
    }

    let table = farm.cli.json(&["nodes", "efficiency", "--window", "1h"]);
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len(), "{table:#}");
    for ((node, encoder, scenario), jobs) in &expected {
        let row = rows
            .iter()
            .find(|r| r["node_id"] == *node && r["encoder"] == *encoder && r["scenario"] == *scenario)
            .unwrap_or_else(|| panic!("no row for {node} {encoder} {scenario}: {table:#}"));
        assert_eq!(row["samples"], jobs.len(), "{row:#}");
        let fps = median(jobs.iter().map(|j| j["result"]["avg_fps"].as_f64().unwrap()).collect());
        assert!((row["median_fps"].as_f64().unwrap() - fps).abs() < 1e-9, "{row:#}");
        let n = jobs.len() as u64;
        if *node == names["metered"] {
            assert_eq!(row["energy_samples"], n, "{row:#}");
            assert!(row["joules_per_frame"].as_f64().unwrap() > 0.0, "{row:#}");
            assert_eq!(row["estimated_samples"], 0, "{row:#}");
        } else {
            assert_eq!(row["joules_per_frame"], serde_json::Value::Null, "{row:#}");
            assert_eq!(row["estimated_samples"], n, "{row:#}");
            assert!(row["estimated_joules_per_frame"].as_f64().unwrap() > 0.0, "{row:#}");
        }
    }

    let out = farm.cli.output(&["nodes", "efficiency", "--window", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains("J/FRAME"), "{text}");
    for ((node, encoder, scenario), jobs) in &expected {
        let name = names.iter().find(|(_, id)| *id == node).unwrap().0;
        let line = text
            .lines()
            .find(|l| l.starts_with(name.as_str()) && l.contains(encoder.as_str()) && l.contains(scenario.as_str()))
            .unwrap_or_else(|| panic!("no line for {name} {encoder} {scenario}:\n{text}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[3], jobs.len().to_string(), "{line}");
    }
    let bad = farm.cli.output(&["nodes", "efficiency", "--window", "soon"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid window"));
}
