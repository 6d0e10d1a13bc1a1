//! Users coming from the original Go project (ffmpeg-rtmp): the commands of its README, typed as
//! written there, run against the real binaries. Each either works or fails with a usage error
//! that names our equivalent. The README itself is not read (it is not part of this
//! repository); its commands and flags are in the tables below.
//!
//! Substitutions, all outside the flags under test: `MASTER_IP:8080` is the test's master
//! (`--port 0` on 127.0.0.2, so the certificate must cover the --bind address), `--ca-cert`
//! replaces `--insecure-skip-verify`, and processes get scratch directories. A too-short API key
//! makes a binary stop right after parsing its flags where running on would not end.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/offline.rs"]
mod offline;
use offline::text;

const KEY: &str = "readme-test-key-0123456789abcdef";

/// A flag and the value the README gives it, if any.
type Flag = (&'static str, Option<&'static str>);

/// Every flag the original README uses, by command, with a value as written there: 33 in all.
const ORIGINAL_FLAGS: &[(&str, &[Flag])] = &[
    (
        "master",
        &[
            ("--port", Some("8080")),
            ("--api-key", Some("short")),
            ("--max-retries", Some("5")),
            ("--scheduler-interval", Some("10s")),
        ],
    ),
    (
        "agent",
        &[
            ("--register", None),
            ("--master", Some("https://127.0.0.1:1")),
            ("--api-key", Some(KEY)),
            ("--max-concurrent-jobs", Some("4")),
            ("--poll-interval", Some("3s")),
            ("--insecure-skip-verify", None),
            ("--heartbeat-interval", Some("30s")),
        ],
    ),
    (
        "jobs submit",
        &[
            ("--master", Some("http://127.0.0.1:1")),
            ("--scenario", Some("1080p-h264")),
            ("--bitrate", Some("5M")),
            ("--duration", Some("300")),
            ("--queue", Some("live")),
            ("--priority", Some("high")),
            ("--engine", Some("gstreamer")),
            ("--cpu-limit", Some("200")),
        ],
    ),
    (
        "config recommend",
        &[("--environment", Some("production")), ("--output", Some("text"))],
    ),
    (
        "run",
        &[
            ("--job-id", Some("transcode-001")),
            ("--sla-eligible", None),
            ("--cpu-quota", Some("200")),
            ("--memory-limit", Some("4096")),
        ],
    ),
    (
        "attach",
        &[
            ("--pid", Some("12345")),
            ("--job-id", Some("existing-job-042")),
            ("--cpu-weight", Some("150")),
            ("--nice", Some("-5")),
        ],
    ),
    (
        "watch",
        &[
            ("--scan-interval", Some("10s")),
            ("--enable-state", None),
            ("--enable-retry", None),
            ("--watch-config", Some("/nonexistent/watch-config.yaml")),
        ],
    ),
];

/// How to make each command stop soon after parsing: its subcommand words, options (a short
/// API key, zero jobs, a plain-HTTP URL with a key, a pid that cannot exist, a missing rules
/// file) and trailing arguments. A flag under test that is among the options keeps the
/// option's value.
type FailFast = (
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

fn fail_fast(command: &str) -> FailFast {
    match command {
        "master" => (&[], &[("--port", "0"), ("--api-key", "short")], &[]),
        "agent" => (&[], &[("--api-key", KEY), ("--max-concurrent-jobs", "0")], &[]),
        "jobs submit" => (
            &["jobs", "submit"],
            &[("--master", "http://127.0.0.1:1"), ("--scenario", "720p-h264")],
            &[],
        ),
        "config recommend" => (&["config", "recommend"], &[], &[]),
        "run" => (&["run"], &[], &["--", "true"]),
        "attach" => (&["attach"], &[("--pid", "2147483646")], &[]),
        "watch" => (
            &["watch"],
            &[("--watch-config", "/nonexistent/watch.yaml"), ("--once", "")],
            &[],
        ),
        other => panic!("no fail-fast arguments for {other}"),
    }
}

/// The arguments for `flag` (with `value`) on `command`, per [`fail_fast`].
fn flag_args(command: &str, flag: &'static str, value: Option<&'static str>) -> Vec<&'static str> {
    let (words, options, rest) = fail_fast(command);
    let mut args: Vec<&str> = words.to_vec();
    for (option, v) in options {
        args.push(option);
        if !v.is_empty() {
            args.push(v);
        }
    }
    if !options.iter().any(|(o, _)| *o == flag) {
        args.push(flag);
        args.extend(value);
    }
    args.extend_from_slice(rest);
    args
}

/// Flags refused, with what the message must name instead; every other flag is accepted.
const REFUSED: &[(&str, &str, &[&str])] = &[
    ("master", "--max-retries", &["ffrtmp jobs submit --max-retries"]),
    (
        "agent",
        "--insecure-skip-verify",
        &["--ca-cert", "FFRTMP_CA_CERT", "never skipped"],
    ),
    ("run", "--sla-eligible", &["leave it out"]),
];

#[test]
fn the_command_line_refuses_skipping_verification_too() {
    let out = run(
        "ffrtmp",
        &[
            "jobs",
            "submit",
            "--master",
            "https://127.0.0.1:1",
            "--scenario",
            "720p-h264",
            "--insecure-skip-verify",
        ],
    );
    assert_refused(&out, "--insecure-skip-verify", &["--ca-cert", "FFRTMP_CA_CERT"]);
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(name: &str) -> Command {
    let path = match name {
        "master" => env!("CARGO_BIN_EXE_ffrtmp-master"),
        "agent" => env!("CARGO_BIN_EXE_ffrtmp-agent"),
        _ => env!("CARGO_BIN_EXE_ffrtmp"),
    };
    let mut cmd = Command::new(path);
    for var in ["FFRTMP_MASTER", "FFRTMP_CA_CERT", "MASTER_API_KEY", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    // A user error must not print a Rust backtrace, even with backtraces asked for.
    cmd.env("RUST_BACKTRACE", "1");
    cmd
}

fn run(name: &str, args: &[&str]) -> Output {
    bin(name).args(args).env("MASTER_API_KEY", KEY).output().unwrap()
}

/// A usage error (exit 2) that names the flag and each of `names`, and suggests no look-alike.
fn assert_refused(out: &Output, flag: &str, names: &[&str]) {
    let t = text(out);
    assert_eq!(out.status.code(), Some(2), "{flag}: {t}");
    assert!(t.contains(&format!("{flag} is not supported")), "{t}");
    for name in names {
        assert!(t.contains(name), "{flag} must name {name}: {t}");
    }
    assert!(!t.contains("similar argument") && !t.contains("tip:"), "{t}");
}

/// Past parsing: not a usage error, nothing "unexpected", no backtrace.
fn assert_parsed(out: &Output, what: &str) {
    let t = text(out);
    assert_ne!(out.status.code(), Some(2), "{what}: {t}");
    assert!(
        !t.contains("unexpected argument") && !t.contains("not supported"),
        "{what}: {t}"
    );
    assert!(!t.to_lowercase().contains("backtrace"), "{what}: {t}");
}

struct Master {
    _proc: Proc,
    dir: tempfile::TempDir,
    url: String,
}

impl Master {
    /// `./bin/master --port 0 --api-key "$MASTER_API_KEY" <extra>` on `bind`.
    fn start(bind: &str, extra: &[&str]) -> Master {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ready = d.join("ready");
        let proc = bin("master")
            .args(["--port", "0", "--api-key", KEY, "--bind", bind])
            .args(extra)
            .arg("--db")
            .arg(d.join("master.db"))
            .arg("--ready-file")
            .arg(&ready)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(d.join("master.log")).unwrap()))
            .spawn()
            .unwrap();
        let mut proc = Proc(proc);
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Some(url) = std::fs::read_to_string(&ready).ok().filter(|u| !u.is_empty()) {
                break url;
            }
            let exited = proc.0.try_wait().unwrap();
            let log = || std::fs::read_to_string(d.join("master.log")).unwrap_or_default();
            assert!(exited.is_none(), "the master exited ({exited:?}): {}", log());
            assert!(Instant::now() < deadline, "the master did not start: {}", log());
            std::thread::sleep(Duration::from_millis(50));
        };
        Master { _proc: proc, dir, url }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls/cert.pem")
    }

    /// `./bin/ffrtmp <args>` against this master (with its certificate).
    fn cli(&self, args: &[&str]) -> Output {
        bin("ffrtmp")
            .args(args)
            .args(["--master", &self.url])
            .arg("--ca-cert")
            .arg(self.cert())
            .env("MASTER_API_KEY", KEY)
            .output()
            .unwrap()
    }
}

#[test]
fn every_original_flag_is_accepted_or_refused_with_our_equivalent() {
    let total: usize = ORIGINAL_FLAGS.iter().map(|(_, f)| f.len()).sum();
    assert_eq!(total, 33);
    for (command, flags) in ORIGINAL_FLAGS {
        for (flag, value) in *flags {
            let binary = match *command {
                "master" | "agent" => *command,
                _ => "ffrtmp",
            };
            let out = run(binary, &flag_args(command, flag, *value));
            match REFUSED.iter().find(|(c, f, _)| c == command && f == flag) {
                Some((_, _, names)) => assert_refused(&out, flag, names),
                None => assert_parsed(&out, &format!("{command} {flag}")),
            }
        }
    }
}

#[test]
fn the_original_master_and_agent_commands_stop_at_our_checks_not_at_parsing() {
    // The master as written, up to its first check after parsing (the key's length).
    let out = run(
        "master",
        &["--port", "8080", "--api-key", "short", "--scheduler-interval", "10s"],
    );
    assert_parsed(&out, "master");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("Error: every API key must be at least 16 characters"));
    // The agent as written (without --insecure-skip-verify), up to its first check.
    let out = run(
        "agent",
        &[
            "--register",
            "--master",
            "https://127.0.0.1:1",
            "--api-key",
            KEY,
            "--max-concurrent-jobs",
            "0",
            "--poll-interval",
            "3s",
            "--heartbeat-interval",
            "30s",
        ],
    );
    assert_parsed(&out, "agent");
    assert!(
        text(&out).contains("--max-concurrent-jobs must be at least 1"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_readme_commands_work_against_a_real_master() {
    // As written, on 127.0.0.2: the certificate must cover the --bind address.
    let master = Master::start("127.0.0.2", &["--scheduler-interval", "10s"]);
    assert!(master.url.starts_with("https://127.0.0.2:"), "{}", master.url);

    // Submit, with every submit flag of the README; the bind address verifies (it is in the
    // self-signed certificate).
    let submits: &[&[&str]] = &[
        &["--scenario", "1080p-h264", "--bitrate", "5M", "--duration", "300"],
        &[
            "--scenario",
            "live-4k",
            "--queue",
            "live",
            "--priority",
            "high",
            "--duration",
            "3600",
        ],
        &["--scenario", "live-stream", "--engine", "auto"],
        &["--scenario", "transcode", "--engine", "ffmpeg"],
        &["--scenario", "live-rtmp", "--engine", "gstreamer"],
        &["--scenario", "1080p-h264", "--duration", "600", "--cpu-limit", "200"],
    ];
    let mut ids = Vec::new();
    for args in submits {
        let mut full = vec!["jobs", "submit"];
        full.extend_from_slice(args);
        let out = master.cli(&full);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let job = |id: &str| -> serde_json::Value {
        let out = master.cli(&["--output", "json", "jobs", "status", id]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(job(&ids[1])["spec"]["queue"], "live");
    assert_eq!(job(&ids[1])["spec"]["priority"], "high");
    assert_eq!(job(&ids[3])["spec"]["engine"], "ffmpeg");
    assert_eq!(job(&ids[4])["spec"]["engine"], "gstreamer");
    assert_eq!(job(&ids[5])["spec"]["resource_limits"]["max_cpu_percent"], 200);
    let out = master.cli(&["jobs", "status", &ids[0]]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("1080p-h264"));

    // The agent as written, with --ca-cert for --insecure-skip-verify; it registers.
    let d = master.dir.path();
    let agent = bin("agent")
        .args(["--register", "--master", &master.url, "--api-key", KEY])
        .args([
            "--max-concurrent-jobs",
            "4",
            "--poll-interval",
            "3s",
            "--heartbeat-interval",
            "30s",
        ])
        .arg("--ca-cert")
        .arg(master.cert())
        // Scratch space, no status port, and no real encodes of the jobs above.
        .args(["--name", "readme-agent", "--executor", "noop", "--status-addr", "none"])
        .args(["--idle-window", "0s"])
        .arg("--output-dir")
        .arg(d.join("out"))
        .arg("--input-dir")
        .arg(d.join("in"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(d.join("agent.log")).unwrap()))
        .spawn()
        .unwrap();
    let _agent = Proc(agent);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = master.cli(&["nodes", "list"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        if text(&out).contains("readme-agent") {
            break;
        }
        let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "the agent did not register: {log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
    assert!(log.contains("--poll-interval 3s is not needed"), "{log}");
}

#[test]
fn the_edge_commands_accept_the_original_flags() {
    let dir = tempfile::tempdir().unwrap();
    // ffrtmp config recommend --environment production --output text
    let out = run(
        "ffrtmp",
        &["config", "recommend", "--environment", "production", "--output", "text"],
    );
    assert_parsed(&out, "config recommend");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("--environment production is ignored"),
        "{}",
        text(&out)
    );

    // ffrtmp run --job-id transcode-001 --cpu-quota 200 --memory-limit 4096 -- <workload>
    let out = run(
        "ffrtmp",
        &[
            "run",
            "--job-id",
            "transcode-001",
            "--cpu-quota",
            "200",
            "--memory-limit",
            "4096",
            "--",
            "true",
        ],
    );
    assert_parsed(&out, "run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("job: transcode-001"), "{}", text(&out));

    // ffrtmp attach --pid <pid> --job-id existing-job-042 --cpu-weight 150 --nice -5
    let mut target = Command::new("sleep").arg("1").spawn().unwrap();
    let pid = target.id().to_string();
    let out = run(
        "ffrtmp",
        &[
            "attach",
            "--pid",
            &pid,
            "--job-id",
            "existing-job-042",
            "--cpu-weight",
            "150",
            "--nice",
            "-5",
        ],
    );
    let _ = target.wait();
    assert_parsed(&out, "attach");
    if out.status.code() == Some(0) {
        assert!(text(&out).contains("job: existing-job-042"), "{}", text(&out));
    }

    // ffrtmp watch --scan-interval 10s --enable-state --enable-retry --watch-config <file>
    // (one scan, with the state in the scratch directory).
    let config = dir.path().join("watch.yaml");
    std::fs::write(&config, "rules:\n  - {match: no-such-program-readme}\n").unwrap();
    let out = bin("ffrtmp")
        .args([
            "watch",
            "--scan-interval",
            "10s",
            "--enable-state",
            "--enable-retry",
            "--watch-config",
        ])
        .arg(&config)
        .arg("--once")
        .arg("--state-file")
        .arg(dir.path().join("state.json"))
        .output()
        .unwrap();
    assert_parsed(&out, "watch");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_untrusted_certificate_names_ca_cert_without_a_backtrace() {
    let master = Master::start("127.0.0.1", &[]);
    let out = bin("ffrtmp")
        .args(["--master", &master.url, "nodes", "list"])
        .env("MASTER_API_KEY", KEY)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("the master's TLS certificate is not trusted"), "{t}");
    assert!(t.contains("--ca-cert") && t.contains("FFRTMP_CA_CERT"), "{t}");
    assert!(!t.to_lowercase().contains("backtrace"), "{t}");
    assert_eq!(t.lines().filter(|l| l.starts_with("Error: ")).count(), 1, "{t}");
}

#[test]
fn names_from_the_master_are_printed_without_terminal_controls() {
    let master = Master::start("127.0.0.1", &[]);
    let transport = ffrtmp_http::HttpTransport::new(
        ffrtmp_http::ClientConfig::new(master.url.clone(), KEY).with_ca_cert(master.cert()),
    )
    .unwrap();
    let name = "evil\u{1b}[2J\u{1b}]0;owned\u{7}name\u{9b}31m\r";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(ffrtmp_core::Transport::register(
            &transport,
            &ffrtmp_core::NodeRegistration {
                name: name.into(),
                cpu_cores: 1,
                memory_mb: 1024,
                max_concurrent_jobs: 1,
                encoders: vec!["libx264".into()],
                engines: vec!["ffmpeg".into()],
                enforces_limits: false,
                quality_metrics: Vec::new(),
                version: "0".into(),
            },
        ))
        .unwrap();
    let out = master.cli(&["nodes", "list"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("evilname"), "{t:?}");
    assert!(
        !t.chars().any(|c| c.is_control() && c != '\n'),
        "control characters reached the terminal: {t:?}"
    );
}

#[test]
fn the_self_signed_certificate_covers_the_bind_address() {
    let master = Master::start("127.0.0.2", &[]);
    let out = master.cli(&["nodes", "list"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("NAME"), "{}", text(&out));
}
