//! What an agent's status endpoint says ([`AgentProbe`], the reference agent's probe): readiness checks (engine, disk, master)
//! and Prometheus metrics (jobs, limits, energy).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_exec::agent::AgentStats;
use ffrtmp_exec::DiskUsage;
use ffrtmp_power::agent::AttributedEnergy;
use ffrtmp_power::Sampler;

use ffrtmp_http::metrics::encode::{self, counter_family, gauge_family, FnCollector, Labels};
use ffrtmp_http::metrics::process;
use ffrtmp_http::{Check, ReadyReport, StatusProbe};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

/// Readiness fails when the scratch disk is this full (jobs are refused at 95 %).
pub const DISK_NOT_READY_PERCENT: f64 = 90.0;

/// The agent's [`StatusProbe`].
pub struct AgentProbe {
    /// Live counters of the agent loop.
    pub stats: Arc<AgentStats>,
    /// The energy meter, for energy metrics.
    pub energy: Arc<AttributedEnergy>,
    /// The engine binary that must be present (`None` for the no-op executor).
    pub engine: Option<PathBuf>,
    /// Where outputs are written.
    pub scratch: PathBuf,
    /// The master is considered unreachable after this long without a successful exchange.
    pub master_silence: Duration,
}

impl StatusProbe for AgentProbe {
    fn ready(&self) -> ReadyReport {
        let mut checks = Vec::new();
        checks.push(match &self.engine {
            Some(p) if p.is_file() => Check::pass("engine", format!("{} present", p.display())),
            Some(p) => Check::fail("engine", format!("{} is missing", p.display())),
            None => Check::pass("engine", "no-op executor"),
        });
        checks.push(match DiskUsage::of(&self.scratch) {
            Ok(d) if d.used_percent < DISK_NOT_READY_PERCENT => {
                Check::pass("disk", format!("{:.1}% used", d.used_percent))
            }
            Ok(d) => Check::fail(
                "disk",
                format!("{:.1}% used (not ready at {DISK_NOT_READY_PERCENT}%)", d.used_percent),
            ),
            Err(e) => Check::fail("disk", e.to_string()),
        });
        let last = self.stats.last_contact_ms.load(Ordering::Relaxed);
        let age_ms = ffrtmp_core::now_ms().saturating_sub(last);
        checks.push(if last == 0 {
            Check::fail("master", "no successful exchange with the master yet")
        } else if age_ms > self.master_silence.as_millis() as u64 {
            Check::fail(
                "master",
                format!("last successful exchange {:.1} s ago", age_ms as f64 / 1000.0),
            )
        } else {
            Check::pass(
                "master",
                format!("last successful exchange {:.1} s ago", age_ms as f64 / 1000.0),
            )
        });
        ReadyReport::from_checks(checks)
    }

    fn metrics(&self) -> String {
        let mut registry = Registry::default();
        let (stats, energy) = (self.stats.clone(), self.energy.clone());
        registry.register_collector(Box::new(FnCollector(move |e: &mut DescriptorEncoder| {
            job_metrics(e, &stats)?;
            energy_metrics(e, energy.sampler())?;
            gpu_metrics(e, &energy)
        })));
        process::register_standard(&mut registry);
        encode::render(&registry)
    }
}

/// The agent loop's counters.
fn job_metrics(e: &mut DescriptorEncoder, s: &AgentStats) -> Result<(), std::fmt::Error> {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    gauge_family(
        e,
        "ffrtmp_agent_jobs_running",
        "Jobs running on this agent.",
        &[(&[], get(&s.running))],
    )?;
    counter_family(
        e,
        "ffrtmp_agent_jobs_total",
        "Jobs this agent finished, by outcome.",
        &[
            (&[("outcome", "completed")], get(&s.completed)),
            (&[("outcome", "failed")], get(&s.failed)),
            (&[("outcome", "timed_out")], get(&s.timed_out)),
            (&[("outcome", "stopped")], get(&s.stopped)),
        ],
    )?;
    counter_family(
        e,
        "ffrtmp_agent_limits_not_enforced_total",
        "Completed jobs whose resource limits could not be enforced.",
        &[(&[], get(&s.limits_not_enforced))],
    )?;
    counter_family(
        e,
        "ffrtmp_agent_master_errors_total",
        "Failed heartbeats and claims.",
        &[(&[], get(&s.master_errors))],
    )
}

/// The GPU energy series; nodes without GPU energy export no GPU counters rather than zeros.
fn gpu_metrics(e: &mut DescriptorEncoder, energy: &AttributedEnergy) -> Result<(), std::fmt::Error> {
    let gpu = energy.gpu();
    gauge_family(
        e,
        "ffrtmp_gpu_energy_available",
        "1 when the latest GPU reading measured GPU energy on this node (NVML).",
        &[(&[], if gpu.measuring() { 1.0 } else { 0.0 })],
    )?;
    if !gpu.has_gpus() {
        return Ok(());
    }
    let totals = gpu.totals();
    counter_family(
        e,
        "ffrtmp_gpu_energy_joules_total",
        "GPU energy since the agent started, attributed to jobs or left to other.",
        &[
            (&[("to", "jobs")], totals.jobs_joules),
            (&[("to", "other")], totals.other_joules),
        ],
    )?;
    counter_family(
        e,
        "ffrtmp_gpu_read_errors_total",
        "GPU readings that failed.",
        &[(&[], totals.read_errors as f64)],
    )
}

/// The CPU energy series. A meter that stopped answering ([`Sampler::measuring`] false after
/// repeated failed readings) shows `ffrtmp_energy_available 0` and no figures, not its last ones
/// frozen; a node without any energy source exports the gauge alone, no zeros.
fn energy_metrics(e: &mut DescriptorEncoder, sampler: &Sampler) -> Result<(), std::fmt::Error> {
    let measuring = sampler.measuring();
    gauge_family(
        e,
        "ffrtmp_energy_available",
        "1 while energy counters are being read on this node; 0 without a source or after repeated failed reads.",
        &[(&[], if measuring { 1.0 } else { 0.0 })],
    )?;
    if sampler.unavailable_reason().is_some() {
        return Ok(()); // never read: there is nothing to count
    }
    let totals = sampler.totals();
    counter_family(
        e,
        "ffrtmp_rapl_wraps_total",
        "Energy counter wraps corrected.",
        &[(&[], totals.wraps as f64)],
    )?;
    counter_family(
        e,
        "ffrtmp_rapl_resets_total",
        "Energy counter resets (a counter that restarted, or went backwards too far for a wrap); each dropped one sampling interval.",
        &[(&[], totals.resets as f64)],
    )?;
    if !measuring {
        return Ok(());
    }
    let zones: Vec<[(&str, &str); 1]> = totals.zones.iter().map(|z| [("zone", z.zone.as_str())]).collect();
    let series: Vec<(Labels, f64)> = zones
        .iter()
        .zip(&totals.zones)
        .map(|(l, z)| (&l[..], z.joules))
        .collect();
    counter_family(
        e,
        "ffrtmp_energy_joules_total",
        "Energy measured per zone since the agent started.",
        &series,
    )?;
    counter_family(
        e,
        "ffrtmp_energy_jobs_joules_total",
        "Energy attributed to jobs.",
        &[(&[], totals.jobs_joules)],
    )?;
    if let Some(w) = sampler.recent_watts(Duration::from_secs(10)) {
        gauge_family(
            e,
            "ffrtmp_power_watts",
            "Mean power over the last 10 s.",
            &[(&[("zone", "total")], w)],
        )?;
    }
    if let Some(idle) = sampler.idle_power() {
        gauge_family(
            e,
            "ffrtmp_idle_watts",
            "Mean power while no job ran.",
            &[(&[], idle.watts)],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ffrtmp_core::{EnergySample, PowerError, PowerSource, ZoneEnergy};
    use ffrtmp_power::{GpuMeter, GpuReading, GpuSampler, GpuSamplerConfig, SamplerConfig, FAILED_READS_UNAVAILABLE};

    use super::*;

    /// One GPU that answers, or not, as the test says.
    struct Gpu(Mutex<Result<Vec<GpuReading>, PowerError>>);

    impl GpuMeter for Gpu {
        fn source_name(&self) -> &str {
            "fake-gpu"
        }
        fn read_gpus(&self) -> Result<Vec<GpuReading>, PowerError> {
            self.0.lock().unwrap().clone()
        }
    }

    fn probe(energy: AttributedEnergy) -> AgentProbe {
        AgentProbe {
            stats: Arc::new(AgentStats::default()),
            energy: Arc::new(energy),
            engine: None,
            scratch: std::env::temp_dir(),
            master_silence: Duration::from_secs(30),
        }
    }

    fn cpu_unavailable() -> AttributedEnergy {
        AttributedEnergy::new(
            |_| Sampler::unavailable(PowerError::Unavailable("no powercap".into())),
            None,
        )
    }

    #[test]
    fn a_node_without_gpu_energy_exports_no_gpu_counters() {
        let text = probe(cpu_unavailable()).metrics();
        assert!(text.contains("ffrtmp_gpu_energy_available 0"), "{text}");
        assert!(!text.contains("ffrtmp_gpu_energy_joules_total"), "{text}");
        assert!(!text.contains("ffrtmp_gpu_read_errors_total"), "{text}");
    }

    #[test]
    fn gpu_availability_follows_the_latest_reading_and_errors_are_counted() {
        let reading = GpuReading {
            zone: "gpu-0".into(),
            energy_uj: Some(0),
            processes: Some(vec![]),
            ..Default::default()
        };
        let gpu = Arc::new(Gpu(Mutex::new(Ok(vec![reading]))));
        let meter = gpu.clone();
        let probe = probe(cpu_unavailable().with_gpu("/nonexistent", |processes| {
            GpuSampler::manual(meter, processes, GpuSamplerConfig::default())
        }));
        let text = probe.metrics();
        assert!(text.contains("ffrtmp_gpu_energy_available 1"), "{text}");
        assert!(
            text.contains(r#"ffrtmp_gpu_energy_joules_total{to="other"} 0"#),
            "{text}"
        );
        assert!(text.contains("ffrtmp_gpu_read_errors_total 0"), "{text}");
        // The GPU stops answering (while a job runs, which no metric names).
        probe.energy.gpu().job_started("job-7f3a-a1");
        *gpu.0.lock().unwrap() = Err(PowerError::Read("GPU 0 has fallen off the bus".into()));
        assert!(probe.energy.gpu().tick().is_err());
        let text = probe.metrics();
        assert!(text.contains("ffrtmp_gpu_energy_available 0"), "{text}");
        assert!(text.contains("ffrtmp_gpu_read_errors_total 1"), "{text}");
        assert!(!text.contains("7f3a"), "no job ids as labels: {text}");
    }

    /// A package counter the test moves, or breaks (`None`).
    struct Counter(Mutex<Option<u64>>);

    impl PowerSource for Counter {
        fn name(&self) -> &str {
            "fake-rapl"
        }
        fn sample(&self) -> Result<EnergySample, PowerError> {
            let uj = self
                .0
                .lock()
                .unwrap()
                .ok_or_else(|| PowerError::Read("counter gone".into()))?;
            Ok(EnergySample {
                zones: vec![ZoneEnergy {
                    zone: "package-0".into(),
                    energy_uj: uj,
                }],
                wraps: 0,
            })
        }
    }

    #[test]
    fn a_node_without_an_energy_source_exports_no_energy_values() {
        let text = probe(cpu_unavailable()).metrics();
        assert!(text.contains("ffrtmp_energy_available 0"), "{text}");
        let values: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.starts_with("ffrtmp_energy_") || l.starts_with("ffrtmp_rapl_") || l.starts_with("ffrtmp_power_")
            })
            .collect();
        assert_eq!(values, ["ffrtmp_energy_available 0"], "{text}");
    }

    #[test]
    fn after_repeated_failed_reads_energy_is_unavailable_not_frozen() {
        let counter = Arc::new(Counter(Mutex::new(Some(1_000_000))));
        let source = counter.clone();
        let probe = probe(AttributedEnergy::new(
            move |cpu| Sampler::manual(source, cpu, SamplerConfig::default()),
            None,
        ));
        *counter.0.lock().unwrap() = Some(4_000_000);
        probe.energy.sampler().tick().unwrap();
        let text = probe.metrics();
        assert!(text.contains("ffrtmp_energy_available 1"), "{text}");
        assert!(
            text.contains(r#"ffrtmp_energy_joules_total{zone="package-0"} 3"#),
            "{text}"
        );
        assert!(text.contains("ffrtmp_rapl_resets_total 0"), "{text}");

        *counter.0.lock().unwrap() = None;
        for _ in 0..FAILED_READS_UNAVAILABLE {
            assert!(probe.energy.sampler().tick().is_err());
        }
        let text = probe.metrics();
        assert!(text.contains("ffrtmp_energy_available 0"), "{text}");
        assert!(!text.contains("ffrtmp_energy_joules_total{"), "no stale joules: {text}");
        assert!(!text.contains("ffrtmp_energy_jobs_joules_total "), "{text}");
        assert!(!text.contains("ffrtmp_power_watts{"), "{text}");

        // Readings resume: so do the figures.
        *counter.0.lock().unwrap() = Some(5_000_000);
        probe.energy.sampler().tick().unwrap();
        let text = probe.metrics();
        assert!(text.contains("ffrtmp_energy_available 1"), "{text}");
        assert!(
            text.contains(r#"ffrtmp_energy_joules_total{zone="package-0"} 4"#),
            "{text}"
        );
    }
}
