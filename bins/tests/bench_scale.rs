//! `ffrtmp bench scale` through the real binary, at tiny sizes: every figure is there at
//! every size, the ratios are the largest size's figures over the smallest's, on SQLite and
//! on PostgreSQL (needs `FFRTMP_TEST_PG_URL`, as scripts/test.sh sets it).

use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/offline.rs"]
mod offline;
use offline::{ffrtmp, text};

const FIGURES: [&str; 11] = [
    "submit_p50_ms",
    "submit_p99_ms",
    "claim_idle_p50_ms",
    "claim_idle_p99_ms",
    "claim_busy_p50_ms",
    "claim_busy_p99_ms",
    "sweep_p50_ms",
    "sweep_p99_ms",
    "list_p50_ms",
    "list_p99_ms",
    "rss_mb",
];

/// Checks a JSON report of sizes 200 and 2000.
fn check_json(v: &Value) {
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!(
        (rows[0]["queued"].as_u64(), rows[1]["queued"].as_u64()),
        (Some(200), Some(2000))
    );
    for row in rows {
        for f in FIGURES {
            let x = row[f].as_f64().unwrap_or_else(|| panic!("{f} missing in {row}"));
            assert!(x >= 0.0 && x.is_finite(), "{f} = {x}");
        }
        assert!(row["submit_p50_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["rss_mb"].as_f64().unwrap() > 1.0, "{row}");
        assert!(row["fill_per_s"].as_f64().unwrap() > 0.0, "{row}");
    }
    let ratios = v["ratios"].as_array().unwrap();
    assert_eq!(ratios.len(), FIGURES.len());
    for (r, f) in ratios.iter().zip(FIGURES) {
        assert_eq!(r["figure"], f);
        let (small, large) = (rows[0][f].as_f64().unwrap(), rows[1][f].as_f64().unwrap());
        assert_eq!(r["smallest"].as_f64(), Some(small));
        assert_eq!(r["largest"].as_f64(), Some(large));
        let ratio = r["ratio"].as_f64().unwrap();
        let expected = if small > 0.0 { large / small } else { 1.0 };
        assert!((ratio - expected).abs() < 1e-9, "{f}: {ratio} vs {expected}");
        assert_eq!(r["ok"].as_bool(), Some(ratio <= 2.0), "{r}");
    }
    let goals = v["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 3, "{v}");
    let worst = ratios.iter().map(|r| r["ratio"].as_f64().unwrap()).fold(0.0, f64::max);
    assert_eq!(goals[0]["value"].as_f64(), Some(worst));
    assert_eq!(goals[1]["value"], rows[1]["sweep_p99_ms"]);
    assert_eq!(goals[2]["value"], rows[1]["rss_mb"]);
    for g in goals {
        assert_eq!(
            g["met"].as_bool(),
            Some(g["value"].as_f64() <= g["limit"].as_f64()),
            "{g}"
        );
    }
}

#[test]
fn scale_json_has_every_figure_at_every_size_and_ratios_from_them() {
    let out = ffrtmp(&[
        "--output",
        "json",
        "bench",
        "scale",
        "--sizes",
        "200,2000",
        "--samples",
        "20",
        "--idle-agents",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["store"], "sqlite");
    assert_eq!((v["samples"].as_u64(), v["idle_agents"].as_u64()), (Some(20), Some(2)));
    check_json(&v);
}

#[test]
fn scale_table_has_a_column_per_size_and_the_ratio_of_each_figure() {
    let out = ffrtmp(&["bench", "scale", "--sizes", "200,2k", "--samples", "10"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let header = t.lines().find(|l| l.starts_with("FIGURE")).expect("a table header");
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(cols, ["FIGURE", "200", "2k", "RATIO"], "{t}");
    for f in FIGURES {
        let line = t
            .lines()
            .find(|l| l.starts_with(f))
            .unwrap_or_else(|| panic!("no {f} row: {t}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        let small: f64 = cells[1].parse().unwrap();
        let large: f64 = cells[2].parse().unwrap();
        let ratio: f64 = cells[3].parse().unwrap();
        assert_eq!(cells.get(4).copied(), (ratio > 2.0).then_some("!"), "{line}");
        if small >= 1.0 {
            // Cells are rounded to 2 decimals.
            assert!((ratio - large / small).abs() <= 0.02 * ratio + 0.011, "{line}");
        }
    }
    for goal in [
        "goal every ratio <= 2",
        "goal sweep p99 <= 5 ms at 2000 queued",
        "goal master RSS <= 150 MB",
    ] {
        assert!(t.contains(goal), "{goal}: {t}");
    }
}

#[test]
fn bad_sizes_and_stores_are_clear_errors() {
    let out = ffrtmp(&["bench", "scale", "--sizes", "1k,zero"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid size \"zero\""), "{}", text(&out));
    let out = ffrtmp(&["bench", "scale", "--sizes", "10", "--store", "mysql://x"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("expected sqlite or a postgres:// URL"),
        "{}",
        text(&out)
    );
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{db}", &base[..path]);
    if let Some(q) = query {
        out = format!("{out}?{q}");
    }
    out
}

fn psql(url: &str, sql: &str) -> Output {
    Command::new("psql")
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap()
}

/// Drops the test's database when the test ends, even when it fails.
struct Database {
    admin: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[test]
fn scale_runs_on_postgres_and_refuses_a_database_with_jobs() {
    if std::env::var("FFRTMP_SKIP_PG").as_deref() == Ok("1") {
        eprintln!("skipping: FFRTMP_SKIP_PG=1");
        return;
    }
    let admin = std::env::var("FFRTMP_TEST_PG_URL")
        .expect("FFRTMP_TEST_PG_URL is not set: scripts/test.sh starts a private PostgreSQL and sets it");
    let db = Database {
        name: format!("scale_{}", std::process::id()),
        admin: admin.clone(),
    };
    let created = psql(&admin, &format!("CREATE DATABASE {}", db.name));
    assert!(created.status.success(), "{}", text(&created));
    let url = with_database(&admin, &db.name);
    let out = ffrtmp(&[
        "--output",
        "json",
        "bench",
        "scale",
        "--sizes",
        "200,2000",
        "--samples",
        "10",
        "--store",
        &url,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["store"].as_str().unwrap().starts_with("postgres "), "{v}");
    check_json(&v);
    // Each size is measured after the fill's maintenance, not during it.
    let progress = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        progress.matches("settled: VACUUM (ANALYZE) of the job tables").count(),
        2,
        "{progress}"
    );
    // The database now holds the jobs of that run: a second run refuses it.
    let again = ffrtmp(&["bench", "scale", "--sizes", "10", "--store", &url]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("needs an empty scratch store"),
        "{}",
        text(&again)
    );
}
