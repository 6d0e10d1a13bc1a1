//! Capability matching in the claim, shared by every store.
//!
//! The decision is [`NodeRegistration::can_run`]. Each store's claim probes only the
//! requirement classes of queued jobs that the node can run ([`may_run`], the same rule
//! over a class), so a job no node of this kind can run is skipped rather than waited on;
//! each candidate is then checked with `can_run` itself before it is assigned, so a class
//! that disagreed could never hand a node a job it must not run.

use ffrtmp_core::{Enforcement, Job, JobSpec, NodeRegistration, Requirements};

/// Whether `node` can run the jobs of a requirement class: [`NodeRegistration::meets`].
/// A class whose requirements are unknown (`None`: a column this build cannot read) may
/// hold anything, so it is probed rather than skipped.
pub(crate) fn may_run(node: &NodeRegistration, class: Option<&Requirements>) -> bool {
    class.is_none_or(|req| node.meets(req).is_ok())
}

/// The `engine` column of a job: the engine it is pinned to, or `''` for `auto`.
pub(crate) fn engine_column(spec: &JobSpec) -> &'static str {
    spec.engine.pinned().unwrap_or("")
}

/// The `needs_enforcement` column of a job.
pub(crate) fn needs_enforcement(spec: &JobSpec) -> bool {
    spec.resource_limits.enforcement == Enforcement::Required
}

/// Whether `node` may be given `job`; logs the disagreement with the query when not.
pub(crate) fn admits(node: &NodeRegistration, job: &Job) -> bool {
    match node.can_take(&job.spec) {
        Ok(()) => true,
        Err(why) => {
            tracing::warn!(job = %job.id, node = %node.name, %why, "claim query offered a job the node cannot run; skipped");
            false
        }
    }
}
