//! Metrics as an operator's Prometheus sees them: the real master and agent binaries (the
//! agent's status endpoint over TLS with a read-only key), a real ffmpeg encode, `promtool
//! check metrics` on both outputs, a real `prometheus` scraping both, queried through its
//! HTTP API, and the Grafana dashboard's queries checked against the live series.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ffrtmp_http::{CallOptions, ClientConfig, HttpClient};

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::{log_file, wait_for_file, Proc};

#[path = "support/cluster.rs"]
mod cluster;
use cluster::{logs, Cli};

const KEY: &str = "prometheus-test-all-roles-0001";
const READ_KEY: &str = "prometheus-test-read-only-0001";
const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/ffrtmp.json");

/// `GET base/path` with a bearer key, trusting `ca` (plain HTTP when `ca` is `None`).
fn get(base: &str, ca: Option<&Path>, key: &str, path: &str) -> (u16, String) {
    let mut config = ClientConfig::new(base, key);
    match ca {
        Some(ca) => config = config.with_ca_cert(ca),
        None => config.allow_plaintext = true,
    }
    let client = HttpClient::new(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(client.send(http::Method::GET, path, None, CallOptions::default()))
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    (r.status.as_u16(), String::from_utf8_lossy(&r.body).into_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `promtool check metrics` on an exposition; panics with its complaints.
fn promtool_check(what: &str, text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian package prometheus; scripts/test.sh installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics on the {what}'s metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Metric names a PromQL expression uses: identifiers of ffrtmp's and the process metrics.
fn metric_names(expr: &str) -> Vec<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("ffrtmp_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

/// Whether an exposition has a sample of `name`.
fn exposes(text: &str, name: &str) -> bool {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
}

/// The `expr` of every target of every panel of the dashboard.
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for panel in d["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

struct Cluster {
    dir: tempfile::TempDir,
    url: String,
    cli: Cli,
    agent_status: String,
    _procs: Vec<Proc>,
    _rapl: FakeRapl,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = cluster::shared_dir();
        let d = dir.path();
        std::fs::write(d.join("read.keys"), format!("{READ_KEY}\n")).unwrap();
        let rapl = FakeRapl::start(&d.join("powercap"));
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms"])
            .path("--read-key-file", "read.keys")
            .start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .args(["--name", "prom-agent", "--idle-window", "1s"])
            .args(["--status-addr", "127.0.0.1:0"])
            .path("--status-url-file", "agent.status")
            .path("--status-tls-dir", "status-tls")
            .path("--status-key-file", "read.keys")
            .path("--powercap-root", "powercap")
            .spawn();
        let agent_status = wait_for_file(&d.join("agent.status"), Duration::from_secs(30))
            .trim()
            .to_string();
        Cluster {
            cli: Cli::new(d, &url, KEY),
            dir,
            url,
            agent_status,
            _procs: vec![agent, master],
            _rapl: rapl,
        }
    }

    fn master_ca(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    fn agent_ca(&self) -> PathBuf {
        self.dir.path().join("status-tls/cert.pem")
    }

    fn master_metrics(&self) -> String {
        let (code, body) = get(&self.url, Some(&self.master_ca()), READ_KEY, "/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }

    fn agent_metrics(&self) -> String {
        let (code, body) = get(&self.agent_status, Some(&self.agent_ca()), READ_KEY, "/metrics");
        assert_eq!(code, 200, "{body}");
        body
    }

    /// Submits a real 1 s 720p encode and waits until it completed.
    fn encode_one(&self) {
        let job = self
            .cli
            .json(&["jobs", "submit", "--scenario", "720p-h264", "--duration", "1"]);
        let id = job["id"].as_str().unwrap().to_string();
        let done = self.cli.json(&["jobs", "wait", &id, "--timeout", "120s"]);
        assert_eq!(done[0]["state"], "completed", "{done:#}\n{}", logs(self.dir.path()));
    }
}

/// Waits until `check` passes on fresh master and agent outputs.
fn wait_for_metrics(
    c: &Cluster,
    within: Duration,
    check: impl Fn(&str, &str) -> Result<(), String>,
) -> (String, String) {
    let deadline = Instant::now() + within;
    loop {
        let (m, a) = (c.master_metrics(), c.agent_metrics());
        match check(&m, &a) {
            Ok(()) => return (m, a),
            Err(why) if Instant::now() >= deadline => {
                panic!("{why}\n--- master\n{m}\n--- agent\n{a}\n{}", logs(c.dir.path()))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_master_and_agent_and_the_dashboard_uses_live_names() {
    let c = Cluster::start();

    // Bad input first: neither endpoint answers /metrics without a key, nor to a wrong one.
    assert_eq!(
        get(&c.url, Some(&c.master_ca()), "not-a-key-0000000000", "/metrics").0,
        401
    );
    assert_eq!(
        get(&c.agent_status, Some(&c.agent_ca()), "not-a-key-0000000000", "/metrics").0,
        401
    );
    assert_eq!(
        get(&c.agent_status, Some(&c.agent_ca()), "not-a-key-0000000000", "/health").0,
        200
    );
    assert!(c.agent_status.starts_with("https://"), "{}", c.agent_status);

    c.encode_one();
    let exprs = dashboard_exprs();
    let (master, agent) = wait_for_metrics(&c, Duration::from_secs(30), |m, a| {
        for name in exprs.iter().flat_map(|e| metric_names(e)) {
            if !exposes(m, &name) && !exposes(a, &name) {
                return Err(format!(
                    "the dashboard uses {name}, which neither master nor agent exposes"
                ));
            }
        }
        Ok(())
    });
    for needle in [
        r#"ffrtmp_scenario_frames_total{scenario="720p30-h264"} "#,
        r#"ffrtmp_queue_depth{queue="default",priority="medium"} 0"#,
        r#"ffrtmp_nodes{status="online"} 1"#,
        "ffrtmp_job_queue_wait_seconds_count 1",
        "ffrtmp_build_info{version=",
        "process_start_time_seconds ",
        "ffrtmp_efficiency_window_seconds 86400",
        r#",encoder="ffmpeg/libx264",scenario="720p-h264",energy="measured"} "#,
    ] {
        assert!(master.contains(needle), "master lacks {needle}\n{master}");
    }
    // The job just measured is in the efficiency series: its node's row, measured J/frame.
    assert!(
        master
            .lines()
            .any(|l| l.starts_with("ffrtmp_efficiency_joules_per_frame{") && l.contains(r#"energy="measured""#)),
        "{master}"
    );
    for needle in [
        r#"ffrtmp_agent_jobs_total{outcome="completed"} 1"#,
        "process_resident_memory_bytes ",
    ] {
        assert!(agent.contains(needle), "agent lacks {needle}\n{agent}");
    }
    promtool_check("master", &master);
    promtool_check("agent", &agent);

    // A real Prometheus scraping both over TLS with the read-only key.
    let d = c.dir.path();
    std::fs::write(d.join("read.key"), READ_KEY).unwrap();
    let target = |url: &str| url.trim_start_matches("https://").to_string();
    let job = |name: &str, url: &str, ca: &Path| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    scrape_interval: 1s\n    authorization:\n      \
             credentials_file: {}\n    tls_config:\n      ca_file: {}\n    static_configs:\n      \
             - targets: ['{}']\n",
            d.join("read.key").display(),
            ca.display(),
            target(url)
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{}{}",
        job("ffrtmp-master", &c.url, &c.master_ca()),
        job("ffrtmp-agent", &c.agent_status, &c.agent_ca())
    );
    std::fs::write(d.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", d.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log_file(d, "prometheus.log"))
        .spawn()
        .expect("prometheus is needed (Debian package prometheus; scripts/test.sh installs it)");
    let _prometheus = Proc(prometheus);
    let api = format!("http://127.0.0.1:{port}");
    let query = |q: &str| -> Option<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", encode(q));
        let mut config = ClientConfig::new(&api, "unused-key-000000");
        config.allow_plaintext = true;
        let client = HttpClient::new(config).ok()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(client.send(http::Method::GET, &path, None, CallOptions::default()))
            .ok()?;
        serde_json::from_slice(&r.body).ok()
    };
    let results = |v: &serde_json::Value| v["data"]["result"].as_array().cloned().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let wanted = [
        r#"up{job=~"ffrtmp-.*"} == 1"#,
        r#"ffrtmp_queue_depth{job="ffrtmp-master"}"#,
        r#"ffrtmp_scenario_frames_total{scenario="720p30-h264"} > 0"#,
        r#"ffrtmp_scenario_energy_joules_total{scenario="720p30-h264"} > 0"#,
        r#"ffrtmp_agent_jobs_total{job="ffrtmp-agent",outcome="completed"} == 1"#,
    ];
    let expected_len = [2, 9, 1, 1, 1];
    loop {
        let answers: Vec<Option<serde_json::Value>> = wanted.iter().map(|q| query(q)).collect();
        let done = answers
            .iter()
            .zip(expected_len)
            .all(|(a, n)| a.as_ref().is_some_and(|a| results(a).len() == n));
        if done {
            println!(
                "Prometheus answered {}: {}",
                wanted[0],
                answers[0].as_ref().unwrap()["data"]
            );
            println!(
                "Prometheus answered {}: {}",
                wanted[2],
                answers[2].as_ref().unwrap()["data"]
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the series: {answers:?}\n{}",
            logs(d)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Every dashboard query is valid PromQL that Prometheus evaluates.
    for expr in dashboard_exprs() {
        let answer = query(&expr).unwrap_or_else(|| panic!("no answer to {expr}"));
        assert_eq!(answer["status"], "success", "{expr}: {answer}");
    }
}

#[test]
fn the_agent_refuses_an_open_status_endpoint_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ffrtmp-agent"))
        .args(["--master", "https://127.0.0.1:9", "--executor", "noop"])
        .args(["--status-addr", "0.0.0.0:0"])
        .arg("--output-dir")
        .arg(dir.path().join("out"))
        .env("MASTER_API_KEY", KEY)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("--status-key-file"), "{err}");
}
