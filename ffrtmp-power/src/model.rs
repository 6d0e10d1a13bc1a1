//! Estimated energy for hosts without an energy counter (VMs, most clouds): a [`PowerModel`]
//! (idle and full-load watts, e.g. from the CPU's datasheet or SPECpower) turns the node's CPU
//! utilisation from `/proc/stat` into power, and [`ModelSource`] integrates it into an energy
//! counter, so the [`Sampler`](crate::Sampler) attributes it to jobs by cgroup CPU share exactly
//! as it does RAPL's.
//!
//! Every figure that comes from a model is an estimate: the source is named
//! `model:<name>` ([`MODEL_SOURCE_PREFIX`]), and the job's
//! [`EnergyReport`](ffrtmp_core::EnergyReport) carries `estimated: true` and `model: <name>`.
//!
//! ```
//! use ffrtmp_power::PowerModel;
//!
//! let m: PowerModel = PowerModel::parse("name = \"xeon-e5\"\nidle_watts = 50\nfull_load_watts = 150\n").unwrap();
//! assert_eq!(m.watts(0.0), 50.0);
//! assert_eq!(m.watts(0.5), 100.0);
//! // 10 s at half load.
//! assert_eq!(m.joules(0.5, 10.0), 1000.0);
//! ```

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
use serde::{Deserialize, Serialize};

/// Prefix of a model source's name: `model:<name>`, what reports carry as their `source`.
pub const MODEL_SOURCE_PREFIX: &str = "model:";

/// The zone a [`ModelSource`] reports, counted as CPU package energy.
pub const MODEL_ZONE: &str = "package-model";

/// Why a power model file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PowerModelError {
    /// The file could not be read.
    #[error("cannot read power model {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file is neither valid TOML nor valid JSON for a model.
    #[error("power model {path} is not a valid model (TOML or JSON with name, idle_watts, full_load_watts, optional cores): {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        reason: String,
    },
    /// The figures make no sense (negative, not finite, full load below idle, no name).
    #[error("power model {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A node's power as a function of its CPU utilisation: `idle + (full_load - idle) × u`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerModel {
    /// The model's name, shown with every estimate (e.g. `xeon-e5-2680v4-specpower`).
    pub name: String,
    /// Watts at 0 % CPU utilisation.
    pub idle_watts: f64,
    /// Watts at 100 % CPU utilisation.
    pub full_load_watts: f64,
    /// CPUs the watts are for. When set and the node has a different number of online CPUs
    /// (a VM given part of the machine), the watts are scaled by `online / cores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
}

impl PowerModel {
    /// Parses a model from TOML or JSON text (JSON when it starts with `{`), and checks it.
    pub fn parse(text: &str) -> Result<PowerModel, PowerModelError> {
        Self::parse_named(text, "<text>")
    }

    /// Reads and checks a model file (TOML or JSON).
    pub fn load(path: &Path) -> Result<PowerModel, PowerModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PowerModelError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse_named(&text, &shown)
    }

    fn parse_named(text: &str, path: &str) -> Result<PowerModel, PowerModelError> {
        let parsed: Result<PowerModel, String> = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            toml::from_str(text).map_err(|e| e.to_string())
        };
        let model = parsed.map_err(|reason| PowerModelError::Parse {
            path: path.to_string(),
            reason: reason.trim().to_string(),
        })?;
        model.check().map_err(|reason| PowerModelError::Invalid {
            path: path.to_string(),
            reason,
        })?;
        Ok(model)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name is empty".into());
        }
        let ok = |w: f64| w.is_finite() && w >= 0.0;
        if !ok(self.idle_watts) || !ok(self.full_load_watts) {
            return Err("idle_watts and full_load_watts must be finite and not negative".into());
        }
        if self.full_load_watts < self.idle_watts {
            return Err(format!(
                "full_load_watts ({}) is below idle_watts ({})",
                self.full_load_watts, self.idle_watts
            ));
        }
        if self.cores == Some(0) {
            return Err("cores must be at least 1".into());
        }
        Ok(())
    }

    /// Watts at `utilisation` (clamped to 0..=1).
    pub fn watts(&self, utilisation: f64) -> f64 {
        let u = if utilisation.is_finite() {
            utilisation.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.idle_watts + (self.full_load_watts - self.idle_watts) * u
    }

    /// Joules over `seconds` at `utilisation`.
    pub fn joules(&self, utilisation: f64, seconds: f64) -> f64 {
        self.watts(utilisation) * seconds.max(0.0)
    }

    /// The factor the watts are scaled by on a node with `online` CPUs: `online / cores`, or 1
    /// without `cores`.
    pub fn scale(&self, online: u32) -> f64 {
        match self.cores {
            Some(cores) if cores > 0 && online > 0 => f64::from(online) / f64::from(cores),
            _ => 1.0,
        }
    }
}

/// Busy and total CPU ticks of the `cpu` line of `/proc/stat`: busy is everything but idle,
/// iowait and steal (time the host gave to another guest is not this node's work).
///
/// ```
/// let stat = "cpu  100 0 50 800 10 0 5 35 20 0\ncpu0 1 2 3 4\n";
/// assert_eq!(ffrtmp_power::parse_proc_stat_busy(stat), Some((155, 1000)));
/// ```
pub fn parse_proc_stat_busy(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse::<u64>().ok())
        .collect::<Option<Vec<u64>>>()?;
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let not_busy = fields[3] + fields.get(4).copied().unwrap_or(0) + fields.get(7).copied().unwrap_or(0);
    Some((total - not_busy, total))
}

/// The running estimate: the last `/proc/stat` reading and the energy so far.
struct Integrator {
    last: Option<(Instant, u64, u64)>,
    energy_uj: f64,
}

/// A [`PowerSource`] whose one zone ([`MODEL_ZONE`]) is the integral of a [`PowerModel`]'s
/// watts at the node's CPU utilisation between readings. Named `model:<name>`.
pub struct ModelSource {
    model: PowerModel,
    name: String,
    scale: f64,
    stat_path: std::path::PathBuf,
    state: Mutex<Integrator>,
}

impl ModelSource {
    /// A source over this machine's `/proc/stat`.
    pub fn new(model: PowerModel) -> ModelSource {
        Self::with_stat(model, "/proc/stat", crate::online_cpus())
    }

    /// A source over the `/proc/stat` at `stat_path`, on a node with `online` CPUs.
    pub fn with_stat(model: PowerModel, stat_path: impl Into<std::path::PathBuf>, online: u32) -> ModelSource {
        ModelSource {
            name: format!("{MODEL_SOURCE_PREFIX}{}", model.name),
            scale: model.scale(online),
            model,
            stat_path: stat_path.into(),
            state: Mutex::new(Integrator {
                last: None,
                energy_uj: 0.0,
            }),
        }
    }

    /// The model.
    pub fn model(&self) -> &PowerModel {
        &self.model
    }

    fn read_stat(&self) -> Result<(u64, u64), PowerError> {
        let text = std::fs::read_to_string(&self.stat_path)
            .map_err(|e| PowerError::Read(format!("{}: {e}", self.stat_path.display())))?;
        parse_proc_stat_busy(&text)
            .ok_or_else(|| PowerError::Read(format!("{}: no cpu line", self.stat_path.display())))
    }
}

impl PowerSource for ModelSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample(&self) -> Result<EnergySample, PowerError> {
        let (busy, total) = self.read_stat()?;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((then, last_busy, last_total)) = state.last {
            let dt = now.duration_since(then).as_secs_f64();
            let d_total = total.saturating_sub(last_total);
            // No ticks elapsed (readings closer than 1/USER_HZ): the last utilisation is unknown,
            // assume idle rather than invent load.
            let u = if d_total == 0 {
                0.0
            } else {
                busy.saturating_sub(last_busy) as f64 / d_total as f64
            };
            state.energy_uj += self.model.joules(u, dt) * self.scale * 1e6;
        }
        state.last = Some((now, busy, total));
        Ok(EnergySample {
            zones: vec![ZoneEnergy {
                zone: MODEL_ZONE.into(),
                energy_uj: state.energy_uj as u64,
            }],
            wraps: 0,
        })
    }
}

/// The model's name when `source` is a model source's name (`model:<name>`).
pub fn model_name(source: &str) -> Option<&str> {
    source.strip_prefix(MODEL_SOURCE_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> PowerModel {
        PowerModel {
            name: "m".into(),
            idle_watts: 40.0,
            full_load_watts: 140.0,
            cores: None,
        }
    }

    #[test]
    fn watts_are_linear_in_utilisation_and_clamped() {
        let m = model();
        assert_eq!(m.watts(0.0), 40.0);
        assert_eq!(m.watts(0.25), 65.0);
        assert_eq!(m.watts(1.0), 140.0);
        assert_eq!(m.watts(2.0), 140.0);
        assert_eq!(m.watts(-1.0), 40.0);
        assert_eq!(m.watts(f64::NAN), 40.0);
        assert_eq!(m.joules(0.25, 4.0), 260.0);
    }

    #[test]
    fn cores_scale_the_watts_to_the_nodes_cpus() {
        let m = PowerModel {
            cores: Some(16),
            ..model()
        };
        assert_eq!(m.scale(4), 0.25);
        assert_eq!(model().scale(4), 1.0);
    }

    #[test]
    fn toml_and_json_parse_and_bad_models_say_why() {
        let t = PowerModel::parse("name = \"a\"\nidle_watts = 10\nfull_load_watts = 20.5\ncores = 8\n").unwrap();
        let j = PowerModel::parse(r#"{"name":"a","idle_watts":10,"full_load_watts":20.5,"cores":8}"#).unwrap();
        assert_eq!(t, j);
        assert_eq!(t.cores, Some(8));
        let err = PowerModel::parse("name = \"a\"\nidle_watts = 30\nfull_load_watts = 20\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("full_load_watts (20) is below idle_watts (30)"),
            "{err}"
        );
        let err = PowerModel::parse("name = \"a\"\nidle_watts = 30\n").unwrap_err();
        assert!(err.to_string().contains("full_load_watts"), "{err}");
        let err = PowerModel::parse("name = \"\"\nidle_watts = 1\nfull_load_watts = 2\n").unwrap_err();
        assert!(err.to_string().contains("name is empty"), "{err}");
    }

    #[test]
    fn the_source_integrates_the_models_watts_over_proc_stat_utilisation() {
        let dir = tempfile::tempdir().unwrap();
        let stat = dir.path().join("stat");
        std::fs::write(&stat, "cpu  0 0 0 0 0 0 0 0\n").unwrap();
        let src = ModelSource::with_stat(model(), &stat, 2);
        assert_eq!(src.name(), "model:m");
        assert_eq!(src.sample().unwrap().total_uj(), 0);
        // Half the ticks busy since the first reading.
        std::fs::write(&stat, "cpu  30 0 20 50 0 0 0 0\n").unwrap();
        let t0 = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let uj = src.sample().unwrap().total_uj() as f64;
        let elapsed = t0.elapsed().as_secs_f64();
        // 90 W at 50 % over at least 50 ms, and at most the time since the first reading.
        assert!(uj >= 90.0 * 0.05 * 1e6, "{uj}");
        assert!(uj <= 90.0 * (elapsed + 0.05) * 1e6, "{uj}");
        assert_eq!(model_name(src.name()), Some("m"));
        assert_eq!(model_name("rapl"), None);
    }
}
