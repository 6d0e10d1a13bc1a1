//! `ffrtmp bench load` through the real binary, small: the throughput figures and the
//! breakdown of where the HTTPS run spent its time (CPU per lifecycle, writes per commit,
//! per-route server time) are all there and consistent with the run, with the number of
//! submitting clients asked for.

use std::process::Command;

use serde_json::Value;

#[test]
fn load_json_reports_throughput_and_the_https_breakdown() {
    let out = Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args([
            "--output",
            "json",
            "bench",
            "load",
            "--jobs",
            "320",
            "--agents",
            "2",
            "--latency-samples",
            "5",
            "--clients",
            "7",
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    // Seven clients submit the same number of jobs each: 320 rounds down to 315.
    assert_eq!(v["submitters"], 7, "{v}");
    assert_eq!(v["jobs"], 315, "{v}");
    for f in [
        "raw_sqlite_tx_per_s",
        "in_process_per_s",
        "https_per_s",
        "in_process_cpu_ms",
        "https_cpu_ms",
    ] {
        assert!(v[f].as_f64().unwrap_or(0.0) > 0.0, "{f}: {v}");
    }
    // Every write belongs to one commit, and a commit holds at least one write.
    for f in ["in_process_mean_group", "https_mean_group"] {
        assert!(v[f].as_f64().unwrap() >= 1.0, "{f}: {v}");
    }
    // Durable commits: one WAL flush covers one or more commits, never fewer.
    for (flush, group) in [
        ("in_process_writes_per_flush", "in_process_mean_group"),
        ("https_writes_per_flush", "https_mean_group"),
    ] {
        let (flush, group) = (v[flush].as_f64().unwrap(), v[group].as_f64().unwrap());
        assert!(flush >= group, "{flush} writes per flush < {group} per commit: {v}");
    }
    let routes = v["https_routes"].as_array().unwrap();
    let route = |name: &str| {
        routes
            .iter()
            .find(|r| r["route"] == name)
            .unwrap_or_else(|| panic!("{name}: {v}"))
    };
    // The throughput run submits and completes every job over HTTPS; the latency run after it
    // is not counted.
    assert_eq!(route("/jobs")["requests"], 315, "{v}");
    assert_eq!(route("/jobs/{id}/report")["requests"], 315, "{v}");
    assert_eq!(route("/nodes/register")["requests"], 2, "{v}");
    assert!(route("/nodes/{id}/claim")["requests"].as_u64().unwrap() >= 1);
    for r in routes {
        assert!(r["mean_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
}
