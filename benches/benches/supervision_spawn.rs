//! Supervision overhead on a trivial process: `/bin/true` spawned and waited for through
//! `ffrtmp_exec::supervise::run` (own process group, `PR_SET_PDEATHSIG`, the group killed and
//! waited for after the leader exits, stdout and stderr read) against a bare
//! `std::process::Command::status()`. The process does nothing, so the difference is the
//! supervisor's fixed cost per job; an encode's own overhead is `cargo bench -p ffrtmp --bench
//! supervision`.
//!
//! `cargo bench -p ffrtmp-benches --bench supervision_spawn`; with `--test` each variant runs
//! once as a smoke test.

use std::process::{Command, Stdio};

use criterion::Criterion;
use ffrtmp_core::cancel_pair;
use ffrtmp_exec::supervise::{run, ProcessSpec};

const TRUE: &str = "/bin/true";

fn bare() {
    let status = Command::new(TRUE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn /bin/true");
    assert!(status.success());
}

fn supervised(rt: &tokio::runtime::Runtime, spec: &ProcessSpec) {
    let (_cancel, signal) = cancel_pair();
    let exit = rt.block_on(run(spec, signal, |_| {})).expect("supervised /bin/true");
    assert!(exit.success(), "{exit:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut spec = ProcessSpec::new(TRUE, Vec::<String>::new());
    // Niceness is a scheduling policy, not overhead.
    spec.nice = None;
    if !args.iter().any(|a| a == "--bench") {
        bare();
        supervised(&rt, &spec);
        println!("supervision_spawn: smoke run ok");
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("spawn_bare_command_true", |b| b.iter(bare));
    c.bench_function("spawn_supervised_true", |b| b.iter(|| supervised(&rt, &spec)));
    c.final_summary();
}
