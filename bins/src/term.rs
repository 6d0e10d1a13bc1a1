//! What the binaries print on a terminal: text from elsewhere (a master's job names and reasons,
//! an agent's error messages) without terminal control sequences, and fatal errors as one line
//! without a backtrace, and colour only where a person reads it.

use std::io::IsTerminal;
use std::process::ExitCode;

pub use ffrtmp_bench::text::strip_controls;

/// The exit status of a binary's `main`: on an error, prints `Error: ` and the error with its
/// causes on one line (`{:#}`), control characters stripped, and returns 1. Never a backtrace:
/// anyhow's `Debug` form, which `fn main() -> anyhow::Result<()>` prints, adds one whenever
/// `RUST_BACKTRACE` is set, and a user error is not a crash.
pub fn exit_status(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", strip_controls(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Whether output to `stream` may carry ANSI colour: only when it is a terminal (not a pipe,
/// a file or journald) and `NO_COLOR` is unset or empty (<https://no-color.org>).
pub fn colour_allowed(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
