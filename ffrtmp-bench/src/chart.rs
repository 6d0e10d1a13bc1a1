//! The report's SVG bar charts, drawn by hand: one per metric, one group of bars per
//! scenario and one bar per result set, named in the legend by the set's label, with
//! whiskers showing the confidence intervals the verdicts use. The same SVG text goes inline
//! into the HTML page and, rasterized, into the PNG files beside it.

use ffrtmp_power::compare::{Comparison, Metric, MetricComparison};

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
/// named by `names`), scenarios in order of first appearance. Whiskers: none on the first
/// (baseline) set; on every other set, the confidence interval of its change against the
/// baseline from `comparisons` (`(set index, comparison)`, as [`super::report::comparisons`]
/// gives), the very interval its verdict is drawn from ([`ci_whisker`]).
pub fn charts_against_baseline(
    names: &[String],
    summaries: &[Vec<ScenarioSummary>],
    comparisons: &[(usize, Comparison)],
) -> Vec<Chart> {
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
            let bars: Vec<Vec<Option<Bar>>> = groups
                .iter()
                .map(|g| {
                    summaries
                        .iter()
                        .enumerate()
                        .map(|(i, set)| {
                            let stat = set.iter().find(|s| &s.scenario == g).and_then(|s| s.stat(metric))?;
                            let whisker = comparisons
                                .iter()
                                .find(|(c, _)| *c == i)
                                .and_then(|(_, c)| c.scenarios.iter().find(|s| &s.scenario == g))
                                .and_then(|s| s.metric(metric))
                                .and_then(ci_whisker);
                            Some(Bar {
                                median: stat.median,
                                whisker,
                                n: stat.n,
                                whisker_note: "confidence interval of the change against the baseline",
                            })
                        })
                        .collect()
                })
                .collect();
            let empty = bars.iter().flatten().all(Option::is_none);
            Chart {
                metric,
                title,
                svg: (!empty).then(|| draw(title, unit, &groups, names, &bars)),
                png: None,
                png_error: None,
            }
        })
        .collect()
}

/// The charts of fps, wall time and joules per frame over `summaries` (one per result set,
/// named by `names`), with min–max whiskers; see [`charts_against_baseline`] for the
/// report's charts, whose whiskers are the verdicts' intervals.
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

/// The whisker of a test set's bar: the confidence interval `[ci_low, ci_high]` of the
/// relative change of its median, in the metric's units around the baseline median:
/// `baseline × (1 + ci_low)` to `baseline × (1 + ci_high)`. The verdict compares exactly this
/// interval with the threshold, so a whisker clear of the baseline's bar top by more than
/// the threshold is a `better` or `worse`.
pub fn ci_whisker(m: &MetricComparison) -> Option<(f64, f64)> {
    let base = m.baseline_median?;
    let (lo, hi) = (base * (1.0 + m.ci_low?), base * (1.0 + m.ci_high?));
    (lo.is_finite() && hi.is_finite()).then_some((lo.min(hi), lo.max(hi)))
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

/// One bar: a median and an optional whisker `(low, high)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    /// The bar's height: the median.
    pub median: f64,
    /// The whisker's ends, in the metric's units.
    pub whisker: Option<(f64, f64)>,
    /// Usable runs.
    pub n: usize,
    /// What the whisker shows, for the bar's tooltip.
    pub whisker_note: &'static str,
}

/// An SVG bar chart: one group per scenario, one bar per result set (its median), with a
/// whisker from min to max. `values[group][series]`. See [`draw`].
pub fn bar_chart(
    title: &str,
    unit: &str,
    groups: &[String],
    series: &[String],
    values: &[Vec<Option<Stat>>],
) -> String {
    let bars: Vec<Vec<Option<Bar>>> = values
        .iter()
        .map(|g| {
            g.iter()
                .map(|s| {
                    s.map(|s| Bar {
                        median: s.median,
                        whisker: Some((s.min, s.max)),
                        n: s.n,
                        whisker_note: "min to max",
                    })
                })
                .collect()
        })
        .collect();
    draw(title, unit, groups, series, &bars)
}

/// Width of a chart: a printed column's, or wider when its bars need the room.
pub const CHART_WIDTH: f64 = 760.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
/// Narrowest bar, and the least space between groups: past these the chart grows wider.
const MIN_BAR: f64 = 22.0;
const MIN_GAP: f64 = 28.0;
/// Widest bar, so that few bars do not become slabs.
const MAX_BAR: f64 = 48.0;
/// Legend text: estimated width of a character at 11 px, and the height of a legend row.
const CHAR_W: f64 = 6.6;
const LEGEND_ROW: f64 = 16.0;

/// Legend entries laid out in rows within `width`: `(x, row)` per series.
fn legend_layout(series: &[String], width: f64) -> Vec<(f64, usize)> {
    let mut out = Vec::with_capacity(series.len());
    let (mut x, mut row) = (LEFT, 0);
    for name in series {
        let w = legend_entry_width(name);
        if x > LEFT && x + w > width - RIGHT {
            x = LEFT;
            row += 1;
        }
        out.push((x, row));
        x += w + 14.0;
    }
    out
}

/// Room one legend entry takes: its swatch and its text.
pub fn legend_entry_width(name: &str) -> f64 {
    14.0 + CHAR_W * name.chars().count() as f64
}

/// Decimals that show every multiple of `step` exactly (`0.25` → 2, `50` → 0), or `None` for
/// steps best written in scientific notation.
fn tick_decimals(step: f64) -> Option<usize> {
    if !(1e-4..1e9).contains(&step) {
        return None;
    }
    (0..=6).find(|&d| {
        let scaled = step * 10f64.powi(d as i32);
        (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
    })
}

/// The value axis' labels: every tick written with the same number of decimals (or all in
/// scientific notation), so `0.0, 0.5, 1.0` rather than `0, 0.50, 1.00`.
///
/// ```
/// use ffrtmp_bench::chart::tick_labels;
/// assert_eq!(tick_labels(50.0, 3), ["0", "50", "100", "150"]);
/// assert_eq!(tick_labels(0.25, 4), ["0.00", "0.25", "0.50", "0.75", "1.00"]);
/// ```
pub fn tick_labels(step: f64, ticks: u32) -> Vec<String> {
    (0..=ticks)
        .map(|k| {
            let v = step * f64::from(k);
            match tick_decimals(step) {
                Some(d) => format!("{v:.d$}"),
                None => format!("{v:.1e}"),
            }
        })
        .collect()
}

/// Draws the chart: one group per scenario spread over the whole plot width, one bar per
/// series (its median) with its whisker, a legend naming every series (wrapped into rows),
/// and value-axis labels in one format ([`tick_labels`]). `bars[group][series]`.
///
/// The chart is styled with presentation attributes only (no CSS from the page), so that the
/// same text renders alike inline in the report and rasterized on its own ([`super::png`]).
pub fn draw(title: &str, unit: &str, groups: &[String], series: &[String], bars: &[Vec<Option<Bar>>]) -> String {
    let n_series = series.len().max(1) as f64;
    let natural = MIN_BAR * n_series + MIN_GAP;
    let width = (LEFT + RIGHT + natural * groups.len() as f64).max(CHART_WIDTH);
    let legend = legend_layout(series, width);
    let legend_rows = legend.last().map_or(1, |(_, row)| row + 1);
    let (top, plot_h, bottom) = (32.0 + LEGEND_ROW * legend_rows as f64, 200.0, 110.0);
    let height = top + plot_h + bottom;
    let plot_w = width - LEFT - RIGHT;
    let group_w = plot_w / groups.len().max(1) as f64;
    let bar = ((group_w - MIN_GAP) / n_series).clamp(MIN_BAR.min(group_w / n_series), MAX_BAR);
    // Only finite figures are drawn: a bar whose median is not one is left out, a whisker
    // whose end is not one is not drawn.
    let max = bars
        .iter()
        .flatten()
        .flatten()
        .flat_map(|b| [b.median, b.whisker.map_or(f64::NAN, |w| w.1)])
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
         <text x=\"{LEFT}\" y=\"18\" class=\"ct\" {TITLE_FONT}>{t}</text>\n",
        t = escape(title)
    );
    for (i, (name, (lx, row))) in series.iter().zip(&legend).enumerate() {
        let ly = 26.0 + LEGEND_ROW * *row as f64;
        svg.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"lg\" {SMALL_FONT}>{}</text>\n",
            COLORS[i % COLORS.len()],
            lx + 14.0,
            ly + 9.0,
            escape(name)
        ));
    }
    for (k, label) in tick_labels(step, ticks).iter().enumerate() {
        let yy = y(step * k as f64);
        svg.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" class=\"grid\" {GRID}/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"ax\" {SMALL_FONT} text-anchor=\"end\">{}</text>\n",
            width - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            escape(label)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" class=\"ax\" {SMALL_FONT} transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">{}</text>\n",
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        escape(unit)
    ));
    for (g, group) in groups.iter().enumerate() {
        let center = LEFT + group_w * (g as f64 + 0.5);
        let gx = center - bar * series.len() as f64 / 2.0;
        for (i, name) in series.iter().enumerate() {
            let Some(b) = bars
                .get(g)
                .and_then(|v| v.get(i))
                .copied()
                .flatten()
                .filter(|b| b.median.is_finite())
            else {
                continue;
            };
            let x = gx + i as f64 * bar;
            let whisker = b.whisker.filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
            let whisker_text = whisker
                .map(|(lo, hi)| format!(", {} {}–{}", b.whisker_note, fmt_num(lo), fmt_num(hi)))
                .unwrap_or_default();
            svg.push_str(&format!(
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{} {}: median {} {u}{}, {} runs</title></rect>\n",
                y(b.median),
                bar - 2.0,
                (top + plot_h - y(b.median)).max(0.0),
                COLORS[i % COLORS.len()],
                escape(group),
                escape(name),
                fmt_num(b.median),
                escape(&whisker_text),
                b.n,
                u = escape(unit)
            ));
            if let Some((lo, hi)) = whisker {
                svg.push_str(&whisker_svg(x + bar / 2.0 - 1.0, y(hi), y(lo), lo, hi));
            }
        }
        let ly = top + plot_h + 14.0;
        svg.push_str(&format!(
            "<text x=\"{center:.1}\" y=\"{ly:.1}\" class=\"ax\" {SMALL_FONT} text-anchor=\"end\" \
             transform=\"rotate(-30 {center:.1} {ly:.1})\">{}</text>\n",
            escape(group)
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" class=\"axis\" {AXIS}/>\n</svg>\n",
        top + plot_h,
        width - RIGHT,
        top + plot_h
    ));
    svg
}

/// A whisker at `cx` from `y1` (top, value `hi`) to `y2` (bottom, value `lo`), with caps; its
/// values ride along as `data-lo`/`data-hi` (exact, for readers and tests).
fn whisker_svg(cx: f64, y1: f64, y2: f64, lo: f64, hi: f64) -> String {
    format!(
        "<g data-lo=\"{lo}\" data-hi=\"{hi}\">\
         <line x1=\"{cx:.1}\" y1=\"{y1:.1}\" x2=\"{cx:.1}\" y2=\"{y2:.1}\" class=\"wh\" {WHISKER}/>\
         <line x1=\"{:.1}\" y1=\"{y1:.1}\" x2=\"{:.1}\" y2=\"{y1:.1}\" class=\"wh\" {WHISKER}/>\
         <line x1=\"{:.1}\" y1=\"{y2:.1}\" x2=\"{:.1}\" y2=\"{y2:.1}\" class=\"wh\" {WHISKER}/></g>\n",
        cx - 5.0,
        cx + 5.0,
        cx - 5.0,
        cx + 5.0
    )
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
        // One format for every tick label (was `0` beside `150.0`).
        assert!(svg.contains(">150</text>") && svg.contains(">0</text>"), "{svg}");
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
