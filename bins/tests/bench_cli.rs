//! The benchmark workflow of the real `ffrtmp` binary: `bench compare` and `bench report` on
//! synthetic result files written with `ffrtmp_power::compare`'s writers, and `bench run`
//! against the real master and agent binaries on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use ffrtmp_power::compare::{read_csv, read_json, write_csv, write_json, RunSample};

const KEY: &str = "bench-test-key-0123456789abcdef";

#[path = "support/fake_rapl.rs"]
mod fake_rapl;
use fake_rapl::FakeRapl;

#[path = "support/procs.rs"]
mod procs;
use procs::Proc;

#[path = "support/cluster.rs"]
mod cluster;
use cluster::Cli;

#[path = "support/offline.rs"]
mod offline;
use offline::{ffrtmp, text};

/// Deterministic noise in [-1 %, +1 %].
fn noise(i: u32, seed: u32) -> f64 {
    let x = (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)).wrapping_mul(2_246_822_519) >> 8;
    (x % 2001) as f64 / 100_000.0 - 0.01
}

/// 10 runs of two scenarios; joules per frame scaled by `jpf_scale`, `None` energy when
/// `energy` is false.
fn runs(seed: u32, jpf_scale: f64, energy: bool) -> Vec<RunSample> {
    let mut out = Vec::new();
    for scenario in ["720p-h264/2M/3s", "1080p-h265/5M/3s"] {
        for i in 0..10 {
            let frames = 90;
            let fps = 120.0 * (1.0 + noise(i, seed + 1));
            let jpf = 0.25 * jpf_scale * (1.0 + noise(i, seed + 2));
            out.push(RunSample {
                scenario: scenario.into(),
                run: i,
                frames,
                wall_s: frames as f64 / fps,
                fps,
                energy_joules: energy.then_some(jpf * frames as f64),
                joules_per_frame: energy.then_some(jpf),
                energy_model: None,
            });
        }
    }
    out
}

fn write_runs(path: &Path, runs: &[RunSample]) -> PathBuf {
    let file = std::fs::File::create(path).unwrap();
    if path.extension().is_some_and(|e| e == "csv") {
        write_csv(file, runs).unwrap();
    } else {
        write_json(file, runs).unwrap();
    }
    path.to_path_buf()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn a_against_a_is_no_change_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(&dir.path().join("base.json"), &runs(1, 1.0, true));
    let test = write_runs(&dir.path().join("test.csv"), &runs(7, 1.0, true));
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("720p-h264/2M/3s: no change"), "{t}");
    assert!(t.contains("1080p-h265/5M/3s: no change"), "{t}");
    assert!(t.contains("J/frame") && t.contains("95% CI"), "{t}");
    assert!(t.contains("no regression beyond 3%"), "{t}");
    assert!(!t.contains("worse"), "{t}");
}

#[test]
fn five_percent_more_joules_per_frame_is_worse_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(&dir.path().join("base.json"), &runs(1, 1.0, true));
    let test = write_runs(&dir.path().join("test.json"), &runs(7, 1.05, true));
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test), "--threshold", "3%"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("worse"), "{t}");
    assert!(t.contains("regressed beyond 3%"), "{t}");
    // fps did not change.
    let fps_line = t
        .lines()
        .find(|l| l.starts_with("720p-h264/2M/3s") && l.contains(" fps "))
        .unwrap();
    assert!(fps_line.ends_with("no change"), "{fps_line}");

    // A 10 % tolerance lets it pass; JSON carries the same verdicts.
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test), "--threshold", "0.10"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = ffrtmp(&["--output", "json", "bench", "compare", p(&base), p(&test)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["verdicts"][0][1], "worse");
    let jpf = &v["comparison"]["scenarios"][0]["metrics"][0];
    assert_eq!(jpf["metric"], "joules_per_frame");
    let change = jpf["relative_change"].as_f64().unwrap();
    assert!((0.03..0.07).contains(&change), "{change}");
}

#[test]
fn runs_without_energy_compare_on_fps_and_wall_only() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(&dir.path().join("base.csv"), &runs(1, 1.0, false));
    let test = write_runs(&dir.path().join("test.csv"), &runs(7, 1.0, false));
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("energy unavailable"), "{t}");
    assert!(t.contains("720p-h264/2M/3s: no change"), "{t}");

    let out = ffrtmp(&["bench", "compare", p(&base), p(&dir.path().join("missing.json"))]);
    assert_eq!(out.status.code(), Some(2), "errors are not regressions");
    assert!(text(&out).contains("missing.json"), "{}", text(&out));
}

/// Runs of one scenario with the given fps (joules per frame and wall time constant).
fn noisy_fps_runs(fps: &[f64]) -> Vec<RunSample> {
    fps.iter()
        .enumerate()
        .map(|(i, &fps)| RunSample {
            scenario: "720p-h264/2M/3s".into(),
            run: i as u32,
            frames: 90,
            wall_s: 3.0,
            fps,
            energy_joules: Some(22.5),
            joules_per_frame: Some(0.25),
            energy_model: None,
        })
        .collect()
}

#[test]
fn a_wide_interval_is_inconclusive_with_its_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(
        &dir.path().join("base.json"),
        &noisy_fps_runs(&[100.0, 97.0, 140.0, 99.0, 120.0]),
    );
    let test = write_runs(
        &dir.path().join("test.json"),
        &noisy_fps_runs(&[88.2, 65.0, 107.6, 70.0, 91.0]),
    );
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    let fps_line = t.lines().find(|l| l.contains(" fps ")).unwrap();
    // The issue's figures: fps −11.8 %, CI about [−45 %, +7.6 %], once reported as "no change".
    assert!(fps_line.contains("-11.80%  [-45.83%, +7.60%]"), "{fps_line}");
    assert!(fps_line.ends_with("inconclusive"), "{fps_line}");
    assert!(t.contains("720p-h264/2M/3s: inconclusive"), "{t}");
    assert!(t.contains("inconclusive: 720p-h264/2M/3s fps: the 95% CI ["), "{t}");
    assert!(t.contains("runs per side (now 5/5) should decide it"), "{t}");
    assert!(t.contains("no regression beyond 3%"), "{t}");

    let out = ffrtmp(&["bench", "compare", p(&base), p(&test), "--allow-inconclusive"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("720p-h264/2M/3s: inconclusive"));

    let out = ffrtmp(&["--output", "json", "bench", "compare", p(&base), p(&test)]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["verdicts"][0][1], "inconclusive");
    let fps = v["inconclusive"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metric"] == "fps")
        .unwrap();
    assert!(fps["runs_needed"].as_u64().unwrap() > 5, "{fps}");

    // The help documents the exit codes.
    let help = text(&ffrtmp(&["bench", "compare", "--help"]));
    assert!(
        help.contains("3 no regression, but some metric is") && help.contains("--allow-inconclusive"),
        "{help}"
    );
}

#[test]
fn a_narrow_interval_within_the_threshold_is_no_change_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(&dir.path().join("base.json"), &runs(1, 1.0, true));
    // 1 % more joules per frame, well measured: within a 3 % threshold.
    let test = write_runs(&dir.path().join("test.json"), &runs(7, 1.01, true));
    let out = ffrtmp(&["bench", "compare", p(&base), p(&test)]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let jpf_line = t
        .lines()
        .find(|l| l.starts_with("720p-h264/2M/3s") && l.contains("J/frame"))
        .unwrap();
    assert!(jpf_line.ends_with("no change"), "{jpf_line}");
    assert!(!t.contains("inconclusive"), "{t}");
}

#[test]
fn report_is_one_self_contained_html_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_runs(&dir.path().join("base.json"), &runs(1, 1.0, true));
    let test = write_runs(&dir.path().join("test.csv"), &runs(7, 1.05, true));
    let html = dir.path().join("report.html");
    let out = ffrtmp(&["bench", "report", p(&base), p(&test), "--out", p(&html)]);
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    assert_eq!(page.matches("<svg").count(), 3, "fps, wall time and J/frame charts");
    assert!(page.contains("720p-h264/2M/3s") && page.contains("1080p-h265/5M/3s"));
    assert!(
        page.contains("<tr class=\"worse\">"),
        "the comparison table marks the regression"
    );
    assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains("<link"));

    // Each chart also as a PNG beside the page, linked from it: the SVG rasterized at twice
    // its size onto white, with bars, axes and text drawn.
    let t = text(&out);
    for chart in ["fps", "wall-time", "joules-per-frame"] {
        let png = dir.path().join(format!("report-{chart}.png"));
        assert!(t.contains(&format!("wrote {}", png.display())), "{t}");
        assert!(page.contains(&format!("<a href=\"report-{chart}.png\">")), "{chart}");
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{chart}: PNG signature");
        let pixmap = resvg::tiny_skia::Pixmap::load_png(&png).expect("a PNG the decoder reads");
        let svg_width: u32 = page
            .split("<svg ")
            .nth(1)
            .and_then(|s| s.split("width=\"").nth(1))
            .and_then(|s| s.split('"').next())
            .and_then(|w| w.parse().ok())
            .unwrap();
        // Every chart has the same groups, so the same size: 358 high (plot and margins).
        assert_eq!((pixmap.width(), pixmap.height()), (2 * svg_width, 2 * 358), "{chart}");
        let ink = pixmap
            .pixels()
            .iter()
            .filter(|c| (c.red(), c.green(), c.blue()) != (255, 255, 255))
            .count();
        assert!(
            ink * 50 > pixmap.pixels().len(),
            "{chart}: only {ink} non-background pixels"
        );
    }

    // One set: no comparison.
    let out = ffrtmp(&["bench", "report", p(&base), "--out", p(&html)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!std::fs::read_to_string(&html).unwrap().contains("Comparison:"));
}

#[test]
fn auto_idle_windows_need_a_warm_up_to_measure() {
    let dir = tempfile::tempdir().unwrap();
    let matrix = dir.path().join("matrix.json");
    std::fs::write(&matrix, r#"{"scenarios":["720p-h264"],"duration":1}"#).unwrap();
    let out = dir.path().join("out");
    // Refused before anything is submitted: no master needs to answer.
    let args = [
        "--master",
        "https://127.0.0.1:9",
        "bench",
        "run",
        "--matrix",
        p(&matrix),
    ];
    let run = Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args(args)
        .args(["--warmup", "0", "--out", p(&out)])
        .env("MASTER_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let t = text(&run);
    assert!(
        t.contains("--idle-window auto takes the window's length from the warm-up runs"),
        "{t}"
    );
    assert!(!out.exists(), "nothing written");
    let bad = Command::new(env!("CARGO_BIN_EXE_ffrtmp"))
        .args(args)
        .args(["--idle-window", "soon", "--out", p(&out)])
        .env("MASTER_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a usage error: {}", text(&bad));
    assert!(text(&bad).contains("or auto"), "{}", text(&bad));
}

// --- the real master and agent on loopback ---

struct Cluster {
    _procs: Vec<Proc>,
    _rapl: Option<FakeRapl>,
    dir: tempfile::TempDir,
    cli: Cli,
}

impl Cluster {
    /// A master and one agent; with `metered`, the agent reads a [`FakeRapl`] (50 W).
    fn start(metered: bool) -> Cluster {
        let dir = cluster::shared_dir();
        let d = dir.path();
        let powercap = d.join(if metered { "powercap" } else { "no-powercap" });
        let rapl = metered.then(|| FakeRapl::start(&powercap));
        let (master, url) = cluster::master(d, KEY)
            .args(["--port", "0", "--heartbeat-interval", "500ms", "--retry-base", "200ms"])
            .start();
        let agent = cluster::agent(d, &url, KEY)
            .args(["--heartbeat-interval", "500ms", "--claim-wait", "2s"])
            .args(["--max-concurrent-jobs", "1", "--name", "bench-agent"])
            .path("--powercap-root", &powercap)
            // The start-up idle measurement, short so that a test need not wait for it.
            .args(["--idle-window", "1s"])
            .spawn();
        Cluster {
            cli: Cli::new(d, &url, KEY),
            _procs: vec![agent, master],
            _rapl: rapl,
            dir,
        }
    }

    fn logs(&self) -> String {
        cluster::logs(self.dir.path())
    }
}

/// A matrix of one 1 s 720p cell with null output, in `dir`.
fn write_matrix(dir: &Path) -> PathBuf {
    let matrix = dir.join("matrix.json");
    std::fs::write(
        &matrix,
        r#"{"scenarios":["720p-h264"],"duration":1,"output_mode":"null"}"#,
    )
    .unwrap();
    matrix
}

#[test]
fn bench_run_records_every_repeat_against_a_real_cluster() {
    let cluster = Cluster::start(false);
    let d = cluster.dir.path();
    let matrix = write_matrix(d);
    let results = d.join("results");
    let out = cluster.cli.output(&[
        "bench",
        "run",
        "--matrix",
        p(&matrix),
        "--repeat",
        "2",
        "--warmup",
        "0",
        "--idle-window",
        "0s",
        "--timeout",
        "3m",
        "--out",
        p(&results),
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), cluster.logs());
    let t = text(&out);
    assert!(t.contains("720p-h264/1s"), "{t}");
    assert!(t.contains("2 runs completed, 0 not"), "{t}");

    let json = results.join("runs.json");
    let runs = read_json(std::fs::File::open(&json).unwrap()).unwrap();
    assert_eq!(runs.len(), 2);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.scenario, "720p-h264/1s");
        assert_eq!(r.run, i as u32);
        assert!(r.frames > 0 && r.fps > 0.0 && r.wall_s > 0.0, "{r:?}");
        assert_eq!(r.joules_per_frame, None, "no powercap on this agent");
    }
    let detail: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for r in detail.as_array().unwrap() {
        assert_eq!(r["state"], "completed", "{r:#}");
        assert_eq!(r["node"], "bench-agent");
        assert_eq!(r["energy_source"], "unavailable");
        assert!(r["energy_unavailable_reason"].as_str().unwrap().contains("powercap"));
    }
    let csv = read_csv(std::fs::File::open(results.join("runs.csv")).unwrap()).unwrap();
    assert_eq!(csv, runs);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(results.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["runs_completed"], 2);
    assert_eq!(meta["cells"][0], "720p-h264/1s");
    let idle = meta["idle_energy"].as_str().unwrap();
    assert!(
        idle.contains("no idle windows") && idle.contains("no node reported"),
        "{idle}"
    );
    for r in detail.as_array().unwrap() {
        assert_eq!(r["baseline_watts"], serde_json::Value::Null, "{r:#}");
        assert_eq!(r["energy_above_idle_note"], "the run has no energy");
    }

    // The results feed the report directly.
    let html = d.join("report.html");
    let out = ffrtmp(&["bench", "report", p(&json), "--out", p(&html)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(std::fs::read_to_string(&html).unwrap().contains("720p-h264/1s"));
}

/// How much longer than the window plus one poll and one heartbeat interval an idle window's
/// measured span may be: the sampler's 100 ms ticks at both ends and scheduling delays.
const SPAN_SLACK_S: f64 = 0.5;

/// With agents that meter their node (here a fake powercap tree at a steady 50 W), the idle
/// windows, as long as the mean warm-up run, are measured through the nodes' heartbeat
/// snapshots, and every run row carries the node's idle baseline.
#[test]
fn bench_run_measures_idle_windows_with_the_nodes_meters() {
    let cluster = Cluster::start(true);
    let d = cluster.dir.path();
    let matrix = write_matrix(d);
    let results = d.join("results");
    let out = cluster.cli.output(&[
        "--output",
        "json",
        "bench",
        "run",
        "--matrix",
        p(&matrix),
        "--repeat",
        "2",
        "--warmup",
        "1",
        "--snapshot-wait",
        "30s",
        "--timeout",
        "3m",
        "--out",
        p(&results),
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), cluster.logs());
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(results.join("meta.json")).unwrap()).unwrap();
    let basis = meta["idle_window_basis"].as_str().unwrap();
    assert!(basis.contains("mean wall time of 1 warm-up runs"), "{basis}");
    let window_s = meta["idle_window_s"].as_f64().unwrap();
    assert!(window_s > 0.0, "{meta:#}");
    let windows = meta["idle_windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{meta:#}");
    for (w, phase) in windows.iter().zip(["before", "after"]) {
        assert_eq!(w["phase"], phase);
        assert_eq!(w["length_s"].as_f64(), Some(window_s), "{w:#}");
        // Slept for the length, on the monotonic clock.
        let elapsed = w["elapsed_s"].as_f64().unwrap();
        assert!(elapsed >= window_s - 1e-3, "{w:#}");
        let node = &w["nodes"][0];
        assert_eq!(node["node"], "bench-agent", "{w:#}");
        assert_eq!(node["source"], "rapl", "{w:#}");
        // The span runs from a snapshot before the start to the next one after the end: the
        // window plus at most one poll of GET /nodes (250 ms) and one heartbeat interval
        // (500 ms here), with room for the sampler's ticks and a busy machine.
        let seconds = node["seconds"]
            .as_f64()
            .unwrap_or_else(|| panic!("not measured: {w:#}"));
        println!("{phase}: window {window_s} s, elapsed {elapsed} s, span {seconds} s");
        assert!(seconds >= window_s * 0.9, "{w:#}");
        assert!(seconds <= elapsed + 0.25 + 0.5 + SPAN_SLACK_S, "{w:#}");
        let watts = node["mean_watts"].as_f64().unwrap();
        assert!((45.0..=55.0).contains(&watts), "the fake node draws 50 W: {w:#}");
        assert!((node["joules"].as_f64().unwrap() - watts * seconds).abs() < 1e-6);
        // The window's energy is the mean power over its nominal length, not the span's.
        let window_joules = node["window_joules"].as_f64().unwrap();
        assert!((window_joules - watts * window_s).abs() < 1e-6, "{w:#}");
        assert_eq!(w["energy_joules"], node["window_joules"]);
    }
    let baseline = &meta["baselines"][0];
    assert_eq!(baseline["source"], "idle-windows", "{meta:#}");
    assert_eq!(baseline["windows"], 2);
    let idle_watts = baseline["watts"].as_f64().unwrap();
    assert!((45.0..=55.0).contains(&idle_watts), "{baseline:#}");
    let idle = meta["idle_energy"].as_str().unwrap();
    println!("idle energy: {idle}");
    assert!(
        idle.starts_with("measured by the nodes' meters") && idle.contains("bench-agent"),
        "{idle}"
    );

    let runs: serde_json::Value = serde_json::from_slice(&std::fs::read(results.join("runs.json")).unwrap()).unwrap();
    let csv = std::fs::read_to_string(results.join("runs.csv")).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",baseline_watts,baseline_source,idle_share,energy_above_idle_joules,energy_above_idle_note"));
    for r in runs.as_array().unwrap() {
        assert_eq!(r["state"], "completed", "{r:#}");
        assert_eq!(r["baseline_watts"].as_f64(), Some(idle_watts), "{r:#}");
        assert_eq!(r["baseline_source"], "idle-windows");
        match r["energy_joules"].as_f64() {
            // Energy attributed by cgroup CPU share: the run carries its share of the idle
            // power, and what is above it.
            Some(joules) => {
                println!("run: {joules} J, above idle {}", r["energy_above_idle_joules"]);
                let share = r["idle_share"].as_f64().unwrap_or_else(|| panic!("{r:#}"));
                assert!(share > 0.0 && share <= 1.0, "{r:#}");
                let above = r["energy_above_idle_joules"].as_f64().unwrap();
                let expected = (joules - idle_watts * r["wall_s"].as_f64().unwrap() * share).max(0.0);
                assert!((above - expected).abs() < 1e-6, "{r:#}");
                // The fake node draws 50 W whatever runs: nearly all of a run's share of it
                // is idle power (the CPU share of the idle baseline matches the attribution).
                assert!(above <= 0.25 * joules, "{r:#}");
            }
            // No job cgroups here: the reason says so, and the column stays empty.
            None => {
                let reason = r["energy_unavailable_reason"].as_str().unwrap_or_default();
                assert!(reason.contains("cgroup"), "{r:#}");
                assert_eq!(r["energy_above_idle_note"], "the run has no energy");
            }
        }
    }

    // The report shows each window's length and the spans the meters measured.
    let html = d.join("report.html");
    let out = ffrtmp(&["bench", "report", p(&results.join("runs.json")), "--out", p(&html)]);
    assert!(out.status.success(), "{}", text(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("idle windows: before "), "{page}");
    assert_eq!(page.matches(" s (nodes&#39; meters over ").count(), 2, "{page}");
}

#[test]
fn config_recommend_explains_its_suggestions() {
    let out = ffrtmp(&["config", "recommend", "--output", "text"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for flag in [
        "--max-concurrent-jobs",
        "--heartbeat-interval",
        "--claim-wait",
        "--drain-timeout",
    ] {
        assert!(t.contains(flag), "{flag}: {t}");
    }
    let out = ffrtmp(&["config", "recommend", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs: u32 = v["suggestions"][0]["value"].as_str().unwrap().parse().unwrap();
    assert!(jobs >= 1);
    assert!(v["hardware"]["cpu_cores"].as_u64().unwrap() >= 1);
}
