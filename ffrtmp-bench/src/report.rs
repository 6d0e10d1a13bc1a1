//! `ffrtmp bench report`: one self-contained HTML page (no JavaScript, no external assets)
//! with hand-made inline SVG bar charts ([`super::chart`]) of each scenario's median fps, wall
//! time and joules per frame with min–max whiskers, per result set, plus the comparison
//! tables of every set against the first. Each chart is also written as a PNG beside the page
//! ([`super::png`]), rasterized from the same SVG, and linked from it.

use std::path::{Path, PathBuf};

use crate::error::{Context, Result};
use ffrtmp_power::compare::{compare, CompareConfig, Comparison, Metric, RunSample, Verdict};

pub use super::chart::{bar_chart, nice_ticks};

use super::chart::{charts_against_baseline, Chart};
use super::compare::{headers, metric_text, rows};
use super::idle::IdleWindow;
pub use super::label::{label_of, labelled, unique_names};
use super::png::Rasterizer;
use super::run::RunMeta;
use super::{fmt_num, load_nonempty};

/// Median, least and greatest value of a metric over a scenario's usable runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat {
    /// Usable runs.
    pub n: usize,
    /// Median (as [`ffrtmp_power::compare`] computes it).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// One scenario of one result set.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioSummary {
    /// Scenario (cell label).
    pub scenario: String,
    /// Rows in the file for it.
    pub runs: usize,
    /// Per metric, in [`Metric::ALL`] order; `None` when no run has a usable value.
    pub stats: [Option<Stat>; 3],
}

impl ScenarioSummary {
    /// The figures of `metric`.
    pub fn stat(&self, metric: Metric) -> Option<Stat> {
        Metric::ALL
            .iter()
            .position(|&m| m == metric)
            .and_then(|i| self.stats[i])
    }
}

/// Per scenario (in file order) the median and range of each metric. Medians come from
/// [`compare`] of the runs against themselves (no resampling), so they are the same numbers
/// `ffrtmp bench compare` shows.
pub fn summarize(runs: &[RunSample]) -> Vec<ScenarioSummary> {
    let config = CompareConfig {
        resamples: 0,
        min_runs: 1,
        ..CompareConfig::default()
    };
    compare(runs, runs, &config)
        .scenarios
        .iter()
        .map(|s| {
            let mine: Vec<&RunSample> = runs.iter().filter(|r| r.scenario == s.scenario).collect();
            let stats = Metric::ALL.map(|metric| {
                let m = s.metric(metric)?;
                let values: Vec<f64> = mine.iter().filter_map(|r| r.value(metric)).collect();
                Some(Stat {
                    n: m.n_baseline,
                    median: m.baseline_median?,
                    min: values.iter().copied().fold(f64::INFINITY, f64::min),
                    max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
            });
            ScenarioSummary {
                scenario: s.scenario.clone(),
                runs: mine.len(),
                stats,
            }
        })
        .collect()
}

/// A named result set.
#[derive(Clone, Debug)]
pub struct ResultSet {
    /// Shown name: its label ([`label_of`]), never a file path.
    pub name: String,
    /// Its runs.
    pub runs: Vec<RunSample>,
    /// Lines shown under its name (e.g. from `meta.json`).
    pub notes: Vec<String>,
}

/// Loads a runs file (or `LABEL=PATH`, see [`labelled`]) as a result set named by its label,
/// with notes from the `meta.json` beside it when there is one (as `ffrtmp bench run` writes).
pub fn load_set(arg: &Path) -> Result<ResultSet> {
    let (label, path) = labelled(arg);
    let path = path.as_path();
    let runs = load_nonempty(path)?;
    let mut notes = Vec::new();
    let meta = path.with_file_name("meta.json");
    if let Some(m) = std::fs::read_to_string(meta)
        .ok()
        .and_then(|text| serde_json::from_str::<RunMeta>(&text).ok())
    {
        notes.push(format!(
            "{} cells × {} repeats (+{} warm-up each), {} completed, {} not; master {}",
            m.cells.len(),
            m.repeat,
            m.warmup,
            m.runs_completed,
            m.runs_not_completed,
            m.master
        ));
        let windows: Vec<String> = m.idle_windows.iter().map(window_note).collect();
        if !windows.is_empty() {
            notes.push(format!("idle windows: {}", windows.join(", ")));
        }
        notes.push(format!("idle energy: {}", m.idle_energy));
    }
    notes.insert(0, format!("file: {}", path.display()));
    Ok(ResultSet {
        name: label,
        runs,
        notes,
    })
}

/// A window's phase and length as measured on the monotonic clock (the wall clock's in files
/// without it), and the spans the nodes' meters measured, which run up to one heartbeat
/// interval longer.
///
/// ```
/// use ffrtmp_bench::idle::{IdleWindow, NodeIdle};
/// let node = |seconds| NodeIdle { seconds: Some(seconds), ..NodeIdle::default() };
/// let w = IdleWindow { phase: "before".into(), start_ms: 9_000, end_ms: 1_000, length_s: 3.0,
///     elapsed_s: Some(3.001), energy_joules: None, nodes: vec![node(3.4), node(3.9)], note: None };
/// assert_eq!(ffrtmp_bench::report::window_note(&w), "before 3.00 s (nodes' meters over 3.40–3.90 s)");
/// ```
pub fn window_note(w: &IdleWindow) -> String {
    let elapsed = w
        .elapsed_s
        .unwrap_or_else(|| w.end_ms.saturating_sub(w.start_ms) as f64 / 1000.0);
    let spans: Vec<f64> = w.nodes.iter().filter_map(|n| n.seconds).collect();
    let min = spans.iter().copied().fold(f64::INFINITY, f64::min);
    let max = spans.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let measured = if spans.is_empty() {
        " (no node's meter measured it)".to_string()
    } else if min == max {
        format!(" (nodes' meters over {} s)", fmt_num(min))
    } else {
        format!(" (nodes' meters over {}–{} s)", fmt_num(min), fmt_num(max))
    };
    format!("{} {} s{measured}", w.phase, fmt_num(elapsed))
}

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    /// The page.
    pub html: PathBuf,
    /// One PNG per chart, beside the page (`<page name>-fps.png`, …).
    pub pngs: Vec<PathBuf>,
    /// The font the PNGs' text is drawn with; `None`: no font installed, no text.
    pub font: Option<String>,
    /// Charts without a PNG, each with why (`fps: …`); the page says so under the chart.
    pub png_errors: Vec<String>,
}

/// `ffrtmp bench report`: loads `results`, compares each against the first at `threshold`,
/// writes each chart as a PNG beside `out` and the page, which links them, to `out`. A chart
/// that cannot be rasterized (e.g. wider than [`super::png::MAX_SIDE`]) gets no PNG and a note
/// on the page; the page and the other PNGs are still written.
pub fn write_report(results: &[PathBuf], out: &Path, threshold: f64, title: &str) -> Result<ReportFiles> {
    let sets = results.iter().map(|p| load_set(p)).collect::<Result<Vec<_>>>()?;
    let config = CompareConfig {
        threshold,
        ..CompareConfig::default()
    };
    let mut sets = sets;
    unique_names(&mut sets);
    let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
    let summaries: Vec<Vec<ScenarioSummary>> = sets.iter().map(|s| summarize(&s.runs)).collect();
    let compared = comparisons(&sets, &config);
    let mut charts = charts_against_baseline(&names, &summaries, &compared);
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    let dir = out.parent().unwrap_or(Path::new(""));
    let rasterizer = Rasterizer::with_system_fonts();
    let (mut pngs, mut png_errors) = (Vec::new(), Vec::new());
    for chart in &mut charts {
        let Some(svg) = &chart.svg else { continue };
        let bytes = match rasterizer.png(svg) {
            Ok(bytes) => bytes,
            Err(e) => {
                png_errors.push(format!("{}: {e}", chart.slug()));
                chart.png_error = Some(e.to_string());
                continue;
            }
        };
        let name = format!("{stem}-{}.png", chart.slug());
        let path = dir.join(&name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        chart.png = Some(name);
        pngs.push(path);
    }
    let page = html(title, &sets, &charts, &compared, threshold);
    std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))?;
    Ok(ReportFiles {
        html: out.to_path_buf(),
        pngs,
        font: rasterizer.font().map(String::from),
        png_errors,
    })
}

/// Percent-encodes a file name for a relative link (unreserved characters stay).
///
/// ```
/// assert_eq!(ffrtmp_bench::report::url_path("my report-fps.png"), "my%20report-fps.png");
/// ```
pub fn url_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Escapes text for HTML and SVG content and attribute values.
///
/// ```
/// assert_eq!(ffrtmp_bench::report::escape(r#"<a & "b" 'c'>"#), "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;");
/// ```
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}\
.worse{background:#f8d0d0}.better{background:#d3f0d3}.inconclusive{background:#fff2c0}\
.chart{display:block;margin:0.5em 0 0.3em}.note{color:#666}";

fn table_html(headers: &[String], rows: &[(Vec<String>, Option<&str>)]) -> String {
    let mut t = String::from("<table>\n<tr>");
    for h in headers {
        t.push_str(&format!("<th>{}</th>", escape(h)));
    }
    t.push_str("</tr>\n");
    for (cells, class) in rows {
        match class {
            Some(c) => t.push_str(&format!("<tr class=\"{}\">", escape(c))),
            None => t.push_str("<tr>"),
        }
        for c in cells {
            t.push_str(&format!("<td>{}</td>", escape(c)));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</table>\n");
    t
}

/// The comparisons [`html`] shows: each set after the first against the first.
pub fn comparisons(sets: &[ResultSet], config: &CompareConfig) -> Vec<(usize, Comparison)> {
    sets.iter()
        .enumerate()
        .skip(1)
        .map(|(i, s)| (i, compare(&sets[0].runs, &s.runs, config)))
        .collect()
}

/// The whole report page, with `charts` (from [`super::chart::charts`]) and links to their
/// PNG copies where they have one.
pub fn html(
    title: &str,
    sets: &[ResultSet],
    charts: &[Chart],
    comparisons: &[(usize, Comparison)],
    threshold: f64,
) -> String {
    let summaries: Vec<Vec<ScenarioSummary>> = sets.iter().map(|s| summarize(&s.runs)).collect();
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>{t}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n<h2>Result sets</h2>\n<ol>\n",
        t = escape(title)
    );
    for (set, summary) in sets.iter().zip(&summaries) {
        let energy = summary.iter().any(|s| s.stat(Metric::JoulesPerFrame).is_some());
        page.push_str(&format!(
            "<li><strong>{}</strong>: {} runs, {} scenarios, energy {}",
            escape(&set.name),
            set.runs.len(),
            summary.len(),
            if energy { "measured" } else { "unavailable" }
        ));
        for note in &set.notes {
            page.push_str(&format!("<br/><span class=\"note\">{}</span>", escape(note)));
        }
        page.push_str("</li>\n");
    }
    page.push_str(&format!(
        "</ol>\n<p class=\"note\">Bars: median of the completed runs. Whiskers: on each set after the first, the \
         {:.0}% bootstrap confidence interval of its change against the first set, drawn around the first set's \
         median: the interval its verdict is decided on. The first set is the baseline and has none.</p>\n",
        comparisons.first().map_or(0.95, |(_, c)| c.config.confidence) * 100.0
    ));
    for chart in charts {
        page.push_str(&format!("<h2>{}</h2>\n", escape(chart.title)));
        let Some(svg) = &chart.svg else {
            page.push_str("<p class=\"note\">No energy in any result set (energy unavailable on the nodes).</p>\n");
            continue;
        };
        page.push_str(svg);
        if let Some(png) = &chart.png {
            page.push_str(&format!(
                "<p class=\"note\">As PNG: <a href=\"{}\">{}</a></p>\n",
                escape(&url_path(png)),
                escape(png)
            ));
        }
        if let Some(e) = &chart.png_error {
            page.push_str(&format!("<p class=\"note\">No PNG of this chart: {}</p>\n", escape(e)));
        }
    }
    page.push_str("<h2>Per scenario</h2>\n");
    let cols: Vec<String> = [
        "SCENARIO",
        "RUNS",
        "FPS MEDIAN",
        "FPS MIN–MAX",
        "WALL S MEDIAN",
        "WALL S MIN–MAX",
    ]
    .into_iter()
    .chain(["J/FRAME MEDIAN", "J/FRAME MIN–MAX"])
    .map(String::from)
    .collect();
    for (set, summary) in sets.iter().zip(&summaries) {
        page.push_str(&format!("<h3>{}</h3>\n", escape(&set.name)));
        let body: Vec<(Vec<String>, Option<&str>)> = summary
            .iter()
            .map(|s| {
                let mut cells = vec![s.scenario.clone(), s.runs.to_string()];
                for metric in [Metric::Fps, Metric::WallS, Metric::JoulesPerFrame] {
                    match s.stat(metric) {
                        Some(st) => {
                            cells.push(fmt_num(st.median));
                            cells.push(format!("{} – {}", fmt_num(st.min), fmt_num(st.max)));
                        }
                        None if metric == Metric::JoulesPerFrame => {
                            cells.push("unavailable".into());
                            cells.push("-".into());
                        }
                        None => cells.extend(["-".to_string(), "-".to_string()]),
                    }
                }
                (cells, None)
            })
            .collect();
        page.push_str(&table_html(&cols, &body));
    }
    for (i, c) in comparisons {
        let base = &sets[0].name;
        let test = sets.get(*i).map(|s| s.name.as_str()).unwrap_or("?");
        page.push_str(&format!(
            "<h2>Comparison: {} against {}</h2>\n<p class=\"note\">Change of medians with a {:.0}% bootstrap \
             interval; verdicts at a {}% threshold.</p>\n",
            escape(test),
            escape(base),
            c.config.confidence * 100.0,
            threshold * 100.0
        ));
        let body: Vec<(Vec<String>, Option<&str>)> = rows(c, threshold)
            .into_iter()
            .map(|r| {
                let class = match r.kind {
                    Some(Verdict::Worse) => Some("worse"),
                    Some(Verdict::Better) => Some("better"),
                    Some(Verdict::Inconclusive) => Some("inconclusive"),
                    _ => None,
                };
                (
                    vec![
                        r.scenario, r.metric, r.runs, r.baseline, r.test, r.change, r.ci, r.verdict,
                    ],
                    class,
                )
            })
            .collect();
        page.push_str(&table_html(&headers(c.config.confidence), &body));
    }
    page.push_str(&format!(
        "<p class=\"note\">Generated by ffrtmp bench report. Metrics: {}, {}, {}.</p>\n</body>\n</html>\n",
        metric_text(Metric::Fps),
        metric_text(Metric::WallS),
        metric_text(Metric::JoulesPerFrame)
    ));
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_balanced;

    /// The page as [`write_report`] builds it, with the PNG names it would link.
    fn page(title: &str, sets: &[ResultSet], threshold: f64, pngs: bool) -> String {
        let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
        let summaries: Vec<Vec<ScenarioSummary>> = sets.iter().map(|s| summarize(&s.runs)).collect();
        let config = CompareConfig {
            threshold,
            ..CompareConfig::default()
        };
        let mut charts = charts_against_baseline(&names, &summaries, &comparisons(sets, &config));
        if pngs {
            for c in charts.iter_mut().filter(|c| c.svg.is_some()) {
                c.png = Some(format!("my report-{}.png", c.slug()));
            }
        }
        html(title, sets, &charts, &comparisons(sets, &config), threshold)
    }

    fn runs(name: &str, fps: &[f64], jpf: Option<f64>) -> Vec<RunSample> {
        fps.iter()
            .enumerate()
            .map(|(i, &f)| RunSample {
                scenario: name.into(),
                run: i as u32,
                frames: 30,
                wall_s: 30.0 / f,
                fps: f,
                energy_joules: jpf.map(|j| j * 30.0),
                joules_per_frame: jpf,
                energy_model: None,
            })
            .collect()
    }

    #[test]
    fn summary_has_medians_and_ranges_and_skips_failed_runs() {
        let mut r = runs("a", &[100.0, 120.0, 110.0], None);
        r.push(RunSample {
            scenario: "a".into(),
            ..RunSample::default()
        });
        let s = summarize(&r);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].runs, 4);
        let fps = s[0].stat(Metric::Fps).unwrap();
        assert_eq!((fps.n, fps.median, fps.min, fps.max), (3, 110.0, 100.0, 120.0));
        assert_eq!(s[0].stat(Metric::JoulesPerFrame), None);
    }

    #[test]
    fn page_is_well_formed_self_contained_and_escapes_names() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let mut a = runs("720p-h264", &[100.0, 101.0, 99.0], Some(0.2));
        a.extend(runs(evil, &[50.0, 51.0, 49.0], None));
        let b = runs("720p-h264", &[90.0, 91.0, 89.0], Some(0.22));
        let sets = vec![
            ResultSet {
                name: "base</h3>".into(),
                runs: a,
                notes: vec!["idle windows: 2 × 10 s <not measured>".into()],
            },
            ResultSet {
                name: "test".into(),
                runs: b,
                notes: vec![],
            },
        ];
        let page = page("bench & <report>", &sets, 0.03, false);
        assert_balanced(&page);
        assert!(!page.contains("<script"), "a name was not escaped");
        assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(page.contains("bench &amp; &lt;report&gt;"));
        assert!(!page.contains("http"), "external reference");
        assert!(!page.contains(" src=") && !page.contains(" href="));
        assert_eq!(page.matches("<svg").count(), 3, "fps, wall and J/frame charts");
        assert!(page.contains("Comparison: test against base&lt;/h3&gt;"));
        assert!(
            page.contains("<tr class=\"worse\">"),
            "J/frame +10 % and fps -10 % are worse"
        );
        assert!(page.contains("energy unavailable"));
        // Whiskers: three lines per bar.
        assert!(page.matches("class=\"wh\"").count() >= 3 * 3);
    }

    #[test]
    fn chart_without_energy_is_skipped_and_single_set_has_no_comparison() {
        let sets = vec![ResultSet {
            name: "only".into(),
            runs: runs("720p-h264", &[100.0], None),
            notes: vec![],
        }];
        let page = page("r", &sets, 0.03, true);
        assert_balanced(&page);
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("No energy in any result set"));
        assert!(!page.contains("Comparison:"));
        // Each drawn chart links its PNG (a relative name, escaped); none for the missing one.
        assert_eq!(page.matches(" href=").count(), 2);
        assert!(page.contains("<a href=\"my%20report-fps.png\">my report-fps.png</a>"));
        assert!(!page.contains("joules-per-frame.png"));
        assert!(!page.contains("http") && !page.contains(" src="));
    }

    #[test]
    fn a_chart_too_large_for_a_png_gets_a_note_and_the_page_is_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.json");
        // 200 scenarios: every chart is wider than the largest PNG.
        let r: Vec<RunSample> = (0..200)
            .flat_map(|i| runs(&format!("s{i}"), &[100.0], Some(0.2)))
            .collect();
        ffrtmp_power::compare::write_json(std::fs::File::create(&base).unwrap(), &r).unwrap();
        let out = dir.path().join("wide.html");
        let files = write_report(&[base], &out, 0.03, "t").unwrap();
        assert!(files.pngs.is_empty(), "{:?}", files.pngs);
        assert_eq!(files.png_errors.len(), 3, "{:?}", files.png_errors);
        assert!(
            files.png_errors[0].starts_with("fps: ") && files.png_errors[0].contains("larger than"),
            "{:?}",
            files.png_errors
        );
        let page = std::fs::read_to_string(&out).unwrap();
        assert_balanced(&page);
        assert_eq!(page.matches("<svg").count(), 3, "the SVGs are all there");
        assert_eq!(page.matches("No PNG of this chart: ").count(), 3);
        assert!(!page.contains(" href="), "no link to a PNG that does not exist");
        let written: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().ends_with(".png"))
            .collect();
        assert!(written.is_empty(), "{written:?}");
    }

    /// Decodes a PNG: (width, height, pixels that are not the white background).
    fn decode(path: &Path) -> (u32, u32, usize) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG signature");
        let p = resvg::tiny_skia::Pixmap::decode_png(&bytes).expect("a valid PNG");
        let background = p
            .pixels()
            .iter()
            .filter(|c| (c.red(), c.green(), c.blue(), c.alpha()) == (255, 255, 255, 255))
            .count();
        (p.width(), p.height(), p.pixels().len() - background)
    }

    #[test]
    fn the_report_writes_a_png_of_each_chart_beside_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.json");
        let mut r = runs("720p-h264", &[100.0, 101.0, 99.0], Some(0.2));
        r.extend(runs("1080p-h265", &[40.0, 41.0], Some(0.5)));
        ffrtmp_power::compare::write_json(std::fs::File::create(&base).unwrap(), &r).unwrap();
        let out = dir.path().join("bench.html");
        let files = write_report(&[base], &out, 0.03, "t").unwrap();
        let names: Vec<String> = files
            .pngs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["bench-fps.png", "bench-wall-time.png", "bench-joules-per-frame.png"]
        );
        let page = std::fs::read_to_string(&out).unwrap();
        let charts = charts_against_baseline(&["x".into()], &[summarize(&r)], &[]);
        for (png, chart) in files.pngs.iter().zip(&charts) {
            assert!(png.parent() == Some(dir.path()), "beside the page");
            assert!(page.contains(&format!("href=\"{}\"", png.file_name().unwrap().to_string_lossy())));
            let (w, h, ink) = decode(png);
            // The SVG's own size at the PNG scale: the same drawing.
            let svg = chart.svg.as_ref().unwrap();
            let attr = |name: &str| -> f32 {
                let at = svg.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
                svg[at..].split('"').next().unwrap().parse().unwrap()
            };
            assert_eq!(
                (w, h),
                (
                    (attr("width") * super::super::png::SCALE) as u32,
                    (attr("height") * super::super::png::SCALE) as u32
                )
            );
            assert!(
                ink > (w * h) as usize / 100,
                "bars, axes and text drawn: {ink} of {} pixels",
                w * h
            );
        }
    }
}
