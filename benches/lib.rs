//! Research harnesses of ffrtmp, run with `cargo bench -p ffrtmp-benches --bench <name>`:
//!
//! - `claim`: job lifecycles per second on the SQLite store beside raw durable SQLite updates.
//! - `powercap_read`: one RAPL sample on a powercap-shaped file tree.
//! - `sampler`: the energy sampler's tick and its thread's CPU cost at 10 and 100 Hz.
//! - `attribution`: per-job energy attributed by the sampler against the true joules on a
//!   synthetic powercap tree and cgroup CPU counters with known shares.
//! - `supervision_spawn`: a trivial process through the supervisor against a bare
//!   `std::process::Command`.
//!
//! The library itself is empty; the benches are the package.
