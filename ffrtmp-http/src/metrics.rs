//! Prometheus metrics of the HTTP API, rendered as text by hand (no dependency needed for
//! two counters and a histogram). Labels are bounded: route templates, never identifiers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the request duration histogram. Long polls last up to 30 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; DURATION_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

/// Request counters and duration histograms per route template, and submitted jobs.
///
/// ```
/// use std::time::Duration;
/// use ffrtmp_http::Metrics;
/// let m = Metrics::default();
/// m.observe("/jobs/{id}", "GET", 200, Duration::from_millis(3));
/// m.job_submitted();
/// let text = m.render();
/// assert!(text.contains(r#"ffrtmp_http_requests_total{route="/jobs/{id}",method="GET",status="200"} 1"#));
/// assert!(text.contains("ffrtmp_jobs_submitted_total 1"));
/// ```
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    jobs_submitted: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.requests.entry((route, method, status)).or_insert(0) += 1;
        let h = inner.durations.entry(route).or_default();
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// Counts one accepted job submission.
    pub fn job_submitted(&self) {
        self.jobs_submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(4096);
        out.push_str(
            "# HELP ffrtmp_http_requests_total HTTP requests answered, by route template, method and status.\n",
        );
        out.push_str("# TYPE ffrtmp_http_requests_total counter\n");
        for ((route, method, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "ffrtmp_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP ffrtmp_http_request_duration_seconds Time to answer an HTTP request, by route template.\n",
        );
        out.push_str("# TYPE ffrtmp_http_request_duration_seconds histogram\n");
        for (route, h) in &inner.durations {
            for (bound, n) in DURATION_BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    out,
                    "ffrtmp_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "ffrtmp_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "ffrtmp_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "ffrtmp_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP ffrtmp_jobs_submitted_total Jobs accepted by POST /jobs.\n");
        out.push_str("# TYPE ffrtmp_jobs_submitted_total counter\n");
        let _ = writeln!(
            out,
            "ffrtmp_jobs_submitted_total {}",
            self.jobs_submitted.load(Ordering::Relaxed)
        );
        out
    }
}

/// A bounded label for an HTTP method.
pub(crate) fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe("/jobs", "POST", 201, Duration::from_millis(2));
        m.observe("/jobs", "POST", 400, Duration::from_secs(3));
        let text = m.render();
        assert!(text.contains(r#"ffrtmp_http_request_duration_seconds_bucket{route="/jobs",le="0.005"} 1"#));
        assert!(text.contains(r#"ffrtmp_http_request_duration_seconds_bucket{route="/jobs",le="5"} 2"#));
        assert!(text.contains(r#"ffrtmp_http_request_duration_seconds_bucket{route="/jobs",le="+Inf"} 2"#));
        assert!(text.contains(r#"ffrtmp_http_request_duration_seconds_count{route="/jobs"} 2"#));
        assert!(text.contains(r#"ffrtmp_http_requests_total{route="/jobs",method="POST",status="400"} 1"#));
    }
}
