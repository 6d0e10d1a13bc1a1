//! Flags of the original Go project (ffmpeg-rtmp: `master`, `agent`, `ffrtmp`) that ffrtmp has
//! no flag of the same name for, so that its README's commands, typed as written, either work
//! or fail with a message that names what to use instead. Flags with a direct equivalent are
//! clap aliases on ours (`--scheduler-interval`, `--cpu-limit`); the rest live here, hidden
//! from `--help`.

use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory};

use crate::parse_duration;

/// Refuses `flag` on `C`'s command line: a usage error (exit status 2) saying what to do
/// instead.
pub fn refuse<C: CommandFactory>(flag: &str, instead: &str) -> ! {
    C::command()
        .error(
            ErrorKind::ArgumentConflict,
            format!("{flag} is not supported: {instead}"),
        )
        .exit()
}

/// Go-master flags of `ffrtmp-master`.
#[derive(Args, Debug, Default)]
pub struct MasterFlags {
    /// The Go master's retry limit for every job; here each job carries its own.
    #[arg(long, hide = true, value_name = "N")]
    pub max_retries: Option<String>,
}

impl MasterFlags {
    /// Exits with a usage error when a refused flag was given.
    pub fn check<C: CommandFactory>(&self) {
        if self.max_retries.is_some() {
            refuse::<C>(
                "--max-retries",
                "retries are set per job: `ffrtmp jobs submit --max-retries N` (default 3); the master's \
                 --retry-base sets the delay between them",
            );
        }
    }
}

/// Go-agent flags of `ffrtmp-agent`.
#[derive(Args, Debug, Default)]
pub struct AgentFlags {
    /// Accepted: the agent always registers when it starts.
    #[arg(long, hide = true)]
    pub register: bool,
    /// Accepted and not needed: a claim waits at the master (`--claim-wait`) and returns as
    /// soon as work is queued, so there is no polling interval to set.
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub poll_interval: Option<Duration>,
    /// Refused: TLS verification is never skipped.
    #[arg(long, hide = true)]
    pub insecure_skip_verify: bool,
}

impl AgentFlags {
    /// Exits with a usage error when a refused flag was given.
    pub fn check<C: CommandFactory>(&self) {
        if self.insecure_skip_verify {
            refuse::<C>("--insecure-skip-verify", SKIP_VERIFY_INSTEAD);
        }
    }

    /// What to tell the user about accepted flags that change nothing.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(interval) = self.poll_interval {
            notes.push(format!(
                "--poll-interval {interval:?} is not needed: a claim waits at the master (--claim-wait) and \
                 returns as soon as work is queued"
            ));
        }
        notes
    }
}

/// Go flags of the `ffrtmp` command line, valid with every subcommand.
#[derive(Args, Debug, Default)]
pub struct CliFlags {
    /// Refused: TLS verification is never skipped.
    #[arg(long, global = true, hide = true)]
    pub insecure_skip_verify: bool,
}

impl CliFlags {
    /// Exits with a usage error when a refused flag was given.
    pub fn check<C: CommandFactory>(&self) {
        if self.insecure_skip_verify {
            refuse::<C>("--insecure-skip-verify", SKIP_VERIFY_INSTEAD);
        }
    }
}

const SKIP_VERIFY_INSTEAD: &str =
    "TLS verification is never skipped; pass --ca-cert <the master's cert> (its tls/cert.pem, or set FFRTMP_CA_CERT)";

/// Go flags of `ffrtmp run`.
#[derive(Args, Debug, Default)]
pub struct RunFlags {
    /// Refused: `ffrtmp run` keeps no SLA statistics.
    #[arg(long, hide = true)]
    pub sla_eligible: bool,
}

impl RunFlags {
    /// Exits with a usage error when a refused flag was given.
    pub fn check<C: CommandFactory>(&self) {
        if self.sla_eligible {
            refuse::<C>(
                "--sla-eligible",
                "`ffrtmp run` keeps no SLA statistics (jobs on the master carry a classification instead); \
                 leave it out",
            );
        }
    }
}

/// Go flags of `ffrtmp watch`.
#[derive(Args, Debug, Default)]
pub struct WatchFlags {
    /// Accepted: a process that could not be attached is tried again at every scan anyway.
    #[arg(long, hide = true)]
    pub enable_retry: bool,
}

/// Go flags of `ffrtmp config recommend`.
#[derive(Args, Debug, Default)]
pub struct RecommendFlags {
    /// Accepted and ignored: the suggestions come from this machine's hardware.
    #[arg(long, hide = true)]
    pub environment: Option<String>,
}

impl RecommendFlags {
    /// What to tell the user about accepted flags that change nothing.
    pub fn notes(&self) -> Vec<String> {
        self.environment
            .iter()
            .map(|e| format!("--environment {e} is ignored: the suggestions come from this machine's hardware"))
            .collect()
    }
}
