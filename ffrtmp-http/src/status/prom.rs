//! [`PromText`]: a small builder of Prometheus text exposition, kept for probes written
//! against it. The reference agent encodes with prometheus-client instead
//! ([`crate::metrics::encode`]), which also brings the process and build-info series.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

/// The kind of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: String,
}

/// A builder of Prometheus text (format 0.0.4): families in the order first seen, each with
/// its `# HELP` and `# TYPE` once and all its samples together, label values escaped, and
/// `+Inf`/`-Inf`/`NaN` spelled as Prometheus expects.
///
/// ```
/// use ffrtmp_http::PromText;
/// let mut p = PromText::new();
/// p.gauge("ffrtmp_agent_jobs_running", "Jobs running on this agent.", &[], 2.0);
/// p.counter("ffrtmp_agent_jobs_total", "Jobs finished, by outcome.", &[("outcome", "completed")], 7.0);
/// p.counter("ffrtmp_agent_jobs_total", "Jobs finished, by outcome.", &[("outcome", "failed")], 1.0);
/// p.gauge("ffrtmp_power_watts", "Power.", &[("zone", "package-0 \"cpu\"")], 41.5);
/// let text = p.finish();
/// assert_eq!(text.matches("# TYPE ffrtmp_agent_jobs_total counter").count(), 1);
/// assert!(text.contains("ffrtmp_agent_jobs_running 2\n"));
/// assert!(text.contains("ffrtmp_agent_jobs_total{outcome=\"failed\"} 1\n"));
/// assert!(text.contains(r#"ffrtmp_power_watts{zone="package-0 \"cpu\""} 41.5"#));
/// ```
#[derive(Default)]
pub struct PromText {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for PromText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromText")
            .field("families", &self.families.len())
            .finish()
    }
}

impl PromText {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter sample (`name` should end in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.sample(name, help, Kind::Counter, name, labels, None, value)
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.sample(name, help, Kind::Gauge, name, labels, None, value)
    }

    /// A histogram: `buckets` holds `(upper bound, cumulative count)` in increasing bound
    /// order (an infinite bound is skipped: the `+Inf` bucket is always `count`); then
    /// `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        let bucket = format!("{name}_bucket");
        for (bound, n) in buckets.iter().filter(|(b, _)| b.is_finite()) {
            let le = fmt_value(*bound);
            self.sample(name, help, Kind::Histogram, &bucket, labels, Some(&le), *n as f64);
        }
        self.sample(name, help, Kind::Histogram, &bucket, labels, Some("+Inf"), count as f64);
        self.sample(name, help, Kind::Histogram, &format!("{name}_sum"), labels, None, sum);
        self.sample(
            name,
            help,
            Kind::Histogram,
            &format!("{name}_count"),
            labels,
            None,
            count as f64,
        )
    }

    /// The text, ending with a newline (empty when nothing was added).
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|f| f.samples.len() + 128).sum());
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn sample(
        &mut self,
        family: &str,
        help: &str,
        kind: Kind,
        series: &str,
        labels: &[(&str, &str)],
        le: Option<&str>,
        value: f64,
    ) -> &mut Self {
        debug_assert!(valid_name(family), "invalid metric name {family:?}");
        let i = match self.index.get(family) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: family.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: String::new(),
                });
                self.index.insert(family.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let f = &mut self.families[i];
        debug_assert_eq!(f.kind, kind, "metric {family} used as two types");
        let out = &mut f.samples;
        out.push_str(series);
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        let mut first = true;
        for (k, v) in all {
            debug_assert!(valid_name(k) && !k.contains(':'), "invalid label name {k:?}");
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_into(out, v);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        out.push_str(&fmt_value(value));
        out.push('\n');
        self
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(super) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A sample value: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Escapes `\`, `"` and newlines in a label value.
fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes `\` and newlines in help text.
fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}
