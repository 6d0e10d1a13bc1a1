//! Shared plumbing of the reference binaries: logging and flag parsing. The binaries only
//! compose the library crates; anything reusable lives in those crates.

use std::time::Duration;

pub mod bench;
pub mod cli;
pub mod compat;
pub mod edge;
pub mod keys;
pub mod load;
pub mod recommend;
pub mod secret_env;
pub mod term;

/// Parses durations written like `30s`, `500ms`, `2m`, `1h`, `7d` or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(ffrtmp::parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(ffrtmp::parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert!(ffrtmp::parse_duration("soon").is_err());
/// assert!(ffrtmp::parse_duration("99999999999999999999999d").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. 30s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86400.0,
        _ => return Err(format!("invalid duration unit in {text:?}: use ms, s, m, h or d")),
    };
    // Also refuses what no Duration holds (`from_secs_f64` would panic on it).
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {text:?}"))
}

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
