//! The farm's throughput and power over the last hour, for the dashboard's charts: a bounded
//! ring of samples the master takes itself, so the charts need no metrics server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ffrtmp_core::{JobQuery, JobState, JobStore, NodeStatus};
use serde::Serialize;

/// One sample of the whole farm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// When it was taken, ms since the Unix epoch.
    pub at_ms: u64,
    /// Frames per second over all running jobs (their latest progress).
    pub fps: f64,
    /// Watts over all online nodes that report power; `None` when none does.
    pub watts: Option<f64>,
    /// Jobs running.
    pub running: u32,
}

/// The JSON answer of `GET /dashboard/history`.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryView {
    /// Seconds between samples.
    pub interval_s: f64,
    /// Samples, oldest first.
    pub points: Vec<HistoryPoint>,
}

/// A ring of the latest samples: at most `capacity`, the oldest dropped first.
#[derive(Clone, Debug)]
pub struct History {
    points: Arc<Mutex<VecDeque<HistoryPoint>>>,
    capacity: usize,
    interval: Duration,
}

/// Most samples kept, whatever the interval: an hour at one a second.
pub const MAX_POINTS: usize = 3600;

impl History {
    /// A ring holding `keep` worth of samples taken every `interval` (at most [`MAX_POINTS`]).
    pub fn new(interval: Duration, keep: Duration) -> History {
        let interval = interval.max(Duration::from_millis(100));
        let capacity = (keep.as_secs_f64() / interval.as_secs_f64()).ceil() as usize;
        History {
            points: Arc::new(Mutex::new(VecDeque::new())),
            capacity: capacity.clamp(1, MAX_POINTS),
            interval,
        }
    }

    /// The time between samples.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Adds a sample, dropping the oldest when full.
    pub fn push(&self, point: HistoryPoint) {
        let mut points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        while points.len() >= self.capacity {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The samples, oldest first.
    pub fn view(&self) -> HistoryView {
        let points = self.points.lock().unwrap_or_else(|e| e.into_inner());
        HistoryView {
            interval_s: self.interval.as_secs_f64(),
            points: points.iter().copied().collect(),
        }
    }

    /// Takes one sample from the store: running jobs' fps and online nodes' watts.
    pub async fn sample(&self, store: &dyn JobStore) {
        let query = JobQuery {
            state: Some(JobState::Running),
            limit: Some(JobQuery::MAX_LIMIT),
            ..JobQuery::default()
        };
        let (jobs, nodes) = match (store.list(&query).await, store.list_nodes().await) {
            (Ok(jobs), Ok(nodes)) => (jobs, nodes),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %e, "dashboard history: the store did not answer");
                return;
            }
        };
        let fps = jobs
            .jobs
            .iter()
            .filter_map(|j| j.progress.as_ref())
            .map(|p| p.fps)
            .sum();
        let watts: Vec<f64> = nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Online)
            .filter_map(|n| n.power.as_ref().and_then(|p| p.watts))
            .collect();
        self.push(HistoryPoint {
            at_ms: now_ms(),
            fps,
            watts: (!watts.is_empty()).then(|| watts.iter().sum()),
            running: jobs.jobs.len() as u32,
        });
    }

    /// Samples `store` every interval until the task is aborted.
    pub fn spawn_sampler(&self, store: Arc<dyn JobStore>) -> tokio::task::JoinHandle<()> {
        let history = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(history.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                history.sample(store.as_ref()).await;
            }
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_ms: u64) -> HistoryPoint {
        HistoryPoint {
            at_ms,
            fps: 1.0,
            watts: None,
            running: 0,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_hour_and_drops_the_oldest() {
        let h = History::new(Duration::from_secs(10), Duration::from_secs(3600));
        for i in 0..400 {
            h.push(point(i));
        }
        let view = h.view();
        assert_eq!(view.points.len(), 360, "an hour of 10 s samples");
        assert_eq!(view.points[0].at_ms, 40);
        assert_eq!(view.points.last().unwrap().at_ms, 399);
        assert_eq!(view.interval_s, 10.0);
    }

    #[test]
    fn a_tiny_interval_is_capped() {
        let h = History::new(Duration::ZERO, Duration::from_secs(86_400));
        assert_eq!(h.interval(), Duration::from_millis(100));
        for i in 0..(MAX_POINTS as u64 + 10) {
            h.push(point(i));
        }
        assert_eq!(h.view().points.len(), MAX_POINTS);
    }
}
