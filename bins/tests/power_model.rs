//! `--power-model` on the agent: on a host without RAPL the real agent estimates each job's
//! energy from CPU use with the operator's model, and every output says so; RAPL, when present,
//! wins over the model.

use std::process::Command;

const KEY: &str = "power-model-test-key-0123456789";

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

/// A master and one agent started with `--power-model`.
struct Farm {
    dir: tempfile::TempDir,
    cli: Cli,
    _procs: Vec<Proc>,
}

const MODEL: &str = "name = \"test-vm\"\nidle_watts = 20\nfull_load_watts = 120\n";

impl Farm {
    /// `rapl`: give the agent a (fake) RAPL tree too.
    fn start(rapl: bool) -> (Farm, Option<FakeRapl>) {
        let dir = cluster::shared_dir();
        let d = dir.path();
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms"])
            .start();
        let powercap = d.join("powercap");
        let fake = rapl.then(|| FakeRapl::start(&powercap));
        std::fs::write(d.join("model.toml"), MODEL).unwrap();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .args(["--status-addr", "none", "--idle-window", "0s"])
            .path("--power-model", "model.toml")
            .path("--powercap-root", &powercap)
            .spawn();
        let farm = Farm {
            cli: Cli::new(d, &url, KEY),
            dir,
            _procs: vec![master, agent],
        };
        (farm, fake)
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }

    /// Submits a short real encode and waits for it; the finished job's JSON.
    fn encode(&self) -> serde_json::Value {
        self.encode_with(&["--output-mode", "null"])
    }

    fn encode_with(&self, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["jobs", "submit", "--scenario", "720p-h264", "--duration", "3"];
        args.extend_from_slice(extra);
        let job = self.cli.json(&args);
        let id = job["id"].as_str().unwrap().to_string();
        let done = self.cli.json(&["jobs", "wait", &id, "--timeout", "120s"]);
        assert_eq!(done[0]["state"], "completed", "{:#}\n{}", done[0], self.logs());
        done[0].clone()
    }
}

#[test]
fn without_rapl_the_agent_estimates_energy_from_its_power_model_and_says_so() {
    let (farm, _) = Farm::start(false);
    let job = farm.encode();
    let e = &job["result"]["energy"];
    assert_eq!(e["source"], "model:test-vm", "{e:#}\n{}", farm.logs());
    assert_eq!(e["estimated"], true, "{e:#}");
    assert_eq!(e["model"], "test-vm", "{e:#}");
    assert_eq!(e["attribution"], "cgroup-cpu-share", "{e:#}");
    let joules = e["energy_joules"].as_f64().unwrap();
    let wall = e["wall_s"].as_f64().unwrap();
    // The job gets its CPU share of at most the model's full-load power.
    assert!(joules > 0.0, "{e:#}");
    assert!(
        joules <= 120.0 * (wall + 0.5),
        "{joules} J in {wall} s is more than the model allows"
    );
    let id = job["id"].as_str().unwrap();
    let text = farm.cli.output(&["jobs", "status", id]);
    let text = String::from_utf8_lossy(&text.stdout);
    println!("{text}");
    assert!(
        text.contains(&format!(
            "energy: {joules:.2} J (model:test-vm, estimated (model test-vm))"
        )),
        "{text}"
    );
}

/// A job asking for PSNR gets its score and, with the (estimated) energy of its encode, the
/// score per joule, marked estimated.
#[test]
fn a_jobs_quality_per_joule_is_shown_with_its_estimated_energy() {
    let (farm, _) = Farm::start(false);
    let job = farm.encode_with(&["--output-mode", "file", "--quality", "psnr"]);
    let q = &job["result"]["quality"];
    assert_eq!(q["metric"], "psnr", "{job:#}");
    let db = q["score"].as_f64().unwrap_or_else(|| panic!("{job:#}"));
    assert!((30.0..80.0).contains(&db), "{db}");
    let joules = job["result"]["energy"]["energy_joules"].as_f64().unwrap();
    // The quality pass's own energy: estimated from the same model, apart from the encode's.
    let pass = &q["energy"];
    assert_eq!(pass["source"], "model:test-vm", "{job:#}");
    assert_eq!(
        (&pass["estimated"], &pass["model"]),
        (&serde_json::json!(true), &serde_json::json!("test-vm"))
    );
    assert!(pass["energy_joules"].as_f64().unwrap() > 0.0, "{pass:#}");
    let text = farm.cli.output(&["jobs", "status", job["id"].as_str().unwrap()]);
    let text = String::from_utf8_lossy(&text.stdout);
    println!("{text}");
    let per_joule = format!("{:.4} dB/J of the encode, estimated (model test-vm)", db / joules);
    assert!(
        text.contains(&format!("quality: psnr {db:.3} dB (quality pass ")),
        "{text}"
    );
    assert!(text.contains(&per_joule), "{text}");
}

#[test]
fn measured_rapl_wins_over_the_power_model() {
    let (farm, _rapl) = Farm::start(true);
    let job = farm.encode();
    let e = &job["result"]["energy"];
    assert_eq!(e["source"], "rapl", "{e:#}\n{}", farm.logs());
    assert!(e.get("estimated").is_none(), "{e:#}");
    assert!(e.get("model").is_none(), "{e:#}");
}

#[test]
fn a_bad_power_model_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    std::fs::write(&model, r#"{"name":"x","idle_watts":90,"full_load_watts":30}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ffrtmp-agent"))
        .args([
            "--master",
            "https://127.0.0.1:1",
            "--check-config",
            "--executor",
            "noop",
        ])
        .arg("--power-model")
        .arg(&model)
        .env("MASTER_API_KEY", KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("full_load_watts (30) is below idle_watts (90)"),
        "{stderr}"
    );
}

/// Ten runs of one scenario, estimated with `model` or measured when `None`.
fn runs(model: Option<&str>) -> Vec<ffrtmp_power::compare::RunSample> {
    (0..10)
        .map(|i| ffrtmp_power::compare::RunSample {
            frames: 90,
            energy_joules: Some(22.5),
            energy_model: model.map(String::from),
            ..ffrtmp_power::compare::RunSample::new("720p-h264", i, 0.25, 120.0 + f64::from(i % 3), 3.0)
        })
        .collect()
}

#[test]
fn bench_compare_refuses_estimated_against_measured_energy_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("measured.json");
    let test = dir.path().join("estimated.csv");
    ffrtmp_power::compare::write_json(std::fs::File::create(&base).unwrap(), &runs(None)).unwrap();
    ffrtmp_power::compare::write_csv(std::fs::File::create(&test).unwrap(), &runs(Some("test-vm"))).unwrap();
    let compare = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
            .args(["bench", "compare"])
            .arg(&base)
            .arg(&test)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = compare(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "refusing to compare estimated with measured energy (baseline: measured; test: estimated (model test-vm))"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-estimated"), "{stderr}");
    let out = compare(&["--allow-estimated"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: comparing energy of different kinds (baseline: measured; test: estimated (model test-vm))"
        ),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("720p-h264: no change"));
    // Estimated against estimated with the same model compares as before.
    let out = Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args(["bench", "compare"])
        .arg(&test)
        .arg(&test)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}
