//! Parsing of what a client sends, before any store is touched: the request target (path,
//! method, query) and each JSON body. The server's handlers call these functions, and so do
//! the fuzz targets in `fuzz/` and their stable property tests (`tests/fuzz_inputs.rs`), so
//! what is fuzzed is exactly what is served.
//!
//! Every function answers malformed input with a 4xx [`ApiError`], never a panic:
//!
//! ```
//! use ffrtmp_http::inputs;
//! let target = inputs::parse_target("GET", "/jobs?state=queued&limit=5").unwrap();
//! assert_eq!(target.template, "/jobs");
//! let err = inputs::parse_target("GET", "/jobs?limit=0").unwrap_err();
//! assert_eq!((err.status().as_u16(), err.kind()), (400, "invalid_query"));
//! let err = inputs::heartbeat_body(b"{\"running\": 1").unwrap_err();
//! assert_eq!(err.kind(), "invalid_json");
//! ```

use ffrtmp_core::{ClaimRequest, FieldError, Heartbeat, JobReport, JobSpec, NodeRegistration};
use http::Method;

use crate::auth::Role;
use crate::body::{parse_json, parse_json_or_default};
use crate::error::ApiError;
use crate::handlers::{job_id, node_id, parse_job_query, parse_node_query};
use crate::routes::Route;
use crate::wire::CancelRequest;

/// A request target that names a route the method may call, with its id and query valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The route template, e.g. `/jobs/{id}` (the `route` metric label).
    pub template: &'static str,
    /// The role the request needs; `None` for the public `GET /health`.
    pub role: Option<Role>,
}

/// Parses a method and a request target (`/path?query`) as the server does before it reads
/// the body: 404 `not_found` for an unknown path, 405 `method_not_allowed` for a method the
/// route does not answer, 400 `invalid_id` for a path id that is not a UUID, 400
/// `invalid_query` for a bad query of `GET /jobs` or `GET /nodes`.
pub fn parse_target(method: &str, target: &str) -> Result<Target, ApiError> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let route = Route::parse(path).ok_or_else(|| ApiError::not_found(format!("no route {path}")))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| ApiError::method_not_allowed(route.methods()))?;
    if !route.methods().contains(&method.as_str()) {
        return Err(ApiError::method_not_allowed(route.methods()));
    }
    check_route_input(&route, &method, query)?;
    Ok(Target {
        template: route.template(),
        role: route.role(&method),
    })
}

/// The path id and the query of a matched route, as its handler parses them.
fn check_route_input(route: &Route, method: &Method, query: &str) -> Result<(), ApiError> {
    match route {
        Route::Jobs if method == Method::GET => parse_job_query(query).map(drop),
        Route::Nodes => parse_node_query(query).map(drop),
        Route::Job(id) | Route::JobCancel(id) | Route::JobRetry(id) | Route::JobReport(id) => job_id(id).map(drop),
        Route::NodeHeartbeat(id) | Route::NodeClaim(id) | Route::NodeProgress(id) => node_id(id).map(drop),
        Route::Events => crate::events::sse::parse_filter(query).map(drop),
        _ => Ok(()),
    }
}

/// The body of `POST /jobs`: 400 `invalid_json` or `invalid_spec`.
pub fn job_spec_body(body: &[u8]) -> Result<JobSpec, ApiError> {
    let spec: JobSpec = parse_json(body)?;
    spec.validate()
        .map_err(|e| ApiError::bad_request("invalid_spec", e.to_string()))?;
    Ok(spec)
}

/// The body of `POST /jobs/{id}/report`: 400 `invalid_json` or `invalid_request`.
pub fn report_body(body: &[u8]) -> Result<JobReport, ApiError> {
    let report: JobReport = parse_json(body)?;
    report.validate().map_err(invalid_request)?;
    Ok(report)
}

/// The body of `POST /nodes/{id}/heartbeat` (empty means an idle node): 400 `invalid_json`
/// or `invalid_request`.
pub fn heartbeat_body(body: &[u8]) -> Result<Heartbeat, ApiError> {
    let heartbeat: Heartbeat = parse_json_or_default(body)?;
    heartbeat.validate().map_err(invalid_request)?;
    Ok(heartbeat)
}

/// The body of `POST /nodes/{id}/claim`: 400 `invalid_json` or `invalid_request`.
pub fn claim_body(body: &[u8]) -> Result<ClaimRequest, ApiError> {
    let request: ClaimRequest = parse_json(body)?;
    request.validate().map_err(invalid_request)?;
    Ok(request)
}

/// The body of `POST /nodes/register`: 400 `invalid_json` or `invalid_request`.
pub fn registration_body(body: &[u8]) -> Result<NodeRegistration, ApiError> {
    let registration: NodeRegistration = parse_json(body)?;
    registration.validate().map_err(invalid_request)?;
    Ok(registration)
}

/// The optional body of `POST /jobs/{id}/cancel`: 400 `invalid_json`.
pub fn cancel_body(body: &[u8]) -> Result<CancelRequest, ApiError> {
    parse_json_or_default(body)
}

/// 400 `invalid_request` naming the field and its bound.
fn invalid_request(e: FieldError) -> ApiError {
    ApiError::bad_request("invalid_request", e.to_string())
}

/// The body of `POST /nodes/{id}/progress`: 400 `invalid_json` or `invalid_request` (the
/// same bounds as a heartbeat's, and at most [`ffrtmp_core::ProgressTick::MAX_RUNNING`] attempts).
pub fn progress_tick_body(body: &[u8]) -> Result<ffrtmp_core::ProgressTick, ApiError> {
    let tick: ffrtmp_core::ProgressTick = parse_json_or_default(body)?;
    if tick.running.len() > ffrtmp_core::ProgressTick::MAX_RUNNING {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "running lists {} attempts; at most {} are accepted",
                tick.running.len(),
                ffrtmp_core::ProgressTick::MAX_RUNNING
            ),
        ));
    }
    let as_heartbeat = Heartbeat {
        running: tick.running.clone(),
        power: tick.power.clone(),
    };
    as_heartbeat.validate().map_err(invalid_request)?;
    Ok(tick)
}
