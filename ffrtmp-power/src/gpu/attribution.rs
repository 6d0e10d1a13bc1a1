//! [`GpuAttribution`]: one sampling interval's GPU energy, per GPU, split between jobs by their
//! processes' engine utilisation. Pure: readings and the pid → job map in, joules out.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{split_gpu_energy, GpuReading, ProcessShare};

/// How long a process's last share of a GPU is reused while NVML reports no newer sample of it.
///
/// The driver samples per-process utilisation at its own pace (about every 1/6 s to 1 s,
/// depending on the GPU), slower than a 10 Hz sampler; without holding them most intervals of a
/// busy job would see no sample and go to "other".
pub const DEFAULT_SHARE_HOLD: Duration = Duration::from_secs(1);

/// At most this many processes' shares are held per GPU (the oldest go first), so a very long
/// hold cannot grow without bound.
const MAX_HELD_PER_GPU: usize = 1024;

/// One job's GPU energy in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobGpuShare {
    /// The job's key (its cgroup name on the agent).
    pub job: String,
    /// Joules attributed to the job, over every GPU.
    pub joules: f64,
}

/// One interval's GPU energy and its split, from [`GpuAttribution::step`].
///
/// `Σ jobs + other_joules == total_joules` up to rounding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuInterval {
    /// Length of the interval in seconds.
    pub dt_s: f64,
    /// Energy of every measured GPU over the interval.
    pub total_joules: f64,
    /// Per job, in order of first appearance; jobs whose processes did not use a GPU are absent.
    pub jobs: Vec<JobGpuShare>,
    /// Idle energy, processes of no job, and utilisation nobody claimed.
    pub other_joules: f64,
    /// GPUs whose energy was measured (by counter or by power × time); 0 means the interval
    /// tells nothing.
    pub measured_gpus: u32,
    /// At least one GPU's energy is power × time, not its energy counter
    /// ([`GPU_POWER_FALLBACK_METHOD`](super::GPU_POWER_FALLBACK_METHOD)).
    pub power_fallback: bool,
    /// GPUs with neither a counter delta nor a power reading this interval, with the reason (e.g.
    /// `gpu-1: power: not supported by this GPU`); their energy is not counted.
    pub unmeasured: Vec<String>,
    /// Measured GPUs whose per-process utilisation could not be read (MIG, vGPU, older boards),
    /// with the reason (e.g. `gpu-0: process utilization: not supported by this GPU`): their
    /// energy is counted, all of it as "other", and it tells nothing about any job's share.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unattributed: Vec<String>,
}

impl GpuInterval {
    /// Measured GPUs whose energy could be split between processes: with none, the interval says
    /// nothing about the jobs' GPU energy (not even that it was 0).
    pub fn attributable_gpus(&self) -> u32 {
        self.measured_gpus.saturating_sub(self.unattributed.len() as u32)
    }

    fn charge(&mut self, job: &str, joules: f64) {
        match self.jobs.iter_mut().find(|s| s.job == job) {
            Some(share) => share.joules += joules,
            None => self.jobs.push(JobGpuShare {
                job: job.to_string(),
                joules,
            }),
        }
    }
}

/// What is remembered of one GPU between intervals.
#[derive(Clone, Debug, Default)]
struct Track {
    zone: String,
    /// The counter at the end of the previous interval, if it was read.
    last_uj: Option<u64>,
    /// The newest share of each process seen within the hold, and how long ago it arrived.
    held: Vec<Held>,
}

#[derive(Clone, Copy, Debug)]
struct Held {
    share: ProcessShare,
    age_s: f64,
}

/// Splits each interval's GPU energy between jobs (per GPU, by process utilisation, processes
/// mapped to jobs by the caller).
///
/// Per GPU and interval: the energy is the delta of the GPU's total energy counter
/// ([`GpuReading::energy_uj`]); when either end of the interval has no counter reading, it is
/// the reported power × the interval's length, and the interval is flagged
/// ([`GpuInterval::power_fallback`]). Never both, so a counter missing for one interval is not
/// counted again in the next. The energy is split between processes by [`split_gpu_energy`];
/// a process's joules go to the job `pid_jobs` maps it to, or to "other" when it maps to none.
/// Each process's newest share is held on its own: a process with no newer sample keeps its
/// previous share for up to [`DEFAULT_SHARE_HOLD`] (configurable) while other processes' shares
/// are updated, then drops out. A GPU whose process utilisation cannot be read gives everything
/// to "other" and is listed in [`GpuInterval::unattributed`], as that energy tells nothing about
/// the jobs.
///
/// ```
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use ffrtmp_power::{GpuAttribution, GpuReading, ProcessSample};
///
/// let reading = |energy_uj, pids: &[(u32, u32)]| GpuReading {
///     zone: "gpu-0".into(),
///     energy_uj: Some(energy_uj),
///     processes: Some(pids.iter().map(|&(pid, encoder)| ProcessSample { pid, encoder, ..Default::default() }).collect()),
///     ..Default::default()
/// };
/// let mut gpu = GpuAttribution::default();
/// gpu.baseline(&[reading(0, &[])]);
/// // 100 J in 1 s; pid 7 (job a) kept the encoder 60 % busy, pid 8 (no job) 20 %.
/// let pid_jobs = HashMap::from([(7, "a".to_string())]);
/// let interval = gpu.step(&[reading(100_000_000, &[(7, 60), (8, 20)])], Duration::from_secs(1), &pid_jobs);
/// assert_eq!((interval.jobs[0].job.as_str(), interval.jobs[0].joules), ("a", 60.0));
/// assert_eq!(interval.other_joules, 40.0);
/// assert!(!interval.power_fallback);
/// ```
#[derive(Clone, Debug)]
pub struct GpuAttribution {
    gpus: Vec<Track>,
    share_hold_s: f64,
}

impl Default for GpuAttribution {
    fn default() -> Self {
        GpuAttribution::new(DEFAULT_SHARE_HOLD)
    }
}

impl GpuAttribution {
    /// An attribution reusing each process's last share of a GPU for up to `share_hold` without a
    /// newer sample of it.
    pub fn new(share_hold: Duration) -> Self {
        GpuAttribution {
            gpus: Vec::new(),
            share_hold_s: share_hold.as_secs_f64(),
        }
    }

    /// Takes `readings` as the start of the next interval without attributing anything (the
    /// first reading, or a new start after a failed one).
    pub fn baseline(&mut self, readings: &[GpuReading]) {
        let hold = self.share_hold_s;
        for r in readings {
            let track = self.track(&r.zone);
            track.last_uj = r.energy_uj;
            track.shares(r, 0.0, hold);
        }
    }

    /// The processes whose shares are held from earlier readings (they are split the next
    /// interval's energy too, so `step` needs their jobs).
    pub fn held_pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .gpus
            .iter()
            .flat_map(|t| t.held.iter().map(|h| h.share.pid))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Attributes the interval of length `dt` that `readings` end. `pid_jobs` maps GPU process
    /// ids (those in `readings` and [`held_pids`](Self::held_pids)) to job keys; unmapped
    /// processes count as "other".
    pub fn step(&mut self, readings: &[GpuReading], dt: Duration, pid_jobs: &HashMap<u32, String>) -> GpuInterval {
        let dt_s = dt.as_secs_f64();
        let hold = self.share_hold_s;
        let mut interval = GpuInterval {
            dt_s,
            ..GpuInterval::default()
        };
        for r in readings {
            let track = self.track(&r.zone);
            let counter = match (track.last_uj, r.energy_uj) {
                (Some(before), Some(after)) => after.checked_sub(before),
                _ => None,
            };
            track.last_uj = r.energy_uj;
            let shares = track.shares(r, dt_s, hold);
            let joules = match (counter, r.power_watts) {
                (Some(uj), _) => uj as f64 / 1e6,
                (None, Some(watts)) if watts.is_finite() && watts >= 0.0 => {
                    interval.power_fallback = true;
                    watts * dt_s
                }
                (None, _) => {
                    let why = r.missing.iter().find(|m| m.starts_with("power")).map_or_else(
                        || "no energy counter and no power reading".to_string(),
                        |m| format!("no energy counter; {m}"),
                    );
                    interval.unmeasured.push(format!("{}: {why}", r.zone));
                    continue;
                }
            };
            interval.measured_gpus += 1;
            interval.total_joules += joules;
            let Some(shares) = shares else {
                let why = r
                    .missing
                    .iter()
                    .find(|m| m.starts_with("process utilization"))
                    .map_or_else(|| "process utilization: not read".to_string(), String::clone);
                interval.unattributed.push(format!("{}: {why}", r.zone));
                interval.other_joules += joules;
                continue;
            };
            let mut to_jobs = 0.0;
            for (pid, j) in split_gpu_energy(joules, &shares) {
                if let Some(job) = pid_jobs.get(&pid) {
                    interval.charge(job, j);
                    to_jobs += j;
                }
            }
            interval.other_joules += (joules - to_jobs).max(0.0);
        }
        interval
    }

    fn track(&mut self, zone: &str) -> &mut Track {
        let i = match self.gpus.iter().position(|t| t.zone == zone) {
            Some(i) => i,
            None => {
                self.gpus.push(Track {
                    zone: zone.to_string(),
                    ..Track::default()
                });
                self.gpus.len() - 1
            }
        };
        &mut self.gpus[i]
    }
}

impl Track {
    /// The shares for this interval, `None` when process utilisation could not be read: each
    /// process's newest sample, held until it is older than `hold_s`.
    fn shares(&mut self, reading: &GpuReading, dt_s: f64, hold_s: f64) -> Option<Vec<ProcessShare>> {
        let Some(samples) = reading.processes.as_deref() else {
            // Process utilisation unreadable: nothing can be told apart.
            self.held.clear();
            return None;
        };
        for held in &mut self.held {
            held.age_s += dt_s;
        }
        for share in ProcessShare::from_samples(samples) {
            let fresh = Held { share, age_s: 0.0 };
            match self.held.iter_mut().find(|h| h.share.pid == share.pid) {
                Some(held) => *held = fresh,
                None => self.held.push(fresh),
            }
        }
        self.held.retain(|h| h.age_s <= hold_s);
        if self.held.len() > MAX_HELD_PER_GPU {
            self.held.sort_by(|a, b| a.age_s.total_cmp(&b.age_s));
            self.held.truncate(MAX_HELD_PER_GPU);
        }
        Some(self.held.iter().map(|h| h.share).collect())
    }
}
