//! The report's SVG bar charts, drawn by hand: one per metric, one group of bars per
//! scenario and one bar per result set. The same SVG text goes inline into the HTML page and,
//! rasterized, into the PNG files beside it.

use ffrtmp_power::compare::Metric;

use super::fmt_num;
use super::report::{escape, ScenarioSummary, Stat};

// Presentation attributes (not page CSS), so a chart looks the same on its own.
const TITLE_FONT: &str = "font-size=\"14\" font-weight=\"600\"";
const SMALL_FONT: &str = "font-size=\"11\"";
const GRID: &str = "stroke=\"#e4e4e4\"";
const AXIS: &str = "stroke=\"#555\"";
const WHISKER: &str = "stroke=\"#222\" stroke-width=\"1.2\"";

/// One metric's chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The metric drawn.
    pub metric: Metric,
    /// Its title.
    pub title: &'static str,
    /// The SVG; `None` when no result set has a value of the metric (energy unavailable).
    pub svg: Option<String>,
    /// File name of its PNG copy beside the page, once written.
    pub png: Option<String>,
}

impl Chart {
    /// A short name for file names (`fps`, `wall-time`, `joules-per-frame`).
    pub fn slug(&self) -> &'static str {
        match self.metric {
            Metric::Fps => "fps",
            Metric::WallS => "wall-time",
            Metric::JoulesPerFrame => "joules-per-frame",
        }
    }
}

/// The charts of fps, wall time and joules per frame over `summaries` (one per result set,
/// named by `names`), scenarios in order of first appearance.
pub fn charts(names: &[String], summaries: &[Vec<ScenarioSummary>]) -> Vec<Chart> {
    let mut groups: Vec<String> = Vec::new();
    for s in summaries.iter().flatten() {
        if !groups.contains(&s.scenario) {
            groups.push(s.scenario.clone());
        }
    }
    [Metric::Fps, Metric::WallS, Metric::JoulesPerFrame]
        .into_iter()
        .map(|metric| {
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
            let empty = values.iter().flatten().all(Option::is_none);
            Chart {
                metric,
                title,
                svg: (!empty).then(|| bar_chart(title, unit, &groups, names, &values)),
                png: None,
            }
        })
        .collect()
}

/// Series colours, in result-set order.
const COLORS: [&str; 6] = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"];

/// Title and unit of a metric's chart.
pub fn chart_title(metric: Metric) -> (&'static str, &'static str) {
    match metric {
        Metric::Fps => ("Frames per second (higher is better)", "fps"),
        Metric::WallS => ("Wall time (lower is better)", "s"),
        Metric::JoulesPerFrame => ("Joules per frame (lower is better)", "J/frame"),
    }
}

/// An SVG bar chart: one group per scenario, one bar per result set (its median), with a
/// whisker from min to max. `values[group][series]`.
///
/// The chart is styled with presentation attributes only (no CSS from the page), so that the
/// same text renders alike inline in the report and rasterized on its own ([`super::png`]).
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
        "<svg class=\"chart\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" fill=\"#222\" role=\"img\" \
         aria-label=\"{t}\">\n<title>{t}</title>\n\
         <text x=\"{left}\" y=\"18\" class=\"ct\" {TITLE_FONT}>{t}</text>\n",
        t = escape(title)
    );
    // Legend.
    let mut lx = left;
    for (i, name) in series.iter().enumerate() {
        svg.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"35\" class=\"lg\" {SMALL_FONT}>{}</text>\n",
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
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" class=\"grid\" {GRID}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" {SMALL_FONT} text-anchor=\"end\">{}</text>\n",
            width - 10.0,
            left - 6.0,
            yy + 4.0,
            escape(&fmt_num(v))
        ));
    }
    svg.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" class=\"ax\" {SMALL_FONT} transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>\n",
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
                "<line x1=\"{cx:.1}\" y1=\"{y1:.1}\" x2=\"{cx:.1}\" y2=\"{y2:.1}\" class=\"wh\" {WHISKER}/>\
                 <line x1=\"{:.1}\" y1=\"{y1:.1}\" x2=\"{:.1}\" y2=\"{y1:.1}\" class=\"wh\" {WHISKER}/>\
                 <line x1=\"{:.1}\" y1=\"{y2:.1}\" x2=\"{:.1}\" y2=\"{y2:.1}\" class=\"wh\" {WHISKER}/>\n",
                cx - 5.0,
                cx + 5.0,
                cx - 5.0,
                cx + 5.0
            ));
        }
        let lx = gx + bar * series.len() as f64 / 2.0;
        let ly = top + plot_h + 14.0;
        svg.push_str(&format!(
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"ax\" {SMALL_FONT} text-anchor=\"end\" \
             transform=\"rotate(-30 {lx:.1} {ly:.1})\">{}</text>\n",
            escape(group)
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\" {AXIS}/>\n</svg>\n",
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
/// use ffrtmp::bench::chart::nice_ticks;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::assert_balanced;

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
        // Styled on its own: no class needs the page's CSS to be visible.
        assert!(svg.contains("class=\"wh\" stroke=\"#222\""), "{svg}");
        assert!(svg.contains("font-family=\"sans-serif\""), "{svg}");
    }
}
