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
    finished: BTreeMap<&'static str, u64>,
    wall: BTreeMap<String, Buckets>,
    energy: BTreeMap<String, Buckets>,
}

/// Upper bounds (seconds) of the per-scenario job wall-time histogram.
pub const WALL_BUCKETS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Upper bounds (joules) of the per-scenario job energy histogram.
pub const ENERGY_BUCKETS: [f64; 10] = [1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0];
/// Most distinct scenario labels; further scenarios are counted under `other`.
pub const MAX_SCENARIO_LABELS: usize = 64;

#[derive(Default)]
struct Buckets {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Buckets {
    fn observe(&mut self, bounds: &[f64], v: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        for (i, b) in bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    fn render(&self, out: &mut String, name: &str, label: &str, bounds: &[f64]) {
        for (b, n) in bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{scenario=\"{label}\",le=\"{b}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{scenario=\"{label}\",le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{scenario=\"{label}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{scenario=\"{label}\"}} {}", self.count);
    }
}

/// The bounded scenario label of a job: its parsed form `<height>p<fps>-<codec>`, so
/// spellings of one scenario share a series.
fn scenario_label(job: &ffrtmp_core::Job) -> String {
    let s = job.spec.scenario();
    format!("{}p{}-{}", s.height, s.fps, s.codec)
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

    /// Records a job that reached a final state: counts it by state and, when it completed,
    /// adds its wall time and energy to the histograms of its scenario.
    pub fn job_finished(&self, job: &ffrtmp_core::Job) {
        if !job.state.is_terminal() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *inner.finished.entry(job.state.as_str()).or_insert(0) += 1;
        let Some(result) = &job.result else { return };
        let mut label = scenario_label(job);
        if !inner.wall.contains_key(&label) && inner.wall.len() >= MAX_SCENARIO_LABELS {
            label = "other".into();
        }
        inner
            .wall
            .entry(label.clone())
            .or_default()
            .observe(&WALL_BUCKETS, result.wall_s);
        if let Some(j) = result.energy.energy_joules {
            inner.energy.entry(label).or_default().observe(&ENERGY_BUCKETS, j);
        }
    }

    /// Counts one accepted job submission.
    pub fn job_submitted(&self) {
        self.jobs_submitted.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests answered and the total time spent answering them, per route template, in
    /// route order: what a load test divides to get the server's share of each call.
    ///
    /// ```
    /// use std::time::Duration;
    /// let m = ffrtmp_http::Metrics::default();
    /// m.observe("/jobs", "POST", 201, Duration::from_millis(2));
    /// m.observe("/jobs", "POST", 201, Duration::from_millis(4));
    /// let totals = m.route_totals();
    /// assert_eq!(totals[0].0, "/jobs");
    /// assert_eq!(totals[0].1, 2);
    /// assert!((totals[0].2 - Duration::from_millis(6).as_secs_f64()).abs() < 1e-9);
    /// ```
    pub fn route_totals(&self) -> Vec<(&'static str, u64, f64)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .durations
            .iter()
            .map(|(route, h)| (*route, h.count, h.sum))
            .collect()
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
        out.push_str("# HELP ffrtmp_jobs_finished_total Jobs that reached a final state, by state.\n");
        out.push_str("# TYPE ffrtmp_jobs_finished_total counter\n");
        for (state, n) in &inner.finished {
            let _ = writeln!(out, "ffrtmp_jobs_finished_total{{state=\"{state}\"}} {n}");
        }
        out.push_str("# HELP ffrtmp_job_wall_seconds Wall time of completed jobs, by scenario.\n");
        out.push_str("# TYPE ffrtmp_job_wall_seconds histogram\n");
        for (label, h) in &inner.wall {
            h.render(&mut out, "ffrtmp_job_wall_seconds", label, &WALL_BUCKETS);
        }
        out.push_str("# HELP ffrtmp_job_energy_joules Energy of completed jobs, by scenario.\n");
        out.push_str("# TYPE ffrtmp_job_energy_joules histogram\n");
        for (label, h) in &inner.energy {
            h.render(&mut out, "ffrtmp_job_energy_joules", label, &ENERGY_BUCKETS);
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
    fn finished_jobs_feed_bounded_scenario_histograms() {
        let m = Metrics::default();
        let mut job = ffrtmp_core::Job {
            state: ffrtmp_core::JobState::Completed,
            attempt: 1,
            result: Some(ffrtmp_core::JobResult {
                wall_s: 3.0,
                energy: ffrtmp_core::EnergyReport {
                    energy_joules: Some(42.0),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..ffrtmp_core::Job::submitted(
                ffrtmp_core::JobId::new(),
                1,
                ffrtmp_core::JobSpec::new("1080p-h264").try_into().unwrap(),
                0,
            )
        };
        m.job_finished(&job);
        job.spec = ffrtmp_core::JobSpec::new("1080p30-h264").try_into().unwrap();
        m.job_finished(&job);
        let text = m.render();
        assert!(
            text.contains(r#"ffrtmp_job_wall_seconds_count{scenario="1080p30-h264"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"ffrtmp_job_energy_joules_bucket{scenario="1080p30-h264",le="50"} 2"#));
        assert!(text.contains(r#"ffrtmp_jobs_finished_total{state="completed"} 2"#));
        assert!(!text.contains(&job.id.to_string()), "no job ids in labels");
    }

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
