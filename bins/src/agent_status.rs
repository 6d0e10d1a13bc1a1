//! What the reference agent's status endpoint says: readiness checks (engine, disk, master)
//! and Prometheus metrics (jobs, limits, energy).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ffrtmp_exec::agent::AgentStats;
use ffrtmp_exec::DiskUsage;
use ffrtmp_http::{Check, PromText, ReadyReport, StatusProbe};

use crate::energy::AttributedEnergy;

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
        let s = &self.stats;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut p = PromText::new();
        p.gauge(
            "ffrtmp_agent_jobs_running",
            "Jobs running on this agent.",
            &[],
            get(&s.running),
        );
        for (outcome, counter) in [
            ("completed", &s.completed),
            ("failed", &s.failed),
            ("timed_out", &s.timed_out),
            ("stopped", &s.stopped),
        ] {
            p.counter(
                "ffrtmp_agent_jobs_total",
                "Jobs this agent finished, by outcome.",
                &[("outcome", outcome)],
                get(counter),
            );
        }
        p.counter(
            "ffrtmp_agent_limits_not_enforced_total",
            "Completed jobs whose resource limits could not be enforced.",
            &[],
            get(&s.limits_not_enforced),
        );
        p.counter(
            "ffrtmp_agent_master_errors_total",
            "Failed heartbeats and claims.",
            &[],
            get(&s.master_errors),
        );
        let sampler = self.energy.sampler();
        p.gauge(
            "ffrtmp_energy_available",
            "1 when energy counters are readable on this node.",
            &[],
            if sampler.unavailable_reason().is_none() {
                1.0
            } else {
                0.0
            },
        );
        let totals = sampler.totals();
        for z in &totals.zones {
            p.counter(
                "ffrtmp_energy_joules_total",
                "Energy measured per zone since the agent started.",
                &[("zone", &z.zone)],
                z.joules,
            );
        }
        p.counter(
            "ffrtmp_energy_jobs_joules_total",
            "Energy attributed to jobs.",
            &[],
            totals.jobs_joules,
        );
        p.counter(
            "ffrtmp_rapl_wraps_total",
            "Energy counter wraps corrected.",
            &[],
            totals.wraps as f64,
        );
        if let Some(w) = sampler.recent_watts(Duration::from_secs(10)) {
            p.gauge(
                "ffrtmp_power_watts",
                "Mean power over the last 10 s.",
                &[("zone", "total")],
                w,
            );
        }
        if let Some(idle) = sampler.idle_power() {
            p.gauge("ffrtmp_idle_watts", "Mean power while no job ran.", &[], idle.watts);
        }
        p.finish()
    }
}
