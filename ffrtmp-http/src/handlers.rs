//! One function per route: parse, call the store, answer JSON.

use std::time::Duration;

use bytes::Bytes;
use ffrtmp_core::scenario::KNOWN_SCENARIOS;
use ffrtmp_core::{Assignment, ClaimRequest, JobId, JobQuery, NodeId, NodeQuery, Queue, Scenario};
use http::{Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;

use crate::body::{json, text};
use crate::error::ApiError;
use crate::inputs;
use crate::routes::AppState;
use crate::wire::{ClaimResponse, NodeList, ScenarioList, Status, SCENARIO_GRAMMAR};

pub(crate) type Answer = Result<Response<Full<Bytes>>, ApiError>;

/// Longest time a claim may wait for work.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_millis(30_000);

/// A waiting claim retries at least this often, for work that arrived through another
/// master sharing the store (which cannot notify this one).
pub const CLAIM_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long `/ready` waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn health() -> Answer {
    json(StatusCode::OK, &Status { status: "ok".into() })
}

pub(crate) async fn ready(state: &AppState) -> Answer {
    match tokio::time::timeout(READY_TIMEOUT, state.store.list_nodes()).await {
        Ok(Ok(_)) => json(StatusCode::OK, &Status { status: "ready".into() }),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the job store does not answer: {e}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the job store did not answer within {READY_TIMEOUT:?}"),
        )),
    }
}

/// The metrics, with the store's queue and node series; without them (and a warning) when
/// the store does not answer in time, so a scrape still sees the process up.
pub(crate) async fn metrics(state: &AppState) -> Response<Full<Bytes>> {
    let read = async {
        let mut cluster = crate::metrics::ClusterSnapshot::read(&state.store).await?;
        // Without SLA series rather than without any store series when history fails.
        cluster.sla = match state.metrics.sla_cache().get(&state.store).await {
            Ok(sla) => Some(sla),
            Err(e) => {
                tracing::warn!(error = %e, "metrics without SLA series: the store failed");
                None
            }
        };
        cluster.efficiency = match state.metrics.efficiency_cache().get(&state.store).await {
            Ok(table) => Some(table),
            Err(e) => {
                tracing::warn!(error = %e, "metrics without efficiency series: the store failed");
                None
            }
        };
        Ok::<_, ffrtmp_core::StoreError>(cluster)
    };
    let snapshot = tokio::time::timeout(READY_TIMEOUT, read).await;
    let body = match snapshot {
        Ok(Ok(cluster)) => state.metrics.render_with(&cluster),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics without queue and node series: the store failed");
            state.metrics.render()
        }
        Err(_) => {
            tracing::warn!("metrics without queue and node series: the store did not answer in time");
            state.metrics.render()
        }
    };
    text("text/plain; version=0.0.4; charset=utf-8", body)
}

pub(crate) fn scenarios() -> Answer {
    let scenarios = KNOWN_SCENARIOS
        .iter()
        .filter_map(|name| Scenario::parse(name).ok())
        .collect();
    json(
        StatusCode::OK,
        &ScenarioList {
            scenarios,
            grammar: SCENARIO_GRAMMAR.to_string(),
        },
    )
}

pub(crate) async fn submit(state: &AppState, body: &[u8]) -> Answer {
    let spec = inputs::job_spec_body(body)?;
    let job = state.store.submit(spec).await?;
    state.metrics.job_submitted();
    state.work.notify_waiters();
    json(StatusCode::CREATED, &job)
}

pub(crate) async fn list_jobs(state: &AppState, query: &str) -> Answer {
    let query = parse_job_query(query)?;
    json(StatusCode::OK, &state.store.list(&query).await?)
}

pub(crate) async fn get_job(state: &AppState, id: &str) -> Answer {
    json(StatusCode::OK, &state.store.get(job_id(id)?).await?)
}

pub(crate) async fn cancel(state: &AppState, id: &str, body: &[u8]) -> Answer {
    let id = job_id(id)?;
    let request = inputs::cancel_body(body)?;
    let reason = request.reason.unwrap_or_else(|| "canceled by user".to_string());
    let job = state.store.cancel(id, &reason).await?;
    state.metrics.job_finished(&job);
    state.work.notify_waiters();
    json(StatusCode::OK, &job)
}

pub(crate) async fn retry(state: &AppState, id: &str) -> Answer {
    let job = state.store.retry(job_id(id)?).await?;
    state.work.notify_waiters();
    json(StatusCode::OK, &job)
}

pub(crate) async fn report(state: &AppState, id: &str, body: &[u8]) -> Answer {
    let id = job_id(id)?;
    let report = inputs::report_body(body)?;
    if report.job_id != id {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "job id in the path ({id}) differs from job_id in the body ({})",
                report.job_id
            ),
        ));
    }
    let job = state.store.report(&report).await?;
    state.metrics.job_finished(&job);
    if !job.state.is_active() {
        // The node freed a slot, or the job went back towards the queue.
        state.work.notify_waiters();
    }
    json(StatusCode::OK, &job)
}

pub(crate) async fn list_nodes(state: &AppState, query: &str) -> Answer {
    let query = parse_node_query(query)?;
    let page = state.store.list_nodes_page(&query).await?;
    json(
        StatusCode::OK,
        &NodeList {
            nodes: page.nodes,
            next_cursor: page.next_cursor,
        },
    )
}

pub(crate) async fn register(state: &AppState, body: &[u8]) -> Answer {
    let registration = inputs::registration_body(body)?;
    json(StatusCode::CREATED, &state.store.register_node(registration).await?)
}

pub(crate) async fn heartbeat(state: &AppState, id: &str, body: &[u8]) -> Answer {
    let node = node_id(id)?;
    let heartbeat = inputs::heartbeat_body(body)?;
    json(StatusCode::OK, &state.store.heartbeat(node, &heartbeat).await?)
}

pub(crate) async fn claim(state: &AppState, id: &str, body: &[u8]) -> Answer {
    let node = node_id(id)?;
    let request = inputs::claim_body(body)?;
    if request.node_id != node {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "node id in the path ({node}) differs from node_id in the body ({})",
                request.node_id
            ),
        ));
    }
    let assignments = long_poll_claim(state, &request).await?;
    state.metrics.jobs_claimed(&assignments, ffrtmp_core::now_ms());
    json(StatusCode::OK, &ClaimResponse { assignments })
}

/// Claims at once; when nothing was assigned and the request may wait, claims again each
/// time work may have appeared (a notification, or every [`CLAIM_POLL_INTERVAL`]) until
/// the wait ends or the server shuts down.
async fn long_poll_claim(state: &AppState, request: &ClaimRequest) -> Result<Vec<Assignment>, ApiError> {
    let wait = Duration::from_millis(request.wait_ms).min(MAX_CLAIM_WAIT);
    let deadline = Instant::now() + wait;
    let mut shutdown = state.shutdown.clone();
    loop {
        // Registered before the claim, so a notification during the claim is not lost.
        let notified = state.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let assignments = state.store.claim(request).await?;
        let now = Instant::now();
        if !assignments.is_empty() || request.max_jobs == 0 || now >= deadline || *shutdown.borrow() {
            return Ok(assignments);
        }
        let nap = (deadline - now).min(CLAIM_POLL_INTERVAL);
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.changed() => return Ok(assignments),
        }
    }
}

pub(crate) fn job_id(raw: &str) -> Result<JobId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("invalid job id {raw:?}: expected a UUID")))
}

pub(crate) fn node_id(raw: &str) -> Result<NodeId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("invalid node id {raw:?}: expected a UUID")))
}

/// Parses `state=&queue=&node_id=&before_seq=&limit=`; empty values are ignored, unknown
/// parameters refused.
pub(crate) fn parse_job_query(raw: &str) -> Result<JobQuery, ApiError> {
    let invalid = |name: &str, value: &str, expected: &str| {
        ApiError::bad_request(
            "invalid_query",
            format!("invalid {name} {value:?}: expected {expected}"),
        )
    };
    let mut query = JobQuery::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name).ok_or_else(|| invalid("parameter", name, "percent-encoded UTF-8"))?;
        let value = percent_decode(value).ok_or_else(|| invalid(&name, value, "percent-encoded UTF-8"))?;
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "state" => {
                query.state = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("state", &value, "a job state, e.g. queued"))?,
                )
            }
            "queue" => {
                let q: Queue = serde_json::from_value(serde_json::Value::String(value.clone()))
                    .map_err(|_| invalid("queue", &value, "live, default or batch"))?;
                query.queue = Some(q);
            }
            "node_id" => query.node_id = Some(value.parse().map_err(|_| invalid("node_id", &value, "a UUID"))?),
            "before_seq" => {
                query.before_seq = Some(value.parse().map_err(|_| invalid("before_seq", &value, "an integer"))?)
            }
            "limit" => {
                let limit: u32 = value.parse().map_err(|_| invalid("limit", &value, "an integer"))?;
                if limit == 0 || limit > JobQuery::MAX_LIMIT {
                    return Err(invalid("limit", &value, &format!("1..={}", JobQuery::MAX_LIMIT)));
                }
                query.limit = Some(limit);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}: expected state, queue, node_id, before_seq or limit"),
                ))
            }
        }
    }
    Ok(query)
}

/// Parses `limit=&after=` (`cursor` is another name for `after`); empty values are
/// ignored, unknown parameters refused.
pub(crate) fn parse_node_query(raw: &str) -> Result<NodeQuery, ApiError> {
    let invalid = |name: &str, value: &str, expected: &str| {
        ApiError::bad_request(
            "invalid_query",
            format!("invalid {name} {value:?}: expected {expected}"),
        )
    };
    let mut query = NodeQuery::default();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(name).ok_or_else(|| invalid("parameter", name, "percent-encoded UTF-8"))?;
        let value = percent_decode(value).ok_or_else(|| invalid(&name, value, "percent-encoded UTF-8"))?;
        if value.is_empty() {
            continue;
        }
        match name.as_str() {
            "after" | "cursor" => query.after = Some(value.parse().map_err(|_| invalid(&name, &value, "a node id"))?),
            "limit" => {
                let limit: u32 = value.parse().map_err(|_| invalid("limit", &value, "an integer"))?;
                if limit == 0 || limit > NodeQuery::MAX_LIMIT {
                    return Err(invalid("limit", &value, &format!("1..={}", NodeQuery::MAX_LIMIT)));
                }
                query.limit = Some(limit);
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}: expected limit or after"),
                ))
            }
        }
    }
    Ok(query)
}

/// Decodes `%XX` escapes and `+` (space) in a query component.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffrtmp_core::JobState;

    #[test]
    fn parses_job_queries() {
        let node = NodeId::new();
        let q = parse_job_query(&format!(
            "state=running&queue=live&node_id={node}&before_seq=10&limit=5"
        ))
        .unwrap();
        assert_eq!(q.state, Some(JobState::Running));
        assert_eq!(q.queue, Some(Queue::Live));
        assert_eq!(q.node_id, Some(node));
        assert_eq!((q.before_seq, q.limit), (Some(10), Some(5)));
        assert_eq!(parse_job_query("state=&queue=").unwrap(), JobQuery::default());
        assert_eq!(
            parse_job_query("state=timed%5Fout").unwrap().state,
            Some(JobState::TimedOut)
        );
        for bad in [
            "state=bogus",
            "queue=urgent",
            "node_id=1",
            "limit=0",
            "limit=x",
            "colour=red",
            "state=%zz",
        ] {
            let err = parse_job_query(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_query", "{bad}");
        }
    }

    #[test]
    fn parses_node_queries() {
        let node = NodeId::new();
        let q = parse_node_query(&format!("limit=5&after={node}")).unwrap();
        assert_eq!((q.after, q.limit), (Some(node), Some(5)));
        assert_eq!(parse_node_query(&format!("cursor={node}")).unwrap().after, Some(node));
        assert_eq!(parse_node_query("after=&limit=").unwrap(), NodeQuery::default());
        for bad in ["limit=0", "limit=1001", "after=x", "state=online"] {
            assert_eq!(parse_node_query(bad).unwrap_err().kind(), "invalid_query", "{bad}");
        }
    }
}
