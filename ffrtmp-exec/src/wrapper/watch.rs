//! `ffrtmp watch`: scan `/proc` for processes matching YAML rules and attach each once.
//!
//! ```yaml
//! rules:
//!   - match: ffmpeg          # the program: basename of argv[0], or the kernel's comm
//!     args_contain: ["-c:v"] # every entry must equal one of its arguments
//!     cpu_quota: 150         # percent of one core
//!     memory_limit_mb: 2048
//!     cpu_weight: 100        # optional, 100 = default
//!     nice: 5                # optional
//!     name: transcodes       # optional label in reports and the state file
//! ```
//!
//! A process is attached at most once per (pid, start time): what was attached is kept in a
//! [`WatchState`] (persisted when a state file is given, so a restarted `watch` does not
//! attach it again). Processes already in a cgroup below a `ffrtmp` parent (agent jobs,
//! `ffrtmp run` workloads, earlier attachments) are left alone. Entries whose process has
//! exited are dropped and their (then empty) cgroups removed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::attach::attach;
use super::proc::{self, Liveness, ProcStat, StartTime};
use super::remove_edge_dirs;
use super::state::{StateEntry, WatchState};
use super::EdgeLimits;
use crate::cgroup::Cgroups;

/// One rule of the watch file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The program: equal to the basename of argv\[0\] or to the process's comm.
    #[serde(rename = "match")]
    pub program: String,
    /// Each must equal one of the arguments (after argv\[0\]).
    #[serde(default)]
    pub args_contain: Vec<String>,
    /// CPU quota in percent of one core.
    #[serde(default)]
    pub cpu_quota: Option<u32>,
    /// Memory limit in MiB.
    #[serde(default)]
    pub memory_limit_mb: Option<u64>,
    /// CPU weight, 100 = default.
    #[serde(default)]
    pub cpu_weight: Option<u32>,
    /// Niceness.
    #[serde(default)]
    pub nice: Option<i32>,
    /// A label; default the `match` value.
    #[serde(default)]
    pub name: Option<String>,
}

impl Rule {
    /// Whether a process with `comm` and arguments `argv` (argv\[0\] first) matches.
    pub fn matches(&self, comm: &str, argv: &[String]) -> bool {
        let Some(first) = argv.first() else { return false };
        let base = first.rsplit('/').next().unwrap_or(first);
        (base == self.program || comm == self.program)
            && self.args_contain.iter().all(|want| argv[1..].iter().any(|a| a == want))
    }

    /// The label used in reports and the state file.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.program)
    }

    /// The limits this rule puts on a process.
    pub fn limits(&self) -> EdgeLimits {
        EdgeLimits {
            cpu_quota: self.cpu_quota,
            memory_limit_mb: self.memory_limit_mb,
            cpu_weight: self.cpu_weight,
            nice: self.nice,
        }
    }
}

/// The watch file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// Rules, first match wins.
    pub rules: Vec<Rule>,
}

impl WatchConfig {
    /// Parses YAML text.
    pub fn parse(text: &str) -> Result<WatchConfig, String> {
        let config: WatchConfig = serde_yaml_ng::from_str(text).map_err(|e| format!("invalid watch config: {e}"))?;
        if let Some(r) = config.rules.iter().find(|r| r.program.is_empty()) {
            return Err(format!("invalid watch config: rule {:?} has an empty match", r.label()));
        }
        Ok(config)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<WatchConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        WatchConfig::parse(&text)
    }

    /// The first rule matching the process.
    pub fn find(&self, comm: &str, argv: &[String]) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(comm, argv))
    }
}

/// What one scan did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A process was attached.
    Attached(StateEntry),
    /// A matching process was already attached (recorded in the state).
    Known {
        /// Its pid.
        pid: i32,
        /// Its start time.
        start_time: StartTime,
    },
    /// A matching process was left alone.
    Skipped {
        /// Its pid.
        pid: i32,
        /// Why.
        reason: String,
    },
    /// An attached process has exited. It is dropped from the state once its cgroup is gone;
    /// while the group still holds processes the entry stays and removal is retried.
    Exited {
        /// The entry dropped.
        entry: StateEntry,
        /// Whether its cgroup directories are gone.
        cgroup_removed: bool,
    },
    /// The state file could not be written.
    StateError(String),
}

/// The scanner and its state.
#[derive(Debug)]
pub struct Watcher {
    cgroups: Cgroups,
    config: WatchConfig,
    state: WatchState,
    state_file: Option<PathBuf>,
}

impl Watcher {
    /// A watcher; with `state_file`, the state is read from it now and written after every
    /// scan that changed it.
    pub fn new(cgroups: Cgroups, config: WatchConfig, state_file: Option<PathBuf>) -> std::io::Result<Watcher> {
        let state = match &state_file {
            Some(path) => WatchState::load(path)?,
            None => WatchState {
                version: 1,
                entries: Vec::new(),
            },
        };
        Ok(Watcher {
            cgroups,
            config,
            state,
            state_file,
        })
    }

    /// The current state.
    pub fn state(&self) -> &WatchState {
        &self.state
    }

    /// One pass: drops exited processes from the state (removing their cgroups), then
    /// attaches every matching process not seen before, and persists the state.
    pub fn scan(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut changed = false;
        let entries = std::mem::take(&mut self.state.entries);
        for entry in entries {
            if proc::check(entry.pid, entry.start_time) == Liveness::Alive {
                self.state.entries.push(entry);
            } else {
                let cgroup_removed = remove_edge_dirs(&entry.cgroup);
                if cgroup_removed {
                    changed = true;
                } else {
                    // Something (a child of the process) is still in the group: keep the
                    // entry so the next scan tries again, rather than forget the group.
                    self.state.entries.push(entry.clone());
                }
                events.push(Event::Exited { entry, cgroup_removed });
            }
        }
        let me = std::process::id() as i32;
        for pid in proc::all_pids() {
            if pid == me {
                continue;
            }
            let Ok(stat) = ProcStat::read(pid) else { continue };
            if stat.state == 'Z' {
                continue;
            }
            let argv = proc::cmdline(pid);
            let Some(rule) = self.config.find(&stat.comm, &argv) else {
                continue;
            };
            if self.state.contains(pid, stat.start_time) {
                events.push(Event::Known {
                    pid,
                    start_time: stat.start_time,
                });
                continue;
            }
            if proc::in_ffrtmp_cgroup(&proc::cgroup_text(pid)) {
                events.push(Event::Skipped {
                    pid,
                    reason: "already in a ffrtmp cgroup".into(),
                });
                continue;
            }
            match attach(&self.cgroups, pid, &rule.limits(), "watch") {
                Ok(a) if a.start_time == stat.start_time => {
                    let entry = StateEntry {
                        pid,
                        start_time: a.start_time,
                        rule: rule.label().to_string(),
                        cgroup: a.cgroup(),
                        limits: a.limits.clone(),
                    };
                    self.state.entries.push(entry.clone());
                    changed = true;
                    events.push(Event::Attached(entry));
                }
                Ok(_) => events.push(Event::Skipped {
                    pid,
                    reason: "pid reused while attaching".into(),
                }),
                Err(e) => events.push(Event::Skipped {
                    pid,
                    reason: e.to_string(),
                }),
            }
        }
        if changed {
            if let Some(path) = &self.state_file {
                if let Err(e) = self.state.save(path) {
                    events.push(Event::StateError(format!("cannot write {}: {e}", path.display())));
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn parses_rules() {
        let c = WatchConfig::parse(
            "rules:\n  - match: ffmpeg\n    args_contain: [\"-c:v\"]\n    cpu_quota: 150\n    memory_limit_mb: 2048\n    nice: 5\n",
        )
        .unwrap();
        assert_eq!(c.rules.len(), 1);
        let r = &c.rules[0];
        assert_eq!(r.label(), "ffmpeg");
        assert_eq!(
            r.limits(),
            EdgeLimits {
                cpu_quota: Some(150),
                memory_limit_mb: Some(2048),
                cpu_weight: None,
                nice: Some(5)
            }
        );
        let flow = WatchConfig::parse(r#"rules: [{match: "ffmpeg", args_contain: ["-c:v"], cpu_quota: 150}]"#).unwrap();
        assert_eq!(flow.rules[0].cpu_quota, Some(150));
        assert!(WatchConfig::parse("rules: [{match: ffmpeg, cpu_qouta: 1}]").is_err());
        assert!(WatchConfig::parse("rules: [{match: ''}]").is_err());
        assert!(WatchConfig::parse("nope").is_err());
    }

    #[test]
    fn rule_matching() {
        let c = WatchConfig::parse(
            "rules:\n  - {match: ffmpeg, args_contain: [\"-c:v\"], name: enc}\n  - {match: ffprobe}\n",
        )
        .unwrap();
        assert_eq!(
            c.find("ffmpeg", &argv("/usr/bin/ffmpeg -i a -c:v libx264 out"))
                .unwrap()
                .label(),
            "enc"
        );
        assert!(
            c.find("ffmpeg", &argv("ffmpeg -i a out")).is_none(),
            "args_contain is required"
        );
        assert!(
            c.find("ffmpeg", &argv("ffmpeg -i a -c:v:0 x")).is_none(),
            "whole arguments only"
        );
        assert!(
            c.find("sh", &argv("sh -c ffmpeg -c:v x")).is_none(),
            "the program, not an argument"
        );
        assert_eq!(c.find("ffprobe", &argv("./ffprobe x")).unwrap().label(), "ffprobe");
        // comm matches too (argv[0] may be rewritten), but a kernel thread has no argv.
        assert!(c.find("ffprobe", &argv("renamed")).is_some());
        assert!(c.find("ffprobe", &[]).is_none());
    }
}
