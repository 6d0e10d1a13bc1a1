//! `GET /events`: one pump task per stream moves matching bus messages into a small
//! per-stream buffer that the response body drains. The pump never waits for the client: a
//! full buffer, or falling behind the bus, ends the stream and closes its connection.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use ffrtmp_core::JobId;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::sync::{broadcast, mpsc, watch};

use super::bus::{Event, EventBus, EventType};
use crate::error::ApiError;
use crate::listen::ConnAbort;

/// Messages one stream may have waiting to be written; past that the client is too slow and
/// is disconnected.
pub const CLIENT_BUFFER: usize = 64;

/// How often a `: keepalive` comment goes to an idle stream.
pub const KEEPALIVE: Duration = Duration::from_secs(15);

/// Which messages a stream wants; an empty set lets everything through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    jobs: HashSet<JobId>,
    nodes: HashSet<String>,
    types: HashSet<EventType>,
}

impl Filter {
    fn admits(&self, event: &Event) -> bool {
        (self.types.is_empty() || self.types.contains(&event.kind))
            && (self.jobs.is_empty() || event.job.is_some_and(|j| self.jobs.contains(&j)))
            && (self.nodes.is_empty() || event.node.as_ref().is_some_and(|n| self.nodes.contains(n)))
    }
}

/// Parses `job=&node=&type=` (each repeatable, values comma-separated); 400 `invalid_query`
/// for anything else.
pub(crate) fn parse_filter(raw: &str) -> Result<Filter, ApiError> {
    let invalid = |m: String| ApiError::bad_request("invalid_query", m);
    let mut filter = Filter::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = crate::handlers::percent_decode(value)
            .ok_or_else(|| invalid(format!("invalid {name} {value:?}: expected percent-encoded UTF-8")))?;
        for item in value.split(',').filter(|v| !v.is_empty()) {
            match name {
                "job" => {
                    let id = item
                        .parse()
                        .map_err(|_| invalid(format!("invalid job {item:?}: expected a UUID")))?;
                    filter.jobs.insert(id);
                }
                "node" => {
                    filter.nodes.insert(item.to_string());
                }
                "type" => {
                    let kind = EventType::parse(item)
                        .ok_or_else(|| invalid(format!("invalid type {item:?}: expected job, progress or node")))?;
                    filter.types.insert(kind);
                }
                other => {
                    return Err(invalid(format!(
                        "unknown query parameter {other:?}: expected job, node or type"
                    )))
                }
            }
        }
    }
    Ok(filter)
}

/// The streaming response body: whatever the pump put in the buffer.
struct SseBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// Starts a stream: the response now, the pump in the background.
pub(crate) fn open(
    bus: &EventBus,
    filter: Filter,
    shutdown: watch::Receiver<bool>,
    abort: Option<ConnAbort>,
) -> Response<BoxBody<Bytes, Infallible>> {
    let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
    // The comment opens the stream at once, so a client knows it is subscribed.
    let _ = tx.try_send(Bytes::from_static(b": connected\n\n"));
    tokio::spawn(pump(bus.clone(), bus.subscribe(), filter, tx, shutdown, abort));
    let mut response = Response::new(SseBody { rx }.boxed());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn pump(
    bus: EventBus,
    mut events: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    mut shutdown: watch::Receiver<bool>,
    abort: Option<ConnAbort>,
) {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.reset();
    let too_slow = loop {
        let frame = tokio::select! {
            received = events.recv() => match received {
                Ok(event) if filter.admits(&event) => event.frame.clone(),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => break true,
                Err(broadcast::error::RecvError::Closed) => break false,
            },
            _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
            _ = tx.closed() => break false,
            _ = shutdown.wait_for(|s| *s) => break false,
        };
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => break true,
            Err(mpsc::error::TrySendError::Closed(_)) => break false,
        }
    };
    if too_slow {
        bus.count_dropped();
        tracing::info!("event stream dropped: the client reads too slowly");
        // Its connection may be stuck writing: close it rather than wait for the client.
        if let Some(abort) = abort {
            abort.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, job: Option<JobId>, node: Option<&str>) -> Event {
        Event::new(kind, job, node.map(str::to_string), &serde_json::json!({}))
    }

    #[test]
    fn filters_combine_with_and_and_accept_lists() {
        let (a, b) = (JobId::new(), JobId::new());
        let f = parse_filter(&format!("job={a}&type=job,progress&node=enc%2D1")).unwrap();
        assert!(f.admits(&event(EventType::Progress, Some(a), Some("enc-1"))));
        assert!(
            !f.admits(&event(EventType::Progress, Some(b), Some("enc-1"))),
            "other job"
        );
        assert!(
            !f.admits(&event(EventType::Progress, Some(a), Some("enc-2"))),
            "other node"
        );
        assert!(
            !f.admits(&event(EventType::Node, None, Some("enc-1"))),
            "type not asked for"
        );
        let all = parse_filter("").unwrap();
        assert!(all.admits(&event(EventType::Node, None, None)));
        let repeated = parse_filter(&format!("job={a}&job={b}")).unwrap();
        assert!(repeated.admits(&event(EventType::Job, Some(b), None)));
        for bad in ["type=weather", "job=x", "colour=red", "node=%zz"] {
            assert_eq!(parse_filter(bad).unwrap_err().kind(), "invalid_query", "{bad}");
        }
    }

    #[test]
    fn frames_are_whole_sse_messages() {
        let e = event(EventType::Job, None, None);
        assert_eq!(&e.frame[..], b"event: job\ndata: {}\n\n");
    }
}
