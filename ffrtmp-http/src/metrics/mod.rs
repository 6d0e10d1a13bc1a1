//! Prometheus metrics of the master, with prometheus-client: HTTP requests, job outcomes,
//! per-scenario frames, energy and run time, enqueue-to-claim time, the queue and node
//! series read from the store at scrape time ([`ClusterSnapshot`]), build info and process
//! metrics. Labels are bounded: route templates, states, scenarios (at most
//! [`MAX_SCENARIO_LABELS`]), queues, priorities and node ids, never job ids.
//!
//! [`encode`] helps collectors whose values are read at scrape time (the agent's).

pub mod cluster;
pub mod efficiency;
pub mod encode;
pub mod process;
pub mod sla;

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use cluster::ClusterSnapshot;
pub use efficiency::{EfficiencyCache, EfficiencySnapshot};
pub use sla::{SlaCache, SlaSnapshot};

/// Upper bounds (seconds) of the request duration histogram. Long polls last up to 30 s.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds (seconds) of the per-scenario job wall-time (run-time) histogram.
pub const WALL_BUCKETS: [f64; 11] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];
/// Upper bounds (joules) of the per-scenario job energy histogram.
pub const ENERGY_BUCKETS: [f64; 10] = [1.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0];
/// Upper bounds (seconds) of the enqueue-to-claim histogram.
pub const QUEUE_WAIT_BUCKETS: [f64; 14] = [
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Most distinct scenario labels; further scenarios are counted under `other`.
pub const MAX_SCENARIO_LABELS: usize = 64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScenarioLabels {
    scenario: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}
fn wall_histogram() -> Histogram {
    Histogram::new(WALL_BUCKETS)
}
fn energy_histogram() -> Histogram {
    Histogram::new(ENERGY_BUCKETS)
}

/// The bounded scenario label of a job: its parsed form `<height>p<fps>-<codec>`, so
/// spellings of one scenario share a series.
fn scenario_label(job: &ffrtmp_core::Job) -> String {
    let s = job.spec.scenario();
    format!("{}p{}-{}", s.height, s.fps, s.codec)
}

/// The master's metrics.
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
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Histograms<RouteLabels>,
    finished: Family<StateLabels, Counter>,
    wall: Histograms<ScenarioLabels>,
    energy: Histograms<ScenarioLabels>,
    frames: Family<ScenarioLabels, Counter>,
    joules: Family<ScenarioLabels, Counter<f64, AtomicU64>>,
    queue_wait: Histogram,
    submitted: Counter,
    scenarios: Mutex<BTreeSet<String>>,
    claimed: Mutex<RecentAttempts>,
    /// Requests and seconds spent per route, for [`Metrics::route_totals`] (the histogram
    /// family does not expose its sums).
    route_time: Mutex<BTreeMap<&'static str, (u64, f64)>>,
    /// The SLA series' scan of job history, shared by scrapes.
    sla: SlaCache,
    /// The efficiency series' scan of job history, shared by scrapes.
    efficiency: EfficiencyCache,
}

/// Attempts whose claim was already timed: a repeated claim (same `claim_id`, after a lost
/// answer) returns the same assignments, which must not be counted twice.
#[derive(Default)]
struct RecentAttempts {
    set: HashSet<(ffrtmp_core::JobId, u32)>,
    order: VecDeque<(ffrtmp_core::JobId, u32)>,
}

impl RecentAttempts {
    /// Most attempts remembered; a retried claim comes seconds after the first.
    const CAPACITY: usize = 4096;

    /// Whether the attempt is new (and remembers it).
    fn first_time(&mut self, key: (ffrtmp_core::JobId, u32)) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations: Histograms<RouteLabels> = Family::new_with_constructor(duration_histogram);
        let finished = Family::<StateLabels, Counter>::default();
        let wall: Histograms<ScenarioLabels> = Family::new_with_constructor(wall_histogram);
        let energy: Histograms<ScenarioLabels> = Family::new_with_constructor(energy_histogram);
        let frames = Family::<ScenarioLabels, Counter>::default();
        let joules = Family::<ScenarioLabels, Counter<f64, AtomicU64>>::default();
        let queue_wait = Histogram::new(QUEUE_WAIT_BUCKETS);
        let submitted = Counter::default();
        let r = &mut registry;
        r.register(
            "ffrtmp_http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        r.register(
            "ffrtmp_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            durations.clone(),
        );
        r.register(
            "ffrtmp_jobs_finished",
            "Jobs that reached a final state, by state",
            finished.clone(),
        );
        r.register(
            "ffrtmp_job_wall_seconds",
            "Run (wall) time of completed jobs, by scenario",
            wall.clone(),
        );
        r.register(
            "ffrtmp_job_energy_joules",
            "Energy of completed jobs, by scenario",
            energy.clone(),
        );
        r.register(
            "ffrtmp_scenario_frames",
            "Frames encoded by completed jobs, by scenario",
            frames.clone(),
        );
        r.register(
            "ffrtmp_scenario_energy_joules",
            "Energy of completed jobs, by scenario; J/frame is rate of this over rate of ffrtmp_scenario_frames_total",
            joules.clone(),
        );
        r.register(
            "ffrtmp_job_queue_wait_seconds",
            "Time from submission to an agent's claim, per claimed attempt",
            queue_wait.clone(),
        );
        r.register(
            "ffrtmp_jobs_submitted",
            "Jobs accepted by POST /jobs",
            submitted.clone(),
        );
        process::register_standard(r);
        Metrics {
            registry,
            requests,
            durations,
            finished,
            wall,
            energy,
            frames,
            joules,
            queue_wait,
            submitted,
            scenarios: Mutex::new(BTreeSet::new()),
            claimed: Mutex::new(RecentAttempts::default()),
            route_time: Mutex::new(BTreeMap::new()),
            sla: SlaCache::default(),
            efficiency: EfficiencyCache::default(),
        }
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { route, method, status })
            .inc();
        self.durations
            .get_or_create(&RouteLabels { route })
            .observe(elapsed.as_secs_f64());
        let mut totals = self.route_time.lock().unwrap_or_else(|e| e.into_inner());
        let entry = totals.entry(route).or_default();
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    /// Requests answered and the total seconds spent answering them, per route template, in
    /// template order: what a load test divides to get the server's share of each call.
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
        let totals = self.route_time.lock().unwrap_or_else(|e| e.into_inner());
        totals.iter().map(|(route, (n, sum))| (*route, *n, *sum)).collect()
    }

    /// Records a job that reached a final state: counts it by state and, when it completed,
    /// adds its wall time, frames and energy to the series of its scenario.
    pub fn job_finished(&self, job: &ffrtmp_core::Job) {
        if !job.state.is_terminal() {
            return;
        }
        self.finished
            .get_or_create(&StateLabels {
                state: job.state.as_str(),
            })
            .inc();
        let Some(result) = &job.result else { return };
        let labels = ScenarioLabels {
            scenario: self.bounded_scenario(job),
        };
        self.wall.get_or_create(&labels).observe(result.wall_s);
        self.frames.get_or_create(&labels).inc_by(result.frames);
        if let Some(j) = result.energy.energy_joules.filter(|j| j.is_finite() && *j >= 0.0) {
            self.energy.get_or_create(&labels).observe(j);
            self.joules.get_or_create(&labels).inc_by(j);
        }
    }

    /// Records claimed jobs: the time each waited since submission, once per attempt.
    pub fn jobs_claimed(&self, jobs: &[ffrtmp_core::Assignment], now_ms: u64) {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        for a in jobs {
            if !claimed.first_time((a.job.id, a.job.attempt)) {
                continue;
            }
            let waited_ms = now_ms.saturating_sub(a.job.created_at_ms);
            self.queue_wait.observe(waited_ms as f64 / 1000.0);
        }
    }

    /// Counts one accepted job submission.
    pub fn job_submitted(&self) {
        self.submitted.inc();
    }

    /// The job's scenario label, or `other` once [`MAX_SCENARIO_LABELS`] are in use.
    fn bounded_scenario(&self, job: &ffrtmp_core::Job) -> String {
        let label = scenario_label(job);
        let mut seen = self.scenarios.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(&label) || seen.len() < MAX_SCENARIO_LABELS {
            seen.insert(label.clone());
            label
        } else {
            "other".into()
        }
    }

    /// The cache of the SLA series' scan of job history.
    pub fn sla_cache(&self) -> &SlaCache {
        &self.sla
    }

    /// The cache of the efficiency series' scan of job history.
    pub fn efficiency_cache(&self) -> &EfficiencyCache {
        &self.efficiency
    }

    /// The Prometheus text exposition (version 0.0.4), without the store's series.
    pub fn render(&self) -> String {
        encode::render(&self.registry)
    }

    /// The exposition with the series of a store snapshot (queue depth, nodes, node power).
    pub fn render_with(&self, cluster: &ClusterSnapshot) -> String {
        let mut out = self.render();
        let mut extra = Registry::default();
        let cluster = cluster.clone();
        extra.register_collector(Box::new(encode::FnCollector(
            move |e: &mut prometheus_client::encoding::DescriptorEncoder| cluster.encode(e),
        )));
        out.push_str(&encode::render(&extra));
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
    fn frames_and_joules_per_scenario_and_queue_wait() {
        let m = Metrics::default();
        let mut job = ffrtmp_core::Job {
            state: ffrtmp_core::JobState::Completed,
            attempt: 1,
            result: Some(ffrtmp_core::JobResult {
                frames: 60,
                wall_s: 2.0,
                energy: ffrtmp_core::EnergyReport {
                    energy_joules: Some(12.5),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..ffrtmp_core::Job::submitted(
                ffrtmp_core::JobId::new(),
                1,
                ffrtmp_core::JobSpec::new("720p-h264").try_into().unwrap(),
                1_000,
            )
        };
        m.job_finished(&job);
        m.job_finished(&job);
        m.jobs_claimed(&[ffrtmp_core::Assignment { job: job.clone() }], 3_500);
        // The same claim answered again (a retried request) is not a second wait.
        m.jobs_claimed(&[ffrtmp_core::Assignment { job: job.clone() }], 3_600);
        let text = m.render();
        assert!(
            text.contains("ffrtmp_scenario_frames_total{scenario=\"720p30-h264\"} 120\n"),
            "{text}"
        );
        assert!(
            text.contains("ffrtmp_scenario_energy_joules_total{scenario=\"720p30-h264\"} 25.0\n"),
            "{text}"
        );
        assert!(
            text.contains("ffrtmp_job_queue_wait_seconds_bucket{le=\"2.5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ffrtmp_job_queue_wait_seconds_bucket{le=\"1\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("ffrtmp_job_queue_wait_seconds_count 1\n"), "{text}");
        assert!(!text.contains("..\n"), "help texts end in one period: {text}");
        // A failed job adds no frames.
        job.state = ffrtmp_core::JobState::Failed;
        job.result = None;
        m.job_finished(&job);
        assert!(m
            .render()
            .contains("ffrtmp_scenario_frames_total{scenario=\"720p30-h264\"} 120\n"));
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
