//! Shared plumbing of the reference binaries: logging and flag parsing. The binaries only
//! compose the library crates; anything reusable lives in those crates.

pub use ffrtmp_bench as bench;
pub use ffrtmp_bench::{load, recommend};
pub mod cli;
pub mod compat;
pub mod completions;
pub mod config;
pub mod edge;
pub use ffrtmp_exec::secret_env;
pub use ffrtmp_http::keyfiles as keys;
pub mod status;
pub mod term;

pub use ffrtmp_bench::text::parse_duration;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Sets up `tracing` to stderr; `RUST_LOG` overrides the default level (`info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(term::colour_allowed(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
