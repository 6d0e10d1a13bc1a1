//! Keys by role from key files, on the real binaries: the master, an agent and the CLI read
//! their keys from files, no key shows in their command lines, and each role reaches only
//! its routes.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const AGENT_KEYS: [&str; 2] = ["agent-key-file-000000001", "agent-key-file-000000002"];
const USER_KEY: &str = "user-key-file-0000000001";
const READ_KEY: &str = "read-key-file-0000000001";

#[path = "support/procs.rs"]
mod procs;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

/// The process's command line and environment, as the kernel shows them to `ps`.
fn visible(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    String::from_utf8_lossy(&[cmdline, environ].concat()).replace('\0', " ")
}

fn cli(dir: &Path, url: &str, key_file: &Path, args: &[&str]) -> Output {
    Cli::keyless(dir, url)
        .command()
        .args(["--output", "json"])
        .args(args)
        .env("MASTER_API_KEY_FILE", key_file)
        .output()
        .unwrap()
}

fn refused_403(out: &Output) -> bool {
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    !out.status.success() && (err.contains("403") || err.contains("forbidden"))
}

#[test]
fn keys_come_from_files_stay_out_of_ps_and_are_separated_by_role() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: String| {
        let path = d.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let agent_keys = write(
        "agent.keys",
        format!("# rotation: new key first\n{}\n{}\n", AGENT_KEYS[1], AGENT_KEYS[0]),
    );
    let agent_key = write("agent.key", format!("{}\n", AGENT_KEYS[0]));
    let user_keys = write("user.keys", format!("{USER_KEY}\n"));
    let read_keys = write("read.keys", format!("{READ_KEY}\n"));

    let (master, url) = cluster::master(d, "")
        .args(["--port", "0", "--heartbeat-interval", "500ms"])
        .path("--agent-key-file", &agent_keys)
        .path("--user-key-file", &user_keys)
        .no_key()
        .env("MASTER_READ_KEY_FILE", &read_keys)
        .start();

    // The agent uses the older of the two agent keys: both are accepted.
    let agent = cluster::agent(d, &url, "")
        .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
        .args(["--name", "keyed-agent", "--executor", "noop", "--status-addr", "none"])
        .path("--api-key-file", &agent_key)
        .path("--powercap-root", "no-powercap")
        .arg("--idle-window")
        .arg("0s")
        .no_key()
        .spawn();

    for pid in [master.0.id(), agent.0.id()] {
        let shown = visible(pid);
        for key in AGENT_KEYS.iter().chain([&USER_KEY, &READ_KEY]) {
            assert!(!shown.contains(key), "a key is visible in /proc/{pid}: {shown}");
        }
    }

    // The agent registers with its key from the file; a user key lists it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(d, &url, &user_keys, &["nodes", "list"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if nodes
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["registration"]["name"] == "keyed-agent"))
        {
            break;
        }
        let logs = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "the agent never registered:\n{logs}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Users submit; read-only and agent keys may not.
    let out = cli(d, &url, &user_keys, &["jobs", "submit", "--scenario", "720p-h264"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(d, &url, &read_keys, &["jobs", "submit", "--scenario", "720p-h264"]);
    assert!(refused_403(&out), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(d, &url, &read_keys, &["jobs", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(d, &url, &agent_keys, &["jobs", "list"]);
    assert!(refused_403(&out), "{}", String::from_utf8_lossy(&out.stderr));
    drop(agent);
    drop(master);
}

/// A CA in `dir/ca.pem` and a client certificate it signed (`agent.pem`, `agent.key`).
fn client_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "agents CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(vec!["agent".to_string()]).unwrap();
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("agent.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("agent.key"), leaf_key.serialize_pem()).unwrap();
}

#[test]
fn an_agent_with_its_client_certificate_registers_where_one_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    client_pki(d);
    let key_file = d.join("all.key");
    std::fs::write(&key_file, format!("{USER_KEY}\n")).unwrap();
    let (_master, url) = cluster::master(d, "")
        .args([
            "--port",
            "0",
            "--heartbeat-interval",
            "500ms",
            "--require-client-cert-for-agents",
        ])
        .path("--client-ca", "ca.pem")
        .no_key()
        .env("MASTER_API_KEY_FILE", &key_file)
        .start();
    let agent = |name: &str, with_cert: bool| {
        let mut agent = cluster::agent(d, &url, "")
            .args([
                "--name",
                name,
                "--executor",
                "noop",
                "--status-addr",
                "none",
                "--idle-window",
                "0s",
            ])
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .path("--powercap-root", "no-powercap")
            .no_key()
            .env("MASTER_API_KEY_FILE", &key_file)
            .log(&format!("{name}.log"));
        if with_cert {
            agent = agent.path("--client-cert", "agent.pem");
            agent = agent.path("--client-key", "agent.key");
        }
        agent.spawn()
    };
    let _bare = agent("without-cert", false);
    let _good = agent("with-cert", true);

    // The user (no certificate needed) sees the agent with its certificate, never the other.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = cli(d, &url, &key_file, &["nodes", "list"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names: Vec<&str> = nodes
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["registration"]["name"].as_str())
            .collect();
        assert!(
            !names.contains(&"without-cert"),
            "registered without a client certificate"
        );
        if names.contains(&"with-cert") {
            break;
        }
        let logs = std::fs::read_to_string(d.join("with-cert.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "the agent with a certificate never registered:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // By then the agent without a certificate was refused at least once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = std::fs::read_to_string(d.join("without-cert.log")).unwrap_or_default();
        if logs.contains("403") || logs.to_lowercase().contains("client certificate") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal in the log of the agent without a certificate:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
