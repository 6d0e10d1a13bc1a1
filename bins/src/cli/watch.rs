//! Live views over the master's event stream: `ffrtmp jobs watch`, `ffrtmp jobs wait
//! --follow` and `ffrtmp nodes watch`. On a terminal they draw progress bars (frames, fps,
//! speed, ETA, watts); otherwise they print one plain line per message, or with `--output
//! json` one JSON object per line (the message's data plus its `event` name).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::bail;
use ffrtmp_core::{Job, JobId};
use ffrtmp_http::api::EventFilter;
use ffrtmp_http::events::{JobChange, NodeUpdate, ProgressUpdate, StreamEvent};
use ffrtmp_http::{ApiClient, SseMessage};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::term::strip_controls;

/// How messages are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Progress bars (stdout is a terminal).
    Bars,
    /// One plain line per message.
    Lines,
    /// One JSON object per line.
    Json,
}

impl Style {
    /// Bars on a terminal, plain lines elsewhere, JSON lines when asked for.
    pub fn detect(json: bool) -> Style {
        if json {
            Style::Json
        } else if std::io::stdout().is_terminal() {
            Style::Bars
        } else {
            Style::Lines
        }
    }
}

/// Seconds left, from how far the output got, the share done and the speed.
///
/// ```
/// use ffrtmp::cli::watch::eta_s;
/// assert_eq!(eta_s(10.0, Some(25.0), 2.0), Some(15.0));
/// assert_eq!(eta_s(10.0, None, 2.0), None);
/// ```
pub fn eta_s(out_time_s: f64, percent: Option<f64>, speed: f64) -> Option<f64> {
    let p = percent.filter(|p| *p > 0.0 && *p <= 100.0)?;
    // NaN speeds fail this too.
    if speed.is_nan() || speed <= 0.0 {
        return None;
    }
    let total = out_time_s * 100.0 / p;
    Some(((total - out_time_s) / speed).max(0.0))
}

fn clock(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn watts(w: Option<f64>) -> String {
    w.map_or_else(|| "- W".into(), |w| format!("{w:.1} W"))
}

/// The plain-line form of a progress message.
pub fn progress_text(p: &ProgressUpdate) -> String {
    format!(
        "frame {} fps {:.1} speed {:.2}x {} eta {} {}",
        p.frame,
        p.fps,
        p.speed,
        p.percent.map_or_else(|| "-%".into(), |v| format!("{v:.0}%")),
        eta_s(p.out_time_s, p.percent, p.speed).map_or_else(|| "-".into(), clock),
        watts(p.watts)
    )
}

fn job_text(j: &JobChange) -> String {
    let on = j.node.as_deref().map(|n| format!(" on {n}")).unwrap_or_default();
    format!("job {} {} attempt {}{on}", j.job_id, j.state, j.attempt)
}

fn node_text(n: &NodeUpdate) -> String {
    format!(
        "node {} {} {}/{} jobs {}",
        n.node,
        format!("{:?}", n.status).to_lowercase(),
        n.running,
        n.slots,
        watts(n.watts)
    )
}

/// One JSON line: the message's data with its `event` name.
fn json_line(message: &SseMessage) -> String {
    match serde_json::from_str::<serde_json::Value>(&message.data) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert("event".into(), message.event.clone().into());
            serde_json::Value::Object(map).to_string()
        }
        _ => serde_json::json!({ "event": message.event, "data": message.data }).to_string(),
    }
}

/// A job's bar: its share done.
const JOB_BAR: &str = "{prefix:.bold} [{bar:30.cyan/blue}] {pos:>3}% {msg}";
/// A node's bar: its busy slots.
const NODE_BAR: &str = "{prefix:.bold} [{bar:30.green/blue}] {pos}/{len} slots {msg}";

/// Bars by key (job or node), drawn together.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            // Drawn where the terminal check looked: stdout.
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
        }
    }

    /// The bar of `key`, made on first use with `template` (percent for jobs, busy slots
    /// for nodes).
    fn bar(&mut self, key: &str, prefix: &str, template: &str) -> &ProgressBar {
        let multi = &self.multi;
        self.bars.entry(key.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(100));
            let style = ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(strip_controls(prefix).to_string());
            bar
        })
    }
}

/// What a watcher prints, in the chosen style.
struct Printer {
    style: Style,
    bars: Option<Bars>,
}

impl Printer {
    fn new(style: Style) -> Printer {
        Printer {
            style,
            bars: (style == Style::Bars).then(Bars::new),
        }
    }

    fn show(&mut self, message: &SseMessage, event: &StreamEvent) {
        if self.style == Style::Json {
            println!("{}", json_line(message));
            return;
        }
        let Some(bars) = &mut self.bars else {
            let line = match event {
                StreamEvent::Job(j) => job_text(j),
                StreamEvent::Progress(p) => format!("progress {} {}", p.job_id, progress_text(p)),
                StreamEvent::Node(n) => node_text(n),
            };
            println!("{}", strip_controls(&line));
            return;
        };
        match event {
            StreamEvent::Job(j) => {
                let short = short_id(j.job_id);
                let bar = bars.bar(&j.job_id.to_string(), &short, JOB_BAR);
                bar.set_message(format!("{} (attempt {})", j.state, j.attempt));
                if j.state.is_terminal() {
                    if j.state == ffrtmp_core::JobState::Completed {
                        bar.set_position(100);
                    }
                    bar.abandon();
                }
            }
            StreamEvent::Progress(p) => {
                let bar = bars.bar(&p.job_id.to_string(), &short_id(p.job_id), JOB_BAR);
                if let Some(percent) = p.percent {
                    bar.set_position(percent.clamp(0.0, 100.0) as u64);
                }
                bar.set_message(strip_controls(&progress_text(p)).to_string());
            }
            StreamEvent::Node(n) => {
                let bar = bars.bar(&n.node, &n.node, NODE_BAR);
                bar.set_length(u64::from(n.slots.max(1)));
                bar.set_position(u64::from(n.running));
                bar.set_message(strip_controls(&node_text(n)).to_string());
            }
        }
    }

    fn clear(&mut self) {
        if let Some(bars) = &self.bars {
            let _ = bars.multi.clear();
        }
    }
}

fn short_id(id: JobId) -> String {
    id.to_string().chars().take(8).collect()
}

/// Follows `ids` until each is terminal (or `timeout` passes: an error), showing their
/// changes and progress; returns the final jobs. Reconnects when the stream breaks.
pub async fn follow_jobs(api: &ApiClient, ids: &[JobId], timeout: Duration, style: Style) -> anyhow::Result<Vec<Job>> {
    let deadline = Instant::now().checked_add(timeout);
    let filter = EventFilter {
        jobs: ids.to_vec(),
        types: vec!["job".into(), "progress".into()],
        ..EventFilter::default()
    };
    let mut printer = Printer::new(style);
    let mut open: Vec<JobId> = ids.to_vec();
    loop {
        // Subscribed before reading the states, so no change falls between the two.
        let mut stream = api.events(&filter).await?;
        let mut still_open = Vec::new();
        for id in &open {
            if !api.get(*id).await?.state.is_terminal() {
                still_open.push(*id);
            }
        }
        open = still_open;
        while !open.is_empty() {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                printer.clear();
                bail!("timed out waiting for jobs {open:?}");
            }
            let next = stream.next();
            let message = match left {
                Some(left) => match tokio::time::timeout(left, next).await {
                    Ok(m) => m,
                    Err(_) => continue,
                },
                None => next.await,
            };
            let Ok(Some(message)) = message else { break };
            let Some(event) = StreamEvent::parse(&message.event, &message.data) else {
                continue;
            };
            printer.show(&message, &event);
            if let StreamEvent::Job(j) = &event {
                if j.state.is_terminal() {
                    open.retain(|id| *id != j.job_id);
                }
            }
        }
        if open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    printer.clear();
    let mut done = Vec::new();
    for id in ids {
        done.push(api.get(*id).await?);
    }
    Ok(done)
}

/// Shows node status and power (and, on a terminal, their running jobs) until `duration`
/// passes, or forever.
pub async fn watch_nodes(api: &ApiClient, duration: Option<Duration>, style: Style) -> anyhow::Result<()> {
    let deadline = duration.and_then(|d| Instant::now().checked_add(d));
    let filter = EventFilter {
        types: vec!["node".into()],
        ..EventFilter::default()
    };
    let mut printer = Printer::new(style);
    // Start from what the master knows now, then follow.
    let mut stream = api.events(&filter).await?;
    for n in api.nodes().await? {
        let update = NodeUpdate {
            node: n.registration.name.clone(),
            node_id: Some(n.id),
            status: n.status,
            running: n.active_jobs,
            slots: n.registration.max_concurrent_jobs,
            watts: n.power.as_ref().and_then(|p| p.watts),
            at: ffrtmp_http::events::rfc3339(n.last_seen_ms),
        };
        let message = SseMessage {
            event: "node".into(),
            data: serde_json::to_string(&update)?,
        };
        printer.show(&message, &StreamEvent::Node(update));
    }
    loop {
        let next = stream.next();
        let message = match deadline {
            Some(d) => match tokio::time::timeout(d.saturating_duration_since(Instant::now()), next).await {
                Ok(m) => m,
                Err(_) => break,
            },
            None => next.await,
        };
        match message {
            Ok(Some(message)) => {
                if let Some(event) = StreamEvent::parse(&message.event, &message.data) {
                    printer.show(&message, &event);
                }
            }
            Ok(None) | Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                stream = api.events(&filter).await?;
            }
        }
    }
    printer.clear();
    Ok(())
}
