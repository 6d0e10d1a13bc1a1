//! [`AgentBuilder`]: an agent from a transport, an executor and (optionally) an energy meter,
//! registered with what this host detects unless told otherwise.

use std::sync::Arc;
use std::time::Duration;

use ffrtmp_core::{Executor, JobEnergyMeter, NodeRegistration, Transport};

use super::{Agent, AgentConfig};
use crate::detect;

/// Builds an [`Agent`]. Any [`JobEnergyMeter`] keeps per-job energy whatever the executor, e.g.
/// `ffrtmp_power::agent::MeteredNode` over any `PowerSource`, registered as the observer of the
/// executor's job cgroups.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ffrtmp_exec::{AgentBuilder, NoopExecutor};
/// # fn demo(transport: Arc<dyn ffrtmp_core::Transport>) {
/// let agent = AgentBuilder::new(transport, Arc::new(NoopExecutor::new(Duration::from_millis(5))))
///     .name("bench-1")
///     .engines(["noop"])
///     .max_concurrent_jobs(2)
///     .build();
/// # let _ = agent;
/// # }
/// ```
pub struct AgentBuilder {
    transport: Arc<dyn Transport>,
    executor: Arc<dyn Executor>,
    energy: Option<Arc<dyn JobEnergyMeter>>,
    config: AgentConfig,
}

impl AgentBuilder {
    /// An agent over `transport` running jobs with `executor`, registered under the host name
    /// with this host's CPU cores and memory, one job at a time, no encoders or engines
    /// advertised and no enforced limits; without an energy meter (results then say energy is
    /// unavailable and why).
    pub fn new(transport: Arc<dyn Transport>, executor: Arc<dyn Executor>) -> Self {
        let registration = NodeRegistration {
            name: detect::host_name(),
            cpu_cores: detect::cpu_cores(),
            memory_mb: detect::memory_mb(),
            max_concurrent_jobs: 1,
            encoders: Vec::new(),
            engines: Vec::new(),
            version: env!("CARGO_PKG_VERSION").into(),
            enforces_limits: false,
            quality_metrics: Vec::new(),
        };
        AgentBuilder {
            transport,
            executor,
            energy: None,
            config: AgentConfig::new(registration),
        }
    }

    /// Measures each job's energy with `meter`.
    pub fn energy_meter(mut self, meter: Arc<dyn JobEnergyMeter>) -> Self {
        self.energy = Some(meter);
        self
    }

    /// The node name shown by the master.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.registration.name = name.into();
        self
    }

    /// Jobs run at once.
    pub fn max_concurrent_jobs(mut self, jobs: u32) -> Self {
        self.config.registration.max_concurrent_jobs = jobs;
        self
    }

    /// The engines advertised: jobs pinned to an engine go only to nodes that list it.
    pub fn engines<S: Into<String>>(mut self, engines: impl IntoIterator<Item = S>) -> Self {
        self.config.registration.engines = engines.into_iter().map(Into::into).collect();
        self
    }

    /// The encoders advertised.
    pub fn encoders<S: Into<String>>(mut self, encoders: impl IntoIterator<Item = S>) -> Self {
        self.config.registration.encoders = encoders.into_iter().map(Into::into).collect();
        self
    }

    /// Whether this node enforces resource limits (jobs that require them go only to such nodes).
    pub fn enforces_limits(mut self, enforces: bool) -> Self {
        self.config.registration.enforces_limits = enforces;
        self
    }

    /// The quality metrics advertised (see [`crate::detect::quality_metrics`]).
    pub fn quality_metrics(mut self, metrics: impl IntoIterator<Item = ffrtmp_core::quality::QualityMetric>) -> Self {
        self.config.registration.quality_metrics = metrics.into_iter().collect();
        self
    }

    /// The whole registration, replacing the detected one.
    pub fn registration(mut self, registration: NodeRegistration) -> Self {
        self.config.registration = registration;
        self
    }

    /// How often running jobs' progress goes to the master (default 500 ms); cancels
    /// arrive in the answers.
    pub fn progress_interval(mut self, every: Duration) -> Self {
        self.config.progress_interval = every;
        self
    }

    /// Heartbeat period (must match the master's).
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.config.heartbeat_interval = every;
        self
    }

    /// How long one claim may wait at the master for work.
    pub fn claim_wait(mut self, wait: Duration) -> Self {
        self.config.claim_wait = wait;
        self
    }

    /// Any other setting of [`AgentConfig`] (drain timeout, idle pause, report patience).
    pub fn config(mut self, edit: impl FnOnce(&mut AgentConfig)) -> Self {
        edit(&mut self.config);
        self
    }

    /// The agent; start it with [`Agent::run`].
    pub fn build(self) -> Agent {
        Agent::new(self.transport, self.executor, self.energy, self.config)
    }
}
