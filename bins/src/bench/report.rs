//! `ffrtmp bench report`: one self-contained HTML page (no JavaScript, no external assets)
//! with hand-made inline SVG bar charts of each scenario's median fps, wall time and joules
//! per frame with min–max whiskers, per result set, plus the comparison tables of every set
//! against the first.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ffrtmp_power::compare::{compare, CompareConfig, Comparison, Metric, RunSample, Verdict};

use super::compare::{headers, metric_text, rows};
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
    /// Shown name (e.g. the file path).
    pub name: String,
    /// Its runs.
    pub runs: Vec<RunSample>,
    /// Lines shown under its name (e.g. from `meta.json`).
    pub notes: Vec<String>,
}

/// Loads a runs file as a result set named by its path, with notes from the `meta.json`
/// beside it when there is one (as `ffrtmp bench run` writes).
pub fn load_set(path: &Path) -> anyhow::Result<ResultSet> {
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
        let windows: Vec<String> = m
            .idle_windows
            .iter()
            .map(|w| {
                format!(
                    "{} {:.1} s",
                    w.phase,
                    w.end_ms.saturating_sub(w.start_ms) as f64 / 1000.0
                )
            })
            .collect();
        if !windows.is_empty() {
            notes.push(format!(
                "idle windows: {}; energy {}",
                windows.join(", "),
                m.idle_energy
            ));
        }
    }
    Ok(ResultSet {
        name: path.display().to_string(),
        runs,
        notes,
    })
}

/// `ffrtmp bench report`: loads `results`, compares each against the first at `threshold`
/// and writes the page to `out`.
pub fn write_report(results: &[PathBuf], out: &Path, threshold: f64, title: &str) -> anyhow::Result<()> {
    let sets = results
        .iter()
        .map(|p| load_set(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = CompareConfig {
        threshold,
        ..CompareConfig::default()
    };
    let page = html(title, &sets, &comparisons(&sets, &config), threshold);
    std::fs::write(out, page).with_context(|| format!("writing {}", out.display()))
}

/// Escapes text for HTML and SVG content and attribute values.
///
/// ```
/// assert_eq!(ffrtmp::bench::report::escape(r#"<a & "b" 'c'>"#), "&lt;a &amp; &quot;b&quot; &#39;c&#39;&gt;");
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

const COLORS: [&str; 6] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

/// Title and unit of a metric's chart.
fn chart_title(metric: Metric) -> (&'static str, &'static str) {
    match metric {
        Metric::Fps => ("Frames per second (higher is better)", "fps"),
        Metric::WallS => ("Wall time (lower is better)", "s"),
        Metric::JoulesPerFrame => ("Joules per frame (lower is better)", "J/frame"),
    }
}

/// An SVG bar chart: one group per scenario, one bar per result set (its median), with a
/// whisker from min to max. `values[group][series]`.
pub fn bar_chart(
    title: &str,
    unit: &str,
    groups: &[String],
    series: &[String],
    values: &[Vec<Option<Stat>>],
) -> String {
    let (bar, gap, left, top, plot_h, bottom) = (22.0, 28.0, 64.0, 48.0, 200.0, 110.0);
    let group_w = bar * series.len().max(1) as f64 + gap;
    let width = (left + group_w * groups.len() as f64 + 20.0).max(420.0);
    let height = top + plot_h + bottom;
    let max = values
        .iter()
        .flatten()
        .flatten()
        .map(|s| s.max.max(s.median))
        .fold(0.0, f64::max);
    let (step, ticks) = nice_ticks(max);
    let scale_max = step * ticks as f64;
    let y = |v: f64| top + plot_h - v / scale_max * plot_h;
    let mut svg = format!(
        "<svg class=\"chart\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" \
         role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>\n\
         <text x=\"{left}\" y=\"18\" class=\"ct\">{t}</text>\n",
        t = escape(title)
    );
    // Legend.
    let mut lx = left;
    for (i, name) in series.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"35\" class=\"lg\">{}</text>\n",
            COLORS[i % COLORS.len()],
            lx + 14.0,
            escape(name)
        ));
        lx += 24.0 + 7.0 * name.chars().count() as f64;
    }
    // Axis and gridlines.
    for k in 0..=ticks {
        let v = step * k as f64;
        let yy = y(v);
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" class=\"grid\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" text-anchor=\"end\">{}</text>\n",
            width - 10.0,
            left - 6.0,
            yy + 4.0,
            escape(&fmt_num(v))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" class=\"ax\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>\n",
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        escape(unit)
    ));
    for (g, group) in groups.iter().enumerate() {
        let gx = left + gap / 2.0 + g as f64 * group_w;
        for (i, name) in series.iter().enumerate() {
            let Some(s) = values.get(g).and_then(|v| v.get(i)).copied().flatten() else {
                continue;
            };
            let x = gx + i as f64 * bar;
            let cx = x + bar / 2.0 - 1.0;
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{} {}: median {} {u}, min {}, max {}, {} runs</title></rect>\n",
                y(s.median),
                bar - 2.0,
                (top + plot_h - y(s.median)).max(0.0),
                COLORS[i % COLORS.len()],
                escape(group),
                escape(name),
                fmt_num(s.median),
                fmt_num(s.min),
                fmt_num(s.max),
                s.n,
                u = escape(unit)
            ));
            let (y1, y2) = (y(s.max), y(s.min));
            svg.push_str(&format!(
                "<line x1=\"{cx:.1}\" y1=\"{y1:.1}\" x2=\"{cx:.1}\" y2=\"{y2:.1}\" class=\"wh\"/>\
                 <line x1=\"{:.1}\" y1=\"{y1:.1}\" x2=\"{:.1}\" y2=\"{y1:.1}\" class=\"wh\"/>\
                 <line x1=\"{:.1}\" y1=\"{y2:.1}\" x2=\"{:.1}\" y2=\"{y2:.1}\" class=\"wh\"/>\n",
                cx - 5.0,
                cx + 5.0,
                cx - 5.0,
                cx + 5.0
            ));
        }
        let lx = gx + bar * series.len() as f64 / 2.0;
        let ly = top + plot_h + 14.0;
        svg.push_str(&format!(
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"ax\" text-anchor=\"end\" \
             transform=\"rotate(-30 {lx:.1} {ly:.1})\">{}</text>\n",
            escape(group)
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>\n</svg>\n",
        top + plot_h,
        width - 10.0,
        top + plot_h
    ));
    svg
}

/// A tick step of 1, 2 or 5 × 10ⁿ and the number of steps (at most 5) that reach
/// past `max`, leaving headroom for the whiskers.
///
/// ```
/// use ffrtmp::bench::report::nice_ticks;
/// assert_eq!(nice_ticks(121.0), (50.0, 3));
/// assert_eq!(nice_ticks(9.0), (2.0, 5));
/// assert_eq!(nice_ticks(0.0), (0.25, 4));
/// ```
pub fn nice_ticks(max: f64) -> (f64, u32) {
    if !(max.is_finite() && max > 0.0) {
        return (0.25, 4);
    }
    let rough = max * 1.05 / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= rough)
        .unwrap_or(10.0 * magnitude);
    let ticks = ((max * 1.05) / step).ceil().max(1.0) as u32;
    (step, ticks)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}\
.worse{background:#f8d0d0}.better{background:#d3f0d3}.inconclusive{background:#fff2c0}\
.chart{display:block;margin:0.5em 0 1.5em}.ct{font-size:14px;font-weight:600}\
.lg,.ax{font-size:11px}.grid{stroke:#e4e4e4}.axis{stroke:#555}.wh{stroke:#222;stroke-width:1.2}\
.note{color:#666}";

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

/// The whole report page.
pub fn html(title: &str, sets: &[ResultSet], comparisons: &[(usize, Comparison)], threshold: f64) -> String {
    let summaries: Vec<Vec<ScenarioSummary>> = sets.iter().map(|s| summarize(&s.runs)).collect();
    let mut groups: Vec<String> = Vec::new();
    for s in summaries.iter().flatten() {
        if !groups.contains(&s.scenario) {
            groups.push(s.scenario.clone());
        }
    }
    let names: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
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
    page.push_str("</ol>\n<p class=\"note\">Bars: median; whiskers: min to max of the completed runs.</p>\n");
    for metric in [Metric::Fps, Metric::WallS, Metric::JoulesPerFrame] {
        let (title, unit) = chart_title(metric);
        let values: Vec<Vec<Option<Stat>>> = groups
            .iter()
            .map(|g| {
                summaries
                    .iter()
                    .map(|set| set.iter().find(|s| &s.scenario == g).and_then(|s| s.stat(metric)))
                    .collect()
            })
            .collect();
        if values.iter().flatten().all(Option::is_none) {
            page.push_str(&format!(
                "<h2>{}</h2>\n<p class=\"note\">No energy in any result set (energy unavailable on the nodes).</p>\n",
                escape(title)
            ));
            continue;
        }
        page.push_str(&format!("<h2>{}</h2>\n", escape(title)));
        page.push_str(&bar_chart(title, unit, &groups, &names, &values));
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

    /// Checks that every element opened is closed in order (`<x/>` closes itself), ignoring
    /// the doctype: enough to catch a broken template or an unescaped name.
    fn assert_balanced(doc: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').expect("unclosed tag") + i;
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "mismatched </{name}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(!rest.contains('>'), "stray '>' in text");
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
        let cmp = comparisons(&sets, &CompareConfig::default());
        let page = html("bench & <report>", &sets, &cmp, 0.03);
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
        let page = html("r", &sets, &comparisons(&sets, &CompareConfig::default()), 0.03);
        assert_balanced(&page);
        assert_eq!(page.matches("<svg").count(), 2);
        assert!(page.contains("No energy in any result set"));
        assert!(!page.contains("Comparison:"));
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let stat = |m: f64| {
            Some(Stat {
                n: 1,
                median: m,
                min: m,
                max: m,
            })
        };
        let svg = bar_chart(
            "t",
            "u",
            &["a".into(), "b".into()],
            &["s".into()],
            &[vec![stat(50.0)], vec![stat(100.0)]],
        );
        assert_balanced(&svg);
        // Ticks of 50 up to 150 over a plot height of 200: bars 133.3 and 66.7 high.
        assert!(svg.contains("height=\"133.3\""), "{svg}");
        assert!(svg.contains("height=\"66.7\""), "{svg}");
        assert!(svg.contains(">150.0</text>") && svg.contains(">0</text>"), "{svg}");
    }
}
