//! `bench report` charts fit for a paper, checked on the files it writes: series named by
//! their label in a legend that holds every one, the whole chart width used, one format for
//! all tick labels, and whiskers that are the intervals the verdicts are decided on.

use std::path::{Path, PathBuf};

use ffrtmp_bench::chart::{charts_against_baseline, ci_whisker, legend_entry_width, CHART_WIDTH};
use ffrtmp_bench::report::{comparisons, load_set, summarize, write_report};
use ffrtmp_power::compare::{write_json, CompareConfig, Metric, RunSample};

fn runs(scenario: &str, fps: f64, jpf: f64, n: u32) -> Vec<RunSample> {
    (0..n)
        .map(|i| {
            // A little spread, so the bootstrap intervals are not points.
            let f = fps * (1.0 + 0.01 * f64::from(i % 3));
            RunSample {
                scenario: scenario.into(),
                run: i,
                frames: 300,
                wall_s: 300.0 / f,
                fps: f,
                energy_joules: Some(jpf * (1.0 + 0.01 * f64::from(i % 2)) * 300.0),
                joules_per_frame: Some(jpf * (1.0 + 0.01 * f64::from(i % 2))),
                energy_model: None,
            }
        })
        .collect()
}

/// A set as `ffrtmp bench run --out DIR` leaves it: `DIR/runs.json`.
fn write_set(root: &Path, dir: &str, runs: &[RunSample]) -> PathBuf {
    let d = root.join(dir);
    std::fs::create_dir_all(&d).unwrap();
    let path = d.join("runs.json");
    write_json(std::fs::File::create(&path).unwrap(), runs).unwrap();
    path
}

/// Every `attr="…"` value in the SVG elements of `tag` carrying `class`.
fn attrs(svg: &str, tag: &str, class: &str, attr: &str) -> Vec<String> {
    svg.split('<')
        .filter(|e| e.starts_with(tag) && e.contains(&format!("class=\"{class}\"")))
        .map(|e| {
            let at = e.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
            e[at..].split('"').next().unwrap().to_string()
        })
        .collect()
}

/// The text content of elements of `class`.
fn texts(svg: &str, class: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter(|e| e.contains(&format!("class=\"{class}\"")))
        .map(|e| e.split('>').nth(1).unwrap().split('<').next().unwrap().to_string())
        .collect()
}

fn svg_width(svg: &str) -> f64 {
    let at = svg.find(" width=\"").unwrap() + 8;
    svg[at..].split('"').next().unwrap().parse().unwrap()
}

#[test]
fn series_are_named_by_their_label_and_every_one_is_in_the_legend() {
    let dir = tempfile::tempdir().unwrap();
    let labels = [
        "baseline",
        "x264-medium-preset-with-film-tune",
        "x264-fast-preset-with-zerolatency",
        "nvenc-p4-constant-quality-mode",
        "qsv-balanced-low-power-mode",
        "svt-av1-preset-eight-on-eight-cores",
    ];
    let mut args: Vec<PathBuf> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| write_set(dir.path(), l, &runs("720p-h264", 100.0 + i as f64, 0.2, 5)))
        .collect();
    // An explicit label wins over the directory's name.
    let explicit = write_set(dir.path(), "out-7", &runs("720p-h264", 90.0, 0.2, 5));
    args.push(PathBuf::from(format!("renamed={}", explicit.display())));
    let out = dir.path().join("report.html");
    let files = write_report(&args, &out, 0.03, "t").unwrap();
    assert_eq!(files.pngs.len(), 3);
    let page = std::fs::read_to_string(&out).unwrap();
    let root = dir.path().to_string_lossy().into_owned();
    for svg in page.split("<svg").skip(1).map(|s| s.split("</svg>").next().unwrap()) {
        let legend = texts(svg, "lg");
        let mut want: Vec<&str> = labels.to_vec();
        want.push("renamed");
        assert_eq!(legend, want, "one legend entry per set, by label");
        assert!(
            !svg.contains(&root) && !svg.contains("runs.json"),
            "no file path in a chart"
        );
        // Every entry lies inside the chart: long labels wrap into more legend rows.
        let width = svg_width(svg);
        let xs = attrs(svg, "text", "lg", "x");
        for (x, name) in xs.iter().zip(&legend) {
            let end = x.parse::<f64>().unwrap() + legend_entry_width(name) - 14.0;
            assert!(end <= width, "{name} ends at {end} in a {width} wide chart");
        }
        let rows: std::collections::BTreeSet<String> = attrs(svg, "text", "lg", "y").into_iter().collect();
        assert!(rows.len() > 1, "seven long labels take more than one row");
    }
    assert!(page.contains("<strong>x264-fast-preset-with-zerolatency</strong>"));
    assert!(page.contains("Comparison: renamed against baseline"));
}

#[test]
fn groups_spread_over_the_whole_chart_width() {
    let dir = tempfile::tempdir().unwrap();
    let mut base = runs("720p-h264", 100.0, 0.2, 5);
    base.extend(runs("1080p-h264", 50.0, 0.4, 5));
    base.extend(runs("4K-h265", 10.0, 2.0, 5));
    let a = write_set(dir.path(), "a", &base);
    let b = write_set(dir.path(), "b", &base);
    let out = dir.path().join("r.html");
    write_report(&[a, b], &out, 0.03, "t").unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    let svg = page.split("<svg").nth(1).unwrap();
    let width = svg_width(svg);
    assert_eq!(width, CHART_WIDTH, "a printed column's width");
    // Bars are the <rect>s with a tooltip; the legend swatches have none.
    let bars: Vec<(f64, f64)> = svg
        .split("<rect")
        .skip(1)
        .filter(|r| r.contains("<title>"))
        .map(|r| {
            let get = |a: &str| -> f64 {
                let at = r.find(&format!(" {a}=\"")).unwrap() + a.len() + 3;
                r[at..].split('"').next().unwrap().parse().unwrap()
            };
            (get("x"), get("x") + get("width"))
        })
        .collect();
    assert_eq!(bars.len(), 6, "3 scenarios × 2 sets");
    let left = bars.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
    let right = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let plot = (64.0, width - 16.0);
    let third = (plot.1 - plot.0) / 3.0;
    // Each of the three groups sits centred in its third of the plot.
    assert!(left > plot.0 && left < plot.0 + third / 2.0, "first bar at {left}");
    assert!(
        right < plot.1 && right > plot.1 - third / 2.0,
        "last bar ends at {right} of {}",
        plot.1
    );
}

#[test]
fn every_tick_label_has_the_same_format() {
    let dir = tempfile::tempdir().unwrap();
    // J/frame around 0.3: ticks in tenths; fps around 120: ticks in fifties.
    let a = write_set(dir.path(), "a", &runs("720p-h264", 120.0, 0.3, 5));
    let out = dir.path().join("r.html");
    write_report(&[a], &out, 0.03, "t").unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    for svg in page.split("<svg").skip(1) {
        let svg = svg.split("</svg>").next().unwrap();
        let ticks: Vec<String> = texts(svg, "ax")
            .into_iter()
            .filter(|t| t.parse::<f64>().is_ok())
            .collect();
        assert!(ticks.len() >= 3, "{ticks:?}");
        let decimals = |t: &str| t.split('.').nth(1).map_or(0, str::len);
        assert!(
            ticks.iter().all(|t| decimals(t) == decimals(&ticks[0])),
            "one format: {ticks:?}"
        );
        assert!(ticks[0].parse::<f64>().unwrap() == 0.0, "{ticks:?}");
    }
}

#[test]
fn whiskers_are_the_confidence_intervals_the_verdicts_use() {
    let dir = tempfile::tempdir().unwrap();
    let base = write_set(dir.path(), "base", &runs("720p-h264", 100.0, 0.2, 8));
    let test = write_set(dir.path(), "test", &runs("720p-h264", 80.0, 0.25, 8));
    let sets = vec![load_set(&base).unwrap(), load_set(&test).unwrap()];
    let config = CompareConfig {
        threshold: 0.03,
        ..CompareConfig::default()
    };
    let compared = comparisons(&sets, &config);
    let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["base", "test"]);
    let summaries: Vec<_> = sets.iter().map(|s| summarize(&s.runs)).collect();
    let charts = charts_against_baseline(&names, &summaries, &compared);
    for chart in &charts {
        let svg = chart.svg.as_ref().unwrap();
        let m = compared[0].1.scenarios[0].metric(chart.metric).unwrap();
        let (lo, hi) = ci_whisker(m).unwrap();
        let base_median = m.baseline_median.unwrap();
        // The whisker's ends are baseline × (1 + CI end) of the change the verdict judges.
        assert_eq!(
            (lo, hi),
            (
                base_median * (1.0 + m.ci_low.unwrap()),
                base_median * (1.0 + m.ci_high.unwrap())
            )
        );
        let drawn_lo: Vec<f64> = whisker_values(svg, "data-lo");
        let drawn_hi: Vec<f64> = whisker_values(svg, "data-hi");
        assert_eq!(drawn_lo, [lo], "{:?}: one whisker, on the test bar only", chart.metric);
        assert_eq!(drawn_hi, [hi], "{:?}", chart.metric);
        // And it clears the threshold band around the baseline, as the verdict `worse` says.
        let worse = match chart.metric {
            Metric::Fps => hi < base_median * (1.0 - 0.03),
            _ => lo > base_median * (1.0 + 0.03),
        };
        assert!(worse, "{:?}: {lo}..{hi} around {base_median}", chart.metric);
        assert_eq!(m.verdict_at(0.03).name(), "worse");
    }
    // The page says what the whiskers are.
    let out = dir.path().join("r.html");
    write_report(&[base, test], &out, 0.03, "t").unwrap();
    let page = std::fs::read_to_string(&out).unwrap();
    assert!(
        page.contains("95% bootstrap confidence interval of its change"),
        "caption"
    );
}

fn whisker_values(svg: &str, attr: &str) -> Vec<f64> {
    svg.split("<g ")
        .skip(1)
        .map(|g| {
            let at = g.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
            g[at..].split('"').next().unwrap().parse().unwrap()
        })
        .collect()
}
