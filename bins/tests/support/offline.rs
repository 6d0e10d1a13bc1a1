//! Running the `ffrtmp` binary for commands that need no master (benches, local reports),
//! and reading what it printed.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `ffrtmp args…` to completion, without any master address or CA the caller's
/// environment might set.
pub fn ffrtmp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args(args)
        .env_remove("FFRTMP_MASTER")
        .env_remove("FFRTMP_CA_CERT")
        .output()
        .unwrap()
}

/// Everything a run printed, stdout then stderr, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
