//! `ffrtmp bench scale`: opens the store, runs the scale harness and prints its table.

use std::sync::Arc;

use anyhow::{bail, Context};
use ffrtmp_core::JobStore;
use ffrtmp_sched::{PgStore, SchedConfig, SqliteStore};

use crate::bench::scale::{self, ScaleConfig, ScaleReport, Settle};
use crate::cli::{print_json, table};

/// The sizes of `--sizes`, in jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes(pub Vec<usize>);

/// Parses `--sizes`: comma-separated job counts with optional `k`/`m` suffixes (`1k,10k,1m`).
///
/// ```
/// use ffrtmp::cli::scale::{parse_sizes, Sizes};
/// assert_eq!(parse_sizes("1k, 10K,2m,500"), Ok(Sizes(vec![1_000, 10_000, 2_000_000, 500])));
/// assert!(parse_sizes("0").is_err() && parse_sizes("ten").is_err() && parse_sizes("").is_err());
/// ```
pub fn parse_sizes(text: &str) -> Result<Sizes, String> {
    let mut sizes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase();
        let (digits, factor) = match lower.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => match lower.strip_suffix('m') {
                Some(d) => (d, 1_000_000),
                None => (lower.as_str(), 1),
            },
        };
        let n: usize = digits
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid size {part:?}: expected a positive count such as 1000, 10k or 1m"))?;
        sizes.push(n * factor);
    }
    if sizes.is_empty() {
        return Err("no sizes given: expected e.g. 1k,10k,100k,1m".into());
    }
    Ok(Sizes(sizes))
}

/// A store to measure: the store, its name, and how it settles after a fill.
type Opened = (Arc<dyn JobStore>, String, Option<Settle>);

/// Opens the store `spec` names (`sqlite`: a scratch file in `dir`; `postgres://…`: that
/// database, which must hold no jobs), with the master's default settings. PostgreSQL
/// settles after each fill ([`PgStore::settle`]); SQLite's checkpoint thread keeps up on
/// its own.
async fn open(spec: &str, dir: &std::path::Path) -> anyhow::Result<Opened> {
    let config = SchedConfig::default();
    if spec == "sqlite" {
        let store = SqliteStore::open_with(&dir.join("scale.db"), config).context("opening the SQLite store")?;
        return Ok((Arc::new(store), "sqlite".into(), None));
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = Arc::new(
            PgStore::connect(spec, config)
                .await
                .context("connecting to PostgreSQL")?,
        );
        let name = format!("postgres {}", store.target());
        let pg = store.clone();
        let settle: Settle = Arc::new(move || {
            let pg = pg.clone();
            Box::pin(async move {
                Ok(match pg.settle().await? {
                    true => "VACUUM (ANALYZE) of the job tables, then CHECKPOINT".to_string(),
                    false => "VACUUM (ANALYZE) of the job tables (this role may not CHECKPOINT)".to_string(),
                })
            })
        });
        return Ok((store, name, Some(settle)));
    }
    bail!("invalid --store {spec:?}: expected sqlite or a postgres:// URL")
}

/// Runs the harness and prints the table (or JSON).
pub async fn run(store: &str, config: ScaleConfig, json: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("creating a scratch directory")?;
    let (store, name, settle) = open(store, dir.path()).await?;
    let progress = |line: &str| eprintln!("{line}");
    let report = scale::run(store, &name, config, dir.path(), settle, &progress).await?;
    if json {
        return print_json(&report);
    }
    print_table(&report);
    Ok(())
}

fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn print_table(r: &ScaleReport) {
    println!(
        "scale: store {}, {} samples per figure, {} idle agents long-polling",
        r.store, r.samples, r.idle_agents
    );
    let sizes: Vec<String> = r.rows.iter().map(|row| count(row.queued)).collect();
    let mut headers = vec!["FIGURE"];
    headers.extend(sizes.iter().map(String::as_str));
    headers.push("RATIO");
    let mut rows = Vec::new();
    let mut fill = vec!["fill jobs/s".to_string()];
    fill.extend(r.rows.iter().map(|row| format!("{:.0}", row.fill_per_s)));
    fill.push("-".into());
    rows.push(fill);
    let names: Vec<&str> = r.rows[0].figures().iter().map(|(n, _)| *n).collect();
    for (i, name) in names.iter().enumerate() {
        let mut line = vec![name.to_string()];
        line.extend(r.rows.iter().map(|row| format!("{:.2}", row.figures()[i].1)));
        line.push(match r.ratios.iter().find(|x| x.figure == *name) {
            Some(x) => format!("{:.2}{}", x.ratio, if x.ok { "" } else { " !" }),
            None => "-".into(),
        });
        rows.push(line);
    }
    table(&headers, rows);
    for g in &r.goals {
        let verdict = if g.met { "met" } else { "MISSED" };
        println!("goal {}: {:.2} ({verdict})", g.goal, g.value);
    }
}
