//! Live jobs through the real binaries: an agent configured with `--allow-output-prefix`
//! pushes a job's stream to a real nginx RTMP server, refuses a destination outside its
//! prefixes before ffmpeg starts, and reports the stream's QoE in the job's result, with
//! its energy as watts while streaming and joules per minute of stream.

use std::process::Command;
use std::time::Duration;

#[path = "../../ffrtmp-exec/tests/support/rtmp_server.rs"]
mod rtmp_server;
use rtmp_server::{probe_live, RtmpServer};

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

const KEY: &str = "live-test-key-0123456789abcdef";

/// A master and one agent allowed to push under `prefix`.
struct Cluster {
    _dir: tempfile::TempDir,
    cli: Cli,
    _procs: Vec<Proc>,
    _rapl: FakeRapl,
}

impl Cluster {
    fn start(prefix: &str) -> Cluster {
        let dir = cluster::shared_dir();
        let d = dir.path();
        // The node draws a steady 50 W, read through the same powercap path as real RAPL.
        let rapl = FakeRapl::start(&d.join("powercap"));
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms"])
            .start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .args(["--status-addr", "none", "--idle-window", "0s", "--executor", "ffmpeg"])
            .args(["--allow-output-prefix", prefix])
            .path("--powercap-root", "powercap")
            .spawn();
        Cluster {
            cli: Cli::new(d, &url, KEY),
            _dir: dir,
            _procs: vec![agent, master],
            _rapl: rapl,
        }
    }

    fn submit_live(&self, output_url: &str, seconds: &str) -> String {
        let job = self.cli.json(&[
            "jobs",
            "submit",
            "--scenario",
            "live-rtmp",
            "--engine",
            "ffmpeg",
            "--duration",
            seconds,
            "--preset",
            "ultrafast",
            "--bitrate",
            "1M",
            "--output-mode",
            "rtmp",
            "--output-url",
            output_url,
        ]);
        job["id"].as_str().unwrap().to_string()
    }

    /// Polls the job until it is completed or failed.
    fn wait(&self, id: &str) -> serde_json::Value {
        self.cli
            .wait_state(id, &["completed", "failed"], Duration::from_secs(90))
    }
}

#[test]
fn the_agent_pushes_only_to_its_allowed_prefixes_and_reports_the_streams_qoe() {
    let server = RtmpServer::start();
    let cluster = Cluster::start(&server.prefix());

    let stolen = "rtmp://127.0.0.2:1935/live/stolen";
    let refused = cluster.submit_live(stolen, "4");
    let j = cluster.wait(&refused);
    assert_eq!(j["state"], "failed", "{j:#}");
    assert_eq!(j["error"]["kind"], "destination_refused", "{j:#}");
    assert_eq!(
        j["error"]["message"],
        format!(
            "destination {stolen} refused: this node pushes only to {}*",
            server.prefix()
        )
    );
    // Terminal: refused once, never retried.
    assert_eq!(j["attempt"], 1, "{j:#}");

    let url = server.url("agent-e2e");
    let id = cluster.submit_live(&url, "6");
    let probed = probe_live(&url, Duration::from_secs(60));
    println!("agent stream: ffprobe {url}: {}", probed.line);
    assert_eq!(
        (probed.codec.as_str(), probed.width, probed.height),
        ("h264", 1280, 720)
    );
    let j = cluster.wait(&id);
    assert_eq!(j["state"], "completed", "{j:#}");
    let live = &j["result"]["live"];
    println!("agent QoE: {live}");
    println!("agent energy: {}", j["result"]["energy"]);
    let uptime = live["uptime_s"].as_f64().unwrap();
    assert!((5.5..=6.5).contains(&uptime), "{live}");
    assert_eq!(live["reconnects"], 0);
    assert_eq!(live["target_bitrate_kbps"], 1000.0);
    assert!(live["speed"].as_f64().unwrap() > 0.5, "{live}");
    // Energy while streaming: the job's share of the node's 50 W, as watts and as joules
    // per minute of stream, consistent with the joules attributed to the job.
    let joules = j["result"]["energy"]["energy_joules"].as_f64().unwrap();
    let watts = live["watts"].as_f64().unwrap();
    let per_minute = live["joules_per_minute"].as_f64().unwrap();
    // The job's joules include its start-up before the stream was up, hence the second.
    let most = 50.0 * (uptime + 1.0) / uptime;
    assert!(
        joules > 0.0 && watts > 0.0 && watts <= most,
        "{joules} J, {watts} W: {j:#}"
    );
    assert!(
        (watts - joules / uptime).abs() < 0.01 * watts,
        "{watts} W vs {joules} J / {uptime} s"
    );
    assert!(
        (per_minute - watts * 60.0).abs() < 0.01 * per_minute,
        "{per_minute} J/min vs {watts} W"
    );

    // SLA from that history: the stream met it, the refused push missed it.
    let sla = cluster.cli.json(&["sla", "--window", "1h"]);
    assert_eq!(sla["total"]["met"], 1, "{sla:#}");
    assert_eq!(sla["total"]["missed"], 1, "{sla:#}");
    assert_eq!(sla["total"]["compliance_percent"], 50.0, "{sla:#}");
    assert_eq!(
        sla["by_classification"]["production"]["missed_by_reason"]["failed:destination_refused"],
        1
    );
    assert_eq!(sla["by_queue"]["default"]["met"], 1, "{sla:#}");
    let out = cluster.cli.output(&["sla", "--window", "1h"]);
    let table = String::from_utf8_lossy(&out.stdout);
    println!("{table}");
    assert!(
        table.lines().any(|l| l.starts_with("all") && l.contains("50.0%")),
        "{table}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args(["--master", cluster.cli.url(), "sla", "--window", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid window"),
        "{bad:?}"
    );
}
