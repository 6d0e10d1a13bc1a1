//! `parameters.quality` with the real binaries: an agent metered by a fake RAPL tree (50 W)
//! measures its quality pass's energy apart from the encode's, results and `ffrtmp jobs
//! status` show quality per joule of the encode, the efficiency table has its median, and the
//! registration advertises VMAF only where the node's ffmpeg has libvmaf.

use std::process::{Command, Output};

const KEY: &str = "quality-test-key-0123456789abcdef";

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

/// The fake RAPL tree's steady power.
const FAKE_WATTS: f64 = 50.0;

/// A master and one agent on a fake RAPL tree.
struct Farm {
    dir: tempfile::TempDir,
    cli: Cli,
    _rapl: FakeRapl,
    _procs: Vec<Proc>,
}

impl Farm {
    fn start() -> Farm {
        let dir = cluster::shared_dir();
        let d = dir.path();
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms"])
            .start();
        let rapl = FakeRapl::start(&d.join("powercap"));
        let agent = cluster::agent(d, &url, KEY)
            .args(["--name", "metered", "--heartbeat-interval", "500ms"])
            .args(["--claim-wait", "2s", "--status-addr", "none", "--idle-window", "0s"])
            .path("--powercap-root", "powercap")
            .spawn();
        Farm {
            cli: Cli::new(d, &url, KEY),
            dir,
            _rapl: rapl,
            _procs: vec![master, agent],
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli.output(args)
    }

    fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        self.cli.json(args)
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }

    /// Submits a short real encode to a file with `quality` and waits for it.
    fn encode(&self, quality: &str) -> serde_json::Value {
        let args = [
            "jobs",
            "submit",
            "--scenario",
            "720p-h264",
            "--duration",
            "2",
            "--output-mode",
            "file",
            "--quality",
            quality,
        ];
        let job = self.cli_json(&args);
        let id = job["id"].as_str().unwrap().to_string();
        let done = self.cli_json(&["jobs", "wait", &id, "--timeout", "120s"]);
        assert_eq!(done[0]["state"], "completed", "{:#}\n{}", done[0], self.logs());
        done[0].clone()
    }
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// The quality pass runs in a cgroup of its own, so the meter attributes its energy apart:
/// `quality.energy` is measured (RAPL, CPU share) over the pass's wall time, and neither it nor
/// the encode's report holds more than the node's power over its own time.
#[test]
fn the_quality_pass_energy_is_measured_apart_from_the_encodes() {
    let farm = Farm::start();
    let job = farm.encode("psnr");
    let result = &job["result"];
    let (encode, q) = (&result["energy"], &result["quality"]);
    let pass = &q["energy"];
    assert_eq!(pass["source"], "rapl", "{job:#}\n{}", farm.logs());
    assert_eq!(pass["attribution"], "cgroup-cpu-share", "{pass:#}");
    assert!(pass.get("estimated").is_none(), "{pass:#}");
    let (pass_j, pass_s) = (f(&pass["energy_joules"]), f(&q["wall_s"]));
    assert!(pass_j > 0.0, "the pass used CPU, so energy: {pass:#}");
    assert_eq!(f(&pass["wall_s"]), pass_s, "over the pass's own time: {pass:#}");
    // Slack for the sampler's interval edges.
    assert!(pass_j <= FAKE_WATTS * (pass_s + 1.0), "{pass_j} J in {pass_s} s");
    let (encode_j, encode_s) = (f(&encode["energy_joules"]), f(&result["wall_s"]));
    assert!(
        encode_j <= FAKE_WATTS * (encode_s + 1.0),
        "the encode's {encode_j} J in {encode_s} s must not hold the pass's"
    );

    // Quality per joule: the score over the encode's joules, in the result and the status.
    let score = f(&q["score"]);
    let per_joule = f(&q["score_per_joule"]);
    assert!((per_joule - score / encode_j).abs() < 1e-9, "{q:#}");
    let id = job["id"].as_str().unwrap();
    let out = farm.cli(&["jobs", "status", id]);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        text.contains(&format!(
            "quality: psnr {score:.3} dB (quality pass {pass_s:.2} s, {pass_j:.2} J (rapl), not in the encode's energy), {per_joule:.4} dB/J of the encode"
        )),
        "{text}"
    );

    // The efficiency table's row has the median quality per joule (one job: its own).
    let table = farm.cli_json(&["nodes", "efficiency", "--window", "1h"]);
    let psnr = &table["rows"][0]["quality"]["psnr"];
    assert!((f(&psnr["per_joule"]) - per_joule).abs() < 1e-9, "{table:#}");
    let out = farm.cli(&["nodes", "efficiency", "--window", "1h"]);
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(text.contains(&format!("{per_joule:.4}/J")), "{text}");
}

/// Registration says which quality metrics the node's ffmpeg computes (Debian's ffmpeg: PSNR
/// and SSIM, no VMAF); a job asking for VMAF still runs there and says why it has no score.
#[test]
fn registration_advertises_vmaf_only_with_libvmaf_and_a_vmaf_job_still_runs() {
    let filters = Command::new("ffmpeg")
        .args(["-hide_banner", "-filters"])
        .output()
        .expect("ffmpeg is needed (scripts/test.sh installs it)");
    let has_libvmaf = String::from_utf8_lossy(&filters.stdout).contains(" libvmaf ");
    let farm = Farm::start();
    let job = farm.encode("vmaf");
    let nodes = farm.cli_json(&["nodes", "list"]);
    let metrics = &nodes[0]["registration"]["quality_metrics"];
    let mut expected = vec!["psnr", "ssim"];
    if has_libvmaf {
        expected.push("vmaf");
    }
    assert_eq!(*metrics, serde_json::json!(expected), "{nodes:#}");
    let out = farm.cli(&["nodes", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("metered"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text.lines().next().unwrap().ends_with("QUALITY"), "{text}");
    assert!(line.trim_end().ends_with(&expected.join(",")), "{text}");
    let q = &job["result"]["quality"];
    if has_libvmaf {
        assert!(q["score"].is_number(), "{q:#}");
    } else {
        assert!(q.get("score").is_none(), "{q:#}");
        let reason = q["unavailable_reason"].as_str().unwrap();
        assert!(reason.contains("no libvmaf"), "{reason}");
        // No pass ran, so no energy of one.
        assert!(q.get("energy").is_none(), "{q:#}");
    }
}
