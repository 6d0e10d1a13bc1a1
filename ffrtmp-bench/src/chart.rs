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
    /// Why it has no PNG copy, when rasterizing it failed.
    pub png_error: Option<String>,
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
                png_error: None,
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
    // Only finite figures are drawn: a bar whose median is not one is left out, a whisker
    // whose end is not one is not drawn.
    let max = values
        .iter()
        .flatten()
        .flatten()
        .flat_map(|s| [s.max, s.median])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (step, ticks) = nice_ticks(max);
    let scale_max = step * ticks as f64;
    // Clamped to the plot: near f64::MAX the scale may stop below the largest value.
    let y = |v: f64| top + plot_h - v.clamp(0.0, scale_max) / scale_max * plot_h;
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
            let Some(s) = values
                .get(g)
                .and_then(|v| v.get(i))
                .copied()
                .flatten()
                .filter(|s| s.median.is_finite())
            else {
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
            if !(s.min.is_finite() && s.max.is_finite()) {
                continue;
            }
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
/// past `max`, leaving headroom for the whiskers. Whatever `max` is, the step is finite and
/// positive, the steps are 1..=10 and the scale `step × steps` is finite; near `f64::MAX`
/// it stops below `max`, and below the smallest normal numbers it falls back to `(0.25, 4)`
/// like zero, NaN and infinities.
///
/// ```
/// use ffrtmp_bench::chart::nice_ticks;
/// assert_eq!(nice_ticks(121.0), (50.0, 3));
/// assert_eq!(nice_ticks(9.0), (2.0, 5));
/// assert_eq!(nice_ticks(0.0), (0.25, 4));
/// let (step, ticks) = nice_ticks(f64::MAX);
/// assert!((step * ticks as f64).is_finite() && ticks <= 10);
/// ```
pub fn nice_ticks(max: f64) -> (f64, u32) {
    const FALLBACK: (f64, u32) = (0.25, 4);
    if !(max.is_finite() && max > 0.0) {
        return FALLBACK;
    }
    // 5 % headroom, which overflows to infinity near f64::MAX: capped there.
    let top = (max * 1.05).min(f64::MAX);
    let rough = top / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= rough)
        .unwrap_or(10.0 * magnitude);
    // A subnormal `max` can underflow the step to 0, which would ask for unbounded ticks.
    if !(step.is_finite() && step > 0.0) {
        return FALLBACK;
    }
    let mut ticks = (top / step).ceil().clamp(1.0, 10.0) as u32;
    while ticks > 1 && !(step * f64::from(ticks)).is_finite() {
        ticks -= 1;
    }
    (step, ticks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_balanced;

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

    fn stat(median: f64, min: f64, max: f64) -> Option<Stat> {
        Some(Stat { n: 1, median, min, max })
    }

    /// Lines of the value axis (one per tick, and zero).
    fn grid_lines(svg: &str) -> usize {
        svg.matches("class=\"grid\"").count()
    }

    #[test]
    fn ticks_are_bounded_and_finite_for_any_maximum() {
        let subnormal = f64::MIN_POSITIVE / 1e10;
        for max in [
            0.0,
            -5.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            5e-324,
            subnormal,
            1e-300,
            1e-9,
            1.0,
            1e15,
            1e307,
            1e308,
            f64::MAX / 1.05,
            f64::MAX,
        ] {
            let (step, ticks) = nice_ticks(max);
            let scale = step * f64::from(ticks);
            assert!(step.is_finite() && step > 0.0, "{max}: step {step}");
            assert!((1..=10).contains(&ticks), "{max}: {ticks} ticks");
            assert!(scale.is_finite(), "{max}: scale {scale}");
            if (1e-300..=1e308).contains(&max) {
                assert!(scale >= max, "{max}: the scale {scale} reaches past it");
                assert!(ticks <= 5, "{max}: {ticks} ticks");
            }
        }
    }

    #[test]
    fn charts_of_no_series_one_point_nan_and_huge_values_are_well_formed() {
        let draw = |groups: &[&str], series: &[&str], values: &[Vec<Option<Stat>>]| {
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let series: Vec<String> = series.iter().map(|s| s.to_string()).collect();
            let svg = bar_chart("t", "u", &groups, &series, values);
            assert_balanced(&svg);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
            assert!(grid_lines(&svg) <= 11, "{svg}");
            svg
        };
        let empty = draw(&[], &[], &[]);
        assert_eq!(empty.matches("<rect").count(), 0, "{empty}");
        assert!(charts(&[], &[]).iter().all(|c| c.svg.is_none()), "nothing to draw");

        let one = draw(&["a"], &["s"], &[vec![stat(7.0, 7.0, 7.0)]]);
        // A legend box and one bar.
        assert_eq!(one.matches("<rect").count(), 2, "{one}");

        let nan = draw(
            &["a", "b"],
            &["s"],
            &[vec![stat(f64::NAN, 1.0, 2.0)], vec![stat(3.0, f64::NAN, 4.0)]],
        );
        // The NaN median's bar is left out; the other bar stays, without its whisker.
        assert_eq!(nan.matches("<rect").count(), 2, "{nan}");
        assert_eq!(nan.matches("class=\"wh\"").count(), 0, "{nan}");

        let huge = draw(
            &["a", "b"],
            &["s"],
            &[
                vec![stat(f64::MAX, 1e308, f64::MAX)],
                vec![stat(f64::INFINITY, 0.0, f64::INFINITY)],
            ],
        );
        assert_eq!(huge.matches("<rect").count(), 2, "{huge}");
        assert!(crate::png::Rasterizer::with_system_fonts().png(&huge).is_ok());
    }
}
