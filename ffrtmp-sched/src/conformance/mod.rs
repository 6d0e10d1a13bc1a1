//! The store conformance suite (cargo feature `conformance`): the behaviour every
//! [`JobStore`](ffrtmp_core::JobStore) must show, written once and run against each store.
//! This crate runs it on [`SqliteStore`](crate::SqliteStore) and `PgStore`; a third-party
//! store runs it the same way.
//!
//! Each test is a public async function taking a [`Backend`]: fresh, empty storage that
//! stores can be opened on with the [`SchedConfig`](crate::SchedConfig) a test needs (usually a
//! [`ManualClock`](support::ManualClock)'s), several times (a restart, or two masters sharing it).
//! [`conformance_tests!`](crate::conformance_tests) wraps them in `#[tokio::test]`s:
//!
//! ```ignore
//! // tests/my_store.rs; dev-dependencies: tokio (features "macros", "rt-multi-thread"),
//! // ffrtmp-sched with feature "conformance".
//! struct MyBackend;
//! #[async_trait::async_trait]
//! impl ffrtmp_sched::conformance::Backend for MyBackend {
//!     async fn open(&self, config: ffrtmp_sched::SchedConfig) -> std::sync::Arc<dyn ffrtmp_core::JobStore> {
//!         todo!("open my store on this backend's storage")
//!     }
//!     fn name(&self) -> &'static str {
//!         "mine"
//!     }
//! }
//! // Every test of the suite, each on a fresh backend (`None` would skip the test):
//! ffrtmp_sched::conformance_tests!(Some(MyBackend));
//! ```
//!
//! The tests use real time only where a race is the point (claims from many tasks, two
//! sweeps at once); everything time-driven runs on a manual clock.

mod attempt_energy;
pub mod backend;
mod concurrency;
mod failures;
mod lifecycle;
mod nodes;
#[cfg(feature = "postgres")]
pub mod pg;
mod power;
mod routing;
mod scheduling;
pub mod support;

pub use self::attempt_energy::*;
pub use self::backend::{Backend, SqliteBackend, WithPlacement};
pub use self::concurrency::*;
pub use self::failures::*;
pub use self::lifecycle::*;
pub use self::nodes::*;
pub use self::power::*;
pub use self::routing::*;
pub use self::scheduling::*;

/// Wraps conformance tests for one backend in `#[tokio::test]`s (multi-threaded: the race
/// tests block worker threads and concurrent sweeps must really run at once). The caller
/// needs `tokio` with the `macros` and `rt-multi-thread` features.
///
/// - `conformance_tests!(backend)`: every test of the suite.
/// - `conformance_tests!(backend; name, ...)`: the named tests.
///
/// `backend` is an expression, evaluated afresh in each test (it may `.await`), yielding
/// `Option<impl Backend>`; `None` skips the test (e.g. no database server configured).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let Some(backend) = $backend else { return };
                $crate::conformance::$name(&backend).await;
            }
        )*
    };
    ($backend:expr) => {
        $crate::conformance_tests!($backend;
            lifecycle_is_recorded_in_history,
            stale_attempts_and_other_nodes_are_fenced,
            order_is_queue_then_priority_then_fifo,
            claims_respect_concurrency_and_are_idempotent,
            repeated_claims_keep_their_first_order,
            claims_are_forgotten_after_an_hour,
            cancel_reaches_the_node_through_its_heartbeat,
            heartbeats_store_progress_and_fence_the_rest,
            a_lost_node_loses_its_jobs_and_its_late_report_is_refused,
            transient_failures_retry_until_exhausted_and_terminal_ones_do_not,
            operator_retry_resets_the_budget_and_timeouts_fail,
            jobs_and_states_survive_a_restart,
            listing_is_paginated_and_filtered,
            node_listing_is_paginated,
            offline_nodes_are_pruned_after_their_retention,
            invalid_specs_and_registrations_are_refused,
            claim_race_hands_out_each_job_once,
            two_masters_hand_out_each_job_once,
            concurrent_sweeps_do_the_work_once,
            a_low_batch_job_is_not_starved_by_a_stream_of_high_live_jobs,
            a_requeued_job_ages_from_its_own_rank_again,
            a_job_for_hardware_the_node_lacks_does_not_block_the_queue,
            an_encoder_that_does_not_match_the_codec_is_refused,
            completed_jobs_are_pruned_after_retention_in_bounded_batches,
            a_restarted_master_gives_nodes_a_window_to_come_back,
            a_two_hour_job_with_healthy_heartbeats_is_never_failed_or_duplicated,
            a_job_the_node_stopped_listing_goes_back_to_the_queue,
            a_reassigned_jobs_stale_attempt_is_fenced_by_attempt,
            the_latest_heartbeats_power_snapshot_is_listed,
            an_older_power_snapshot_does_not_replace_a_newer_one,
            a_job_pinned_to_an_engine_goes_only_to_nodes_with_it,
            a_job_requiring_enforcement_goes_only_to_enforcing_nodes,
            out_of_bounds_input_is_refused_by_the_store,
            failed_and_timed_out_jobs_keep_the_energy_they_used,
            a_canceled_jobs_energy_is_stored,
            a_job_that_failed_once_then_completed_keeps_both_attempts_energy,
            a_stale_attempts_energy_alters_only_its_own_record,
        );
    };
}
