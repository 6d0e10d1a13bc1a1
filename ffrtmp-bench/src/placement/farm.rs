//! The farm of one placement run: a real `ffrtmp-master` (SQLite, self-signed TLS on
//! loopback) with the policy under test, and one real `ffrtmp-agent` per simulated node,
//! each reading its own powercap tree. Every process is killed when the farm is dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ffrtmp_core::NodeStatus;
use ffrtmp_http::{ApiClient, ClientConfig};

use crate::error::{BenchError, Context, Result};

/// The key the bench's master accepts; it lives in a 0600 file of the run's directory.
const KEY: &str = "placement-bench-key-0123456789abcdef";
/// How long the master and the agents get to come up.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the binaries are and what the master runs.
#[derive(Clone, Debug)]
pub struct FarmSpec {
    /// Directory holding `ffrtmp-master` and `ffrtmp-agent`.
    pub bin_dir: PathBuf,
    /// `--placement` of the master.
    pub policy: String,
    /// `--placement-max-wait` of the master, when given.
    pub max_wait: Option<String>,
}

/// A child process killed and reaped when dropped.
struct Proc {
    name: String,
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running master and its agents.
pub struct Farm {
    dir: PathBuf,
    procs: Vec<Proc>,
    /// Client of the master's API.
    pub api: ApiClient,
}

fn binary(spec: &FarmSpec, name: &str) -> Result<PathBuf> {
    let path = spec.bin_dir.join(name);
    if !path.is_file() {
        return Err(BenchError::invalid(format!(
            "{} not found: the placement bench starts the real binaries; build them (cargo build -p ffrtmp) or pass --bin-dir",
            path.display()
        )));
    }
    Ok(path)
}

fn log(dir: &Path, name: &str) -> Result<Stdio> {
    let file = std::fs::File::create(dir.join(format!("{name}.log"))).context("creating a log file")?;
    Ok(Stdio::from(file))
}

impl Farm {
    /// Starts the master in `dir` and one agent per `powercap_roots` entry (named `names[i]`),
    /// and waits until every agent is registered and online.
    pub async fn start(spec: &FarmSpec, dir: &Path, names: &[String], powercap_roots: &[PathBuf]) -> Result<Farm> {
        let key_file = dir.join("api.key");
        std::fs::write(&key_file, KEY).context("writing the key file")?;
        std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .context("protecting the key file")?;
        let ready = dir.join("master.url");
        let mut master = Command::new(binary(spec, "ffrtmp-master")?);
        master
            .args(["--port", "0", "--heartbeat-interval", "2s", "--no-dashboard"])
            .arg("--db")
            .arg(dir.join("master.db"))
            .arg("--api-key-file")
            .arg(&key_file)
            .arg("--ready-file")
            .arg(&ready);
        // A short run cannot wait the default 5 s for the efficiency table to catch up.
        master.args(["--placement", &spec.policy, "--placement-refresh", "1s"]);
        if let Some(wait) = &spec.max_wait {
            master.args(["--placement-max-wait", wait]);
        }
        let child = master
            .stdout(Stdio::null())
            .stderr(log(dir, "master")?)
            .spawn()
            .context("starting ffrtmp-master")?;
        let mut farm = Farm {
            dir: dir.to_path_buf(),
            procs: vec![Proc {
                name: "master".into(),
                child,
            }],
            api: ApiClient::new(ClientConfig::new("https://127.0.0.1:1", KEY))?,
        };
        let url = farm.wait_for_ready(&ready).await?;
        let ca = dir.join("tls").join("cert.pem");
        let agent = binary(spec, "ffrtmp-agent")?;
        for (name, root) in names.iter().zip(powercap_roots) {
            let child = Command::new(&agent)
                .args(["--master", &url, "--name", name, "--max-concurrent-jobs", "1"])
                .args(["--heartbeat-interval", "2s", "--claim-wait", "5s"])
                .args(["--status-addr", "none", "--idle-window", "0s", "--gpu-energy", "off"])
                .arg("--api-key-file")
                .arg(&key_file)
                .arg("--ca-cert")
                .arg(&ca)
                .arg("--powercap-root")
                .arg(root)
                .arg("--output-dir")
                .arg(dir.join(format!("out-{name}")))
                .arg("--input-dir")
                .arg(dir.join("in"))
                .stdout(Stdio::null())
                .stderr(log(dir, name)?)
                .spawn()
                .with_context(|| format!("starting ffrtmp-agent {name}"))?;
            farm.procs.push(Proc {
                name: name.clone(),
                child,
            });
        }
        let mut client = ClientConfig::new(url, KEY);
        client.ca_cert = Some(ca);
        farm.api = ApiClient::new(client)?;
        farm.wait_for_agents(names.len()).await?;
        Ok(farm)
    }

    /// Fails when a process of the farm has exited, naming it and quoting its log.
    pub fn check_alive(&mut self) -> Result<()> {
        let exited = self.procs.iter_mut().find_map(|p| match p.child.try_wait() {
            Ok(Some(status)) => Some((p.name.clone(), status)),
            _ => None,
        });
        match exited {
            Some((name, status)) => Err(BenchError::invalid(format!(
                "{name} exited ({status}): {}",
                self.log_tail(&name)
            ))),
            None => Ok(()),
        }
    }

    /// The last lines of a process's log.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn wait_for_ready(&mut self, ready: &Path) -> Result<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(url) = std::fs::read_to_string(ready) {
                if !url.is_empty() {
                    return Ok(url);
                }
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "the master did not start within {START_TIMEOUT:?}: {}",
                    self.log_tail("master")
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for_agents(&mut self, n: usize) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let nodes = self.api.nodes().await?;
            if nodes.iter().filter(|n| n.status == NodeStatus::Online).count() >= n {
                return Ok(());
            }
            self.check_alive()?;
            if Instant::now() >= deadline {
                return Err(BenchError::Timeout(format!(
                    "{} of {n} agents registered within {START_TIMEOUT:?}",
                    nodes.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
