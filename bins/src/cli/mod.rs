//! Command handlers of the `ffrtmp` command line (the binary is the clap entry point): `jobs`,
//! `nodes`, `scenarios` and the printing of `bench load` and `bench scale`, with the table and JSON output they share.

pub mod efficiency;
pub mod jobs;
pub mod load;
pub mod nodes;
pub mod placement;
pub mod scale;
pub mod scenarios;
pub mod sla;
pub mod watch;

use crate::bench;

/// Prints `v` as pretty JSON.
pub fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints a text table.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    print!("{}", bench::text_table(headers, rows));
}

/// `v`, or `-` when there is none.
pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}
