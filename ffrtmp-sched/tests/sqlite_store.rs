//! End-to-end behaviour of the SQLite store on real database files: the store conformance
//! suite (`tests/conformance`), which `tests/postgres_store.rs` runs against PostgreSQL.

mod common;
#[macro_use]
mod conformance;

use conformance::backend::SqliteBackend;

conformance_tests!(Some(SqliteBackend::new());
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
